// The HTTP gateway end to end: the real `settled gateway` process on a data
// directory that `settled settle` left, driven over loopback by an HTTP client.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "gateway/api.h"
#include "gateway_fixture.h"
#include "http_client.h"

namespace settle::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct World {
  std::unique_ptr<TempDir> dir;
  fs::path data;
  std::string admin;
  std::string eur;  // m-eur's key
  std::string jpy;  // m-jpy's key
  std::unique_ptr<GatewayProcess> gw;
};
World* world = nullptr;

class GatewayApi : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    world = new World;
    world->dir = std::make_unique<TempDir>("gateway-api");
    world->data = world->dir->path() / "data";
    settle_basic_fixture(world->data);
    const fs::path scratch = world->dir->path();
    world->admin = create_key(world->data, scratch);
    world->eur = create_key(world->data, scratch, "m-eur");
    world->jpy = create_key(world->data, scratch, "m-jpy");
    ASSERT_EQ(world->admin.size(), 67u) << world->admin;
    world->gw = std::make_unique<GatewayProcess>(world->data);
  }
  static void TearDownTestSuite() {
    delete world;
    world = nullptr;
  }

 protected:
  static int port() { return world->gw->port(); }
  static HttpResult get(const std::string& target, const std::string& key) {
    return http_request(port(), "GET", target, {}, {{"Authorization", "Bearer " + key}});
  }
  static HttpResult post(const std::string& target, const std::string& key, const std::string& body,
                         Headers extra = {}) {
    Headers h = {{"Authorization", "Bearer " + key}, {"Content-Type", "application/json"}};
    for (auto& e : extra) h.push_back(e);
    return http_request(port(), "POST", target, body, h);
  }
  static HttpResult put(const std::string& target, const std::string& key, const std::string& body) {
    return http_request(port(), "PUT", target, body,
                        {{"Authorization", "Bearer " + key}, {"Content-Type", "application/json"}});
  }
  static std::string event(const std::string& id, const std::string& merchant = "m-eur", std::int64_t amount = 500,
                           const std::string& at = "2026-03-30T10:00:00Z") {
    return fmt::format(R"({{"event_id":"{}","merchant_id":"{}","type":"capture","amount":{},"currency":"{}","occurred_at":"{}"}})",
                       id, merchant, amount, merchant == "m-jpy" ? "JPY" : "EUR", at);
  }
  static json body(const HttpResult& r) { return json::parse(r.body); }
  static json body_of(const HttpResult& r) { return json::parse(r.body); }
  static void expect_error(const HttpResult& r, unsigned status, const std::string& code) {
    EXPECT_EQ(r.status, status) << r.body;
    auto j = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r.body;
    EXPECT_EQ(j["error"]["code"], code) << r.body;
    EXPECT_TRUE(j["error"]["message"].is_string()) << r.body;
  }
};

TEST_F(GatewayApi, HealthAndReadinessNeedNoKey) {
  EXPECT_EQ(http_request(port(), "GET", "/healthz").status, 200u);
  auto r = http_request(port(), "GET", "/readyz");
  EXPECT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(body(r)["status"], "ready");
}

TEST_F(GatewayApi, MissingMalformedUnknownAndRevokedKeysAre401) {
  auto r = http_request(port(), "GET", "/v1/merchants/m-eur/balances");
  expect_error(r, 401, "unauthorized");
  EXPECT_EQ(r.header("www-authenticate"), "Bearer");
  expect_error(http_request(port(), "GET", "/v1/merchants/m-eur/balances", {}, {{"Authorization", "Basic abc"}}), 401,
               "unauthorized");
  expect_error(get("/v1/merchants/m-eur/balances", "sk_" + std::string(64, '0')), 401, "unauthorized");

  auto created = post("/v1/keys", world->admin, R"({"scope":"merchant","merchant_id":"m-eur"})");
  ASSERT_EQ(created.status, 201u) << created.body;
  const std::string key = body(created)["key"];
  const std::string key_id = body(created)["key_id"];
  EXPECT_EQ(get("/v1/merchants/m-eur/balances", key).status, 200u);
  auto revoked = http_request(port(), "DELETE", "/v1/keys/" + key_id, {}, {{"Authorization", "Bearer " + world->admin}});
  EXPECT_EQ(revoked.status, 200u) << revoked.body;
  expect_error(get("/v1/merchants/m-eur/balances", key), 401, "unauthorized");
  expect_error(http_request(port(), "DELETE", "/v1/keys/key_nosuchkey", {}, {{"Authorization", "Bearer " + world->admin}}),
               404, "not_found");
}

