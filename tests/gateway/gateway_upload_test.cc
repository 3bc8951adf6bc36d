// Pre-signed uploads against the real `settled gateway` over loopback: a URL
// from POST /v1/uploads takes one keyless PUT that is ingested like bulk;
// altered, expired and replayed URLs get 403, oversize bodies 413, and
// GET /v1/uploads/{id} tells the state to the merchant's key and admins only.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "gateway_fixture.h"
#include "http_client.h"

namespace settle::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct World {
  std::unique_ptr<TempDir> dir;
  std::string admin, eur, jpy;
  int port = 0;
  std::optional<GatewayProcess> gateway;
};
World* world = nullptr;

class Uploads : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    world = new World;
    world->dir = std::make_unique<TempDir>("gateway-uploads");
    const fs::path data = world->dir->path() / "data";
    settle_basic_fixture(data);
    const fs::path scratch = world->dir->path();
    world->admin = create_key(data, scratch);
    world->eur = create_key(data, scratch, "m-eur");
    world->jpy = create_key(data, scratch, "m-jpy");
    {
      std::ofstream secret(scratch / "upload.secret");
      secret << "a-shared-upload-secret-of-the-test\n";
    }
    world->gateway.emplace(data, std::vector<std::string>{"--upload-secret-file", (scratch / "upload.secret").string(),
                                                          "--upload-max-bytes", "100000"});
    world->port = world->gateway->port();
  }
  static void TearDownTestSuite() {
    delete world;
    world = nullptr;
  }

 protected:
  static int port() { return world->port; }
  static HttpResult create(const std::string& key, const std::string& body = "") {
    Headers h = {{"Authorization", "Bearer " + key}};
    if (!body.empty()) h.emplace_back("Content-Type", "application/json");
    return http_request(port(), "POST", "/v1/uploads", body, h);
  }
  // Creates an upload and returns its response body.
  static json created(const std::string& key, const std::string& body = "") {
    auto r = create(key, body);
    EXPECT_EQ(r.status, 201u) << r.body;
    return json::parse(r.body);
  }
  static HttpResult put(const std::string& url, const std::string& body,
                        const std::string& type = "application/x-ndjson") {
    return http_request(port(), "PUT", url, body, {{"Content-Type", type}});
  }
  static HttpResult status(const std::string& id, const std::string& key) {
    return http_request(port(), "GET", "/v1/uploads/" + id, {}, {{"Authorization", "Bearer " + key}});
  }
  static std::string event(const std::string& id, std::int64_t amount = 700) {
    return fmt::format(
        R"({{"event_id":"{}","merchant_id":"m-eur","type":"capture","amount":{},"currency":"EUR","occurred_at":"2026-03-30T10:00:00Z"}})",
        id, amount);
  }
  static void expect_error(const HttpResult& r, unsigned code, const std::string& error) {
    EXPECT_EQ(r.status, code) << r.body;
    auto j = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r.body;
    EXPECT_EQ(j["error"]["code"], error) << r.body;
    EXPECT_TRUE(j["error"]["message"].is_string()) << r.body;
  }
  static std::string replace(std::string s, const std::string& from, const std::string& to) {
    const auto at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from << " in " << s;
    return s.replace(at, from.size(), to);
  }
  static std::string param(const std::string& url, const std::string& name) {
    const auto at = url.find(name + "=") + name.size() + 1;
    return url.substr(at, url.find('&', at) - at);
  }
};

