// SETTLEMENT_RULES §6: the legs of every journal, debit positive and credit
// negative; zero legs are not written; every journal sums to zero.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <map>
#include <string>

#include "model/event_json.h"
#include "rules/rules.h"

namespace settle::rules {
namespace {

using model::AccountRole;
using model::JournalKind;

constexpr Minor kMax = std::numeric_limits<Minor>::max();
constexpr Minor kMin = std::numeric_limits<Minor>::min();
constexpr std::int32_t k20261123 = 20780;  // 20454 (2026-01-01) + 326

Merchant merchant_with_fees() {
  Merchant m;
  m.id = MerchantId("m1");
  m.fees[static_cast<std::size_t>(EventType::kCapture)] = {290, 30};
  m.fees[static_cast<std::size_t>(EventType::kRefund)] = {0, 25};
  m.fees[static_cast<std::size_t>(EventType::kChargeback)] = {100, 1500};
  m.fees[static_cast<std::size_t>(EventType::kChargebackReversal)] = {50, 0};
  return m;
}

Event event(EventType type, Minor amount, std::string id = "e1") {
  Event e;
  e.merchant_id = MerchantId("m1");
  e.event_id = EventId(std::move(id));
  e.type = type;
  e.amount = amount;
  e.currency = "USD";
  e.occurred_at = Timestamp{1'795'456'800'000'000'000};  // 2026-11-23T18:00:00Z
  return e;
}

using Legs = std::map<AccountRole, Minor>;

// The legs as a map; fails if an account appears twice or a leg is zero.
Legs legs_of(const Journal& j) {
  Legs out;
  for (std::uint8_t i = 0; i < j.leg_count; ++i) {
    EXPECT_NE(j.legs[i].amount, 0) << "a zero leg was written";
    EXPECT_TRUE(out.emplace(j.legs[i].account, j.legs[i].amount).second) << "account twice";
  }
  return out;
}

Minor sum_of(const Journal& j) {
  Minor s = 0;
  for (std::uint8_t i = 0; i < j.leg_count; ++i) s += j.legs[i].amount;
  return s;
}

Journal journal_ok(const Event& e, const Merchant& m) {
  const Result<Journal> r = event_journal(e, m, Date{k20261123}, Date{k20261123}, false);
  EXPECT_TRUE(r.ok()) << r.error().to_string();
  return r.ok() ? *r : Journal{};
}

TEST(EventJournal, CaptureDebitsClearingAndCreditsPayableNetAndFees) {
  // A = 10000, F = 290 + 30 = 320: clearing +10000, payable -(10000 - 320), fees -320.
  const Journal j = journal_ok(event(EventType::kCapture, 10000), merchant_with_fees());
  EXPECT_EQ(legs_of(j), (Legs{{AccountRole::kPlatformClearing, 10000},
                              {AccountRole::kMerchantPayable, -9680},
                              {AccountRole::kPlatformFees, -320}}));
  EXPECT_EQ(j.leg_count, 3);
  EXPECT_EQ(sum_of(j), 0);
  EXPECT_EQ(j.fee, 320);
  EXPECT_EQ(j.amount, 10000);
  EXPECT_EQ(j.kind, JournalKind::kCapture);
}

TEST(EventJournal, AssignedOverAnEarlierJournalItEqualsAFreshOne) {
  // A capture with three legs, metadata and a trace, then an adjustment
  // (two legs, no metadata) written over it: nothing of the first remains.
  Event capture = event(EventType::kCapture, 10000, "an-event-id-long-enough-for-the-heap");
  capture.metadata = {{"order", "42"}};
  Journal reused = journal_ok(capture, merchant_with_fees());
  reused.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  ASSERT_EQ(reused.leg_count, 3);

  const Event adjustment = event(EventType::kAdjustment, -500, "e2");
  ASSERT_TRUE(assign_event_journal(reused, adjustment, merchant_with_fees(), Date{k20261123 + 1},
                                   Date{k20261123 + 2}, true)
                  .ok());
  const Result<Journal> fresh =
      event_journal(adjustment, merchant_with_fees(), Date{k20261123 + 1}, Date{k20261123 + 2}, true);
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(reused.ref, fresh->ref);
  EXPECT_EQ(reused.kind, JournalKind::kAdjustment);
  EXPECT_EQ(reused.batch_date, fresh->batch_date);
  EXPECT_EQ(reused.settle_date, fresh->settle_date);
  EXPECT_TRUE(reused.late);
  EXPECT_EQ(reused.amount, -500);
  EXPECT_EQ(reused.fee, fresh->fee);
  EXPECT_EQ(reused.digest, fresh->digest);
  EXPECT_EQ(reused.metadata_json, "");
  EXPECT_EQ(reused.trace_id, "");
  EXPECT_EQ(reused.leg_count, 2);
  EXPECT_EQ(legs_of(reused), legs_of(*fresh));
  EXPECT_EQ(sum_of(reused), 0);
}

TEST(EventJournal, RefundCreditsClearingAndDebitsPayableAmountPlusFee) {
  // A = 5000, F = 25: clearing -5000, payable +(5000 + 25), fees -25.
  const Journal j = journal_ok(event(EventType::kRefund, 5000), merchant_with_fees());
  EXPECT_EQ(legs_of(j), (Legs{{AccountRole::kPlatformClearing, -5000},
                              {AccountRole::kMerchantPayable, 5025},
                              {AccountRole::kPlatformFees, -25}}));
  EXPECT_EQ(sum_of(j), 0);
  EXPECT_EQ(j.fee, 25);
  EXPECT_EQ(j.kind, JournalKind::kRefund);
}

TEST(EventJournal, ChargebackCreditsClearingAndDebitsPayableAmountPlusFee) {
  // A = 2000, F = 2000 x 100 / 10000 + 1500 = 1520: clearing -2000, payable +3520, fees -1520.
  const Journal j = journal_ok(event(EventType::kChargeback, 2000), merchant_with_fees());
  EXPECT_EQ(legs_of(j), (Legs{{AccountRole::kPlatformClearing, -2000},
                              {AccountRole::kMerchantPayable, 3520},
                              {AccountRole::kPlatformFees, -1520}}));
  EXPECT_EQ(sum_of(j), 0);
  EXPECT_EQ(j.kind, JournalKind::kChargeback);
}

TEST(EventJournal, ChargebackReversalPostsLikeACapture) {
  // A = 2000, F = 2000 x 50 / 10000 = 10: clearing +2000, payable -1990, fees -10.
  const Journal j = journal_ok(event(EventType::kChargebackReversal, 2000), merchant_with_fees());
  EXPECT_EQ(legs_of(j), (Legs{{AccountRole::kPlatformClearing, 2000},
                              {AccountRole::kMerchantPayable, -1990},
                              {AccountRole::kPlatformFees, -10}}));
  EXPECT_EQ(sum_of(j), 0);
  EXPECT_EQ(j.kind, JournalKind::kChargebackReversal);
}

TEST(EventJournal, PositiveAdjustmentCreditsPayable) {
  // A = +700: adjustments +700, payable -700; no fee leg even with fee schedules.
  const Journal j = journal_ok(event(EventType::kAdjustment, 700), merchant_with_fees());
  EXPECT_EQ(legs_of(j), (Legs{{AccountRole::kPlatformAdjustments, 700},
                              {AccountRole::kMerchantPayable, -700}}));
  EXPECT_EQ(j.fee, 0);
  EXPECT_EQ(j.kind, JournalKind::kAdjustment);
}

TEST(EventJournal, NegativeAdjustmentDebitsPayable) {
  // A = -700: adjustments -700, payable +700.
  const Journal j = journal_ok(event(EventType::kAdjustment, -700), merchant_with_fees());
  EXPECT_EQ(legs_of(j), (Legs{{AccountRole::kPlatformAdjustments, -700},
                              {AccountRole::kMerchantPayable, 700}}));
  EXPECT_EQ(j.amount, -700);
  EXPECT_EQ(sum_of(j), 0);
}

TEST(EventJournal, ZeroFeeOmitsTheFeeLeg) {
  const Merchant no_fees;
  const Journal capture = journal_ok(event(EventType::kCapture, 10000), no_fees);
  EXPECT_EQ(legs_of(capture), (Legs{{AccountRole::kPlatformClearing, 10000},
                                    {AccountRole::kMerchantPayable, -10000}}));
  EXPECT_EQ(capture.leg_count, 2);
  const Journal refund = journal_ok(event(EventType::kRefund, 10000), no_fees);
  EXPECT_EQ(legs_of(refund), (Legs{{AccountRole::kPlatformClearing, -10000},
                                   {AccountRole::kMerchantPayable, 10000}}));
}

TEST(EventJournal, FeeEqualToTheAmountOmitsThePayableLeg) {
  // Flat schedule {0, 30}, A = 30: F = 30, payable -(30 - 30) = 0 is not written.
  Merchant m;
  m.fees[static_cast<std::size_t>(EventType::kCapture)] = {0, 30};
  const Journal j = journal_ok(event(EventType::kCapture, 30), m);
  EXPECT_EQ(legs_of(j), (Legs{{AccountRole::kPlatformClearing, 30},
                              {AccountRole::kPlatformFees, -30}}));
  EXPECT_EQ(j.leg_count, 2);
}

TEST(EventJournal, FeeAboveTheAmountDebitsPayable) {
  // A = 20, F = 30: payable -(20 - 30) = +10; 20 + 10 - 30 = 0.
  Merchant m;
  m.fees[static_cast<std::size_t>(EventType::kCapture)] = {0, 30};
  const Journal j = journal_ok(event(EventType::kCapture, 20), m);
  EXPECT_EQ(legs_of(j), (Legs{{AccountRole::kPlatformClearing, 20},
                              {AccountRole::kMerchantPayable, 10},
                              {AccountRole::kPlatformFees, -30}}));
}

TEST(EventJournal, EveryTypeBalancesAtTheInt64Edge) {
  const Merchant m;  // no fees: the legs are +-A
  for (EventType t : {EventType::kCapture, EventType::kRefund, EventType::kChargeback,
                      EventType::kChargebackReversal, EventType::kAdjustment}) {
    const Journal j = journal_ok(event(t, kMax), m);
    EXPECT_EQ(j.leg_count, 2);
    EXPECT_EQ(sum_of(j), 0);
  }
}

TEST(EventJournal, AdjustmentOfInt64MinIsOverflowNotUndefinedNegation) {
  // The payable leg would be -A = 2^63, which does not fit in int64.
  const Result<Journal> r =
      event_journal(event(EventType::kAdjustment, kMin), Merchant{}, Date{k20261123},
                    Date{k20261123}, false);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kOverflow);
}

TEST(EventJournal, RefundWhoseAmountPlusFeeOverflowsIsOverflow) {
  Merchant m;
  m.fees[static_cast<std::size_t>(EventType::kRefund)] = {0, 1};
  const Result<Journal> r = event_journal(event(EventType::kRefund, kMax), m, Date{k20261123},
                                          Date{k20261123}, false);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kOverflow);
}

