// SETTLEMENT_RULES §3: which batch an event belongs to, and the instant by
// which a batch has seen all its events. Day numbers are days since
// 1970-01-01, worked out by hand (2026-01-01 = 56 x 365 + 14 leap days = 20454).
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "rules/rules.h"

namespace settle::rules {
namespace {

constexpr std::int64_t kNs = 1'000'000'000;
Timestamp utc(std::int32_t day, int h, int m, int s, std::int64_t ns = 0) {
  return Timestamp{(static_cast<std::int64_t>(day) * 86400 + h * 3600 + m * 60 + s) * kNs + ns};
}

constexpr std::int32_t k20260328 = 20454 + 31 + 28 + 27;  // 20540
constexpr std::int32_t k20260329 = k20260328 + 1;         // 20541
constexpr std::int32_t k20260330 = k20260328 + 2;         // 20542
constexpr std::int32_t k20261024 = 20454 + 273 + 23;      // 20750
constexpr std::int32_t k20261025 = k20261024 + 1;         // 20751
constexpr std::int32_t k20261026 = k20261024 + 2;         // 20752
constexpr std::int32_t k20261122 = 20454 + 304 + 21;      // 20779
constexpr std::int32_t k20261123 = k20261122 + 1;         // 20780
constexpr std::int32_t k20261124 = k20261122 + 2;         // 20781

Merchant merchant(std::string_view tz, int cutoff_minutes) {
  Merchant m;
  m.id = MerchantId("m1");
  const Result<TimeZone> zone = TimeZone::locate(tz);
  EXPECT_TRUE(zone.ok()) << tz;
  if (zone.ok()) m.timezone = *zone;
  m.cutoff_minutes = cutoff_minutes;
  return m;
}

std::int32_t batch_day(const Merchant& m, Timestamp ts) { return batch_date_of(m, ts).days; }

TEST(BatchDate, SanityOfTheDayNumbers) {
  EXPECT_EQ(k20261123, 20780);
  EXPECT_EQ(k20260329, 20541);
  EXPECT_EQ(k20261025, 20751);
}

TEST(BatchDate, CutoffMidnightIsTheLocalDate) {
  const Merchant m = merchant("UTC", 0);
  EXPECT_EQ(batch_day(m, utc(k20261123, 0, 0, 0)), k20261123);
  EXPECT_EQ(batch_day(m, utc(k20261123, 23, 59, 59, 999'999'999)), k20261123);
  EXPECT_EQ(batch_day(m, utc(k20261124, 0, 0, 0)), k20261124);
}

TEST(BatchDate, CutoffMidnightUsesTheMerchantsZoneNotUtc) {
  // Berlin (CET, +1): 2026-11-23T23:30Z is 00:30 on the 24th.
  const Merchant m = merchant("Europe/Berlin", 0);
  EXPECT_EQ(batch_day(m, utc(k20261123, 23, 30, 0)), k20261124);
  EXPECT_EQ(batch_day(m, utc(k20261123, 22, 59, 59)), k20261123);
}

TEST(BatchDate, CutoffBeforeHHMM00StaysOnTheSameDay) {
  const Merchant m = merchant("UTC", 18 * 60);
  EXPECT_EQ(batch_day(m, utc(k20261123, 17, 59, 59)), k20261123);  // rules' own example
  EXPECT_EQ(batch_day(m, utc(k20261123, 0, 0, 0)), k20261123);
}

TEST(BatchDate, CutoffAtExactlyHHMM00GoesToNextDay) {
  const Merchant m = merchant("UTC", 18 * 60);
  EXPECT_EQ(batch_day(m, utc(k20261123, 18, 0, 0)), k20261124);  // rules' own example
  EXPECT_EQ(batch_day(m, utc(k20261123, 23, 59, 59)), k20261124);
}

TEST(BatchDate, LastNanosecondBeforeTheCutoffStaysOnTheSameDay) {
  const Merchant m = merchant("UTC", 18 * 60);
  EXPECT_EQ(batch_day(m, utc(k20261123, 17, 59, 59, 999'999'999)), k20261123);
  EXPECT_EQ(batch_day(m, utc(k20261123, 18, 0, 0, 1)), k20261124);
}

TEST(BatchDate, CutoffAppliesToLocalTimeOfDay) {
  // Berlin (CET, +1), cutoff 18:00: 16:59:59Z is 17:59:59 local, 17:00Z is 18:00.
  const Merchant m = merchant("Europe/Berlin", 18 * 60);
  EXPECT_EQ(batch_day(m, utc(k20261123, 16, 59, 59)), k20261123);
  EXPECT_EQ(batch_day(m, utc(k20261123, 17, 0, 0)), k20261124);
  // A local date after UTC's and after the cutoff: 23:30Z = 00:30 on the 24th,
  // before 18:00 -> the 24th (not the 25th).
  EXPECT_EQ(batch_day(m, utc(k20261123, 23, 30, 0)), k20261124);
}

TEST(BatchDate, SameInstantIsNextDayInTokyoAndPreviousDayInLosAngeles) {
  const Merchant tokyo = merchant("Asia/Tokyo", 0);
  const Merchant la = merchant("America/Los_Angeles", 0);
  // 2026-11-23T20:00Z: Tokyo (+9) 05:00 on the 24th; LA (PST, -8) 12:00 on the 23rd.
  EXPECT_EQ(batch_day(tokyo, utc(k20261123, 20, 0, 0)), k20261124);
  EXPECT_EQ(batch_day(la, utc(k20261123, 20, 0, 0)), k20261123);
  // 2026-11-24T03:00Z: Tokyo 12:00 on the 24th; LA 19:00 on the 23rd.
  EXPECT_EQ(batch_day(tokyo, utc(k20261124, 3, 0, 0)), k20261124);
  EXPECT_EQ(batch_day(la, utc(k20261124, 3, 0, 0)), k20261123);
}

TEST(BatchDate, BerlinSpringForwardDayWithCutoffInsideTheGap) {
  // 2026-03-29, cutoff 02:30, which never happens that day: 01:59:59 CET is
  // before it, 03:00 CEST (01:00Z) is after it.
  const Merchant m = merchant("Europe/Berlin", 2 * 60 + 30);
  EXPECT_EQ(batch_day(m, utc(k20260328, 23, 0, 0)), k20260329);   // 00:00 CET
  EXPECT_EQ(batch_day(m, utc(k20260329, 0, 59, 59)), k20260329);  // 01:59:59 CET
  EXPECT_EQ(batch_day(m, utc(k20260329, 1, 0, 0)), k20260330);    // 03:00 CEST
  // The day before: 02:30 CET on the 28th is 01:30Z.
  EXPECT_EQ(batch_day(m, utc(k20260328, 1, 29, 59)), k20260328);
  EXPECT_EQ(batch_day(m, utc(k20260328, 1, 30, 0)), k20260329);
}

TEST(BatchDate, BerlinFallBackDayWithCutoffInsideTheRepeatedHour) {
  // 2026-10-25, cutoff 02:30; 02:00-03:00 happens twice (CEST 00:00-01:00Z,
  // CET 01:00-02:00Z). The rule looks at the wall clock only.
  const Merchant m = merchant("Europe/Berlin", 2 * 60 + 30);
  EXPECT_EQ(batch_day(m, utc(k20261025, 0, 29, 59)), k20261025);  // 02:29:59 CEST
  EXPECT_EQ(batch_day(m, utc(k20261025, 0, 30, 0)), k20261026);   // 02:30 CEST
  EXPECT_EQ(batch_day(m, utc(k20261025, 0, 59, 59)), k20261026);  // 02:59:59 CEST
  EXPECT_EQ(batch_day(m, utc(k20261025, 1, 0, 0)), k20261025);    // 02:00 CET, again before
  EXPECT_EQ(batch_day(m, utc(k20261025, 1, 29, 59)), k20261025);  // 02:29:59 CET
  EXPECT_EQ(batch_day(m, utc(k20261025, 1, 30, 0)), k20261026);   // 02:30 CET
}

// --- batch_end ----------------------------------------------------------------

TEST(BatchEnd, CutoffMidnightEndsAtTheNextLocalMidnight) {
  EXPECT_EQ(batch_end(merchant("UTC", 0), Date{k20261123}), utc(k20261124, 0, 0, 0));
  // Berlin: midnight of the 29th is CET (23:00Z on the 28th); midnight of the
  // 30th is CEST (22:00Z on the 29th): the 29th is a 23-hour day.
  const Merchant berlin = merchant("Europe/Berlin", 0);
  EXPECT_EQ(batch_end(berlin, Date{k20260328}), utc(k20260328, 23, 0, 0));
  EXPECT_EQ(batch_end(berlin, Date{k20260329}), utc(k20260329, 22, 0, 0));
  // The 25th of October is a 25-hour day: ends at 23:00Z (midnight CET).
  EXPECT_EQ(batch_end(berlin, Date{k20261025}), utc(k20261025, 23, 0, 0));
}

TEST(BatchEnd, CutoffEndsAtTheCutoffOfTheBatchDate) {
  // Cutoff 18:00 UTC: batch the 24th holds [23rd 18:00, 24th 18:00).
  EXPECT_EQ(batch_end(merchant("UTC", 18 * 60), Date{k20261124}), utc(k20261124, 18, 0, 0));
  // Berlin CET cutoff 18:00 on the 23rd = 17:00Z.
  EXPECT_EQ(batch_end(merchant("Europe/Berlin", 18 * 60), Date{k20261123}),
            utc(k20261123, 17, 0, 0));
}

TEST(BatchEnd, DstChangeoverDaysWithCutoff0230) {
  const Merchant m = merchant("Europe/Berlin", 2 * 60 + 30);
  EXPECT_EQ(batch_end(m, Date{k20260328}), utc(k20260328, 1, 30, 0));  // 02:30 CET
  EXPECT_EQ(batch_end(m, Date{k20260329}), utc(k20260329, 1, 0, 0));   // end of the gap
  EXPECT_EQ(batch_end(m, Date{k20261024}), utc(k20261024, 0, 30, 0));  // 02:30 CEST
  EXPECT_EQ(batch_end(m, Date{k20261025}), utc(k20261025, 1, 30, 0));  // later 02:30
}

// The contract of batch_end: every instant of batch D is before batch_end(D),
// and batch_end(D) itself is in batch D+1. Checked on a grid of instants every
// 15 s within +-3 h of each end. (The end need not be tight: with a cutoff of
// exactly 02:00 on a fall-back day the later 02:00 is an hour after the last
// instant of the batch, which is harmless.)
void check_batch_end_contract(const Merchant& m, std::int32_t first_day, std::int32_t last_day) {
  for (std::int32_t day = first_day; day <= last_day; ++day) {
    const Timestamp end = batch_end(m, Date{day});
    EXPECT_EQ(batch_day(m, end), day + 1)
        << m.timezone.name() << " cutoff " << m.cutoff_minutes << " batch " << day;
    for (std::int64_t s = -3 * 3600; s <= 3 * 3600; s += 15) {
      const Timestamp t{end.ns + s * kNs};
      if (batch_day(m, t) == day) {
        EXPECT_LT(t, end) << m.timezone.name() << " batch " << day << " offset " << s;
      }
      if (t >= end) {
        EXPECT_GT(batch_day(m, t), day) << m.timezone.name() << " batch " << day << " offset " << s;
      }
    }
  }
}

TEST(BatchEnd, IsStrictlyAfterEveryInstantOfTheBatchAroundDstInBerlin) {
  for (int cutoff : {0, 60, 2 * 60, 2 * 60 + 30, 3 * 60, 18 * 60, 23 * 60 + 59}) {
    check_batch_end_contract(merchant("Europe/Berlin", cutoff), k20260328 - 1, k20260330);
    check_batch_end_contract(merchant("Europe/Berlin", cutoff), k20261024 - 1, k20261026);
  }
}

TEST(BatchEnd, IsStrictlyAfterEveryInstantOfTheBatchInOtherZones) {
  // New York DST 2026-03-08 (day 20520) and 2026-11-01 (day 20758); Lord Howe
  // 2026-04-05 (20548) and 2026-10-04 (20730); Santiago's midnight changes
  // 2026-04-05 (20548) and 2026-09-06 (20702).
  for (int cutoff : {0, 90, 2 * 60, 2 * 60 + 15, 17 * 60}) {
    check_batch_end_contract(merchant("America/New_York", cutoff), 20519, 20521);
    check_batch_end_contract(merchant("America/New_York", cutoff), 20757, 20759);
    check_batch_end_contract(merchant("Australia/Lord_Howe", cutoff), 20547, 20549);
    check_batch_end_contract(merchant("Australia/Lord_Howe", cutoff), 20729, 20731);
    check_batch_end_contract(merchant("America/Santiago", cutoff), 20547, 20549);
    check_batch_end_contract(merchant("America/Santiago", cutoff), 20701, 20703);
    check_batch_end_contract(merchant("Pacific/Kiritimati", cutoff), 20779, 20781);
    check_batch_end_contract(merchant("Asia/Kolkata", cutoff), 20779, 20781);
  }
}

}  // namespace
}  // namespace settle::rules