TEST_F(Uploads, AKeylessPutToTheSignedUrlIsIngestedLikeBulkAndItsStateCounted) {
  const json up = created(world->eur);
  const std::string id = up["upload_id"];
  const std::string url = up["url"];
  EXPECT_EQ(up["merchant_id"], "m-eur");
  EXPECT_EQ(up["method"], "PUT");
  EXPECT_EQ(up["max_bytes"], 100000);
  EXPECT_EQ(url.rfind("/v1/uploads/" + id + "?", 0), 0u) << url;
  auto pending = status(id, world->eur);
  ASSERT_EQ(pending.status, 200u) << pending.body;
  EXPECT_EQ(json::parse(pending.body)["state"], "pending");

  const std::string body = event("up-1") + "\n" + event("up-2") + "\n" + event("up-3", -5) + "\n" + event("up-1") +
                           "\n" + event("up-4") + "\n";
  auto r = put(url, body);
  ASSERT_EQ(r.status, 202u) << r.body;
  const json summary = json::parse(r.body);
  EXPECT_EQ(summary["lines"], 5);
  EXPECT_EQ(summary["accepted"], 3);
  EXPECT_EQ(summary["duplicates"], 1);
  EXPECT_EQ(summary["rejected"], 1);

  auto s = status(id, world->eur);
  ASSERT_EQ(s.status, 200u) << s.body;
  const json st = json::parse(s.body);
  EXPECT_EQ(st["state"], "done");
  EXPECT_EQ(st["lines"], 5);
  EXPECT_EQ(st["accepted"], 3);
  EXPECT_EQ(st["duplicates"], 1);
  EXPECT_EQ(st["rejected"], 1);
  ASSERT_EQ(st["errors"].size(), 1u) << s.body;
  EXPECT_EQ(st["errors"][0]["line"], 3);
  EXPECT_EQ(st["errors"][0]["field"], "amount");
  EXPECT_EQ(status(id, world->admin).status, 200u);
  // The events are the merchant's like any other.
  auto e = http_request(port(), "GET", "/v1/merchants/m-eur/events/up-4", {}, {{"Authorization", "Bearer " + world->eur}});
  EXPECT_EQ(e.status, 200u) << e.body;
}

TEST_F(Uploads, CsvByContentTypeAndOnlyTheSignedMerchantsEvents) {
  const json up = created(world->admin, R"({"merchant_id":"m-eur","max_bytes":5000,"expires_in_s":600})");
  EXPECT_EQ(up["max_bytes"], 5000);
  const std::string csv =
      "event_id,merchant_id,type,amount,currency,occurred_at\r\n"
      "upcsv-1,m-eur,capture,900,EUR,2026-03-30T11:00:00Z\r\n"
      "upcsv-2,m-jpy,capture,900,JPY,2026-03-30T11:00:00Z\r\n";
  auto r = put(up["url"], csv, "text/csv");
  ASSERT_EQ(r.status, 202u) << r.body;
  const json j = json::parse(r.body);
  EXPECT_EQ(j["accepted"], 1);
  EXPECT_EQ(j["rejected"], 1);
  EXPECT_EQ(j["errors"][0]["field"], "merchant_id");  // the URL is m-eur's, not m-jpy's
}

TEST_F(Uploads, AlteringAnySignedFieldGets403AndLeavesTheUrlUsable) {
  const json up = created(world->eur, R"({"max_bytes":2000})");
  const std::string url = up["url"];
  const std::string id = up["upload_id"];
  const std::string sig = param(url, "signature");
  std::string other_id = id;
  other_id.back() = other_id.back() == '0' ? '1' : '0';
  std::string other_sig = sig;
  other_sig[10] = other_sig[10] == '0' ? '1' : '0';
  const std::vector<std::string> altered = {
      replace(url, id, other_id),
      replace(url, "merchant_id=m-eur", "merchant_id=m-jpy"),
      replace(url, "expires=" + param(url, "expires"), "expires=" + std::to_string(std::stoll(param(url, "expires")) + 3600)),
      replace(url, "max_bytes=2000", "max_bytes=2000000"),
      replace(url, sig, other_sig),
  };
  for (const std::string& target : altered) {
    auto r = put(target, event("tamper-1") + "\n");
    expect_error(r, 403, "upload_url_refused");
    EXPECT_NE(r.body.find("signature does not match"), std::string::npos) << target << " " << r.body;
  }
  expect_error(put(url.substr(0, url.find('?')), event("tamper-1") + "\n"), 403, "upload_url_refused");
  EXPECT_EQ(json::parse(status(id, world->eur).body)["state"], "pending");
  auto r = put(url, event("tamper-1") + "\n");
  ASSERT_EQ(r.status, 202u) << r.body;
  EXPECT_EQ(json::parse(r.body)["accepted"], 1);
}