TEST_F(GatewayApi, KeysAreListedWithoutSecretsAndOnlyForAdmins) {
  auto r = get("/v1/keys", world->admin);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_GE(body(r)["keys"].size(), 3u);
  EXPECT_EQ(r.body.find("sk_"), std::string::npos) << "a listing must never show a key";
  expect_error(get("/v1/keys", world->eur), 403, "forbidden");
  expect_error(post("/v1/keys", world->eur, R"({"scope":"admin"})"), 403, "forbidden");
  auto bad = post("/v1/keys", world->admin, R"({"scope":"merchant"})");
  expect_error(bad, 422, "validation_failed");
  EXPECT_EQ(body(bad)["error"]["details"][0]["field"], "merchant_id");
}

TEST_F(GatewayApi, AMerchantKeyOnAnotherMerchantsDataIs403) {
  for (const char* path : {"/v1/merchants/m-jpy/balances", "/v1/merchants/m-jpy/batches", "/v1/merchants/m-jpy",
                           "/v1/merchants/m-jpy/ledger", "/v1/merchants/m-jpy/events/j2",
                           "/v1/merchants/m-jpy/batches/2026-03-28/JPY"}) {
    expect_error(get(path, world->eur), 403, "forbidden");
  }
  auto r = post("/v1/events", world->eur, event("x-forbidden", "m-jpy"));
  expect_error(r, 403, "forbidden");
  EXPECT_EQ(body(r)["error"]["details"][0]["field"], "merchant_id");
  expect_error(put("/v1/merchants/m-eur", world->eur, R"({"merchant_id":"m-eur"})"), 403, "forbidden");
  EXPECT_EQ(get("/v1/merchants/m-jpy/balances", world->admin).status, 200u);
}

TEST_F(GatewayApi, AnEventIsAcceptedThenDuplicateThenConflict) {
  auto r = post("/v1/events", world->eur, event("api-1"));
  ASSERT_EQ(r.status, 202u) << r.body;
  EXPECT_EQ(body(r)["results"][0]["status"], "accepted");
  EXPECT_EQ(body(r)["accepted"], 1);
  r = post("/v1/events", world->eur, event("api-1"));
  ASSERT_EQ(r.status, 202u) << r.body;
  EXPECT_EQ(body(r)["results"][0]["status"], "duplicate");
  r = post("/v1/events", world->eur, event("api-1", "m-eur", 501));
  ASSERT_EQ(r.status, 202u) << r.body;
  EXPECT_EQ(body(r)["results"][0]["status"], "rejected");
  EXPECT_EQ(body(r)["results"][0]["errors"][0]["code"], "conflict");
  // Accepted but not yet posted (no processor runs beside this gateway).
  auto e = get("/v1/merchants/m-eur/events/api-1", world->eur);
  ASSERT_EQ(e.status, 200u) << e.body;
  EXPECT_EQ(body(e)["accepted"], true);
  EXPECT_EQ(body(e)["posted"], false);
}

TEST_F(GatewayApi, AnArrayGetsAResultPerEventAndAnInvalidOneRejectsTheWholeRequest) {
  auto bad = post("/v1/events", world->eur,
                  "[" + event("arr-1") + "," + event("arr-2", "m-eur", -5) + "]");
  expect_error(bad, 422, "validation_failed");
  const json details = body(bad)["error"]["details"];
  ASSERT_EQ(details.size(), 1u) << bad.body;
  EXPECT_EQ(details[0]["field"], "[1].amount");
  EXPECT_EQ(details[0]["reason"], "must be > 0 for a capture");

  auto admin_bad = post("/v1/events", world->admin, "[" + event("arr-1") + "," + event("arr-3", "m-nope") + "]");
  expect_error(admin_bad, 422, "validation_failed");
  EXPECT_EQ(body(admin_bad)["error"]["details"][0]["field"], "[1].merchant_id");

  // Nothing of the rejected requests was accepted: arr-1 is new now.
  auto ok = post("/v1/events", world->eur, "[" + event("arr-1") + "," + event("arr-2") + "," + event("arr-1") + "]");
  ASSERT_EQ(ok.status, 202u) << ok.body;
  const json j = body(ok);
  EXPECT_EQ(j["results"][0]["status"], "accepted");
  EXPECT_EQ(j["results"][1]["status"], "accepted");
  EXPECT_EQ(j["results"][2]["status"], "duplicate");
  EXPECT_EQ(j["accepted"], 2);
  EXPECT_EQ(j["duplicates"], 1);
}

