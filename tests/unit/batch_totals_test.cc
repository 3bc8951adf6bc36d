// SETTLEMENT_RULES §5: batch totals, reserve holds and releases, carried
// balances, payout and payout date, over hand-worked multi-day scenarios.
// The test plays the processor: batches of one merchant and currency in
// ascending date, carried_in = previous carry_out, released holds removed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "rules/rules.h"

namespace settle::rules {
namespace {

constexpr Minor kMax = std::numeric_limits<Minor>::max();
constexpr Minor kMin = std::numeric_limits<Minor>::min();

// 2026-11-01 = 20454 (2026-01-01) + 304 (Jan..Oct) = 20758.
constexpr std::int32_t kNov01 = 20758;
// 2026-12-30 = 20454 + 363 = 20817.
constexpr std::int32_t kDec30 = 20817;

struct Ev {
  EventType type;
  Minor amount;
  Minor fee;  // worked out by hand from the merchant's schedule
};

// What the test expects of one batch.
struct Expect {
  Minor reserve_held;
  Minor reserve_released;
  Minor carried_in;
  Minor net;
  Minor payout;
  Minor carry_out;
};

struct Day {
  std::int32_t day;
  std::vector<Ev> events;
  Expect expect;
};

ControlTotals totals_of(const std::vector<Ev>& events) {
  ControlTotals t;
  for (const Ev& e : events) {
    const Status s = add_to_totals(t, e.type, e.amount, e.fee);
    EXPECT_TRUE(s.ok()) << s.error().to_string();
  }
  return t;
}

Merchant merchant(std::int64_t reserve_bps, int reserve_days, int delay_days) {
  Merchant m;
  m.id = MerchantId("m1");
  m.fees[static_cast<std::size_t>(EventType::kCapture)] = {290, 30};
  m.fees[static_cast<std::size_t>(EventType::kRefund)] = {0, 25};
  m.fees[static_cast<std::size_t>(EventType::kChargeback)] = {0, 1500};
  m.fees[static_cast<std::size_t>(EventType::kChargebackReversal)] = {50, 0};
  m.reserve_bps = reserve_bps;
  m.reserve_days = reserve_days;
  m.delay_days = delay_days;
  return m;
}

struct Ledger {
  Minor carried = 0;
  std::vector<HeldReserve> unreleased;
  Minor held_total = 0;
  Minor released_total = 0;
  Minor paid_total = 0;
};

// Settles the days in order, checking each against its expectation.
void run(const Merchant& m, const std::string& currency, const std::vector<Day>& days,
         Ledger& ledger) {
  for (const Day& d : days) {
    SCOPED_TRACE("batch day " + std::to_string(d.day - kNov01) + " after 2026-11-01");
    const BatchKey key{m.id, Date{d.day}, currency};
    const ControlTotals totals = totals_of(d.events);
    const Result<BatchOutcome> r = settle_batch(m, key, totals, ledger.carried, ledger.unreleased);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    const BatchSummary& s = r->summary;
    EXPECT_EQ(s.key, key);
    EXPECT_EQ(s.totals, totals);
    EXPECT_EQ(s.reserve_held, d.expect.reserve_held);
    EXPECT_EQ(s.reserve_released, d.expect.reserve_released);
    EXPECT_EQ(s.carried_in, d.expect.carried_in);
    EXPECT_EQ(s.net, d.expect.net);
    EXPECT_EQ(s.payout, d.expect.payout);
    EXPECT_EQ(s.carry_out, d.expect.carry_out);
    EXPECT_LE(s.carried_in, 0);
    EXPECT_EQ(s.payout_date, Date{d.day + m.delay_days});

    // The released dates name exactly holds that were outstanding and due.
    Minor released = 0;
    for (const Date& rd : r->released) {
      auto it = std::find_if(ledger.unreleased.begin(), ledger.unreleased.end(),
                             [&](const HeldReserve& h) { return h.batch_date == rd; });
      ASSERT_NE(it, ledger.unreleased.end()) << "released a hold that is not outstanding";
      EXPECT_LE(rd.days + m.reserve_days, d.day) << "released a hold before it is due";
      released += it->amount;
      ledger.unreleased.erase(it);
    }
    EXPECT_EQ(released, s.reserve_released);
    for (const HeldReserve& h : ledger.unreleased) {
      EXPECT_GT(h.batch_date.days + m.reserve_days, d.day) << "a due hold was not released";
    }
    ledger.unreleased.push_back(HeldReserve{key.batch_date, s.reserve_held});
    ledger.carried = s.carry_out;
    ledger.held_total += s.reserve_held;
    ledger.released_total += s.reserve_released;
    ledger.paid_total += s.payout;
  }
}

TEST(SettleBatch, ReserveReleaseChainReleasesEachHoldOnceInFull) {
  // reserve 1000 bps (10%), held 2 days; capture fee 2.9% + 30, refund fee 25.
  Merchant m = merchant(1000, 2, 1);
  m.fees[static_cast<std::size_t>(EventType::kRefund)] = {0, 0};
  const std::vector<Day> days = {
      // 11-01: capture 10000, fee 290 + 30 = 320; held 10000 x 10% = 1000;
      //        net = 10000 - 320 - 1000 = 8680.
      {kNov01, {{EventType::kCapture, 10000, 320}}, {1000, 0, 0, 8680, 8680, 0}},
      // 11-02: capture 20000, fee 580 + 30 = 610; held 2000; 11-01 + 2 = 11-03
      //        is not <= 11-02: nothing released. net = 20000 - 610 - 2000 = 17390.
      {kNov01 + 1, {{EventType::kCapture, 20000, 610}}, {2000, 0, 0, 17390, 17390, 0}},
      // 11-03: capture 5000, fee 145 + 30 = 175; held 500; releases 11-01's 1000.
      //        net = 5000 - 175 - 500 + 1000 = 5325.
      {kNov01 + 2, {{EventType::kCapture, 5000, 175}}, {500, 1000, 0, 5325, 5325, 0}},
      // 11-04: a refund only (no captures, held 0); releases 11-02's 2000, not
      //        11-03's (due 11-05). net = -1000 + 2000 = 1000.
      {kNov01 + 3, {{EventType::kRefund, 1000, 0}}, {0, 2000, 0, 1000, 1000, 0}},
      // 11-05: capture 3000, fee 87 + 30 = 117; held 300; releases 11-03's 500.
      //        net = 3000 - 117 - 300 + 500 = 3083.
      {kNov01 + 4, {{EventType::kCapture, 3000, 117}}, {300, 500, 0, 3083, 3083, 0}},
      // No batch on 11-06..11-08: 11-05's hold falls due on 11-07 and waits.
      // 11-09: capture 1000, fee 29 + 30 = 59; held 100; releases 11-04's 0 and
      //        11-05's 300. net = 1000 - 59 - 100 + 300 = 1141.
      {kNov01 + 8, {{EventType::kCapture, 1000, 59}}, {100, 300, 0, 1141, 1141, 0}},
  };
  Ledger ledger;
  run(m, "USD", days, ledger);
  // Held 1000 + 2000 + 500 + 0 + 300 + 100 = 3900; released 1000 + 2000 + 500
  // + 300 = 3800; only 11-09's 100 is outstanding.
  EXPECT_EQ(ledger.held_total, 3900);
  EXPECT_EQ(ledger.released_total, 3800);
  ASSERT_EQ(ledger.unreleased.size(), 1u);
  EXPECT_EQ(ledger.unreleased[0], (HeldReserve{Date{kNov01 + 8}, 100}));
}

TEST(SettleBatch, HoldIsReleasedOnItsDueDateNotBefore) {
  const Merchant m = merchant(1000, 3, 1);
  const ControlTotals t = totals_of({{EventType::kCapture, 100, 0}});
  const std::vector<HeldReserve> holds = {{Date{kNov01}, 70}, {Date{kNov01 + 1}, 50}};
  const BatchKey before{m.id, Date{kNov01 + 2}, "USD"};  // 11-01 + 3 = 11-04 > 11-03
  const Result<BatchOutcome> r1 = settle_batch(m, before, t, 0, holds);
  ASSERT_TRUE(r1.ok());
  EXPECT_EQ(r1->summary.reserve_released, 0);
  EXPECT_TRUE(r1->released.empty());
  const BatchKey due{m.id, Date{kNov01 + 3}, "USD"};  // 11-04 <= 11-04; 11-05 is not
  const Result<BatchOutcome> r2 = settle_batch(m, due, t, 0, holds);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->summary.reserve_released, 70);
  EXPECT_EQ(r2->released, std::vector<Date>{Date{kNov01}});
  // held = 100 x 10% = 10; net = 100 - 10 + 70 = 160.
  EXPECT_EQ(r2->summary.net, 160);
}

TEST(SettleBatch, NegativeNetIsCarriedUntilAbsorbed) {
  // No reserve, payout on the batch date (delay 0). Fees: refund 25, chargeback 1500.
  Merchant m = merchant(0, 0, 0);
  m.fees[static_cast<std::size_t>(EventType::kCapture)] = {0, 0};
  const std::vector<Day> days = {
      // 11-01: capture 1000, refund 5000 (fee 25): net = 1000 - 5000 - 25 = -4025.
      {kNov01,
       {{EventType::kCapture, 1000, 0}, {EventType::kRefund, 5000, 25}},
       {0, 0, 0, -4025, 0, -4025}},
      // 11-02: capture 3000; net = 3000 - 4025 = -1025, carried on.
      {kNov01 + 1, {{EventType::kCapture, 3000, 0}}, {0, 0, -4025, -1025, 0, -1025}},
      // 11-03: chargeback 500 (fee 1500): net = -500 - 1500 - 1025 = -3025.
      {kNov01 + 2, {{EventType::kChargeback, 500, 1500}}, {0, 0, -1025, -3025, 0, -3025}},
      // 11-04: capture 10000, adjustment +25: net = 10000 + 25 - 3025 = 7000, paid.
      {kNov01 + 3,
       {{EventType::kCapture, 10000, 0}, {EventType::kAdjustment, 25, 0}},
       {0, 0, -3025, 7000, 7000, 0}},
      // 11-05: capture 100, adjustment -300: net = -200, carried.
      {kNov01 + 4,
       {{EventType::kCapture, 100, 0}, {EventType::kAdjustment, -300, 0}},
       {0, 0, 0, -200, 0, -200}},
      // 11-07: capture 200: net = 200 - 200 = 0: neither payout nor carry.
      {kNov01 + 6, {{EventType::kCapture, 200, 0}}, {0, 0, -200, 0, 0, 0}},
      // 11-08: reversal 400 (fee 400 x 50 / 10000 = 2): net = 398.
      {kNov01 + 7, {{EventType::kChargebackReversal, 400, 2}}, {0, 0, 0, 398, 398, 0}},
  };
  Ledger ledger;
  run(m, "EUR", days, ledger);
  EXPECT_EQ(ledger.carried, 0);
  EXPECT_EQ(ledger.paid_total, 7398);  // 7000 + 398
}

TEST(SettleBatch, CarryAndReleaseInTheSameBatch) {
  // reserve 500 bps for 1 day. 11-01: capture 10000 (fee 0): held 500, net 9500.
  // 11-02: refund 12000 (fee 0): released 500; net = -12000 + 500 = -11500.
  // 11-03: capture 20000: held 1000; 11-02's hold (0) falls due, releasing
  //        nothing; net = 20000 - 1000 + 0 - 11500 = 7500.
  // 11-04: capture 2000: held 100; releases 11-03's 1000; net = 2000 - 100 + 1000 = 2900.
  Merchant m = merchant(500, 1, 1);
  m.fees = {};
  const std::vector<Day> days = {
      {kNov01, {{EventType::kCapture, 10000, 0}}, {500, 0, 0, 9500, 9500, 0}},
      {kNov01 + 1, {{EventType::kRefund, 12000, 0}}, {0, 500, 0, -11500, 0, -11500}},
      {kNov01 + 2, {{EventType::kCapture, 20000, 0}}, {1000, 0, -11500, 7500, 7500, 0}},
      {kNov01 + 3, {{EventType::kCapture, 2000, 0}}, {100, 1000, 0, 2900, 2900, 0}},
  };
  Ledger ledger;
  run(m, "USD", days, ledger);
}

TEST(SettleBatch, JpyAmountsRoundHalfEvenInWholeYen) {
  // JPY has no minor digits; the arithmetic is the same on whole yen.
  // capture fee 3.6%, reserve 5% for 1 day.
  Merchant m = merchant(500, 1, 2);
  m.fees = {};
  m.fees[static_cast<std::size_t>(EventType::kCapture)] = {360, 0};
  const std::vector<Day> days = {
      // captures 12345 (fee 444.42 -> 444) + 1250 (fee 45): 13595, fees 489;
      // held 13595 x 5% = 679.75 -> 680; net = 13595 - 489 - 680 = 12426.
      {kNov01,
       {{EventType::kCapture, 12345, 444}, {EventType::kCapture, 1250, 45}},
       {680, 0, 0, 12426, 12426, 0}},
      // capture 1250 (fee 45): held 62.5 -> 62 (even); releases 680.
      // net = 1250 - 45 - 62 + 680 = 1823.
      {kNov01 + 1, {{EventType::kCapture, 1250, 45}}, {62, 680, 0, 1823, 1823, 0}},
      // capture 1350 (fee 48.6 -> 49): held 67.5 -> 68 (even); releases 62.
      // net = 1350 - 49 - 68 + 62 = 1295.
      {kNov01 + 2, {{EventType::kCapture, 1350, 49}}, {68, 62, 0, 1295, 1295, 0}},
  };
  Ledger ledger;
  run(m, "JPY", days, ledger);
}

TEST(SettleBatch, KwdAmountsInFilsWithPayoutThreeDaysLaterAcrossTheYearEnd) {
  // KWD has 3 digits: 1234.567 KWD = 1234567 fils. Capture fee 2.5% + 0.100.
  Merchant m = merchant(0, 0, 3);
  m.fees = {};
  m.fees[static_cast<std::size_t>(EventType::kCapture)] = {250, 100};
  // fee = 1234567 x 250 / 10000 = 30864.175 -> 30864, + 100 = 30964.
  const ControlTotals t =
      totals_of({{EventType::kCapture, 1234567, 30964}, {EventType::kRefund, 1000, 0}});
  const BatchKey key{m.id, Date{kDec30}, "KWD"};
  const Result<BatchOutcome> r = settle_batch(m, key, t, 0, {});
  ASSERT_TRUE(r.ok());
  // net = 1234567 - 1000 - 30964 = 1202603.
  EXPECT_EQ(r->summary.net, 1202603);
  EXPECT_EQ(r->summary.payout, 1202603);
  // 2026-12-30 + 3 days = 2027-01-02.
  EXPECT_EQ(format_date(r->summary.payout_date), "2027-01-02");
}

TEST(SettleBatch, PayoutDateIsBatchDatePlusDelayDays) {
  const ControlTotals t = totals_of({{EventType::kCapture, 100, 0}});
  Merchant m = merchant(0, 0, 0);
  m.fees = {};
  const BatchKey key{m.id, Date{kNov01 + 28}, "USD"};  // 2026-11-29
  Result<BatchOutcome> r = settle_batch(m, key, t, 0, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(format_date(r->summary.payout_date), "2026-11-29");  // delay 0: same day
  m.delay_days = 3;
  r = settle_batch(m, key, t, 0, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(format_date(r->summary.payout_date), "2026-12-02");  // 29 + 3 across November's end
  m.delay_days = 1;
  r = settle_batch(m, key, t, -500, {});
  ASSERT_TRUE(r.ok());
  // A carried-out batch has a payout date too (payout 0): 100 - 500 = -400.
  EXPECT_EQ(r->summary.carry_out, -400);
  EXPECT_EQ(format_date(r->summary.payout_date), "2026-11-30");
}

TEST(SettleBatch, EveryTermOfTheNetFormula) {
  // captures 15000, refunds 2000, chargebacks 500, reversals 500, adjustments
  // -300, fees 320 + 175 + 25 + 1500 + 2 = 2022, held 15000 x 10% = 1500,
  // released 700 (11-21's; 11-22's 900 is due 11-24), carried_in -400:
  // net = 15000 - 2000 - 500 + 500 - 300 - 2022 - 1500 + 700 - 400 = 9478.
  const Merchant m = merchant(1000, 2, 1);
  const ControlTotals t = totals_of({{EventType::kCapture, 10000, 320},
                                     {EventType::kCapture, 5000, 175},
                                     {EventType::kRefund, 2000, 25},
                                     {EventType::kChargeback, 500, 1500},
                                     {EventType::kChargebackReversal, 500, 2},
                                     {EventType::kAdjustment, 200, 0},
                                     {EventType::kAdjustment, -500, 0}});
  const std::int32_t nov23 = kNov01 + 22;
  const BatchKey key{m.id, Date{nov23}, "USD"};
  const Result<BatchOutcome> r = settle_batch(
      m, key, t, -400, {{Date{nov23 - 2}, 700}, {Date{nov23 - 1}, 900}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->summary.reserve_held, 1500);
  EXPECT_EQ(r->summary.reserve_released, 700);
  EXPECT_EQ(r->summary.totals.fees(), 2022);
  EXPECT_EQ(r->summary.net, 9478);
  EXPECT_EQ(r->summary.payout, 9478);
  EXPECT_EQ(r->summary.carry_out, 0);
  EXPECT_EQ(r->released, std::vector<Date>{Date{nov23 - 2}});
}

TEST(SettleBatch, IntermediateSumsBeyondInt64AreFineWhenNetFits) {
  // captures INT64_MAX + adjustments INT64_MAX - refunds INT64_MAX = INT64_MAX.
  Merchant m = merchant(0, 0, 1);
  m.fees = {};
  const ControlTotals t = totals_of({{EventType::kCapture, kMax, 0},
                                     {EventType::kAdjustment, kMax, 0},
                                     {EventType::kRefund, kMax, 0}});
  const Result<BatchOutcome> r = settle_batch(m, BatchKey{m.id, Date{kNov01}, "USD"}, t, 0, {});
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->summary.net, kMax);
}

TEST(SettleBatch, NetBeyondInt64IsOverflow) {
  Merchant m = merchant(0, 0, 1);
  m.fees = {};
  const BatchKey key{m.id, Date{kNov01}, "USD"};
  // INT64_MAX + 1.
  const Result<BatchOutcome> up = settle_batch(
      m, key, totals_of({{EventType::kCapture, kMax, 0}, {EventType::kAdjustment, 1, 0}}), 0, {});
  ASSERT_FALSE(up.ok());
  EXPECT_EQ(up.error().code, ErrorCode::kOverflow);
  // -INT64_MAX - INT64_MAX.
  const Result<BatchOutcome> down = settle_batch(
      m, key, totals_of({{EventType::kRefund, kMax, 0}, {EventType::kChargeback, kMax, 0}}), 0,
      {});
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.error().code, ErrorCode::kOverflow);
  // -1 carried into a batch whose net is INT64_MIN already: INT64_MIN - 1.
  const Result<BatchOutcome> carried = settle_batch(
      m, key, totals_of({{EventType::kAdjustment, kMin, 0}}), -1, {});
  ASSERT_FALSE(carried.ok());
  EXPECT_EQ(carried.error().code, ErrorCode::kOverflow);
}

TEST(SettleBatch, FeesSummedAcrossTypesBeyondInt64IsOverflow) {
  // Each type's fees fit, but the batch's `fees` figure (INT64_MAX + 2) does not.
  // (Built by hand: add_to_totals refuses to build such totals.)
  Merchant m = merchant(0, 0, 1);
  ControlTotals t;
  t.of(EventType::kCapture) = {1, kMax, kMax};
  t.of(EventType::kAdjustment) = {1, kMax, 0};
  t.of(EventType::kRefund) = {1, 1, 2};
  const Result<BatchOutcome> r = settle_batch(m, BatchKey{m.id, Date{kNov01}, "USD"}, t, 0, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kOverflow);
}

TEST(SettleBatch, ReleasedSumBeyondInt64IsOverflow) {
  Merchant m = merchant(1000, 1, 1);
  m.fees = {};
  const Result<BatchOutcome> r =
      settle_batch(m, BatchKey{m.id, Date{kNov01 + 5}, "USD"},
                   totals_of({{EventType::kRefund, kMax, 0}}), 0,
                   {{Date{kNov01}, kMax}, {Date{kNov01 + 1}, 1}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kOverflow);
}

// --- add_to_totals ------------------------------------------------------------

TEST(AddToTotals, CountsAndSumsPerType) {
  ControlTotals t;
  ASSERT_TRUE(add_to_totals(t, EventType::kCapture, 100, 33).ok());
  ASSERT_TRUE(add_to_totals(t, EventType::kCapture, 250, 37).ok());
  ASSERT_TRUE(add_to_totals(t, EventType::kAdjustment, -70, 0).ok());
  ASSERT_TRUE(add_to_totals(t, EventType::kAdjustment, 20, 0).ok());
  EXPECT_EQ(t.of(EventType::kCapture), (model::TypeTotals{2, 350, 70}));
  EXPECT_EQ(t.of(EventType::kAdjustment), (model::TypeTotals{2, -50, 0}));
  EXPECT_EQ(t.of(EventType::kRefund), (model::TypeTotals{0, 0, 0}));
  EXPECT_EQ(t.event_count(), 4);
  EXPECT_EQ(t.fees(), 70);
}

TEST(AddToTotals, AmountOverflowIsAnErrorAndLeavesTotalsUnchanged) {
  ControlTotals t;
  ASSERT_TRUE(add_to_totals(t, EventType::kCapture, kMax, 5).ok());
  const Status s = add_to_totals(t, EventType::kCapture, 1, 0);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kOverflow);
  EXPECT_EQ(t.of(EventType::kCapture), (model::TypeTotals{1, kMax, 5}));
  // A negative adjustment sum overflows downwards.
  ASSERT_TRUE(add_to_totals(t, EventType::kAdjustment, kMin, 0).ok());
  EXPECT_EQ(add_to_totals(t, EventType::kAdjustment, -1, 0).error().code, ErrorCode::kOverflow);
}

TEST(AddToTotals, FeeOverflowIsAnErrorAndLeavesTotalsUnchanged) {
  ControlTotals t;
  ASSERT_TRUE(add_to_totals(t, EventType::kRefund, 10, kMax).ok());
  const Status s = add_to_totals(t, EventType::kRefund, 10, 1);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kOverflow);
  EXPECT_EQ(t.of(EventType::kRefund), (model::TypeTotals{1, 10, kMax}));
}

TEST(AddToTotals, FeesOfTheBatchAcrossTypesMustFitInt64) {
  // The batch's `fees` figure is the sum over all types: INT64_MAX + 1 does not fit.
  ControlTotals t;
  ASSERT_TRUE(add_to_totals(t, EventType::kCapture, 10, kMax).ok());
  const Status s = add_to_totals(t, EventType::kChargeback, 10, 1);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kOverflow);
  EXPECT_EQ(t.of(EventType::kChargeback), (model::TypeTotals{0, 0, 0}));
  EXPECT_EQ(t.fees(), kMax);
}

}  // namespace
}  // namespace settle::rules
