// IANA time zones over the OS tz database (SETTLEMENT_RULES §3 step 1, and the
// instant at which a local cut-off happens). Day numbers are days since
// 1970-01-01, worked out by hand: 2026-01-01 = 56 x 365 + 14 leap days = 20454,
// then + day of year (Jan 31, Feb 28, Mar 31, Apr 30, May 31, Jun 30, Jul 31,
// Aug 31, Sep 30, Oct 31, Nov 30).
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "common/time_zone.h"

namespace settle {
namespace {

// The test's own arithmetic, independent of the code under test.
constexpr std::int64_t kNs = 1'000'000'000;
Timestamp utc(std::int32_t day, int h, int m, int s) {
  return Timestamp{(static_cast<std::int64_t>(day) * 86400 + h * 3600 + m * 60 + s) * kNs};
}
std::int64_t hms(int h, int m, int s) { return (h * 3600 + m * 60 + s) * kNs; }

// Days of 2026 (and neighbours) used below.
constexpr std::int32_t k20260114 = 20454 + 13;                 // 20467
constexpr std::int32_t k20260115 = 20454 + 14;                 // 20468
constexpr std::int32_t k20260308 = 20454 + 31 + 28 + 7;        // 20520
constexpr std::int32_t k20260329 = 20454 + 31 + 28 + 28;       // 20541
constexpr std::int32_t k20260404 = 20454 + 90 + 3;             // 20547
constexpr std::int32_t k20260405 = k20260404 + 1;              // 20548
constexpr std::int32_t k20260615 = 20454 + 151 + 14;           // 20619
constexpr std::int32_t k20260630 = 20454 + 181 - 1;            // 20634
constexpr std::int32_t k20260701 = 20454 + 181;                // 20635
constexpr std::int32_t k20260905 = 20454 + 243 + 4;            // 20701
constexpr std::int32_t k20260906 = k20260905 + 1;              // 20702
constexpr std::int32_t k20261003 = 20454 + 273 + 2;            // 20729
constexpr std::int32_t k20261004 = k20261003 + 1;              // 20730
constexpr std::int32_t k20261025 = 20454 + 273 + 24;           // 20751
constexpr std::int32_t k20261101 = 20454 + 304;                // 20758

TimeZone zone(std::string_view name) {
  const Result<TimeZone> tz = TimeZone::locate(name);
  EXPECT_TRUE(tz.ok()) << name << ": " << tz.error().to_string();
  return tz.ok() ? *tz : TimeZone::utc();
}

void expect_local(const TimeZone& tz, Timestamp ts, std::int32_t day, std::int64_t ns_of_day) {
  const LocalDateTime l = tz.to_local(ts);
  EXPECT_EQ(l.date.days, day) << tz.name() << " at " << ts.ns;
  EXPECT_EQ(l.ns_of_day, ns_of_day) << tz.name() << " at " << ts.ns;
}

TEST(TimeZone, SanityOfTheDayNumbers) {
  EXPECT_EQ(k20260329, 20541);
  EXPECT_EQ(k20261025, 20751);
  EXPECT_EQ(k20260701, 20635);
}

TEST(TimeZone, UnknownZoneIsAnErrorNamingIt) {
  for (const char* name : {"Mars/Olympus_Mons", "", "europe/berlin", "UTC+1"}) {
    const Result<TimeZone> tz = TimeZone::locate(name);
    ASSERT_FALSE(tz.ok()) << "'" << name << "'";
    EXPECT_EQ(tz.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(tz.error().message.find("'" + std::string(name) + "'"), std::string::npos)
        << tz.error().message;
  }
}

TEST(TimeZone, KnowsItsName) {
  EXPECT_EQ(zone("Europe/Berlin").name(), "Europe/Berlin");
  EXPECT_EQ(TimeZone::utc().name(), "UTC");
  EXPECT_EQ(zone("UTC"), TimeZone::utc());
}

TEST(ToLocal, UtcIsTheIdentityAndFloorsBeforeTheEpoch) {
  expect_local(TimeZone::utc(), utc(k20260329, 1, 0, 0), k20260329, hms(1, 0, 0));
  expect_local(TimeZone::utc(), Timestamp{-1}, -1, 86400 * kNs - 1);
}

TEST(ToLocal, BerlinSpringForwardSkipsTwoToThree) {
  const TimeZone berlin = zone("Europe/Berlin");
  // 2026-03-29 00:59:59Z is 01:59:59 CET (+1); 01:00Z is 03:00 CEST (+2).
  expect_local(berlin, utc(k20260329, 0, 59, 59), k20260329, hms(1, 59, 59));
  expect_local(berlin, utc(k20260329, 1, 0, 0), k20260329, hms(3, 0, 0));
}

TEST(ToLocal, BerlinFallBackRepeatsTwoToThree) {
  const TimeZone berlin = zone("Europe/Berlin");
  // 2026-10-25: 00:30Z is 02:30 CEST (+2), 01:30Z is 02:30 CET (+1) again.
  expect_local(berlin, utc(k20261025, 0, 30, 0), k20261025, hms(2, 30, 0));
  expect_local(berlin, utc(k20261025, 0, 59, 59), k20261025, hms(2, 59, 59));
  expect_local(berlin, utc(k20261025, 1, 0, 0), k20261025, hms(2, 0, 0));
  expect_local(berlin, utc(k20261025, 1, 30, 0), k20261025, hms(2, 30, 0));
}

TEST(ToLocal, NewYorkDstAndThePreviousLocalDay) {
  const TimeZone ny = zone("America/New_York");
  // 2026-01-15T03:00Z is 22:00 EST (-5) on the 14th.
  expect_local(ny, utc(k20260115, 3, 0, 0), k20260114, hms(22, 0, 0));
  // 2026-03-08: 06:59:59Z is 01:59:59 EST; 07:00Z is 03:00 EDT (-4).
  expect_local(ny, utc(k20260308, 6, 59, 59), k20260308, hms(1, 59, 59));
  expect_local(ny, utc(k20260308, 7, 0, 0), k20260308, hms(3, 0, 0));
  // 2026-11-01: 05:30Z is 01:30 EDT, 06:30Z is 01:30 EST.
  expect_local(ny, utc(k20261101, 5, 30, 0), k20261101, hms(1, 30, 0));
  expect_local(ny, utc(k20261101, 6, 30, 0), k20261101, hms(1, 30, 0));
}

TEST(ToLocal, LordHoweHasAThirtyMinuteDstShift) {
  const TimeZone lh = zone("Australia/Lord_Howe");
  // Summer +11:00: 2026-01-10T00:00Z (day 20463) is 11:00 local.
  expect_local(lh, utc(20463, 0, 0, 0), 20463, hms(11, 0, 0));
  // Winter +10:30: 2026-06-10T00:00Z (day 20614) is 10:30 local.
  expect_local(lh, utc(20614, 0, 0, 0), 20614, hms(10, 30, 0));
  // DST ends Sun 2026-04-05 02:00 (+11) -> 01:30 (+10:30), at 2026-04-04T15:00Z.
  expect_local(lh, utc(k20260404, 14, 59, 59), k20260405, hms(1, 59, 59));
  expect_local(lh, utc(k20260404, 15, 0, 0), k20260405, hms(1, 30, 0));
  // DST starts Sun 2026-10-04 02:00 (+10:30) -> 02:30 (+11), at 2026-10-03T15:30Z.
  expect_local(lh, utc(k20261003, 15, 29, 59), k20261004, hms(1, 59, 59));
  expect_local(lh, utc(k20261003, 15, 30, 0), k20261004, hms(2, 30, 0));
}

TEST(ToLocal, KolkataIsFiveThirtyAhead) {
  const TimeZone kolkata = zone("Asia/Kolkata");
  // 18:30Z + 5:30 = 24:00 -> 00:00 on the next day.
  expect_local(kolkata, utc(k20260630, 18, 30, 0), k20260701, 0);
  expect_local(kolkata, utc(k20260630, 18, 29, 59), k20260630, hms(23, 59, 59));
}

TEST(ToLocal, KiritimatiIsFourteenHoursAhead) {
  const TimeZone kiritimati = zone("Pacific/Kiritimati");
  // 10:00Z + 14:00 = 24:00 -> 00:00 on the next day.
  expect_local(kiritimati, utc(k20260630, 10, 0, 0), k20260701, 0);
  expect_local(kiritimati, utc(k20260630, 9, 59, 59), k20260630, hms(23, 59, 59));
  // Pacific/Apia: +13:00 since it dropped DST in 2021.
  expect_local(zone("Pacific/Apia"), utc(k20260630, 11, 0, 0), k20260701, 0);
}

TEST(ToLocal, KeepsNanosecondsOfTheInstant) {
  const TimeZone kolkata = zone("Asia/Kolkata");
  const Timestamp ts{utc(k20260630, 18, 29, 59).ns + 999'999'999};
  expect_local(kolkata, ts, k20260630, hms(23, 59, 59) + 999'999'999);
}

TEST(ToLocal, ExtremesOfTheParseableRangeDoNotOverflow) {
  // The latest instant parse_rfc3339 accepts, 2261-12-31T23:59:59.999999999-23:59
  // = 2262-01-01T23:58:59.999999999Z (day 106651), is 13:58:59.999999999 on
  // 2262-01-02 at +14:00.
  const Timestamp latest{(106651LL * 86400 + 23 * 3600 + 58 * 60 + 59) * kNs + 999'999'999};
  expect_local(zone("Pacific/Kiritimati"), latest, 106652, hms(13, 58, 59) + 999'999'999);
  // The earliest, 1678-01-01T00:00:00+23:59 = 1677-12-31T00:01Z (day -106651),
  // is 12:01 on 1677-12-30 at -12:00.
  const Timestamp earliest{(-106651LL * 86400 + 60) * kNs};
  expect_local(zone("Etc/GMT+12"), earliest, -106652, hms(12, 1, 0));
}

// --- local_end ----------------------------------------------------------------

TEST(LocalEnd, OrdinaryDayIsTheWallClockMinusTheOffset) {
  // 2026-06-15 18:00 CEST (+2) = 16:00Z.
  EXPECT_EQ(zone("Europe/Berlin").local_end(Date{k20260615}, 18 * 60), utc(k20260615, 16, 0, 0));
  // 2026-01-15 00:00 EST (-5) = 05:00Z.
  EXPECT_EQ(zone("America/New_York").local_end(Date{k20260115}, 0), utc(k20260115, 5, 0, 0));
  // 2026-07-01 00:00 IST (+5:30) = 2026-06-30T18:30Z.
  EXPECT_EQ(zone("Asia/Kolkata").local_end(Date{k20260701}, 0), utc(k20260630, 18, 30, 0));
  EXPECT_EQ(TimeZone::utc().local_end(Date{k20260615}, 23 * 60 + 59), utc(k20260615, 23, 59, 0));
}

TEST(LocalEnd, CutoffInsideTheSpringForwardGapIsTheEndOfTheGap) {
  // 02:30 does not happen in Berlin on 2026-03-29: the clocks read 03:00 CEST
  // at 01:00Z, the first instant whose local time is >= 02:30.
  EXPECT_EQ(zone("Europe/Berlin").local_end(Date{k20260329}, 2 * 60 + 30),
            utc(k20260329, 1, 0, 0));
  // Lord Howe 2026-10-04 02:15 does not happen (02:00 -> 02:30 at 15:30Z on the 3rd).
  EXPECT_EQ(zone("Australia/Lord_Howe").local_end(Date{k20261004}, 2 * 60 + 15),
            utc(k20261003, 15, 30, 0));
  // New York 2026-03-08 02:00 does not happen; 03:00 EDT is at 07:00Z.
  EXPECT_EQ(zone("America/New_York").local_end(Date{k20260308}, 2 * 60), utc(k20260308, 7, 0, 0));
}

TEST(LocalEnd, CutoffAtTheEdgesOfTheGapIsUnique) {
  const TimeZone berlin = zone("Europe/Berlin");
  // 01:59 CET (+1) = 00:59Z; 03:00 CEST (+2) = 01:00Z.
  EXPECT_EQ(berlin.local_end(Date{k20260329}, 1 * 60 + 59), utc(k20260329, 0, 59, 0));
  EXPECT_EQ(berlin.local_end(Date{k20260329}, 3 * 60), utc(k20260329, 1, 0, 0));
}

TEST(LocalEnd, CutoffInsideTheFallBackOverlapIsTheLaterOccurrence) {
  // Berlin 2026-10-25 02:30 happens at 00:30Z (CEST) and 01:30Z (CET): later.
  EXPECT_EQ(zone("Europe/Berlin").local_end(Date{k20261025}, 2 * 60 + 30),
            utc(k20261025, 1, 30, 0));
  // 02:00 happens at 00:00Z and at 01:00Z: later.
  EXPECT_EQ(zone("Europe/Berlin").local_end(Date{k20261025}, 2 * 60), utc(k20261025, 1, 0, 0));
  // New York 2026-11-01 01:30 at 05:30Z (EDT) and 06:30Z (EST): later.
  EXPECT_EQ(zone("America/New_York").local_end(Date{k20261101}, 90), utc(k20261101, 6, 30, 0));
  // Lord Howe 2026-04-05 01:45 at 14:45Z (+11) and 15:15Z (+10:30) on the 4th: later.
  EXPECT_EQ(zone("Australia/Lord_Howe").local_end(Date{k20260405}, 105),
            utc(k20260404, 15, 15, 0));
}

TEST(LocalEnd, SkippedMidnightIsTheEndOfTheGap) {
  // America/Santiago springs forward at 24:00 on Sat 2026-09-05 (-4 -> -3):
  // local 2026-09-06 00:00 does not exist; 01:00 (-3) is at 04:00Z.
  const TimeZone santiago = zone("America/Santiago");
  EXPECT_EQ(santiago.local_end(Date{k20260906}, 0), utc(k20260906, 4, 0, 0));
  expect_local(santiago, utc(k20260906, 3, 59, 59), k20260905, hms(23, 59, 59));
}

TEST(LocalEnd, MidnightAfterARepeatedLastHourIsUnique) {
  // Santiago falls back at 24:00 on Sat 2026-04-04 (-3 -> -4): 23:00-24:00 of
  // the 4th happens twice; 2026-04-05 00:00 (-4) happens once, at 04:00Z.
  const TimeZone santiago = zone("America/Santiago");
  expect_local(santiago, utc(k20260405, 2, 59, 59), k20260404, hms(23, 59, 59));
  expect_local(santiago, utc(k20260405, 3, 0, 0), k20260404, hms(23, 0, 0));
  EXPECT_EQ(santiago.local_end(Date{k20260405}, 0), utc(k20260405, 4, 0, 0));
}

}  // namespace
}  // namespace settle
