// Statuses from the whole pipeline: `settled all` on a fresh data directory
// (gateway, processor, worker and notify in one process), events sent to the
// gateway's API, and what a WebSocket subscriber and the REST status see.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "gateway_fixture.h"
#include "support/cli.h"
#include "http_client.h"
#include "ws_client.h"

namespace settle::testing {
namespace {

using nlohmann::json;

class NotifyPipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The merchants come from `settled settle` (no events) before the
    // pipeline starts, so that its processor knows them from the start.
    data_ = dir_.path() / "data";
    const auto merchants = write_file(
        dir_.path() / "merchants.json",
        R"([{"merchant_id":"m1","timezone":"UTC","delay_days":1,"fees":{"capture":{"bps":100,"fixed":0}}},)"
        R"({"merchant_id":"m2","timezone":"UTC","delay_days":1}])");
    const auto events = write_file(dir_.path() / "events.ndjson", "");
    ProcessOptions s;
    s.argv = {SETTLED_BIN, "settle", "--merchants", merchants.string(), "--events", events.string(),
              "--through", "2026-03-01", "--data-dir", data_.string(), "--quiet"};
    std::string out;
    ASSERT_EQ(run(s, &out), 0) << out;
    admin_ = create_key(data_, dir_.path());
    gateway_port_ = free_port();
    notify_port_ = free_port();
    ProcessOptions o;
    // A grace of ten days: no batch closes during the test.
    o.argv = {SETTLED_BIN,     "all",
              "--data-dir",    data_.string(),
              "--listen",      fmt::format("127.0.0.1:{}", gateway_port_),
              "--notify-listen", fmt::format("127.0.0.1:{}", notify_port_),
              "--fsync",       "none",
              "--ledger-sync", "normal",
              "--grace-ms",    "864000000",
              "--idle-ms",     "3600000"};
    o.log = dir_.path() / "all.log";
    all_.emplace(o);
    ASSERT_TRUE(all_->wait_for_output("stop with SIGTERM", std::chrono::seconds(30))) << all_->log_tail();
  }

  HttpResult request(const std::string& method, const std::string& target, const std::string& body = {},
                     const std::string& content_type = "application/json") {
    return http_request(gateway_port_, method, target, body,
                        {{"Authorization", "Bearer " + admin_}, {"Content-Type", content_type}});
  }

  static std::string event(const std::string& id, const std::string& merchant) {
    return fmt::format(
        R"({{"event_id":"{}","merchant_id":"{}","type":"capture","amount":1000,"currency":"USD","occurred_at":"2026-03-02T10:00:00Z"}})",
        id, merchant);
  }

  // The next status message of the stream (resyncs skipped).
  static json next_status(WsClient& c) {
    for (;;) {
      auto m = c.read(10000);
      if (!m) throw std::runtime_error(fmt::format("stream closed: {} {}", c.close_code(), c.close_reason()));
      json j = json::parse(*m);
      if (j["type"] == "status") return j;
    }
  }

  TempDir dir_{"settle-notify-pipeline"};
  std::filesystem::path data_;
  std::string admin_;
  int gateway_port_ = 0;
  int notify_port_ = 0;
  std::optional<Process> all_;
};