TEST_F(GatewayApi, ValidationErrorsNameTheField) {
  struct Case {
    std::string body;
    std::string field;
  };
  const std::vector<Case> cases = {
      {R"({"event_id":"v1","merchant_id":"m-eur","type":"capture","amount":5,"currency":"XXQ","occurred_at":"2026-03-30T10:00:00Z"})", "currency"},
      {R"({"event_id":"v1","merchant_id":"m-eur","type":"capture","amount":99999999999999999999,"currency":"EUR","occurred_at":"2026-03-30T10:00:00Z"})", "amount"},
      {R"({"event_id":"v1","merchant_id":"m-eur","type":"capture","amount":5,"currency":"EUR","occurred_at":"2026-03-30 10:00"})", "occurred_at"},
      {R"({"event_id":"v1","merchant_id":"m-eur","type":"capture","amount":5,"currency":"EUR","occurred_at":"2026-03-30T10:00:00Z","color":"red"})", "color"},
      {R"({"event_id":"v1","merchant_id":"m-eur","type":"capture","amount":5,"currency":"EUR"})", "occurred_at"},
      {R"({"event_id":"v1","merchant_id":"m-eur","type":"sale","amount":5,"currency":"EUR","occurred_at":"2026-03-30T10:00:00Z"})", "type"},
  };
  for (const auto& c : cases) {
    auto r = post("/v1/events", world->eur, c.body);
    expect_error(r, 422, "validation_failed");
    EXPECT_EQ(body(r)["error"]["details"][0]["field"], c.field) << r.body;
  }
  expect_error(post("/v1/events", world->eur, R"({"event_id": )"), 400, "malformed_json");
  expect_error(post("/v1/events", world->eur, "[" + event("m1") + ",]"), 400, "malformed_json");
  expect_error(post("/v1/events", world->eur, "42"), 400, "malformed_json");
  expect_error(post("/v1/events", world->eur, "[]"), 422, "validation_failed");
  expect_error(http_request(port(), "POST", "/v1/events", event("ct"),
                            {{"Authorization", "Bearer " + world->eur}, {"Content-Type", "text/plain"}}),
               415, "unsupported_media_type");
  expect_error(http_request(port(), "POST", "/v1/events", event("ct"),
                            {{"Authorization", "Bearer " + world->eur}, {"Content-Type", "application/jsonx"}}),
               415, "unsupported_media_type");
  // The media type is case-insensitive and may carry parameters.
  EXPECT_EQ(http_request(port(), "POST", "/v1/events", event("ct-params"),
                         {{"Authorization", "Bearer " + world->eur}, {"Content-Type", " Application/JSON ; charset=utf-8"}})
                .status,
            202);
  std::string many = "[";
  for (int i = 0; i < 1001; ++i) many += (i ? "," : "") + event(fmt::format("many-{}", i));
  many += "]";
  expect_error(post("/v1/events", world->eur, many), 422, "validation_failed");
  const std::string huge = "[" + std::string(1 << 20, ' ') + event("huge") + "]";
  expect_error(post("/v1/events", world->eur, huge), 413, "payload_too_large");
}

TEST_F(GatewayApi, AnIdempotencyKeyReplaysTheFirstResponse) {
  const Headers k = {{"Idempotency-Key", "order-77"}};
  auto first = post("/v1/events", world->eur, event("idem-1"), k);
  ASSERT_EQ(first.status, 202u) << first.body;
  EXPECT_EQ(body(first)["results"][0]["status"], "accepted");
  auto again = post("/v1/events", world->eur, event("idem-1"), k);
  EXPECT_EQ(again.status, 202u);
  EXPECT_EQ(again.body, first.body) << "a replay answers exactly the first response, not 'duplicate'";
  EXPECT_EQ(again.header("idempotent-replayed"), "true");
  ASSERT_FALSE(first.header("traceparent").empty());
  EXPECT_EQ(again.header("traceparent"), first.header("traceparent"))
      << "a replay carries the trace the first request's events travelled under";
  expect_error(post("/v1/events", world->eur, event("idem-2"), k), 422, "idempotency_key_reused");
  // Keys are per principal: another merchant's same key is its own.
  auto other = post("/v1/events", world->jpy, event("idem-1", "m-jpy"), k);
  EXPECT_EQ(other.status, 202u);
  EXPECT_EQ(body(other)["results"][0]["status"], "accepted");
  expect_error(post("/v1/events", world->eur, event("idem-3"), {{"Idempotency-Key", std::string(300, 'a')}}), 400,
               "invalid_idempotency_key");
}

