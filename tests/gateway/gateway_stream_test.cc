// The WebSocket stream (/v1/events/stream) end to end: the real `settled
// gateway` on a data directory that `settled settle` left, driven over
// loopback by a Beast WebSocket client.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "gateway_fixture.h"
#include "http_client.h"
#include "ws_client.h"

namespace settle::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string event(const std::string& id, const std::string& merchant = "m-eur", std::int64_t amount = 500,
                  const std::string& metadata = {}) {
  return fmt::format(
      R"({{"event_id":"{}","merchant_id":"{}","type":"capture","amount":{},"currency":"{}","occurred_at":"2026-03-30T10:00:00Z"{}}})",
      id, merchant, amount, merchant == "m-jpy" ? "JPY" : "EUR",
      metadata.empty() ? std::string() : R"(,"metadata":{"a":")" + metadata + R"(","b":")" + metadata + "\"}");
}

// The acks of one message, one JSON object per line.
std::vector<json> acks_of(const std::optional<std::string>& message) {
  std::vector<json> out;
  if (!message) return out;
  std::istringstream in(*message);
  std::string line;
  while (std::getline(in, line)) out.push_back(json::parse(line));
  return out;
}

SettledData* data = nullptr;
GatewayProcess* gateway = nullptr;

class GatewayStream : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    data = new SettledData("gateway-stream");
    gateway = new GatewayProcess(data->path);
  }
  static void TearDownTestSuite() {
    delete gateway;
    delete data;
  }

 protected:
  static int port() { return gateway->port(); }
};

TEST_F(GatewayStream, EachEventGetsItsAckInOrderAfterTheBusHoldsIt) {
  WsClient ws(port(), "/v1/events/stream", data->eur);
  ws.send(event("ws-1"));
  auto first = acks_of(ws.read());
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0], json::parse(R"({"seq":1,"event_id":"ws-1","status":"accepted"})"));
  // Accepted means on the bus: the API finds it at once.
  auto e = http_request(port(), "GET", "/v1/merchants/m-eur/events/ws-1", {}, {{"Authorization", "Bearer " + data->eur}});
  ASSERT_EQ(e.status, 200u) << e.body;
  EXPECT_EQ(json::parse(e.body)["accepted"], true);

  // NDJSON in one message: one ack line per event, same order, neighbours of a
  // bad event unaffected.
  ws.send(event("ws-2") + "\n" + event("ws-1") + "\r\n\n" + event("ws-3", "m-eur", -5) + "\n" +
          event("ws-1", "m-eur", 999) + "\n" + R"({"event_id":"ws-4",)" + "\n" + event("ws-5") + "\n");
  auto acks = acks_of(ws.read());
  ASSERT_EQ(acks.size(), 6u);
  for (std::size_t i = 0; i < acks.size(); ++i) EXPECT_EQ(acks[i]["seq"], i + 2) << acks[i];
  EXPECT_EQ(acks[0]["event_id"], "ws-2");
  EXPECT_EQ(acks[0]["status"], "accepted");
  EXPECT_EQ(acks[1]["event_id"], "ws-1");
  EXPECT_EQ(acks[1]["status"], "duplicate");
  EXPECT_EQ(acks[2]["event_id"], "ws-3");
  EXPECT_EQ(acks[2]["status"], "rejected");
  EXPECT_EQ(acks[2]["errors"][0]["code"], "validation_failed");
  EXPECT_EQ(acks[2]["errors"][0]["field"], "amount");
  EXPECT_EQ(acks[2]["errors"][0]["reason"], "must be > 0 for a capture");
  EXPECT_EQ(acks[3]["status"], "rejected");
  EXPECT_EQ(acks[3]["errors"][0]["code"], "conflict");
  EXPECT_EQ(acks[4]["status"], "rejected");
  EXPECT_EQ(acks[4]["errors"][0]["code"], "malformed_json");
  EXPECT_TRUE(acks[4]["event_id"].is_null());
  EXPECT_EQ(acks[5]["event_id"], "ws-5");
  EXPECT_EQ(acks[5]["status"], "accepted");
  // An event POSTed after streaming is a duplicate: one dedup for both.
  auto dup = http_request(port(), "POST", "/v1/events", event("ws-2"),
                          {{"Authorization", "Bearer " + data->eur}, {"Content-Type", "application/json"}});
  EXPECT_EQ(json::parse(dup.body)["results"][0]["status"], "duplicate") << dup.body;

  ws.ping();
  ws.send(event("ws-6"));
  EXPECT_EQ(acks_of(ws.read())[0]["seq"], 8);
  EXPECT_EQ(ws.pongs(), 1) << "a ping is answered";
}