TEST(EventJournal, CarriesIdentityDatesLatenessAndMetadata) {
  Event e = event(EventType::kCapture, 10000, "ord-42");
  e.metadata = {{"order", "42"}, {"sku", "A\"1"}};
  const Result<Journal> r =
      event_journal(e, merchant_with_fees(), Date{k20261123}, Date{k20261123 + 2}, true);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->merchant_id, MerchantId("m1"));
  EXPECT_EQ(r->ref, "ord-42");
  EXPECT_EQ(r->currency, "USD");
  EXPECT_EQ(r->batch_date, Date{k20261123});
  EXPECT_EQ(r->settle_date, Date{k20261123 + 2});
  EXPECT_TRUE(r->late);
  EXPECT_EQ(r->occurred_at, e.occurred_at);
  EXPECT_EQ(r->metadata_json, R"({"order":"42","sku":"A\"1"})");
}

TEST(EventJournal, DigestFollowsTheEventsContent) {
  const Merchant m = merchant_with_fees();
  const Journal a = journal_ok(event(EventType::kCapture, 10000), m);
  const Journal same = journal_ok(event(EventType::kCapture, 10000), m);
  const Journal other_amount = journal_ok(event(EventType::kCapture, 10001), m);
  const Journal other_type = journal_ok(event(EventType::kChargebackReversal, 10000), m);
  EXPECT_EQ(a.digest, same.digest);
  EXPECT_NE(a.digest, other_amount.digest);
  EXPECT_NE(a.digest, other_type.digest);
}

