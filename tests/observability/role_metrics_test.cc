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
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

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

// A bank statement with one debit the ledger knows nothing about: a
// missing_in_ledger finding whose drift is the whole 1,500.00 EUR.
std::string unknown_debit_statement() {
  return R"(<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt>
<GrpHdr><MsgId>S-1</MsgId><CreDtTm>2026-03-30T22:00:00Z</CreDtTm></GrpHdr>
<Stmt><Id>S-1</Id><FrToDt><FrDtTm>2026-03-30T00:00:00Z</FrDtTm><ToDtTm>2026-03-30T23:59:59Z</ToDtTm></FrToDt>
<Acct><Id><IBAN>DE89370400440532013000</IBAN></Id><Ccy>EUR</Ccy></Acct>
<Ntry><Amt Ccy="EUR">1500.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>2026-03-30</Dt></BookgDt><ValDt><Dt>2026-03-30</Dt></ValDt><AcctSvcrRef>BANK-1</AcctSvcrRef><NtryDtls><TxDtls><Refs><EndToEndId>NOBODY-KNOWS</EndToEndId></Refs><Amt Ccy="EUR">1500.00</Amt></TxDtls></NtryDtls></Ntry>
</Stmt></BkToCstmrStmt></Document>
)";
}

std::string admin_key(const fs::path& data) {
  std::string out;
  EXPECT_EQ(settled({"keys", "create", "--admin", "--data-dir", data.string()}, &out), 0) << out;
  const auto at = out.find("sk_");
  if (at == std::string::npos) return {};
  out = out.substr(at);  // the secret is the line on stdout
  return out.substr(0, out.find('\n'));
}

// Every metric a dashboard panel queries, by name.
std::set<std::string> dashboard_metrics() {
  std::ifstream in(fs::path(SETTLE_SOURCE_DIR) / "deploy/grafana/settled-dashboard.json");
  const auto dash = nlohmann::json::parse(in);
  std::set<std::string> names;
  const std::regex metric(R"(\b((settle|process)_[a-z_]+))");
  for (const auto& panel : dash.at("panels")) {
    if (!panel.contains("targets")) continue;
    for (const auto& target : panel.at("targets")) {
      const std::string expr = target.at("expr").get<std::string>();
      for (std::sregex_iterator it(expr.begin(), expr.end(), metric), end; it != end; ++it) names.insert((*it)[1]);
    }
  }
  return names;
}

// True when the scrape has the family of `name` (a histogram's _bucket,
// _sum and _count belong to it).
bool exported(const std::string& scrape, std::string name) {
  if (scrape.find("# TYPE " + name + " ") != std::string::npos) return true;
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string sfx(suffix);
    if (name.size() > sfx.size() && name.compare(name.size() - sfx.size(), sfx.size(), sfx) == 0) {
      name.resize(name.size() - sfx.size());
      return scrape.find("# TYPE " + name + " histogram") != std::string::npos;
    }
  }
  return false;
}

TEST(RoleMetrics, AllServesPipelineAndHttpMetricsOnTheGatewayPort) {
  TempDir dir("settle-metrics-all");
  ingest_fixture(dir.path());
  const std::string admin = admin_key(dir.path());
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
  // `all` reads the recon store: nothing reconciled yet, nothing open.
  EXPECT_EQ(sample(scrape, R"(settle_recon_open_discrepancies{state="open"})"), 0.0);

  ASSERT_EQ(testing::http_request(port, "GET", "/healthz").status, 200u);
  ASSERT_EQ(testing::http_request(port, "GET", "/v1/merchants/m1/balances").status, 401u);
  // A method token HTTP does not define is labelled OTHER: a client cannot
  // grow the series by inventing methods.
  (void)testing::http_request(port, "BREW", "/healthz");
  const std::string after = testing::http_request(port, "GET", "/metrics").body;
  EXPECT_THAT(after, Not(HasSubstr(R"(method="BREW")")));
  EXPECT_THAT(after, HasSubstr(R"(method="OTHER")"));
  EXPECT_EQ(sample(after, R"(settle_http_requests_total{code="200",method="GET",route="/healthz"})"), 1.0) << after;
  EXPECT_EQ(sample(after, R"(settle_http_requests_total{code="401",method="GET",route="/v1/merchants/{merchant_id}/balances"})"), 1.0);
  expect_promtool_accepts(after);

  // A statement reconciled through the recon API shows in the same
  // process's drift at the next scrape.
  const auto run = testing::http_request(port, "POST", "/v1/statements?format=camt053", unknown_debit_statement(),
                                         {{"Authorization", "Bearer " + admin}, {"Content-Type", "application/xml"}});
  ASSERT_EQ(run.status, 200u) << run.body;
  const std::string drifted = testing::http_request(port, "GET", "/metrics").body;
  EXPECT_EQ(sample(drifted, R"(settle_recon_drift_minor_units{currency="EUR"})"), 150000.0) << drifted;
  EXPECT_EQ(sample(drifted, R"(settle_recon_open_discrepancies{state="open"})"), 1.0);
  expect_promtool_accepts(drifted);

  // The Grafana dashboard queries only metrics this scrape exports.
  const auto queried = dashboard_metrics();
  EXPECT_GT(queried.size(), 15u);
  for (const std::string& name : queried) {
    EXPECT_TRUE(exported(drifted, name)) << name << " is on the dashboard but not exported";
  }
  EXPECT_EQ(WEXITSTATUS(all.stop()), 0) << all.log_tail();
}

