// The refusals both ledgers make when a close_batch() does not fit the stored
// history (src/ledger/checks.h): the contract suite runs them through SQLite
// and PostgreSQL; here each rule on its own, with its words.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <climits>
#include <optional>

#include "ledger/checks.h"

namespace settle::ledger::checks {
namespace {

using ::testing::HasSubstr;

Date day(int d) { return date_from_civil(2026, 3, d); }

TEST(CloseChecks, ATokenBelowTheRegisteredFenceIsFencedAndAnEqualOrHigherOneIsNot) {
  EXPECT_FALSE(fence_refusal(7, std::nullopt));
  EXPECT_FALSE(fence_refusal(7, 7));
  EXPECT_FALSE(fence_refusal(8, 7));
  const auto no = fence_refusal(6, 7);
  ASSERT_TRUE(no);
  EXPECT_EQ(no->code, ErrorCode::kFenced);
  EXPECT_EQ(no->why, "fencing token 6 is below the registered 7");
}

TEST(CloseChecks, CarriedInMustBeTheLatestClosedBatchsCarryOutOrZeroWithoutOne) {
  EXPECT_FALSE(carry_refusal(0, std::nullopt));
  EXPECT_FALSE(carry_refusal(-250, LastClosed{"2026-03-27", -250}));
  const auto none = carry_refusal(-250, std::nullopt);
  ASSERT_TRUE(none);
  EXPECT_EQ(none->code, ErrorCode::kFailedPrecondition);
  EXPECT_THAT(none->why, HasSubstr("carried_in -250 is not the carry_out 0 of the latest closed batch (none)"));
  const auto stale = carry_refusal(0, LastClosed{"2026-03-27", -250});
  ASSERT_TRUE(stale);
  EXPECT_THAT(stale->why, HasSubstr("carry_out -250 of the latest closed batch 2026-03-27"));
}

TEST(CloseChecks, HoldsReleasedMustBeNamedOnceBeClosedHeldAndUnreleasedAndSumToTheSummary) {
  HoldReleases r;
  EXPECT_FALSE(r.name(day(20)));
  EXPECT_FALSE(r.take(day(20), StoredHold{300, std::nullopt}));
  EXPECT_FALSE(r.name(day(21)));
  EXPECT_FALSE(r.take(day(21), StoredHold{200, std::nullopt}));
  EXPECT_EQ(r.dates(), (std::vector<std::string>{"2026-03-20", "2026-03-21"}));
  EXPECT_FALSE(r.finish(500));
  const auto sum = r.finish(400);
  ASSERT_TRUE(sum);
  EXPECT_EQ(sum->why, "reserve_released 400 is not the 500 held by the released batches");

  const auto twice = r.name(day(20));
  ASSERT_TRUE(twice);
  EXPECT_EQ(twice->why, "releases the hold of 2026-03-20 twice");

  HoldReleases bad;
  ASSERT_FALSE(bad.name(day(22)));
  EXPECT_EQ(bad.take(day(22), std::nullopt)->why, "releases the hold of 2026-03-22, which is not a closed batch");
  ASSERT_FALSE(bad.name(day(23)));
  EXPECT_EQ(bad.take(day(23), StoredHold{0, std::nullopt})->why,
            "releases the hold of 2026-03-23, which held no reserve");
  ASSERT_FALSE(bad.name(day(24)));
  EXPECT_EQ(bad.take(day(24), StoredHold{100, "2026-03-25"})->why,
            "releases the hold of 2026-03-24, already released by 2026-03-25");
  EXPECT_TRUE(bad.dates().empty()) << "a refused hold is not released";
  EXPECT_FALSE(bad.finish(0));
}

TEST(CloseChecks, TheBatchFeesAreTheSumOverTypesAndRefusedWhenTheyLeaveInt64) {
  model::BatchSummary s;
  s.totals.by_type[0].fees = 120;
  s.totals.by_type[1].fees = -20;
  ASSERT_TRUE(batch_fees(s).ok());
  EXPECT_EQ(batch_fees(s).value(), 100);
  s.totals.by_type[0].fees = INT64_MAX;
  s.totals.by_type[1].fees = 1;
  ASSERT_FALSE(batch_fees(s).ok());
  EXPECT_EQ(batch_fees(s).error().code, ErrorCode::kOverflow);
}

TEST(CloseChecks, ADifferentStoredSummaryAndALaterClosedBatchAreRefusedNamingBoth) {
  model::BatchSummary stored;
  stored.payout = 900;
  model::BatchSummary given = stored;
  given.payout = 901;
  const Refusal diff = different_summary(stored, given);
  EXPECT_EQ(diff.code, ErrorCode::kConflict);
  EXPECT_THAT(diff.why, HasSubstr("payout=900"));
  EXPECT_THAT(diff.why, HasSubstr("payout=901"));
  const Refusal later = later_batch_closed("2026-03-30");
  EXPECT_EQ(later.code, ErrorCode::kFailedPrecondition);
  EXPECT_THAT(later.why, HasSubstr("the later batch 2026-03-30 is already closed"));
}

}  // namespace
}  // namespace settle::ledger::checks