TEST(Accounts, NamesAreTheRulesAccounts) {
  EXPECT_EQ(model::account_name(AccountRole::kMerchantPayable, "m1"), "merchant:m1:payable");
  EXPECT_EQ(model::account_name(AccountRole::kMerchantReserve, "m1"), "merchant:m1:reserve");
  EXPECT_EQ(model::account_name(AccountRole::kPlatformClearing, "m1"), "platform:clearing");
  EXPECT_EQ(model::account_name(AccountRole::kPlatformFees, "m1"), "platform:fees");
  EXPECT_EQ(model::account_name(AccountRole::kPlatformAdjustments, "m1"), "platform:adjustments");
  EXPECT_EQ(model::account_name(AccountRole::kPlatformPayouts, "m1"), "platform:payouts");
  EXPECT_TRUE(model::is_merchant_account(AccountRole::kMerchantPayable));
  EXPECT_TRUE(model::is_merchant_account(AccountRole::kMerchantReserve));
  EXPECT_FALSE(model::is_merchant_account(AccountRole::kPlatformFees));
}

TEST(Accounts, BatchKeyNamesMerchantDateAndCurrency) {
  EXPECT_EQ((BatchKey{MerchantId("m1"), Date{k20261123}, "USD"}).to_string(), "m1/2026-11-23/USD");
}

