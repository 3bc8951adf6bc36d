// The roles' /metrics, scraped from real `settled` processes on the embedded
// backends: the pipeline's counters match what it did, lag and latency
// families are there, HTTP requests are counted by route, and promtool
// accepts the scrape.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "http_client.h"
#include "support/process.h"

namespace settle {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::Process;
using testing::ProcessOptions;
using testing::TempDir;

const fs::path kFixture = fs::path(SETTLE_SOURCE_DIR) / "tests/e2e/fixtures/basic";

int settled(std::vector<std::string> args, std::string* output) {
  args.insert(args.begin(), SETTLED_BIN);
  ProcessOptions o;
  o.argv = std::move(args);
  return testing::run(o, output);
}

// The value of one series (its exact name and labels as printed), if present.
std::optional<double> sample(const std::string& scrape, const std::string& series) {
  std::istringstream in(scrape);
  for (std::string line; std::getline(in, line);) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 && line[series.size()] == ' ') {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  return std::nullopt;
}

// Scrapes until `ready` holds or 30 s pass; returns the last scrape.
template <typename Pred>
std::string scrape_until(int port, Pred ready) {
  std::string last;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      last = testing::http_request(port, "GET", "/metrics").body;
      if (ready(last)) break;
    } catch (const std::exception&) {
      // not listening yet
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return last;
}

void expect_promtool_accepts(const std::string& scrape) {
  TempDir dir("settle-scrape");
  const fs::path file = dir.path() / "scrape.txt";
  std::ofstream(file) << scrape;
  ProcessOptions o;
  o.argv = {"sh", "-c", std::string(PROMTOOL) + " check metrics < " + file.string()};
  std::string output;
  EXPECT_EQ(testing::run(o, &output), 0) << "promtool check metrics:\n" << output;
}

void ingest_fixture(const fs::path& data) {
  std::string out;
  ASSERT_EQ(settled({"ingest", "--data-dir", data.string(), "--merchants", (kFixture / "merchants.json").string(),
                     "--events", (kFixture / "events.ndjson").string()},
                    &out),
            0)
      << out;
}

TEST(RoleMetrics, AllServesPipelineAndHttpMetricsOnTheGatewayPort) {
  TempDir dir("settle-metrics-all");
  ingest_fixture(dir.path());
  const int port = testing::free_port();
  ProcessOptions o;
  o.argv = {SETTLED_BIN, "all", "--data-dir", dir.path().string(), "--idle-ms", "50", "--grace-ms", "0",
            "--listen", "127.0.0.1:" + std::to_string(port)};
  o.log = dir.path() / "all.log";
  Process all(o);
  ASSERT_TRUE(all.wait_for_output("stop with SIGTERM", std::chrono::seconds(60))) << all.log_tail();

  // The basic fixture: 11 events, one of them a duplicate; its batches close
  // by the idle rule.
  const std::string scrape = scrape_until(port, [](const std::string& s) {
    return sample(s, R"(settle_processor_records_total{result="posted"})") == 10.0 &&
           sample(s, "settle_batches_closed_total").value_or(0) > 0 &&
           sample(s, "settle_batches_closed_total") == sample(s, "settle_settlement_tasks_emitted_total");
  });
  EXPECT_EQ(sample(scrape, R"(settle_processor_records_total{result="posted"})"), 10.0) << scrape;
  EXPECT_EQ(sample(scrape, R"(settle_processor_records_total{result="duplicate"})"), 1.0);
  EXPECT_EQ(sample(scrape, R"(settle_processor_records_total{result="rejected"})"), 0.0);
  EXPECT_EQ(sample(scrape, "settle_accept_to_posted_seconds_count"), 10.0);
  EXPECT_GT(sample(scrape, "settle_batches_closed_total").value_or(0), 0.0);
  EXPECT_EQ(sample(scrape, "settle_batch_close_seconds_count"), sample(scrape, "settle_batches_closed_total"));
  EXPECT_EQ(sample(scrape, R"(settle_settlement_tasks_failed_total{reason="ledger_refused"})"), 0.0);
  // Every partition processed to its end, tasks included.
  EXPECT_THAT(scrape, HasSubstr(R"(settle_consumer_lag_records{group="processor",topic="events",partition="0"} 0)"));
  EXPECT_THAT(scrape, HasSubstr(R"(settle_consumer_lag_records{group="settlement-worker",topic="settlement-tasks",partition="0"} 0)"));
  EXPECT_THAT(scrape, HasSubstr("settle_event_time_watermark_lag_seconds{partition="));
  EXPECT_THAT(scrape, HasSubstr(R"(role="all")"));

  ASSERT_EQ(testing::http_request(port, "GET", "/healthz").status, 200u);
  ASSERT_EQ(testing::http_request(port, "GET", "/v1/merchants/m1/balances").status, 401u);
  const std::string after = testing::http_request(port, "GET", "/metrics").body;
  EXPECT_EQ(sample(after, R"(settle_http_requests_total{code="200",method="GET",route="/healthz"})"), 1.0) << after;
  EXPECT_EQ(sample(after, R"(settle_http_requests_total{code="401",method="GET",route="/v1/merchants/{merchant_id}/balances"})"), 1.0);
  expect_promtool_accepts(after);
  EXPECT_EQ(WEXITSTATUS(all.stop()), 0) << all.log_tail();
}

TEST(RoleMetrics, AProcessorServesItsOwnFiguresOnMetricsListenAndNoWorkerFamilies) {
  TempDir dir("settle-metrics-processor");
  ingest_fixture(dir.path());
  const int port = testing::free_port();
  ProcessOptions o;
  o.argv = {SETTLED_BIN, "processor", "--data-dir", dir.path().string(), "--idle-ms", "50", "--grace-ms", "0",
            "--metrics-listen", "127.0.0.1:" + std::to_string(port)};
  o.log = dir.path() / "processor.log";
  Process processor(o);
  ASSERT_TRUE(processor.wait_for_output("stop with SIGTERM", std::chrono::seconds(60))) << processor.log_tail();
  const std::string scrape = scrape_until(port, [](const std::string& s) {
    return sample(s, R"(settle_processor_records_total{result="posted"})") == 10.0 &&
           sample(s, "settle_settlement_tasks_emitted_total").value_or(0) > 0;
  });
  EXPECT_EQ(sample(scrape, R"(settle_processor_records_total{result="posted"})"), 10.0) << scrape;
  EXPECT_THAT(scrape, HasSubstr(R"(role="processor")"));
  EXPECT_THAT(scrape, Not(HasSubstr("settle_batches_closed_total")));
  EXPECT_THAT(scrape, Not(HasSubstr("settle_http_requests_total{")));
  expect_promtool_accepts(scrape);
  EXPECT_EQ(WEXITSTATUS(processor.stop()), 0) << processor.log_tail();
}

TEST(RoleMetrics, TheGatewayAloneServesHttpMetricsOnItsPort) {
  TempDir dir("settle-metrics-gateway");
  const int port = testing::free_port();
  ProcessOptions o;
  o.argv = {SETTLED_BIN, "gateway", "--data-dir", dir.path().string(), "--listen", "127.0.0.1:" + std::to_string(port)};
  o.log = dir.path() / "gateway.log";
  Process gateway(o);
  ASSERT_TRUE(gateway.wait_for_output("stop with SIGTERM", std::chrono::seconds(60))) << gateway.log_tail();
  ASSERT_EQ(testing::http_request(port, "GET", "/readyz").status, 200u);
  const auto scrape = testing::http_request(port, "GET", "/metrics");
  ASSERT_EQ(scrape.status, 200u) << scrape.body;
  EXPECT_THAT(scrape.body, HasSubstr(R"(role="gateway")"));
  EXPECT_EQ(sample(scrape.body, R"(settle_http_requests_total{code="200",method="GET",route="/readyz"})"), 1.0);
  EXPECT_EQ(sample(scrape.body, "settle_events_accepted_total"), 0.0);
  expect_promtool_accepts(scrape.body);
  EXPECT_EQ(WEXITSTATUS(gateway.stop()), 0) << gateway.log_tail();
}

TEST(RoleMetrics, ARoleRefusesAMetricsAddressItCannotParse) {
  TempDir dir("settle-metrics-bad");
  std::string out;
  EXPECT_EQ(settled({"worker", "--data-dir", dir.path().string(), "--metrics-listen", "nine-thousand"}, &out), 2)
      << out;
  EXPECT_THAT(out, HasSubstr("metrics listen address 'nine-thousand'"));
}

}  // namespace
}  // namespace settle