TEST_F(Uploads, ASecondPutOfTheSameUploadIsAReplayAndGets403) {
  const json up = created(world->eur);
  ASSERT_EQ(put(up["url"], event("replay-1") + "\n").status, 202u);
  auto again = put(up["url"], event("replay-2") + "\n");
  expect_error(again, 403, "upload_url_refused");
  EXPECT_NE(again.body.find("already used"), std::string::npos) << again.body;
  const json st = json::parse(status(up["upload_id"], world->eur).body);
  EXPECT_EQ(st["state"], "done");
  EXPECT_EQ(st["accepted"], 1);
  auto e = http_request(port(), "GET", "/v1/merchants/m-eur/events/replay-2", {},
                        {{"Authorization", "Bearer " + world->eur}});
  EXPECT_EQ(e.status, 404u) << "the replayed body must not be ingested: " << e.body;
}

TEST_F(Uploads, AnExpiredUrlGets403) {
  const json up = created(world->eur, R"({"expires_in_s":1})");
  const std::string url = up["url"];
  const std::int64_t expires = std::stoll(param(url, "expires"));
  // Wait for the wall clock to reach the expiry (at most a second).
  while (std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count() <
         expires) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto r = put(url, event("late-1") + "\n");
  expect_error(r, 403, "upload_url_refused");
  EXPECT_NE(r.body.find("expired"), std::string::npos) << r.body;
}

TEST_F(Uploads, ABodyLargerThanTheSignedMaximumGets413) {
  const json up = created(world->eur, R"({"max_bytes":300})");
  std::string big;
  for (int i = 0; big.size() <= 300; ++i) big += event(fmt::format("big-{}", i)) + "\n";
  // Declared too large: refused before anything is read; the URL stays usable.
  expect_error(put(up["url"], big), 413, "payload_too_large");
  EXPECT_EQ(json::parse(status(up["upload_id"], world->eur).body)["state"], "pending");
  // Chunked past the maximum: what came before stays, the upload fails.
  RawConnection c(port());
  std::string url = up["url"];
  c.send("PUT " + url + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
         "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
  for (std::size_t at = 0; at < big.size(); at += 100) {
    const std::string piece = big.substr(at, 100);
    c.send(fmt::format("{:x}\r\n", piece.size()) + piece + "\r\n");
  }
  c.send("0\r\n\r\n");
  const std::string reply = c.read_until_close(20000).first;
  EXPECT_NE(reply.find("413"), std::string::npos) << reply;
  EXPECT_NE(reply.find("payload_too_large"), std::string::npos) << reply;
  const json st = json::parse(status(up["upload_id"], world->eur).body);
  EXPECT_EQ(st["state"], "failed");
  EXPECT_EQ(st["error"]["code"], "payload_too_large");
  // Too large for the gateway at all.
  expect_error(create(world->eur, R"({"max_bytes":100001})"), 422, "validation_failed");
}

TEST_F(Uploads, KeysAndScopes) {
  const json up = created(world->eur);
  expect_error(status(up["upload_id"], world->jpy), 403, "forbidden");
  expect_error(http_request(port(), "GET", "/v1/uploads/" + std::string(up["upload_id"])), 401, "unauthorized");
  expect_error(create(world->eur, R"({"merchant_id":"m-jpy"})"), 403, "forbidden");
  auto admin = create(world->admin);
  expect_error(admin, 422, "validation_failed");
  EXPECT_EQ(json::parse(admin.body)["error"]["details"][0]["field"], "merchant_id");
  expect_error(create(world->admin, R"({"merchant_id":"m-nobody"})"), 422, "validation_failed");
  expect_error(create(world->eur, R"({"expires_in_s":0})"), 422, "validation_failed");
  expect_error(create(world->eur, R"({"colour":"red"})"), 422, "validation_failed");
  expect_error(status("up_00000000000000000000000000000000", world->admin), 404, "not_found");
  expect_error(put(up["url"], event("ct-1") + "\n", "application/json"), 415, "unsupported_media_type");
}

}  // namespace
}  // namespace settle::testing
