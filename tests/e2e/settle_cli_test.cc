// End-to-end tests of the `settled` binary: hand-worked fixtures, rejections
// with line numbers, and the property that the report does not depend on
// event order, duplicates or the partition count, and equals a reference
// computed directly from SETTLEMENT_RULES.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>

#include "model/event_json.h"
#include "model/merchant_json.h"
#include "rules/rules.h"
#include "support/cli.h"

namespace settle {
namespace {

namespace fs = std::filesystem;

const fs::path kFixtures = testing::e2e_fixtures();
using testing::CliRun;
using testing::slurp;

class SettleCli : public testing::CliTest {};

TEST_F(SettleCli, BasicFixtureMatchesTheHandWorkedReport) {
  const fs::path f = kFixtures / "basic";
  const CliRun r = settled("settle --merchants " + (f / "merchants.json").string() + " --events " +
                        (f / "events.ndjson").string() + " --through 2026-03-30");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, slurp(f / "expected.csv"));
  EXPECT_NE(r.err.find("1 duplicates"), std::string::npos) << r.err;
}

TEST_F(SettleCli, RejectedLinesAreReportedWithLineAndFieldAndTheRestSettles) {
  const fs::path f = kFixtures / "rejections";
  const CliRun r = settled("settle --merchants " + (f / "merchants.ndjson").string() + " --events " +
                        (f / "events.ndjson").string() + " --through 2026-01-05");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, slurp(f / "expected.csv"));
  const std::string ev = (f / "events.ndjson").string();
  EXPECT_NE(r.err.find(ev + ":2: field 'amount'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(ev + ":3: field 'currency': is required"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(ev + ":4: field 'merchant_id': unknown merchant 'nobody'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(ev + ":5: event 'c1' of merchant 'm1': conflict"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(ev + ":9: not valid JSON"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(ev + ":10: field 'tip': is not a known field"), std::string::npos) << r.err;
  // Line 6 is an exact duplicate of line 1: not an error.
  EXPECT_EQ(r.err.find(ev + ":6:"), std::string::npos) << r.err;
}

TEST_F(SettleCli, ReportAndBalancesReadTheDataDirectoryItLeft) {
  const fs::path f = kFixtures / "basic";
  const fs::path data = dir_ / "data";
  const CliRun r = settled("settle --quiet --merchants " + (f / "merchants.json").string() + " --events " +
                        (f / "events.ndjson").string() + " --through 2026-03-30 --data-dir " + data.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const CliRun report = settled("report --data-dir " + data.string());
  EXPECT_EQ(report.exit_code, 0);
  EXPECT_EQ(report.out, slurp(f / "expected.csv"));
  const CliRun balances = settled("balances --data-dir " + data.string() + " --merchant m-eur");
  EXPECT_EQ(balances.exit_code, 0);
  // Payable after the closed batches = -carry_out of the latest: 25.16 EUR owed by the merchant.
  EXPECT_NE(balances.out.find("merchant:m-eur:payable"), std::string::npos) << balances.out;
  EXPECT_NE(balances.out.find("25.16"), std::string::npos) << balances.out;
  // Settling the same input again changes nothing: every event is a duplicate.
  const CliRun again = settled("settle --quiet --merchants " + (f / "merchants.json").string() + " --events " +
                            (f / "events.ndjson").string() + " --through 2026-03-30 --data-dir " + data.string());
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out, slurp(f / "expected.csv"));
}

TEST_F(SettleCli, DemoSettlesItsSampleAndItsLedgerBalances) {
  const fs::path data = dir_ / "demo";
  const CliRun r = settled("demo --events-per-day 30 --data-dir " + data.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("20 batches closed"), std::string::npos) << r.out;  // 5 merchants x 4 days
  EXPECT_NE(r.out.find("Trial balance"), std::string::npos);
  // The demo's report is the ledger's: the same rows as `report` prints.
  const CliRun report = settled("report --data-dir " + data.string());
  ASSERT_EQ(report.exit_code, 0);
  EXPECT_EQ(std::count(report.out.begin(), report.out.end(), '\n'), 21);  // header + 20 batches
  // Running it again replaces its own directory rather than refusing.
  EXPECT_EQ(settled("demo --events-per-day 30 --data-dir " + data.string()).exit_code, 0);
  // A directory that is not a demo's is never removed.
  const fs::path other = dir_ / "precious";
  fs::create_directories(other);
  write("precious/keep.txt", "mine");
  const CliRun refused = settled("demo --data-dir " + other.string());
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_TRUE(fs::exists(other / "keep.txt"));
}

TEST_F(SettleCli, MissingDataDirectoryIsAClearError) {
  const CliRun r = settled("report --data-dir " + (dir_ / "nothing-here").string());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no ledger here"), std::string::npos) << r.err;
}

// ---- property: order, duplicates and partitions do not change the report ----

struct Workload {
  std::vector<model::Merchant> merchants;
  std::vector<std::string> merchants_json;
  std::vector<model::Event> events;
};

Workload make_workload(std::uint64_t seed) {
  Workload w;
  // DST weeks (US 2026-03-08, EU 2026-03-29, Lord Howe's half hour on
  // 2026-04-05), cut-offs, reserves, three currency exponents.
  const char* configs[] = {
      R"({"merchant_id":"berlin","timezone":"Europe/Berlin","cutoff":"02:30","delay_days":1,"fees":{"capture":{"bps":175,"fixed":5},"refund":{"bps":0,"fixed":15},"chargeback":{"bps":0,"fixed":900}},"reserve_bps":750,"reserve_days":3})",
      R"({"merchant_id":"nyc","timezone":"America/New_York","cutoff":"17:00","delay_days":2,"fees":{"capture":{"bps":290,"fixed":30},"chargeback":{"bps":0,"fixed":1500},"chargeback_reversal":{"bps":50,"fixed":0}}})",
      R"({"merchant_id":"lordhowe","timezone":"Australia/Lord_Howe","cutoff":"01:45","delay_days":0,"fees":{"capture":{"bps":333,"fixed":1}},"reserve_bps":2500,"reserve_days":1})",
      R"({"merchant_id":"tokyo","timezone":"Asia/Tokyo","delay_days":3,"fees":{"capture":{"bps":250,"fixed":0},"refund":{"bps":250,"fixed":0}}})",
      R"({"merchant_id":"kuwait","timezone":"Asia/Kuwait","cutoff":"23:59","delay_days":1,"fees":{"capture":{"bps":125,"fixed":100}},"reserve_bps":10000,"reserve_days":2})",
      R"({"merchant_id":"risky","timezone":"UTC","delay_days":1,"fees":{"capture":{"bps":500,"fixed":25},"chargeback":{"bps":0,"fixed":2500}}})",
  };
  const char* currencies[][2] = {{"EUR", "USD"}, {"USD", "USD"}, {"AUD", "AUD"}, {"JPY", "JPY"}, {"KWD", "USD"}, {"GBP", "GBP"}};
  std::mt19937_64 rng(seed);
  auto uni = [&](std::int64_t lo, std::int64_t hi) { return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng); };
  for (const char* c : configs) {
    auto m = model::parse_merchant_json(c);
    EXPECT_TRUE(m.ok()) << c;
    w.merchants.push_back(*m);
    w.merchants_json.push_back(c);
  }
  const std::int64_t start = static_cast<std::int64_t>(date_from_civil(2026, 3, 1).days) * kNsPerDay;
  const std::int64_t span_s = 40LL * 86400;
  for (int i = 0; i < 4000; ++i) {
    const std::size_t mi = static_cast<std::size_t>(uni(0, 5));
    model::Event ev;
    ev.merchant_id = w.merchants[mi].id;
    ev.event_id = EventId("ev-" + std::to_string(i));
    ev.currency = currencies[mi][uni(0, 1)];
    // Some events sit exactly on a minute boundary, where cut-offs bite.
    const std::int64_t s = uni(0, span_s);
    ev.occurred_at = Timestamp{start + (uni(0, 3) == 0 ? s - s % 60 : s) * kNsPerSecond + uni(0, 999) * 1'000'000};
    const int roll = static_cast<int>(uni(0, 99));
    const bool risky = mi == 5;
    if (roll < (risky ? 30 : 5)) {
      ev.type = model::EventType::kChargeback;
      ev.amount = uni(100, 20000);
    } else if (roll < (risky ? 40 : 12)) {
      ev.type = model::EventType::kRefund;
      ev.amount = uni(1, 8000);
    } else if (roll < (risky ? 43 : 15)) {
      ev.type = model::EventType::kChargebackReversal;
      ev.amount = uni(100, 5000);
    } else if (roll < (risky ? 46 : 18)) {
      ev.type = model::EventType::kAdjustment;
      ev.amount = uni(0, 1) ? uni(1, 5000) : -uni(1, 5000);
    } else {
      ev.type = model::EventType::kCapture;
      ev.amount = uni(1, 30000);
    }
    w.events.push_back(ev);
  }
  return w;
}

// SETTLEMENT_RULES §3-§5 computed directly: per-event batch date and fee
// from the (unit-tested) rules, aggregation, reserves and carries here.
std::string reference_report(const Workload& w, Date through) {
  struct Agg {
    std::int64_t count[5] = {};
    std::int64_t sum[5] = {};
    std::int64_t fees = 0;
  };
  std::map<std::tuple<std::string, std::string, std::int32_t>, Agg> batches;
  std::map<std::string, const model::Merchant*> by_id;
  for (const auto& m : w.merchants) by_id[m.id.str()] = &m;
  for (const auto& ev : w.events) {
    const model::Merchant& m = *by_id.at(ev.merchant_id.str());
    const Date d = rules::batch_date_of(m, ev.occurred_at);
    if (d > through) continue;
    Agg& a = batches[{ev.merchant_id.str(), ev.currency, d.days}];
    const int t = static_cast<int>(ev.type);
    a.count[t] += 1;
    a.sum[t] += ev.amount;
    a.fees += *rules::event_fee(m, ev.type, ev.amount);
  }
  std::string out = rules::report_header() + "\n";
  std::string current;
  std::int64_t carry = 0;
  std::vector<std::pair<std::int32_t, std::int64_t>> holds;  // unreleased (date, amount)
  for (const auto& [key, a] : batches) {
    const auto& [mid, cur, day] = key;
    const model::Merchant& m = *by_id.at(mid);
    if (mid + "/" + cur != current) {
      current = mid + "/" + cur;
      carry = 0;
      holds.clear();
    }
    const std::int64_t held = static_cast<std::int64_t>(
        div_round_half_even(static_cast<__int128>(a.sum[0]) * m.reserve_bps, 10000));
    std::int64_t released = 0;
    for (auto it = holds.begin(); it != holds.end();) {
      if (it->first + m.reserve_days <= day) {
        released += it->second;
        it = holds.erase(it);
      } else {
        ++it;
      }
    }
    const std::int64_t net = a.sum[0] - a.sum[1] - a.sum[2] + a.sum[3] + a.sum[4] - a.fees - held + released + carry;
    const std::int64_t payout = std::max<std::int64_t>(net, 0);
    const std::int64_t carry_out = std::min<std::int64_t>(net, 0);
    out += mid + "," + format_date(Date{day}) + "," + cur;
    for (int t = 0; t < 5; ++t) out += "," + std::to_string(a.count[t]) + "," + std::to_string(a.sum[t]);
    for (std::int64_t v : {a.fees, held, released, carry, net, payout, carry_out}) out += "," + std::to_string(v);
    out += "," + format_date(Date{day + m.delay_days}) + "\n";
    carry = carry_out;
    if (held != 0) holds.emplace_back(day, held);
  }
  return out;
}

class SettleCliSeeded : public SettleCli, public ::testing::WithParamInterface<std::uint64_t> {};

TEST_P(SettleCliSeeded, ReportIsIndependentOfOrderDuplicatesAndPartitionsAndMatchesTheRules) {
  const std::uint64_t seed = GetParam();
  SCOPED_TRACE("workload seed " + std::to_string(seed));
  const Workload w = make_workload(seed);
  std::string merchants;
  for (const auto& m : w.merchants_json) merchants += m + "\n";
  const fs::path mfile = write("merchants.ndjson", merchants);
  std::vector<std::string> lines;
  for (const auto& ev : w.events) lines.push_back(model::canonical_event_json(ev));
  std::string in_order;
  for (const auto& l : lines) in_order += l + "\n";
  const fs::path ordered = write("ordered.ndjson", in_order);

  std::mt19937_64 rng(seed * 31 + 1);
  std::vector<std::string> shuffled = lines;
  for (std::size_t i = 0; i < 400; ++i) shuffled.push_back(lines[rng() % lines.size()]);
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  std::string mixed;
  for (const auto& l : shuffled) mixed += l + "\n";
  const fs::path messy = write("shuffled-with-duplicates.ndjson", mixed);

  const std::string through = "2026-04-06";
  const CliRun a = settled("settle --quiet --partitions 1 --merchants " + mfile.string() + " --events " +
                        ordered.string() + " --through " + through);
  const CliRun b = settled("settle --quiet --partitions 3 --merchants " + mfile.string() + " --events " +
                        messy.string() + " --through " + through);
  const CliRun c = settled("settle --quiet --partitions 16 --fsync none --merchants " + mfile.string() + " --events " +
                        messy.string() + " --through " + through);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(b.exit_code, 0) << b.err;
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_GT(std::count(a.out.begin(), a.out.end(), '\n'), 100);
  EXPECT_EQ(a.out, b.out);
  EXPECT_EQ(a.out, c.out);
  EXPECT_EQ(a.out, reference_report(w, *parse_date(through)));
}

INSTANTIATE_TEST_SUITE_P(Seeds, SettleCliSeeded, ::testing::Values(7u, 1234u, 20261126u));

}  // namespace
}  // namespace settle