// The alerts of `all`, for an admin key: (name, state) of each.
std::vector<std::pair<std::string, std::string>> alerts(int port, const std::string& admin) {
  const auto r = testing::http_request(port, "GET", "/v1/alerts", {}, {{"Authorization", "Bearer " + admin}});
  EXPECT_EQ(r.status, 200u) << r.body;
  std::vector<std::pair<std::string, std::string>> out;
  const auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (!j.is_object()) return out;
  for (const auto& a : j.value("alerts", nlohmann::json::array())) out.emplace_back(a.value("name", ""), a.value("state", ""));
  return out;
}

// The drift alerts among them. Others may be pending for a moment while the
// pipeline catches up at start (SettleBatchNotClosed sees the fixture's
// tasks waiting before the worker's first close); none fires in a test's
// time, as each needs minutes.
std::vector<std::pair<std::string, std::string>> drift_alerts(int port, const std::string& admin) {
  auto all = alerts(port, admin);
  std::erase_if(all, [](const auto& a) {
    if (a.first == "SettleReconciliationDrift") return false;
    EXPECT_NE(a.second, "firing") << a.first;
    return true;
  });
  return all;
}

TEST(RoleMetrics, AllFiresTheDriftAlertInProcessAndResolvesItWhenTheDiscrepancyIs) {
  TempDir dir("settle-alerts-all");
  ingest_fixture(dir.path());
  const std::string admin = admin_key(dir.path());
  const int port = testing::free_port();
  ProcessOptions o;
  o.argv = {SETTLED_BIN, "all", "--data-dir", dir.path().string(), "--listen", "127.0.0.1:" + std::to_string(port),
            "--alert-interval-ms", "50"};
  o.log = dir.path() / "all.log";
  Process all(o);
  ASSERT_TRUE(all.wait_for_output("stop with SIGTERM", std::chrono::seconds(60))) << all.log_tail();
  EXPECT_TRUE(drift_alerts(port, admin).empty());
  EXPECT_EQ(testing::http_request(port, "GET", "/v1/alerts").status, 401u);

  // 1,500.00 EUR the ledger does not know: above the 1,000.00 threshold.
  const testing::Headers admin_headers = {{"Authorization", "Bearer " + admin}, {"Content-Type", "application/xml"}};
  ASSERT_EQ(testing::http_request(port, "POST", "/v1/statements?format=camt053", unknown_debit_statement(), admin_headers).status,
            200u);
  const auto fired = [&] {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      const auto a = drift_alerts(port, admin);
      if (!a.empty()) return a;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return drift_alerts(port, admin);
  }();
  ASSERT_EQ(fired.size(), 1u) << all.log_tail();
  EXPECT_EQ(fired[0], (std::pair<std::string, std::string>{"SettleReconciliationDrift", "firing"}));
  ASSERT_TRUE(all.wait_for_output("alert SettleReconciliationDrift firing", std::chrono::seconds(10))) << all.log_tail();

  // Resolving the discrepancy takes the drift to 0: the alert resolves.
  const auto open = testing::http_request(port, "GET", "/v1/discrepancies?state=open", {}, admin_headers);
  const auto list = nlohmann::json::parse(open.body, nullptr, false);
  ASSERT_TRUE(list.is_object() && list.contains("discrepancies") && !list["discrepancies"].empty()) << open.body;
  const auto id = list["discrepancies"][0]["id"].get<std::int64_t>();
  const auto resolved = testing::http_request(port, "POST", "/v1/discrepancies/" + std::to_string(id) + "/resolve",
                                              R"({"comment":"a test debit"})",
                                              {{"Authorization", "Bearer " + admin}, {"Content-Type", "application/json"}});
  ASSERT_EQ(resolved.status, 200u) << resolved.body;
  ASSERT_TRUE(all.wait_for_output("alert SettleReconciliationDrift resolved", std::chrono::seconds(10))) << all.log_tail();
  EXPECT_TRUE(drift_alerts(port, admin).empty());
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
  EXPECT_EQ(sample(scrape.body, R"(settle_recon_open_discrepancies{state="acknowledged"})"), 0.0);
  expect_promtool_accepts(scrape.body);
  EXPECT_EQ(WEXITSTATUS(gateway.stop()), 0) << gateway.log_tail();
}