TEST_F(NotifyPipelineTest, AnEventPostedToTheGatewayIsAcceptedAndPostedOnTheStatusStreamInSeqOrder) {
  WsClient ws(notify_port_, "/v1/stream/status?merchant_id=m1", admin_);
  WsClient ws2(notify_port_, "/v1/stream/status?merchant_id=m2", admin_);
  for (WsClient* c : {&ws, &ws2}) {
    const json first = json::parse(c->read(10000).value());
    ASSERT_EQ(first["type"], "resync") << first.dump();
  }

  // One request, two merchants: one event_accepted each, m2's on its own
  // stream, each carrying the request's trace.
  const std::string trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  auto r = http_request(gateway_port_, "POST", "/v1/events",
                        "[" + event("e1", "m1") + "," + event("e2", "m1") + "," + event("x1", "m2") + "]",
                        {{"Authorization", "Bearer " + admin_},
                         {"Content-Type", "application/json"},
                         {"traceparent", "00-" + trace_id + "-00f067aa0ba902b7-01"}});
  ASSERT_EQ(r.status, 202u) << r.body;

  std::optional<json> accepted;
  std::optional<json> posted;
  std::int64_t last_seq = -1;
  std::set<std::string> posted_ids;
  // event_accepted comes from the gateway after the events are durable,
  // event_posted from the processor: they race (different producers), so
  // the test waits for both and checks their contents and the seq order of
  // the stream, not which comes first.
  while (posted_ids.size() < 2 || !accepted) {
    const json m = next_status(ws);
    ASSERT_EQ(m["merchant_id"], "m1") << m.dump();
    EXPECT_GT(m["seq"].get<std::int64_t>(), last_seq) << m.dump();
    last_seq = m["seq"];
    const json& s = m["status"];
    if (s["kind"] == "event_accepted") {
      ASSERT_FALSE(accepted) << "a second event_accepted for one append: " << m.dump();
      accepted = m;
      EXPECT_EQ(s["count"], 2) << m.dump();
      EXPECT_EQ(s["event_ids"], json::array({"e1", "e2"})) << m.dump();
      EXPECT_GT(s["at_ms"].get<std::int64_t>(), 0);
      EXPECT_EQ(s.value("trace_id", ""), trace_id) << m.dump();
    } else if (s["kind"] == "event_posted") {
      if (!posted) posted = m;
      EXPECT_EQ(s.value("trace_id", ""), trace_id) << m.dump();
      for (const auto& id : s["event_ids"]) posted_ids.insert(id.get<std::string>());
    }
  }
  ASSERT_TRUE(accepted);
  ASSERT_TRUE(posted);
  EXPECT_NE((*accepted)["seq"], (*posted)["seq"]);

  // The REST status has moved past it, and m2 got its own.
  auto st = http_request(notify_port_, "GET", "/v1/merchants/m1/status", {}, {{"Authorization", "Bearer " + admin_}});
  ASSERT_EQ(st.status, 200u) << st.body;
  EXPECT_GE(json::parse(st.body)["seq"].get<std::int64_t>(), (*accepted)["seq"].get<std::int64_t>()) << st.body;
  bool m2_accepted = false;
  while (!m2_accepted) {
    const json m = next_status(ws2);
    ASSERT_EQ(m["merchant_id"], "m2") << m.dump();
    if (m["status"]["kind"] == "event_accepted") {
      EXPECT_EQ(m["status"]["event_ids"], json::array({"x1"})) << m.dump();
      EXPECT_EQ(m["status"].value("trace_id", ""), trace_id) << m.dump();
      m2_accepted = true;
    }
  }
}

TEST_F(NotifyPipelineTest, ABulkUploadIsAcceptedInCoalescedUpdatesNamingTheFirstHundredIds) {
  WsClient ws(notify_port_, "/v1/stream/status?merchant_id=m1", admin_);
  (void)ws.read(10000);  // the resync
  std::string body;
  for (int i = 0; i < 250; ++i) body += event(fmt::format("b{}", i), "m1") + "\n";
  auto r = request("POST", "/v1/events/bulk", body, "application/x-ndjson");
  ASSERT_EQ(r.status, 202u) << r.body;
  std::int64_t accepted = 0;
  std::set<std::string> named;
  while (accepted < 250) {
    const json m = next_status(ws);
    const json& s = m["status"];
    if (s["kind"] != "event_accepted") continue;
    ASSERT_LE(s["event_ids"].size(), 100u) << m.dump();
    EXPECT_EQ(s["event_ids"].size(), std::min<std::size_t>(s["count"].get<std::size_t>(), 100)) << m.dump();
    accepted += s["count"].get<std::int64_t>();
    for (const auto& id : s["event_ids"]) EXPECT_TRUE(named.insert(id.get<std::string>()).second) << id;
  }
  EXPECT_EQ(accepted, 250);
}

}  // namespace
}  // namespace settle::testing
