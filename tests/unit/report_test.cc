// SETTLEMENT_RULES §7: the report's header, column order and row text.
#include <gtest/gtest.h>

#include <string>

#include "rules/rules.h"

namespace settle::rules {
namespace {

constexpr std::int32_t k20261123 = 20780;  // 20454 (2026-01-01) + 326
constexpr std::int32_t k20261101 = 20758;  // 20454 + 304

TEST(Report, HeaderIsExactlyTheRulesLine) {
  EXPECT_EQ(report_header(),
            "merchant_id,batch_date,currency,captures_count,captures,refunds_count,refunds,"
            "chargebacks_count,chargebacks,reversals_count,reversals,adjustments_count,"
            "adjustments,fees,reserve_held,reserve_released,carried_in,net,payout,carry_out,"
            "payout_date");
}

TEST(Report, RowOfAHandBuiltSummaryInColumnOrder) {
  // Each figure distinct so that a swapped column shows.
  BatchSummary s;
  s.key = BatchKey{MerchantId("m-1_A"), Date{k20261123}, "USD"};
  s.totals.of(EventType::kCapture) = {2, 15000, 495};
  s.totals.of(EventType::kRefund) = {1, 2000, 25};
  s.totals.of(EventType::kChargeback) = {3, 500, 1505};
  s.totals.of(EventType::kChargebackReversal) = {4, 600, 3};
  s.totals.of(EventType::kAdjustment) = {5, -300, 0};
  s.reserve_held = 1500;
  s.reserve_released = 700;
  s.carried_in = -400;
  s.net = 9572;  // 15000 - 2000 - 500 + 600 - 300 - 2028 - 1500 + 700 - 400
  s.payout = 9572;
  s.carry_out = 0;
  s.payout_date = Date{k20261123 + 1};
  // fees = 495 + 25 + 1505 + 3 + 0 = 2028.
  EXPECT_EQ(report_row(s),
            "m-1_A,2026-11-23,USD,2,15000,1,2000,3,500,4,600,5,-300,2028,1500,700,-400,9572,"
            "9572,0,2026-11-24");
}

TEST(Report, RowOfASettledBatchWithACarry) {
  // 2026-11-01, EUR, delay 0: capture 1000 (fee 0), refund 5000 (fee 25).
  // net = 1000 - 5000 - 25 = -4025: payout 0, carry_out -4025.
  Merchant m;
  m.id = MerchantId("m2");
  m.delay_days = 0;
  ControlTotals t;
  ASSERT_TRUE(add_to_totals(t, EventType::kCapture, 1000, 0).ok());
  ASSERT_TRUE(add_to_totals(t, EventType::kRefund, 5000, 25).ok());
  const Result<BatchOutcome> r =
      settle_batch(m, BatchKey{m.id, Date{k20261101}, "EUR"}, t, 0, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(report_row(r->summary),
            "m2,2026-11-01,EUR,1,1000,1,5000,0,0,0,0,0,0,25,0,0,0,-4025,0,-4025,2026-11-01");
}

TEST(Report, RowOfASettledBatchWithReserveAndRelease) {
  // m3, USD, reserve 10% for 2 days, delay 1, carried_in -400, 11-21's hold of
  // 700 due; captures 15000 (fees 495), held 1500:
  // net = 15000 - 495 - 1500 + 700 - 400 = 13305.
  Merchant m;
  m.id = MerchantId("m3");
  m.reserve_bps = 1000;
  m.reserve_days = 2;
  ControlTotals t;
  ASSERT_TRUE(add_to_totals(t, EventType::kCapture, 10000, 320).ok());
  ASSERT_TRUE(add_to_totals(t, EventType::kCapture, 5000, 175).ok());
  const Result<BatchOutcome> r = settle_batch(m, BatchKey{m.id, Date{k20261123}, "USD"}, t, -400,
                                              {{Date{k20261123 - 2}, 700}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(report_row(r->summary),
            "m3,2026-11-23,USD,2,15000,0,0,0,0,0,0,0,0,495,1500,700,-400,13305,13305,0,2026-11-24");
}

TEST(Report, HeaderAndRowHaveTheSameNumberOfColumns) {
  BatchSummary s;
  s.key = BatchKey{MerchantId("m1"), Date{k20261123}, "JPY"};
  auto columns = [](const std::string& line) {
    std::size_t n = 1;
    for (char c : line) n += (c == ',');
    return n;
  };
  EXPECT_EQ(columns(report_header()), 21u);
  EXPECT_EQ(columns(report_row(s)), 21u);
}

}  // namespace
}  // namespace settle::rules