TEST(RoleMetrics, TheGatewayCountsRequestsAnsweredFromTheirIdempotencyKey) {
  TempDir dir("settle-metrics-idem");
  const std::string key = admin_key(dir.path());
  ASSERT_FALSE(key.empty());
  const int port = testing::free_port();
  ProcessOptions o;
  o.argv = {SETTLED_BIN, "gateway", "--data-dir", dir.path().string(), "--listen", "127.0.0.1:" + std::to_string(port)};
  o.log = dir.path() / "gateway.log";
  Process gateway(o);
  ASSERT_TRUE(gateway.wait_for_output("stop with SIGTERM", std::chrono::seconds(60))) << gateway.log_tail();
  // An answer that is not a 5xx is kept under its key: the second request
  // is a replay, not a second attempt.
  const testing::Headers headers = {
      {"Authorization", "Bearer " + key}, {"Content-Type", "application/json"}, {"Idempotency-Key", "k-1"}};
  const auto first = testing::http_request(port, "POST", "/v1/events", R"({"event_id":"x"})", headers);
  const auto second = testing::http_request(port, "POST", "/v1/events", R"({"event_id":"x"})", headers);
  ASSERT_EQ(first.status, second.status) << first.body;
  ASSERT_EQ(second.header("idempotent-replayed"), "true") << second.body;
  const std::string scrape = testing::http_request(port, "GET", "/metrics").body;
  EXPECT_EQ(sample(scrape, "settle_idempotency_replays_total"), 1.0) << scrape;
  EXPECT_EQ(WEXITSTATUS(gateway.stop()), 0) << gateway.log_tail();
}

TEST(RoleMetrics, ReconWatchServesDriftAndOpenDiscrepanciesFromItsStore) {
  TempDir dir("settle-metrics-recon");
  ingest_fixture(dir.path());
  const fs::path inbox = dir.path() / "inbox";
  fs::create_directories(inbox);
  const int port = testing::free_port();
  ProcessOptions o;
  o.argv = {SETTLED_BIN, "recon", "watch", "--data-dir", dir.path().string(), "--inbox", inbox.string(),
            "--interval-ms", "50", "--today", "2026-03-31", "--metrics-listen", "127.0.0.1:" + std::to_string(port)};
  o.log = dir.path() / "recon.log";
  Process recon(o);
  ASSERT_TRUE(recon.wait_for_output("metrics on http://", std::chrono::seconds(60))) << recon.log_tail();
  const std::string before = scrape_until(port, [](const std::string& s) { return !s.empty(); });
  EXPECT_EQ(sample(before, R"(settle_recon_open_discrepancies{state="open"})"), 0.0) << before;
  EXPECT_THAT(before, Not(HasSubstr("settle_recon_drift_minor_units{")));

  std::ofstream(dir.path() / "statement.xml") << unknown_debit_statement();
  fs::rename(dir.path() / "statement.xml", inbox / "statement.xml");
  const std::string after = scrape_until(port, [](const std::string& s) {
    return sample(s, R"(settle_recon_drift_minor_units{currency="EUR"})").has_value();
  });
  EXPECT_EQ(sample(after, R"(settle_recon_drift_minor_units{currency="EUR"})"), 150000.0) << after << recon.log_tail();
  EXPECT_EQ(sample(after, R"(settle_recon_open_discrepancies{state="open"})"), 1.0);
  EXPECT_THAT(after, HasSubstr(R"(role="recon")"));
  expect_promtool_accepts(after);
  EXPECT_EQ(WEXITSTATUS(recon.stop()), 0) << recon.log_tail();
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