TEST(StoredIdempotentResponse, Format2RoundTripsAndFormat1StillReplaysWithoutATrace) {
  const gateway::StoredResponse r{"ab12", 202, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                         "{\"results\":[]}\nwith a newline"};
  EXPECT_EQ(gateway::decode_stored_response(gateway::encode_stored_response(r)), r);
  const gateway::StoredResponse no_trace{"ab12", 422, "", "{}"};
  EXPECT_EQ(gateway::decode_stored_response(gateway::encode_stored_response(no_trace)), no_trace);
  // Format 1, as stored before the upgrade: digest, status, body.
  EXPECT_EQ(gateway::decode_stored_response("ab12\n202\n{\"a\":1}\n"), (gateway::StoredResponse{"ab12", 202, "", "{\"a\":1}\n"}));
  for (const char* bad : {"", "ab12", "ab12\n202", "v2\nab12\n202", "ab12\nok\n{}", "ab12\n99\n{}", "ab12\n202x\n{}"}) {
    EXPECT_EQ(gateway::decode_stored_response(bad), std::nullopt) << bad;
  }
}

TEST_F(GatewayApi, ConcurrentRequestsWithOneIdempotencyKeyRunOnce) {
  constexpr int kThreads = 12;
  std::vector<HttpResult> results(kThreads);
  std::vector<std::thread> threads;
  std::atomic<bool> go{false};
  std::string batch = "[";
  for (int i = 0; i < 200; ++i) batch += (i ? "," : "") + event(fmt::format("conc-{}", i));
  batch += "]";
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();
      results[static_cast<std::size_t>(t)] = post("/v1/events", world->eur, batch, {{"Idempotency-Key", "conc-key"}});
    });
  }
  go = true;
  for (auto& th : threads) th.join();
  int executed = 0;
  std::set<std::string> bodies;
  for (const auto& r : results) {
    if (r.status == 409) {
      EXPECT_EQ(body(r)["error"]["code"], "idempotency_key_in_flight");
      continue;
    }
    ASSERT_EQ(r.status, 202u) << r.body;
    bodies.insert(r.body);
    if (r.header("idempotent-replayed").empty()) ++executed;
  }
  EXPECT_EQ(executed, 1);
  ASSERT_EQ(bodies.size(), 1u);
  EXPECT_EQ(json::parse(*bodies.begin())["accepted"], 200);
}

TEST_F(GatewayApi, MerchantsArePutAndGotByAdmins) {
  const std::string cfg =
      R"({"merchant_id":"m-new","timezone":"America/New_York","cutoff":"17:00","delay_days":2,"fees":{"capture":{"bps":100,"fixed":5}}})";
  auto r = put("/v1/merchants/m-new", world->admin, cfg);
  ASSERT_EQ(r.status, 201u) << r.body;
  auto g = get("/v1/merchants/m-new", world->admin);
  ASSERT_EQ(g.status, 200u) << g.body;
  EXPECT_EQ(body(g)["timezone"], "America/New_York");
  EXPECT_EQ(body(g)["cutoff"], "17:00");
  EXPECT_EQ(put("/v1/merchants/m-new", world->admin, cfg).status, 200u);
  // Events of the new merchant are accepted at once.
  auto e = post("/v1/events", world->admin,
                R"({"event_id":"n1","merchant_id":"m-new","type":"capture","amount":7,"currency":"USD","occurred_at":"2026-03-30T10:00:00Z"})");
  EXPECT_EQ(e.status, 202u) << e.body;

  auto bad = put("/v1/merchants/m-bad", world->admin, R"({"merchant_id":"m-bad","cutoff":"25:00"})");
  expect_error(bad, 422, "validation_failed");
  EXPECT_EQ(body(bad)["error"]["details"][0]["field"], "cutoff");
  auto mismatch = put("/v1/merchants/m-x", world->admin, R"({"merchant_id":"m-y"})");
  expect_error(mismatch, 422, "validation_failed");
  EXPECT_EQ(body(mismatch)["error"]["details"][0]["field"], "merchant_id");
  expect_error(get("/v1/merchants/m-none", world->admin), 404, "not_found");
  EXPECT_EQ(get("/v1/merchants/m-eur", world->eur).status, 200u);
}