TEST_F(GatewayStream, AMerchantKeyCannotStreamAnotherMerchantsEvents) {
  WsClient ws(port(), "/v1/events/stream", data->eur);
  ws.send(event("iso-1", "m-jpy") + "\n" + event("iso-2"));
  auto acks = acks_of(ws.read());
  ASSERT_EQ(acks.size(), 2u);
  EXPECT_EQ(acks[0]["status"], "rejected");
  EXPECT_EQ(acks[0]["errors"][0]["code"], "forbidden");
  EXPECT_EQ(acks[0]["errors"][0]["field"], "merchant_id");
  EXPECT_EQ(acks[1]["status"], "accepted");
  auto e = http_request(port(), "GET", "/v1/merchants/m-jpy/events/iso-1", {}, {{"Authorization", "Bearer " + data->jpy}});
  EXPECT_EQ(e.status, 404u) << "the forbidden event was not accepted: " << e.body;

  // A stream bound to another merchant is refused at the upgrade; an admin
  // key bound to m-jpy may write only m-jpy.
  try {
    WsClient refused(port(), "/v1/events/stream?merchant_id=m-jpy", data->eur);
    ADD_FAILURE() << "a merchant key was upgraded for another merchant";
  } catch (const UpgradeRefused& r) {
    EXPECT_EQ(r.status, 403u);
    EXPECT_EQ(json::parse(r.body)["error"]["code"], "forbidden");
  }
  WsClient bound(port(), "/v1/events/stream?merchant_id=m-jpy", data->admin);
  bound.send(event("iso-3", "m-jpy") + "\n" + event("iso-4", "m-eur"));
  auto b = acks_of(bound.read());
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[0]["status"], "accepted");
  EXPECT_EQ(b[1]["errors"][0]["code"], "forbidden");
}

TEST_F(GatewayStream, AMissingOrUnknownKeyIsRefusedAndARevokedKeyClosesTheStream) {
  for (const std::string& key : {std::string(), "sk_" + std::string(64, '0')}) {
    try {
      WsClient refused(port(), "/v1/events/stream", key);
      ADD_FAILURE() << "upgraded without a valid key";
    } catch (const UpgradeRefused& r) {
      EXPECT_EQ(r.status, 401u);
      EXPECT_EQ(json::parse(r.body)["error"]["code"], "unauthorized");
    }
  }
  auto created = http_request(port(), "POST", "/v1/keys", R"({"scope":"merchant","merchant_id":"m-eur"})",
                              {{"Authorization", "Bearer " + data->admin}, {"Content-Type", "application/json"}});
  ASSERT_EQ(created.status, 201u) << created.body;
  const json k = json::parse(created.body);
  WsClient ws(port(), "/v1/events/stream", k["key"]);
  ws.send(event("rev-1"));
  EXPECT_EQ(acks_of(ws.read())[0]["status"], "accepted");
  auto revoked = http_request(port(), "DELETE", "/v1/keys/" + k["key_id"].get<std::string>(), {},
                              {{"Authorization", "Bearer " + data->admin}});
  ASSERT_EQ(revoked.status, 200u) << revoked.body;
  ws.send(event("rev-2"));
  EXPECT_EQ(ws.read(), std::nullopt);
  EXPECT_EQ(ws.close_code(), 1008);  // policy violation
  EXPECT_NE(ws.close_reason().find("revoked"), std::string::npos) << ws.close_reason();
}

TEST_F(GatewayStream, OversizeAndBinaryMessagesCloseWithTheirCodes) {
  {
    WsClient ws(port(), "/v1/events/stream", data->eur);
    ws.send(std::string((1 << 20) + 10, ' ') + event("big-1"));
    EXPECT_EQ(ws.read(), std::nullopt);
    EXPECT_EQ(ws.close_code(), 1009);  // message too big
  }
  {
    WsClient ws(port(), "/v1/events/stream", data->eur);
    ws.send_binary(event("bin-1"));
    EXPECT_EQ(ws.read(), std::nullopt);
    EXPECT_EQ(ws.close_code(), 1003);  // unsupported data
  }
  // A plain GET (no upgrade) is told to upgrade.
  auto r = http_request(port(), "GET", "/v1/events/stream", {}, {{"Authorization", "Bearer " + data->eur}});
  EXPECT_EQ(r.status, 426u) << r.body;
  EXPECT_EQ(r.header("upgrade"), "websocket");
}

