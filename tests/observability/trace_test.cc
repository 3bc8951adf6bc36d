// W3C trace context: the parser and formatter, and an event's trace id going
// from an HTTP request through the bus to its ledger journal.
#include "observability/trace.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "http_client.h"
#include "support/process.h"

namespace settle {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using testing::Process;
using testing::ProcessOptions;
using testing::TempDir;

constexpr const char* kParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST(TraceContext, ParsesAndFormatsAVersion00Header) {
  auto c = observability::parse_traceparent(kParent);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c.value().trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(c.value().span_id, "00f067aa0ba902b7");
  EXPECT_EQ(c.value().flags, 1);
  EXPECT_EQ(observability::format_traceparent(c.value()), kParent);
}

TEST(TraceContext, RefusesMalformedHeadersSayingWhy) {
  for (const char* bad : {"", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
                          "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                          "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                          "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                          "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                          "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"}) {
    auto c = observability::parse_traceparent(bad);
    EXPECT_FALSE(c.ok()) << bad;
    if (!c.ok()) {
      EXPECT_THAT(c.error().message, HasSubstr("traceparent"));
    }
  }
  // A later version is read by its first four fields.
  EXPECT_TRUE(observability::parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more").ok());
}

TEST(TraceContext, ContinuesAValidTraceWithANewSpanAndStartsOneOtherwise) {
  const std::string child = observability::continue_or_start(kParent);
  EXPECT_THAT(child, StartsWith("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
  EXPECT_NE(child, kParent);
  const std::string fresh = observability::continue_or_start("garbage");
  ASSERT_TRUE(observability::parse_traceparent(fresh).ok()) << fresh;
  EXPECT_NE(fresh.substr(3, 32), observability::continue_or_start("").substr(3, 32));
}

TEST(TraceContext, AssignsANewTraceIntoAReusedBuffer) {
  std::string buffer = "previous content that is longer than a traceparent: " + std::string(kParent);
  observability::assign_new_traceparent(buffer);
  auto first = observability::parse_traceparent(buffer);
  ASSERT_TRUE(first.ok()) << buffer;
  EXPECT_EQ(buffer.size(), 55u);
  EXPECT_EQ(first->flags, 1);
  const std::string previous = buffer;
  observability::assign_new_traceparent(buffer);
  ASSERT_TRUE(observability::parse_traceparent(buffer).ok()) << buffer;
  EXPECT_NE(buffer.substr(3, 32), previous.substr(3, 32));
}

std::string settled_stdout(const std::vector<std::string>& args, const fs::path& dir) {
  const fs::path out = dir / "stdout.txt";
  std::string cmd = SETTLED_BIN;
  for (const auto& a : args) cmd += " '" + a + "'";
  cmd += " >" + out.string() + " 2>" + (dir / "stderr.txt").string();
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::ifstream in(out);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Every line of a JSON log parses and names its time, level and component;
// returns the lines that carry `trace_id`.
std::vector<nlohmann::json> json_log_lines_with_trace(const fs::path& log, const std::string& trace_id) {
  std::vector<nlohmann::json> with;
  std::ifstream in(log);
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line, nullptr, false);
    EXPECT_TRUE(j.is_object()) << "line " << n << " is not JSON: " << line;
    if (!j.is_object()) continue;
    for (const char* field : {"time", "level", "component", "message"}) {
      EXPECT_TRUE(j.contains(field) && j[field].is_string()) << "line " << n << " lacks " << field << ": " << line;
    }
    if (j.value("trace_id", "") == trace_id) with.push_back(j);
  }
  EXPECT_GT(n, 0) << "empty log";
  return with;
}

TEST(TracePropagation, TheTraceOfAnHttpRequestReachesTheEventsLedgerJournalAndTheLog) {
  TempDir dir("settle-trace");
  const fs::path data = dir.path() / "data";
  const fs::path empty = dir.path() / "none.ndjson";
  std::ofstream(empty).flush();
  const fs::path fixtures = fs::path(SETTLE_SOURCE_DIR) / "tests/e2e/fixtures/basic";
  settled_stdout({"ingest", "--data-dir", data.string(), "--merchants", (fixtures / "merchants.json").string(),
                  "--events", empty.string()},
                 dir.path());
  const std::string key = settled_stdout({"keys", "create", "--merchant", "m-eur", "--data-dir", data.string()}, dir.path());
  ASSERT_FALSE(key.empty());

  const int port = testing::free_port();
  ProcessOptions o;
  o.argv = {SETTLED_BIN, "all", "--data-dir", data.string(), "--listen", "127.0.0.1:" + std::to_string(port),
            "--log-format", "json", "--log-level", "debug"};
  o.log = dir.path() / "all.log";
  Process all(o);
  ASSERT_TRUE(all.wait_for_output("stop with SIGTERM", std::chrono::seconds(60))) << all.log_tail();

  const auto posted = testing::http_request(
      port, "POST", "/v1/events",
      R"({"event_id":"t1","merchant_id":"m-eur","type":"capture","amount":1000,"currency":"EUR","occurred_at":"2026-03-28T10:00:00Z"})",
      {{"Authorization", "Bearer " + key}, {"Content-Type", "application/json"}, {"traceparent", kParent}});
  ASSERT_EQ(posted.status, 202u) << posted.body;
  // The gateway's span is a child of the caller's: same trace, new span.
  EXPECT_THAT(posted.header("traceparent"), StartsWith("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
  EXPECT_NE(posted.header("traceparent"), kParent);

  // Wait for the processor to post it, then read its journal.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  bool seen = false;
  while (!seen && std::chrono::steady_clock::now() < deadline) {
    seen = testing::http_request(port, "GET", "/metrics").body.find(
               "settle_processor_records_total{result=\"posted\"} 1") != std::string::npos;
    if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(seen) << all.log_tail();
  ASSERT_EQ(WEXITSTATUS(all.stop()), 0) << all.log_tail();

  ProcessOptions q;
  q.argv = {"sqlite3", (data / "ledger.db").string(), "SELECT trace_id FROM journals WHERE ref = 't1'"};
  std::string trace;
  ASSERT_EQ(testing::run(q, &trace), 0) << trace;
  EXPECT_EQ(trace, "4bf92f3577b34da6a3ce929d0e0e4736\n");

  // The gateway's access line of that request, in the JSON log, with its
  // trace and the key's merchant.
  const auto traced = json_log_lines_with_trace(o.log, "4bf92f3577b34da6a3ce929d0e0e4736");
  ASSERT_FALSE(traced.empty()) << all.log_tail();
  EXPECT_EQ(traced.front().value("component", ""), "gateway");
  EXPECT_EQ(traced.front().value("merchant_id", ""), "m-eur");
  EXPECT_THAT(traced.front().value("message", ""), HasSubstr("POST /v1/events 202"));
}

TEST(Logging, ARoleRefusesAnUnknownLogFormatOrLevel) {
  TempDir dir("settle-log-flags");
  for (const auto& [flag, value] : {std::pair{"--log-format", "xml"}, std::pair{"--log-level", "loud"}}) {
    ProcessOptions o;
    o.argv = {SETTLED_BIN, "worker", "--data-dir", dir.path().string(), flag, value};
    std::string out;
    EXPECT_EQ(testing::run(o, &out), 2) << out;
    EXPECT_THAT(out, HasSubstr(std::string(flag) + " must be")) << out;
  }
}

}  // namespace
}  // namespace settle