TEST_F(GatewayApi, ClosedBatchRowsEqualTheReportAndOpenBatchesShowRunningTotals) {
  auto r = get("/v1/merchants/m-eur/batches", world->eur);
  ASSERT_EQ(r.status, 200u) << r.body;
  std::vector<json> closed;
  std::vector<json> open;
  const json batches = body(r)["batches"];
  for (const auto& b : batches) (b["state"] == "closed" ? closed : open).push_back(b);
  ASSERT_EQ(closed.size(), 2u) << r.body;
  EXPECT_EQ(closed[0]["batch_date"], "2026-03-28");
  EXPECT_EQ(closed[0]["payout"], 6820);
  EXPECT_EQ(closed[1]["carry_out"], -3491);
  ASSERT_EQ(open.size(), 1u) << r.body;
  EXPECT_EQ(open[0]["batch_date"], "2026-03-30");
  EXPECT_EQ(open[0]["captures"], 1000);
  EXPECT_EQ(open[0]["fees"], 25);

  auto one = get("/v1/merchants/m-jpy/batches/2026-03-28/JPY", world->jpy);
  ASSERT_EQ(one.status, 200u) << one.body;
  EXPECT_EQ(body(one)["reserve_held"], 1000);
  auto filtered = get("/v1/merchants/m-eur/batches?from=2026-03-29&to=2026-03-29", world->eur);
  EXPECT_EQ(body(filtered)["batches"].size(), 1u) << filtered.body;
  expect_error(get("/v1/merchants/m-jpy/batches/2026-01-01/JPY", world->jpy), 404, "not_found");
  expect_error(get("/v1/merchants/m-jpy/batches/2026-13-01/JPY", world->jpy), 422, "validation_failed");
  expect_error(get("/v1/merchants/m-eur/batches?from=yesterday", world->eur), 422, "validation_failed");
}

TEST_F(GatewayApi, BalancesAndEventStatusComeFromTheLedger) {
  auto b = get("/v1/merchants/m-eur/balances", world->eur);
  ASSERT_EQ(b.status, 200u) << b.body;
  bool payable = false;
  const json balances = body(b)["balances"];
  for (const auto& row : balances) {
    if (row["account"] == "merchant:m-eur:payable") payable = true;
    EXPECT_NE(row["account"].get<std::string>().find("m-eur"), std::string::npos);
  }
  EXPECT_TRUE(payable) << b.body;

  auto e = get("/v1/merchants/m-eur/events/e1", world->eur);
  ASSERT_EQ(e.status, 200u) << e.body;
  const json j = body(e);
  EXPECT_EQ(j["posted"], true);
  EXPECT_EQ(j["settled"], true);
  EXPECT_EQ(j["batch_date"], "2026-03-28");
  EXPECT_EQ(j["batch"]["state"], "closed");
  EXPECT_EQ(j["legs"].size(), 3u);
  expect_error(get("/v1/merchants/m-eur/events/no-such-event", world->eur), 404, "not_found");
}

TEST_F(GatewayApi, TheLedgerPagesWithACursor) {
  auto all = get("/v1/merchants/m-eur/ledger?limit=1000", world->eur);
  ASSERT_EQ(all.status, 200u) << all.body;
  const json everything = body(all)["postings"];
  ASSERT_GT(everything.size(), 5u);
  EXPECT_TRUE(body(all)["next_cursor"].is_null());
  json paged = json::array();
  std::string cursor;
  int pages = 0;
  for (;;) {
    auto p = get("/v1/merchants/m-eur/ledger?limit=4" + (cursor.empty() ? "" : "&cursor=" + cursor), world->eur);
    ASSERT_EQ(p.status, 200u) << p.body;
    const json rows = body(p)["postings"];
    for (const auto& row : rows) paged.push_back(row);
    ++pages;
    if (body(p)["next_cursor"].is_null()) break;
    cursor = body(p)["next_cursor"];
  }
  EXPECT_EQ(paged, everything);
  EXPECT_EQ(pages, static_cast<int>((everything.size() + 3) / 4));
  auto payable = get("/v1/merchants/m-eur/ledger?account=merchant:m-eur:payable&from=2026-03-28&to=2026-03-28",
                     world->eur);
  ASSERT_EQ(payable.status, 200u);
  const json payable_rows = body(payable)["postings"];
  for (const auto& row : payable_rows) {
    EXPECT_EQ(row["account"], "merchant:m-eur:payable");
    EXPECT_EQ(row["settle_date"], "2026-03-28");
  }
  expect_error(get("/v1/merchants/m-eur/ledger?cursor=zzz", world->eur), 422, "validation_failed");
  expect_error(get("/v1/merchants/m-eur/ledger?limit=0", world->eur), 422, "validation_failed");
}

TEST_F(GatewayApi, UnknownRoutesAre404AndWrongMethods405) {
  expect_error(get("/v1/nothing", world->admin), 404, "not_found");
  auto r = http_request(port(), "DELETE", "/v1/events", {}, {{"Authorization", "Bearer " + world->admin}});
  expect_error(r, 405, "method_not_allowed");
  EXPECT_EQ(r.header("allow"), "POST");
}