// A client that pipelines events and does not read its acks: once the acks
// back up (the client's receive buffer is pinned small, the server's send
// buffer fills) the server reaches its in-flight bound and stops reading, so
// the client's writes stall before all are out; once the client reads, every
// ack arrives, in order.
TEST(GatewayStreamBackpressure, PipelinedEventsAreBoundedInFlightAndAllAckedInOrder) {
  SettledData d("gateway-stream");
  GatewayProcess gw(d.path, {"--fsync", "none"});
  // 1,600 messages of 100 events: 160,000 acks (~9 MB) exceed any socket
  // buffer on the server's side (at most 4 MiB by default).
  constexpr std::size_t kMessages = 1600;
  constexpr std::size_t kPerMessage = 100;
  constexpr std::size_t kEvents = kMessages * kPerMessage;
  WsClient ws(gw.port(), "/v1/events/stream", d.eur, 8192);
  ws.send_all(kMessages, [&](std::size_t m) {
    std::string text;
    for (std::size_t i = m * kPerMessage; i < (m + 1) * kPerMessage; ++i) text += event(fmt::format("bp-{}", i)) + "\n";
    return text;
  });
  const auto t0 = std::chrono::steady_clock::now();
  const std::size_t stalled_at = ws.run_until_stalled(500);
  const auto t1 = std::chrono::steady_clock::now();
  EXPECT_LT(stalled_at, kMessages) << "the server read everything while no ack was read: no backpressure";

  std::size_t next = 1;
  while (next <= kEvents) {
    auto acks = acks_of(ws.read());
    ASSERT_FALSE(acks.empty()) << "closed after " << next - 1 << " acks: " << ws.close_code() << " " << ws.close_reason();
    ASSERT_EQ(acks.size(), kPerMessage) << "one ack message per message, one line per event";
    for (const json& a : acks) {
      ASSERT_EQ(a["seq"], next) << a;
      ASSERT_EQ(a["event_id"], fmt::format("bp-{}", next - 1));
      ASSERT_EQ(a["status"], "accepted") << a;
      ++next;
    }
  }
  EXPECT_EQ(ws.sent(), kMessages);
  const auto ms = [](auto dt) { return static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(dt).count()); };
  std::printf("stream: the client stalled after %zu of %zu messages of %zu events (%lld ms); all acked %lld ms later\n",
              stalled_at, kMessages, kPerMessage, ms(t1 - t0), ms(std::chrono::steady_clock::now() - t1));
}

// --stream-max-message-bytes and --stream-max-in-flight set the stream's
// limits (defaults 1 MiB and 4,096 events); a limit of 0 refuses to start.
TEST(GatewayStreamFlags, TheMessageSizeLimitComesFromTheFlagAndZeroLimitsAreRefused) {
  SettledData d("gateway-stream");
  GatewayProcess gw(d.path, {"--stream-max-message-bytes", "2048", "--stream-max-in-flight", "8"});
  {
    WsClient ws(gw.port(), "/v1/events/stream", d.eur);
    ws.send(event("flag-1", "m-eur", 500, std::string(400, 'x')));  // ~0.95 KB: under the limit
    auto acks = acks_of(ws.read());
    ASSERT_EQ(acks.size(), 1u);
    EXPECT_EQ(acks[0]["status"], "accepted") << acks[0];
    // 10 events in one message (~1.4 KB), more than the 8 in flight: reading
    // stops after this message, but all of its events are acked.
    std::string ten;
    for (int i = 0; i < 10; ++i) ten += event(fmt::format("flag-many-{}", i)) + "\n";
    ASSERT_LT(ten.size(), 2048u);
    ws.send(ten);
    acks = acks_of(ws.read());
    ASSERT_EQ(acks.size(), 10u);
    for (const json& a : acks) EXPECT_EQ(a["status"], "accepted") << a;
    // Over the flag's 2,048 bytes: the server closes (1009) instead of acking;
    // the close may reach this client as a reset.
    ws.send(std::string(2100, ' ') + event("flag-2"));
    std::optional<std::string> answer;
    try {
      answer = ws.read();
    } catch (const std::runtime_error&) {
    }
    EXPECT_EQ(answer, std::nullopt);
  }
  for (const char* flag : {"--stream-max-message-bytes", "--stream-max-in-flight"}) {
    ProcessOptions o;
    o.argv = {SETTLED_BIN, "gateway", "--data-dir", d.path.string(), "--listen", "127.0.0.1:0", flag, "0"};
    std::string out;
    EXPECT_NE(run(o, &out), 0) << flag;
    EXPECT_NE(out.find(flag), std::string::npos) << out;
  }
}

}  // namespace
}  // namespace settle::testing
