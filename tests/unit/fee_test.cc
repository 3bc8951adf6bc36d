// SETTLEMENT_RULES §4: fee = round_half_even(amount x bps / 10000) + fixed, by
// the schedule of the event's type; an adjustment never carries a fee.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

#include "rules/rules.h"

namespace settle::rules {
namespace {

constexpr Minor kMax = std::numeric_limits<Minor>::max();

Merchant merchant_with_fees() {
  Merchant m;
  m.id = MerchantId("m1");
  m.fees[static_cast<std::size_t>(EventType::kCapture)] = {290, 30};       // 2.9% + 0.30
  m.fees[static_cast<std::size_t>(EventType::kRefund)] = {0, 25};          // 0.25 flat
  m.fees[static_cast<std::size_t>(EventType::kChargeback)] = {100, 1500};  // 1% + 15.00
  m.fees[static_cast<std::size_t>(EventType::kChargebackReversal)] = {50, 0};
  return m;
}

Minor fee_ok(const Merchant& m, EventType type, Minor amount) {
  const Result<Minor> r = event_fee(m, type, amount);
  EXPECT_TRUE(r.ok()) << r.error().to_string();
  return r.ok() ? *r : -1;
}

TEST(EventFee, BpsPlusFixed) {
  const Merchant m = merchant_with_fees();
  EXPECT_EQ(fee_ok(m, EventType::kCapture, 10000), 320);  // 10000 x 290 / 10000 = 290, + 30
  EXPECT_EQ(fee_ok(m, EventType::kCapture, 1999), 88);    // 57.971 -> 58, + 30
  EXPECT_EQ(fee_ok(m, EventType::kCapture, 1), 30);       // 0.029 -> 0, + 30
}

TEST(EventFee, EachTypeUsesItsOwnSchedule) {
  const Merchant m = merchant_with_fees();
  EXPECT_EQ(fee_ok(m, EventType::kRefund, 5000), 25);                // 0 + 25
  EXPECT_EQ(fee_ok(m, EventType::kChargeback, 2000), 1520);          // 20 + 1500
  EXPECT_EQ(fee_ok(m, EventType::kChargebackReversal, 2000), 10);    // 2000 x 50 / 10000
  EXPECT_EQ(fee_ok(m, EventType::kChargebackReversal, 12345), 62);   // 61.725 -> 62
}

TEST(EventFee, BpsPartRoundsHalfToEvenBeforeAddingFixed) {
  Merchant m;
  m.fees[static_cast<std::size_t>(EventType::kCapture)] = {250, 10};
  EXPECT_EQ(fee_ok(m, EventType::kCapture, 100), 12);  // 2.5 -> 2, + 10
  EXPECT_EQ(fee_ok(m, EventType::kCapture, 300), 18);  // 7.5 -> 8, + 10
  EXPECT_EQ(fee_ok(m, EventType::kCapture, 500), 22);  // 12.5 -> 12, + 10
  EXPECT_EQ(fee_ok(m, EventType::kCapture, 101), 13);  // 2.525 -> 3, + 10
  m.fees[static_cast<std::size_t>(EventType::kRefund)] = {5000, 0};
  EXPECT_EQ(fee_ok(m, EventType::kRefund, 1), 0);  // 0.5 -> 0
  EXPECT_EQ(fee_ok(m, EventType::kRefund, 3), 2);  // 1.5 -> 2
}

TEST(EventFee, AdjustmentNeverHasAFee) {
  const Merchant m = merchant_with_fees();
  EXPECT_EQ(fee_ok(m, EventType::kAdjustment, 10000), 0);
  EXPECT_EQ(fee_ok(m, EventType::kAdjustment, -10000), 0);
  EXPECT_EQ(fee_ok(m, EventType::kAdjustment, kMax), 0);
}

TEST(EventFee, ZeroScheduleIsZeroFee) {
  const Merchant m;  // all schedules {0, 0}
  for (EventType t : {EventType::kCapture, EventType::kRefund, EventType::kChargeback,
                      EventType::kChargebackReversal}) {
    EXPECT_EQ(fee_ok(m, t, 123456789), 0);
  }
}

TEST(EventFee, HugeAmountTimesBpsIsOverflow) {
  Merchant m;
  m.fees[static_cast<std::size_t>(EventType::kCapture)] = {20000, 0};  // 200%
  const Result<Minor> r = event_fee(m, EventType::kCapture, kMax);     // 2 x INT64_MAX
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kOverflow);
}

TEST(EventFee, FixedPartPushingPastInt64IsOverflow) {
  Merchant m;
  m.fees[static_cast<std::size_t>(EventType::kCapture)] = {10000, 1};  // 100% + 1
  const Result<Minor> r = event_fee(m, EventType::kCapture, kMax);     // INT64_MAX + 1
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kOverflow);
  // Just inside: 100% of INT64_MAX - 1, + 1.
  EXPECT_EQ(fee_ok(m, EventType::kCapture, kMax - 1), kMax);
}

}  // namespace
}  // namespace settle::rules