TEST_F(GatewayApi, BulkNdjsonAnswersASummaryAndErrorsByLine) {
  const std::string body = event("bulk-1") + "\n" + event("bulk-2", "m-eur", -1) + "\n\n" + event("bulk-1") + "\n" +
                           event("bulk-3", "m-jpy") + "\n" + "{not json\n" + event("bulk-4") + "\n" +
                           event("bulk-1", "m-eur", 999);  // no final newline
  auto r = http_request(port(), "POST", "/v1/events/bulk", body,
                        {{"Authorization", "Bearer " + world->eur}, {"Content-Type", "application/x-ndjson"}});
  ASSERT_EQ(r.status, 202u) << r.body;
  const json j = body_of(r);
  EXPECT_EQ(j["lines"], 7);
  EXPECT_EQ(j["accepted"], 2);
  EXPECT_EQ(j["duplicates"], 1);
  EXPECT_EQ(j["rejected"], 4);
  const json errors = j["errors"];
  ASSERT_EQ(errors.size(), 4u) << r.body;
  EXPECT_EQ(errors[0]["line"], 2);
  EXPECT_EQ(errors[0]["field"], "amount");
  EXPECT_EQ(errors[1]["line"], 5);
  EXPECT_EQ(errors[1]["field"], "merchant_id");  // another merchant's event
  EXPECT_EQ(errors[2]["line"], 6);
  EXPECT_EQ(errors[3]["line"], 8);
  EXPECT_EQ(errors[3]["field"], "event_id");  // a conflict
  expect_error(http_request(port(), "POST", "/v1/events/bulk", body,
                            {{"Authorization", "Bearer " + world->eur}, {"Content-Type", "application/json"}}),
               415, "unsupported_media_type");
  expect_error(http_request(port(), "POST", "/v1/events/bulk", body, {{"Content-Type", "application/x-ndjson"}}), 401,
               "unauthorized");
}

TEST_F(GatewayApi, BulkCsvTakesAHeaderRowAndMetadataAsAJsonColumn) {
  const std::string csv =
      "event_id,merchant_id,type,amount,currency,occurred_at,metadata\r\n"
      "csv-1,m-eur,capture,1200,EUR,2026-03-30T11:00:00Z,\"{\"\"order\"\":\"\"A-1, B\"\"}\"\r\n"
      "csv-2,m-eur,refund,12.5,EUR,2026-03-30T11:00:00Z,\r\n"
      "csv-3,m-eur,capture,5,EUR\r\n"
      "csv-4,m-eur,capture,5,EUR,2026-03-30T11:00:00Z,{oops}\r\n"
      "csv-5,m-eur,adjustment,-300,EUR,2026-03-30T11:00:00+02:00,\r\n";
  auto r = http_request(port(), "POST", "/v1/events/bulk", csv,
                        {{"Authorization", "Bearer " + world->eur}, {"Content-Type", "text/csv; charset=utf-8"}});
  ASSERT_EQ(r.status, 202u) << r.body;
  const json j = body_of(r);
  EXPECT_EQ(j["lines"], 5);
  EXPECT_EQ(j["accepted"], 2);
  EXPECT_EQ(j["rejected"], 3);
  const json errors = j["errors"];
  ASSERT_EQ(errors.size(), 3u) << r.body;
  EXPECT_EQ(errors[0]["line"], 3);
  EXPECT_EQ(errors[0]["field"], "amount");
  EXPECT_EQ(errors[1]["line"], 4);
  EXPECT_EQ(errors[2]["line"], 5);
  EXPECT_EQ(errors[2]["field"], "metadata");
  auto e = get("/v1/merchants/m-eur/events/csv-1", world->eur);
  EXPECT_EQ(e.status, 200u) << e.body;
}