// --- batch-close journals ---------------------------------------------------------

BatchSummary summary(Minor held, Minor released, Minor payout) {
  BatchSummary s;
  s.key = BatchKey{MerchantId("m1"), Date{k20261123}, "USD"};
  s.reserve_held = held;
  s.reserve_released = released;
  s.payout = payout;
  s.net = payout;
  return s;
}

const Journal* find_kind(const std::vector<Journal>& js, JournalKind kind) {
  for (const Journal& j : js) {
    if (j.kind == kind) return &j;
  }
  return nullptr;
}

TEST(BatchJournals, HoldReleaseAndPayoutLegs) {
  const std::vector<Journal> js = batch_journals(summary(100, 50, 1234));
  ASSERT_EQ(js.size(), 3u);

  const Journal* hold = find_kind(js, JournalKind::kReserveHold);
  ASSERT_NE(hold, nullptr);
  // hold R = 100: payable +100, reserve -100.
  EXPECT_EQ(legs_of(*hold), (Legs{{AccountRole::kMerchantPayable, 100},
                                  {AccountRole::kMerchantReserve, -100}}));
  EXPECT_EQ(hold->ref, "§batch:2026-11-23:USD:hold");
  EXPECT_EQ(hold->amount, 100);

  const Journal* release = find_kind(js, JournalKind::kReserveRelease);
  ASSERT_NE(release, nullptr);
  // release L = 50: reserve +50, payable -50.
  EXPECT_EQ(legs_of(*release), (Legs{{AccountRole::kMerchantReserve, 50},
                                     {AccountRole::kMerchantPayable, -50}}));
  EXPECT_EQ(release->ref, "§batch:2026-11-23:USD:release");

  const Journal* payout = find_kind(js, JournalKind::kPayout);
  ASSERT_NE(payout, nullptr);
  // payout P = 1234: payable +1234, payouts -1234.
  EXPECT_EQ(legs_of(*payout), (Legs{{AccountRole::kMerchantPayable, 1234},
                                    {AccountRole::kPlatformPayouts, -1234}}));
  EXPECT_EQ(payout->ref, "§batch:2026-11-23:USD:payout");

  for (const Journal& j : js) {
    EXPECT_EQ(sum_of(j), 0);
    EXPECT_EQ(j.merchant_id, MerchantId("m1"));
    EXPECT_EQ(j.currency, "USD");
    EXPECT_EQ(j.batch_date, Date{k20261123});
    EXPECT_EQ(j.settle_date, Date{k20261123});
    EXPECT_FALSE(j.late);
  }
  EXPECT_NE(hold->digest, release->digest);
}

TEST(BatchJournals, NoneWhenAllAmountsAreZero) {
  // A carried-out batch: net < 0, payout 0, no reserve.
  BatchSummary s = summary(0, 0, 0);
  s.net = -500;
  s.carry_out = -500;
  EXPECT_TRUE(batch_journals(s).empty());
}

TEST(BatchJournals, OnlyTheNonZeroOnes) {
  const std::vector<Journal> only_payout = batch_journals(summary(0, 0, 99));
  ASSERT_EQ(only_payout.size(), 1u);
  EXPECT_EQ(only_payout[0].kind, JournalKind::kPayout);
  const std::vector<Journal> only_release = batch_journals(summary(0, 70, 0));
  ASSERT_EQ(only_release.size(), 1u);
  EXPECT_EQ(only_release[0].kind, JournalKind::kReserveRelease);
}

}  // namespace
}  // namespace settle::rules
