// End to end through the HTTP API: merchants and events go in through the
// gateway (single events, arrays, bulk NDJSON and CSV, a pre-signed upload),
// `settled all --drain` processes and settles every batch, and the API's
// closed batch rows equal `settled report` on the same data directory, which
// equals `settled settle` of the same events from files.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "gateway_fixture.h"
#include "http_client.h"

namespace settle::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path& kFixtures = basic_fixture();

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs settled; its stdout (stderr to a log) and exit code.
std::string settled(const std::vector<std::string>& args, const fs::path& scratch, int* code) {
  const fs::path out = scratch / "stdout.txt";
  std::string cmd = std::string(SETTLED_BIN);
  for (const auto& a : args) cmd += " '" + a + "'";
  cmd += " > '" + out.string() + "' 2>>'" + (scratch / "stderr.txt").string() + "'";
  const int rc = std::system(cmd.c_str());
  *code = WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
  return read_file(out);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string line; std::getline(ss, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

// A week of captures, refunds and adjustments for both fixture merchants,
// some close to their cut-offs, with a duplicate and an invalid line.
std::vector<std::string> workload() {
  std::vector<std::string> events;
  for (int i = 0; i < 240; ++i) {
    const bool eur = i % 3 != 0;
    const int day = 20 + i % 8;
    const char* type = i % 17 == 0 ? "adjustment" : i % 11 == 0 ? "refund" : "capture";
    const std::int64_t amount = (i % 17 == 0 && i % 2 ? -1 : 1) * (eur ? 100 + (i * 7919) % 50000 : 1 + (i * 31) % 9000);
    events.push_back(fmt::format(
        R"({{"event_id":"w-{}","merchant_id":"{}","type":"{}","amount":{},"currency":"{}","occurred_at":"2026-03-{}T{:02}:{:02}:00Z"}})",
        i, eur ? "m-eur" : "m-jpy", type, amount, eur ? "EUR" : "JPY", day, (i * 5) % 24, (i * 13) % 60));
  }
  return events;
}

TEST(GatewayEndToEnd, BatchRowsFromTheApiEqualSettledReportAfterTheDayCloses) {
  TempDir dir("gateway-e2e");
  const fs::path data = dir.path() / "data";
  int rc = 0;
  std::string admin = settled({"keys", "create", "--admin", "--data-dir", data.string()}, dir.path(), &rc);
  ASSERT_EQ(rc, 0) << read_file(dir.path() / "stderr.txt");
  admin.erase(admin.find_last_not_of("\n") + 1);

  std::vector<std::string> events = lines_of(read_file(kFixtures / "events.ndjson"));
  for (auto& e : workload()) events.push_back(e);
  {
    GatewayProcess gw(data, {"--fsync", "none"});
    const Headers auth = {{"Authorization", "Bearer " + admin}, {"Content-Type", "application/json"}};
    for (const auto& m : json::parse(read_file(kFixtures / "merchants.json"))) {
      auto r = http_request(gw.port(), "PUT", "/v1/merchants/" + m["merchant_id"].get<std::string>(), m.dump(), auth);
      ASSERT_EQ(r.status, 201u) << r.body;
    }
    // The first events one by one, then arrays of 50, then bulk NDJSON, bulk
    // CSV and a pre-signed upload for the rest.
    std::size_t at = 0;
    for (; at < 11; ++at) {
      auto r = http_request(gw.port(), "POST", "/v1/events", events[at], auth);
      ASSERT_EQ(r.status, 202u) << r.body;
    }
    for (; at < 111; at += 50) {
      std::string body = "[";
      for (std::size_t k = at; k < at + 50; ++k) body += (k > at ? "," : "") + events[k];
      auto r = http_request(gw.port(), "POST", "/v1/events", body + "]", auth);
      ASSERT_EQ(r.status, 202u) << r.body;
      EXPECT_EQ(json::parse(r.body)["accepted"], 50);
    }
    std::string ndjson;
    for (; at < 171; ++at) ndjson += events[at] + "\n";
    ndjson += events[0] + "\n" + R"({"event_id":"bad","merchant_id":"m-eur","type":"capture","amount":0})" + "\n";
    auto bulk = http_request(gw.port(), "POST", "/v1/events/bulk", ndjson,
                             {{"Authorization", "Bearer " + admin}, {"Content-Type", "application/x-ndjson"}});
    ASSERT_EQ(bulk.status, 202u) << bulk.body;
    EXPECT_EQ(json::parse(bulk.body)["accepted"], 60);
    EXPECT_EQ(json::parse(bulk.body)["duplicates"], 1);
    EXPECT_EQ(json::parse(bulk.body)["rejected"], 1);
    std::string csv = "event_id,merchant_id,type,amount,currency,occurred_at\n";
    for (; at < 211; ++at) {
      const json e = json::parse(events[at]);
      csv += fmt::format("{},{},{},{},{},{}\n", e["event_id"].get<std::string>(), e["merchant_id"].get<std::string>(),
                         e["type"].get<std::string>(), e["amount"].get<std::int64_t>(),
                         e["currency"].get<std::string>(), e["occurred_at"].get<std::string>());
    }
    auto csv_r = http_request(gw.port(), "POST", "/v1/events/bulk", csv,
                              {{"Authorization", "Bearer " + admin}, {"Content-Type", "text/csv"}});
    ASSERT_EQ(csv_r.status, 202u) << csv_r.body;
    EXPECT_EQ(json::parse(csv_r.body)["accepted"], 40);
    auto up = http_request(gw.port(), "POST", "/v1/uploads", R"({"merchant_id":"m-eur"})", auth);
    ASSERT_EQ(up.status, 201u) << up.body;
    std::string rest;
    std::size_t eur_rest = 0;
    for (std::size_t k = at; k < events.size(); ++k) {
      if (json::parse(events[k])["merchant_id"] == "m-eur") {
        rest += events[k] + "\n";
        ++eur_rest;
      }
    }
    auto put = http_request(gw.port(), "PUT", json::parse(up.body)["url"], rest,
                            {{"Content-Type", "application/x-ndjson"}});
    ASSERT_EQ(put.status, 202u) << put.body;
    EXPECT_EQ(json::parse(put.body)["accepted"], eur_rest);
    std::string jpy = "[";
    for (std::size_t k = at; k < events.size(); ++k) {
      if (json::parse(events[k])["merchant_id"] == "m-jpy") jpy += (jpy.size() > 1 ? "," : "") + events[k];
    }
    auto r = http_request(gw.port(), "POST", "/v1/events", jpy + "]", auth);
    ASSERT_EQ(r.status, 202u) << r.body;
  }

  // The processor and worker close and settle every batch whose day is over
  // (a grace of 10 days: nothing closes while the out-of-order events are
  // read; once the partitions idle, wall-clock time closes March).
  {
    ProcessOptions o;
    o.argv = {SETTLED_BIN, "all", "--drain", "--data-dir", data.string(), "--grace-ms", "864000000", "--idle-ms", "200"};
    o.log = dir.path() / "all.log";
    Process all(o);
    auto status = all.wait(std::chrono::seconds(120));
    ASSERT_TRUE(status.has_value()) << all.log_tail();
    ASSERT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << all.log_tail();
  }
  const std::string report = settled({"report", "--data-dir", data.string()}, dir.path(), &rc);
  ASSERT_EQ(rc, 0) << read_file(dir.path() / "stderr.txt");
  std::vector<std::string> report_rows = lines_of(report);
  ASSERT_GT(report_rows.size(), 10u) << report;
  const std::string header = report_rows.front();
  report_rows.erase(report_rows.begin());

  // The same events from files through `settled settle`.
  {
    std::ofstream out(dir.path() / "events.ndjson");
    for (const auto& e : events) out << e << "\n";
  }
  const std::string reference =
      settled({"settle", "--merchants", (kFixtures / "merchants.json").string(), "--events",
               (dir.path() / "events.ndjson").string(), "--through", "2026-04-30", "--quiet"},
              dir.path(), &rc);
  ASSERT_EQ(rc, 0) << read_file(dir.path() / "stderr.txt");
  EXPECT_EQ(report, reference) << "the API's ingestion must settle like the file's";

  // The API's closed rows, in the report's columns.
  GatewayProcess gw(data, {"--fsync", "none"});
  std::vector<std::string> columns;
  {
    std::stringstream ss(header);
    for (std::string c; std::getline(ss, c, ',');) columns.push_back(c);
  }
  std::vector<std::string> api_rows;
  for (const char* merchant : {"m-eur", "m-jpy"}) {
    auto r = http_request(gw.port(), "GET", fmt::format("/v1/merchants/{}/batches", merchant), {},
                          {{"Authorization", "Bearer " + admin}});
    ASSERT_EQ(r.status, 200u) << r.body;
    const json batches = json::parse(r.body)["batches"];
    EXPECT_FALSE(batches.empty()) << r.body;
    for (const auto& b : batches) {
      EXPECT_EQ(b["state"], "closed") << "every batch closed: " << b.dump();
      std::string row;
      for (const auto& c : columns) {
        if (!row.empty()) row += ',';
        row += b[c].is_string() ? b[c].get<std::string>() : b[c].dump();
      }
      api_rows.push_back(row);
    }
  }
  std::sort(api_rows.begin(), api_rows.end());
  std::vector<std::string> sorted_report = report_rows;
  std::sort(sorted_report.begin(), sorted_report.end());
  EXPECT_EQ(api_rows, sorted_report);
}

}  // namespace
}  // namespace settle::testing