// Sends an NDJSON body with chunked transfer encoding, in chunks that split
// lines anywhere; returns the raw response.
std::string send_chunked(int port, const std::string& key, const std::function<bool(std::string&)>& next_piece) {
  RawConnection c(port);
  c.send("POST /v1/events/bulk HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key +
         "\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
  std::string piece;
  while (next_piece(piece)) {
    if (piece.empty()) continue;
    c.send(fmt::format("{:x}\r\n", piece.size()) + piece + "\r\n");
  }
  c.send("0\r\n\r\n");
  return c.read_until_close(120000).first;
}

TEST_F(GatewayApi, BulkBodiesMayBeChunkedAnywhere) {
  std::string all;
  for (int i = 0; i < 50; ++i) all += event(fmt::format("chunk-{}", i)) + "\n";
  std::size_t at = 0;
  const std::string reply = send_chunked(port(), world->eur, [&](std::string& piece) {
    if (at >= all.size()) return false;
    const std::size_t n = std::min<std::size_t>(all.size() - at, 37);  // splits lines mid-way
    piece = all.substr(at, n);
    at += n;
    return true;
  });
  ASSERT_NE(reply.find("202 Accepted"), std::string::npos) << reply;
  const json j = json::parse(reply.substr(reply.find("\r\n\r\n") + 4));
  EXPECT_EQ(j["lines"], 50);
  EXPECT_EQ(j["accepted"], 50);
}

long peak_rss_kib(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

TEST(GatewayBulk, A50MegabyteUploadStreamsInBoundedMemory) {
  TempDir dir("gateway-bulk");
  const fs::path data = dir.path() / "data";
  settle_basic_fixture(data);
  const std::string key = create_key(data, dir.path());
  GatewayProcess gw(data, {"--fsync", "none"});
  const long before = peak_rss_kib(gw.pid());
  ASSERT_GT(before, 0);
  // ~1 KiB per line (metadata), 50 MiB in all, streamed in 256 KiB chunks.
  const std::string pad(440, 'x');  // two metadata values of at most 500 characters
  constexpr std::int64_t kBytes = 50LL << 20;
  std::int64_t sent = 0;
  std::int64_t lines = 0;
  const auto t0 = std::chrono::steady_clock::now();
  const std::string reply = send_chunked(gw.port(), key, [&](std::string& piece) {
    if (sent >= kBytes) return false;
    piece.clear();
    while (piece.size() < (256u << 10)) {
      piece += fmt::format(
          R"({{"event_id":"big-{}","merchant_id":"m-eur","type":"capture","amount":{},"currency":"EUR","occurred_at":"2026-03-30T10:00:00Z","metadata":{{"a":"{}","b":"{}"}}}})",
          lines, 100 + lines % 1000, pad, pad);
      piece += '\n';
      ++lines;
    }
    sent += static_cast<std::int64_t>(piece.size());
    return true;
  });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_NE(reply.find("202 Accepted"), std::string::npos) << reply.substr(0, 2000);
  const json j = json::parse(reply.substr(reply.find("\r\n\r\n") + 4));
  EXPECT_EQ(j["accepted"], lines);
  EXPECT_EQ(j["rejected"], 0);
  const long after = peak_rss_kib(gw.pid());
  std::printf("bulk: %lld lines, %.1f MiB in %.2f s (%.1f MiB/s); gateway peak RSS %ld -> %ld KiB\n",
              static_cast<long long>(lines), static_cast<double>(sent) / (1 << 20), seconds,
              static_cast<double>(sent) / (1 << 20) / seconds, before, after);
  // The body is never held: growth is the events' claims (~200 B per event
  // in the embedded store) and buffers, below the 50 MiB sent.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  (void)after;  // the sanitizers' shadow memory (and ASan's quarantine) make RSS meaningless here
#else
  EXPECT_LT(after - before, 46 * 1024) << "peak RSS grew by " << (after - before) << " KiB";
#endif
}

TEST(GatewayLimits, AMerchantBeyondItsRateGets429WithRetryAfter) {
  TempDir dir("gateway-rate");
  const fs::path data = dir.path() / "data";
  settle_basic_fixture(data);
  const std::string eur = create_key(data, dir.path(), "m-eur");
  const std::string jpy = create_key(data, dir.path(), "m-jpy");
  GatewayProcess gw(data, {"--rate-limit", "1", "--rate-burst", "10"});
  auto post = [&](const std::string& key, const std::string& merchant, int first, int n) {
    std::string body = "[";
    for (int i = 0; i < n; ++i) {
      body += fmt::format(
          R"({}{{"event_id":"rl-{}","merchant_id":"{}","type":"capture","amount":5,"currency":"{}","occurred_at":"2026-03-30T10:00:00Z"}})",
          i ? "," : "", first + i, merchant, merchant == "m-jpy" ? "JPY" : "EUR");
    }
    body += "]";
    return http_request(gw.port(), "POST", "/v1/events", body,
                        {{"Authorization", "Bearer " + key}, {"Content-Type", "application/json"}});
  };
  EXPECT_EQ(post(eur, "m-eur", 0, 8).status, 202u);  // 8 of the burst of 10
  auto r = post(eur, "m-eur", 8, 5);                  // 5 > the 2 left
  EXPECT_EQ(r.status, 429u) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "rate_limited");
  EXPECT_GE(std::stoi(r.header("retry-after")), 1);
  EXPECT_EQ(r.header("ratelimit-limit"), "10");
  EXPECT_EQ(r.header("ratelimit-remaining"), "2");
  EXPECT_FALSE(r.header("ratelimit-reset").empty());
  EXPECT_EQ(post(eur, "m-eur", 8, 2).status, 202u);   // what is left still goes
  EXPECT_EQ(post(jpy, "m-jpy", 0, 10).status, 202u);  // another merchant has its own bucket
}

TEST(GatewayLimits, AFullInProcessStoreAnswers503AndKeepsWhatItAccepted) {
  TempDir dir("gateway-store-full");
  const fs::path data = dir.path() / "data";
  settle_basic_fixture(data);
  const std::string eur = create_key(data, dir.path(), "m-eur");
  // One entry per accepted event (its claim, which becomes its on-bus mark):
  // room for 1,000 events.
  GatewayProcess gw(data, {"--memory-store-max-entries", "1000"});
  auto post = [&](int first, int n) {
    std::string body = "[";
    for (int i = 0; i < n; ++i) {
      body += fmt::format(
          R"({}{{"event_id":"full-{}","merchant_id":"m-eur","type":"capture","amount":5,"currency":"EUR","occurred_at":"2026-03-30T10:00:00Z"}})",
          i ? "," : "", first + i);
    }
    body += "]";
    return http_request(gw.port(), "POST", "/v1/events", body,
                        {{"Authorization", "Bearer " + eur}, {"Content-Type", "application/json"}});
  };
  for (int k = 0; k < 10; ++k) {
    auto r = post(100 * k, 100);
    ASSERT_EQ(r.status, 202u) << "batch " << k << ": " << r.body;
    ASSERT_EQ(json::parse(r.body)["accepted"], 100) << r.body;
  }
  auto full = post(1000, 10);
  EXPECT_EQ(full.status, 503u) << full.body;
  EXPECT_NE(full.body.find("idempotency store is full"), std::string::npos) << full.body;
  // What was accepted stays known: a resend is a duplicate, not a 503.
  auto again = post(0, 100);
  ASSERT_EQ(again.status, 202u) << again.body;
  EXPECT_EQ(json::parse(again.body)["duplicates"], 100) << again.body;

  // The flag bounds the in-process store only.
  ProcessOptions bad;
  bad.argv = {SETTLED_BIN, "gateway", "--data-dir", (dir.path() / "other").string(), "--store", "redis://127.0.0.1:1",
              "--memory-store-max-entries", "1000"};
  std::string out;
  EXPECT_NE(run(bad, &out), 0);
  EXPECT_NE(out.find("--memory-store-max-entries bounds the in-process store; the store is redis://127.0.0.1:1"),
            std::string::npos)
      << out;
}

TEST(GatewayLimits, ConnectionsBeyondTheCapGet503AndSlowClientsAreCut) {
  TempDir dir("gateway-limits");
  GatewayProcess gw(dir.path() / "data", {"--max-connections", "2", "--request-timeout-ms", "2000"});
  // Let the start-up probe's connection go, then open two connections, each
  // surely accepted: it has been answered.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  RawConnection a(gw.port());
  RawConnection b(gw.port());
  for (RawConnection* conn : {&a, &b}) {
    conn->send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    auto [answer, gone] = conn->read_until_close(200);
    EXPECT_NE(answer.find("200 OK"), std::string::npos) << answer;
    EXPECT_FALSE(gone);
  }
  RawConnection c(gw.port());
  auto [reply, closed] = c.read_until_close(3000);
  EXPECT_TRUE(closed);
  EXPECT_NE(reply.find("503"), std::string::npos) << reply;
  EXPECT_NE(reply.find("too_many_connections"), std::string::npos) << reply;
  // a sends half a request and stalls: the server closes it after the time-out.
  a.send("GET /healthz HTTP/1.1\r\nHost: x\r\n");
  const auto t0 = std::chrono::steady_clock::now();
  auto [partial, a_closed] = a.read_until_close(5000);
  EXPECT_TRUE(a_closed);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(4500));
  auto [idle, b_closed] = b.read_until_close(5000);
  EXPECT_TRUE(b_closed) << "an idle connection is closed after the time-out";
  // With both gone there is room again.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(http_request(gw.port(), "GET", "/healthz").status, 200u);
}

TEST(GatewayLimits, AConnectionBusyLongerThanTheTimeOutIsNotCut) {
  // The time-out bounds each read and write, not the connection's life:
  // requests one after another for four time-outs all get answers.
  TempDir dir("gateway-busy");
  GatewayProcess gw(dir.path() / "data", {"--request-timeout-ms", "400"});
  RawConnection conn(gw.port());
  const auto t0 = std::chrono::steady_clock::now();
  int answered = 0;
  while (std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(1600)) {
    conn.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    auto [answer, gone] = conn.read_until_close(100);
    ASSERT_FALSE(gone) << "cut after " << answered << " answers";
    ASSERT_NE(answer.find("200 OK"), std::string::npos) << answer;
    ++answered;
  }
  EXPECT_GE(answered, 10);
}

}  // namespace
}  // namespace settle::testing
