// RFC 3339 instants, civil dates and "HH:MM" (SETTLEMENT_RULES §2 occurred_at,
// §5 payout_date, §7 dates). Nanosecond counts below are worked out by hand:
// days since 1970-01-01 x 86400 + seconds of day, x 10^9, + fraction.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "common/time.h"

namespace settle {
namespace {

// 2026-11-23: 2026-01-01 is day 56 x 365 + 14 leap days (1972..2024) = 20454;
// + 326 (Jan..Oct = 304, + 22) = 20780. 18:00 = 64800 s.
// 20780 x 86400 + 64800 = 1795456800 s.
constexpr std::int64_t k20261123T1800Z = 1'795'456'800'000'000'000;
// 2026-02-28 is day 20454 + 31 + 27 = 20512; 22:30 = 81000 s.
// 20512 x 86400 + 81000 = 1772317800 s.
constexpr std::int64_t k20260228T2230Z = 1'772'317'800'000'000'000;
// 2026-03-01T00:30Z = day 20513, 1800 s: 20513 x 86400 + 1800 = 1772325000 s.
constexpr std::int64_t k20260301T0030Z = 1'772'325'000'000'000'000;

std::int64_t parse_ok(std::string_view text) {
  const Result<Timestamp> r = parse_rfc3339(text);
  EXPECT_TRUE(r.ok()) << text << ": " << r.error().to_string();
  return r.ok() ? r->ns : 0;
}

void expect_rejected(std::string_view text) {
  const Result<Timestamp> r = parse_rfc3339(text);
  ASSERT_FALSE(r.ok()) << "'" << text << "' parsed as " << r->ns;
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  // The error quotes the offending text.
  EXPECT_NE(r.error().message.find(std::string(text)), std::string::npos) << r.error().message;
}

TEST(ParseRfc3339, UtcWithUpperCaseZ) {
  EXPECT_EQ(parse_ok("2026-11-23T18:00:00Z"), k20261123T1800Z);
  EXPECT_EQ(parse_ok("1970-01-01T00:00:00Z"), 0);
}

TEST(ParseRfc3339, LowerCaseTAndZAreAccepted) {
  EXPECT_EQ(parse_ok("2026-11-23t18:00:00z"), k20261123T1800Z);
  EXPECT_EQ(parse_ok("2026-11-23T18:00:00z"), k20261123T1800Z);
  EXPECT_EQ(parse_ok("2026-11-23t18:00:00Z"), k20261123T1800Z);
}

TEST(ParseRfc3339, PositiveOffsetCrossesMidnightBackwards) {
  // 2026-03-01T00:30+02:00 is 2 h earlier in UTC: 2026-02-28T22:30Z.
  EXPECT_EQ(parse_ok("2026-03-01T00:30:00+02:00"), k20260228T2230Z);
}

TEST(ParseRfc3339, NegativeOffsetCrossesMidnightForwards) {
  // 2026-02-28T23:30-01:00 is 1 h later in UTC: 2026-03-01T00:30Z.
  EXPECT_EQ(parse_ok("2026-02-28T23:30:00-01:00"), k20260301T0030Z);
  // 2026-12-31T23:30-05:30 = 2027-01-01T05:00Z: 2027-01-01 is day 20819;
  // 20819 x 86400 + 18000 = 1798779600 s. Crosses a year, with a half-hour offset.
  EXPECT_EQ(parse_ok("2026-12-31T23:30:00-05:30"), 1'798'779'600'000'000'000);
}

TEST(ParseRfc3339, ZeroOffsetsEqualZ) {
  EXPECT_EQ(parse_ok("2026-11-23T18:00:00+00:00"), k20261123T1800Z);
  EXPECT_EQ(parse_ok("2026-11-23T18:00:00-00:00"), k20261123T1800Z);
}

TEST(ParseRfc3339, FractionOfOneToNineDigitsIsExactNanoseconds) {
  EXPECT_EQ(parse_ok("2026-11-23T18:00:00.1Z"), k20261123T1800Z + 100'000'000);
  EXPECT_EQ(parse_ok("2026-11-23T18:00:00.12Z"), k20261123T1800Z + 120'000'000);
  EXPECT_EQ(parse_ok("2026-11-23T18:00:00.123Z"), k20261123T1800Z + 123'000'000);
  EXPECT_EQ(parse_ok("2026-11-23T18:00:00.1234Z"), k20261123T1800Z + 123'400'000);
  EXPECT_EQ(parse_ok("2026-11-23T18:00:00.123456Z"), k20261123T1800Z + 123'456'000);
  EXPECT_EQ(parse_ok("2026-11-23T18:00:00.12345678Z"), k20261123T1800Z + 123'456'780);
  EXPECT_EQ(parse_ok("2026-11-23T18:00:00.123456789Z"), k20261123T1800Z + 123'456'789);
  EXPECT_EQ(parse_ok("2026-11-23T18:00:00.000000001Z"), k20261123T1800Z + 1);
  EXPECT_EQ(parse_ok("2026-11-23T18:00:00.999999999+01:00"),
            k20261123T1800Z - 3'600'000'000'000 + 999'999'999);
}

TEST(ParseRfc3339, FractionBeforeTheEpochAddsToANegativeCount) {
  // 1969-12-31T23:59:59.5Z is half a second before the epoch.
  EXPECT_EQ(parse_ok("1969-12-31T23:59:59.5Z"), -500'000'000);
  EXPECT_EQ(parse_ok("1969-12-31T23:59:59.999999999Z"), -1);
}

TEST(ParseRfc3339, TenFractionDigitsAreRejected) {
  expect_rejected("2026-11-23T18:00:00.1234567890Z");
  expect_rejected("2026-11-23T18:00:00.0000000000Z");
}

TEST(ParseRfc3339, EmptyFractionIsRejected) { expect_rejected("2026-11-23T18:00:00.Z"); }

TEST(ParseRfc3339, MissingOffsetIsRejected) {
  expect_rejected("2026-11-23T18:00:00");
  expect_rejected("2026-11-23T18:00:00.5");
  expect_rejected("2026-11-23");
}

TEST(ParseRfc3339, MalformedOffsetsAreRejected) {
  expect_rejected("2026-11-23T18:00:00+01");
  expect_rejected("2026-11-23T18:00:00+0100");
  expect_rejected("2026-11-23T18:00:00+1:00");
  expect_rejected("2026-11-23T18:00:00+24:00");
  expect_rejected("2026-11-23T18:00:00+01:60");
  expect_rejected("2026-11-23T18:00:00UTC");
}

TEST(ParseRfc3339, ImpossibleCalendarDatesAreRejected) {
  expect_rejected("2026-02-29T00:00:00Z");  // 2026 is not a leap year
  expect_rejected("2100-02-29T00:00:00Z");  // divisible by 100, not by 400
  expect_rejected("2026-13-01T00:00:00Z");
  expect_rejected("2026-00-10T00:00:00Z");
  expect_rejected("2026-04-31T00:00:00Z");
  expect_rejected("2026-04-00T00:00:00Z");
}

TEST(ParseRfc3339, LeapDayOfALeapYearIsAccepted) {
  // 2024-02-29 is day 19782: 54 x 365 + 13 leap days (1972..2020) = 19723, + 31 + 28.
  EXPECT_EQ(parse_ok("2024-02-29T00:00:00Z"), 19782LL * 86400 * 1'000'000'000);
  // 2000 is divisible by 400: a leap year.
  EXPECT_TRUE(parse_rfc3339("2000-02-29T12:00:00Z").ok());
}

TEST(ParseRfc3339, HourTwentyFourAndOutOfRangeFieldsAreRejected) {
  expect_rejected("2026-11-23T24:00:00Z");
  expect_rejected("2026-11-23T23:60:00Z");
  expect_rejected("2026-11-23T23:59:61Z");
}

TEST(ParseRfc3339, LeapSecondIsRejected) {
  const Result<Timestamp> r = parse_rfc3339("2016-12-31T23:59:60Z");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("leap"), std::string::npos) << r.error().message;
}

TEST(ParseRfc3339, TrailingGarbageIsRejected) {
  expect_rejected("2026-11-23T18:00:00Zx");
  expect_rejected("2026-11-23T18:00:00Z ");
  expect_rejected("2026-11-23T18:00:00+01:00 ");
  expect_rejected("2026-11-23T18:00:00+01:00Z");
  expect_rejected(" 2026-11-23T18:00:00Z");
}

TEST(ParseRfc3339, OtherSeparatorsAndShortFieldsAreRejected) {
  expect_rejected("2026-11-23 18:00:00Z");
  expect_rejected("2026-11-23_18:00:00Z");
  expect_rejected("2026-11-23T18:00Z");
  expect_rejected("2026-1-23T18:00:00Z");
  expect_rejected("2026/11/23T18:00:00Z");
  expect_rejected("");
}

TEST(ParseRfc3339, SupportedYearsAre1678To2261) {
  // 1678..1969 are 292 years with 70 leap days (1680..1968 step 4 is 73,
  // minus 1700, 1800, 1900): 292 x 365 + 70 = 106650 days before the epoch.
  EXPECT_EQ(parse_ok("1678-01-01T00:00:00Z"), -106650LL * 86400 * 1'000'000'000);
  // 1970..2261 are 292 years with 71 leap days (1972..2260 step 4 is 73, minus
  // 2100, 2200): 2262-01-01 is day 106651, so 2261-12-31 is day 106650.
  EXPECT_EQ(parse_ok("2261-12-31T23:59:59Z"), (106650LL * 86400 + 86399) * 1'000'000'000);
  expect_rejected("1677-12-31T23:59:59Z");
  expect_rejected("2262-01-01T00:00:00Z");
  expect_rejected("2262-04-12T00:00:00Z");  // beyond INT64_MAX ns (2262-04-11T23:47:16Z)
  expect_rejected("1677-09-21T00:00:00Z");  // before INT64_MIN ns (1677-09-21T00:12:43Z)
  expect_rejected("0000-01-01T00:00:00Z");
  expect_rejected("9999-12-31T23:59:59Z");
}

TEST(ParseRfc3339, ExtremeOffsetsAtTheEdgesOfTheRangeStayRepresentable) {
  // The written year bounds the instant: even with the largest offsets the
  // result is a day inside the range, far from the int64 limits.
  // 1678-01-01T00:00+23:59 = 1677-12-31T00:01Z = -106650 days + 60 s - 86400 s.
  EXPECT_EQ(parse_ok("1678-01-01T00:00:00+23:59"),
            (-106650LL * 86400 - 86400 + 60) * 1'000'000'000);
  // 2261-12-31T23:59:59-23:59 = 2262-01-01T23:58:59Z.
  EXPECT_EQ(parse_ok("2261-12-31T23:59:59-23:59"),
            (106651LL * 86400 + 23 * 3600 + 58 * 60 + 59) * 1'000'000'000);
}

TEST(FormatRfc3339, WholeSecondsHaveNoFraction) {
  EXPECT_EQ(format_rfc3339(Timestamp{k20261123T1800Z}), "2026-11-23T18:00:00Z");
  EXPECT_EQ(format_rfc3339(Timestamp{0}), "1970-01-01T00:00:00Z");
}

TEST(FormatRfc3339, FractionUsesThreeSixOrNineDigits) {
  EXPECT_EQ(format_rfc3339(Timestamp{k20261123T1800Z + 100'000'000}),
            "2026-11-23T18:00:00.100Z");
  EXPECT_EQ(format_rfc3339(Timestamp{k20261123T1800Z + 123'000'000}),
            "2026-11-23T18:00:00.123Z");
  EXPECT_EQ(format_rfc3339(Timestamp{k20261123T1800Z + 123'456'000}),
            "2026-11-23T18:00:00.123456Z");
  EXPECT_EQ(format_rfc3339(Timestamp{k20261123T1800Z + 123'456'789}),
            "2026-11-23T18:00:00.123456789Z");
  EXPECT_EQ(format_rfc3339(Timestamp{k20261123T1800Z + 1}), "2026-11-23T18:00:00.000000001Z");
}

TEST(FormatRfc3339, InstantsBeforeTheEpochFloorToThePreviousDay) {
  EXPECT_EQ(format_rfc3339(Timestamp{-1}), "1969-12-31T23:59:59.999999999Z");
  EXPECT_EQ(format_rfc3339(Timestamp{-500'000'000}), "1969-12-31T23:59:59.500Z");
  EXPECT_EQ(format_rfc3339(Timestamp{-86'400'000'000'000}), "1969-12-31T00:00:00Z");
}

TEST(FormatRfc3339, RoundTripsThroughParse) {
  for (const char* text :
       {"2026-11-23T18:00:00Z", "2026-02-28T22:30:00.500Z", "2024-02-29T23:59:59.999999999Z",
        "1969-12-31T23:59:59.000001Z", "1678-01-01T00:00:00Z", "2261-12-31T23:59:59.123Z"}) {
    const Result<Timestamp> ts = parse_rfc3339(text);
    ASSERT_TRUE(ts.ok()) << text;
    EXPECT_EQ(format_rfc3339(*ts), text);
  }
  // An offset form formats as its UTC equivalent.
  EXPECT_EQ(format_rfc3339(Timestamp{parse_ok("2026-03-01T00:30:00+02:00")}),
            "2026-02-28T22:30:00Z");
}

// --- dates ------------------------------------------------------------------

TEST(ParseDate, CalendarDatesAsDaysSinceTheEpoch) {
  ASSERT_TRUE(parse_date("2026-11-23").ok());
  EXPECT_EQ(parse_date("2026-11-23")->days, 20780);
  EXPECT_EQ(parse_date("1970-01-01")->days, 0);
  EXPECT_EQ(parse_date("1969-12-31")->days, -1);
  EXPECT_EQ(parse_date("2024-02-29")->days, 19782);
  EXPECT_EQ(parse_date("2027-01-01")->days, 20819);
}

TEST(ParseDate, MalformedOrImpossibleDatesAreRejected) {
  for (const char* text : {"2026-02-29", "2026-11-31", "2026-13-01", "2026-11-3", "2026/11/23",
                           "2026-11-23 ", "26-11-23", "", "2026-11-23T00:00:00Z"}) {
    const Result<Date> r = parse_date(text);
    ASSERT_FALSE(r.ok()) << "'" << text << "'";
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  }
}

TEST(FormatDate, DaysFormatAsYyyyMmDd) {
  EXPECT_EQ(format_date(Date{20780}), "2026-11-23");
  EXPECT_EQ(format_date(Date{0}), "1970-01-01");
  EXPECT_EQ(format_date(Date{-1}), "1969-12-31");
  EXPECT_EQ(format_date(Date{19782}), "2024-02-29");
}

TEST(FormatDate, DatesThatShareACacheSlotEachKeepTheirOwnText) {
  // put_date() keeps the text of recent dates in 64 slots by day number:
  // alternate dates that fall in one slot, and the negative days too.
  for (int round = 0; round < 3; ++round) {
    for (std::int32_t days : {20780, 20780 + 64, 20780 - 64 * 300, -1, 63, -65}) {
      const CivilDate c = civil_from_date(Date{days});
      char text[kDateTextLen];
      put_date(text, Date{days});
      EXPECT_EQ(std::string(text, kDateTextLen),
                fmt::format("{:04}-{:02}-{:02}", c.year, c.month, c.day)) << days;
    }
  }
}

TEST(FormatRfc3339, PutWritesTheTextInPlaceAndReturnsItsLength) {
  const std::pair<std::int64_t, std::string_view> cases[] = {
      {0, "1970-01-01T00:00:00Z"},
      {-1, "1969-12-31T23:59:59.999999999Z"},
      {1'795'392'000'123'000'000, "2026-11-23T00:00:00.123Z"},
      {1'795'392'000'000'001'000, "2026-11-23T00:00:00.000001Z"},
  };
  for (const auto& [ns, expected] : cases) {
    char text[kRfc3339TextMax + 1];
    text[kRfc3339TextMax] = '#';
    EXPECT_EQ(std::string_view(text, put_rfc3339(text, Timestamp{ns})), expected) << ns;
    EXPECT_EQ(text[kRfc3339TextMax], '#') << "wrote past kRfc3339TextMax";
  }
}

TEST(Date, PlusDaysCrossesMonthAndYearEnds) {
  // 2026-12-31 = 20818.
  EXPECT_EQ(format_date(Date{20818}.plus_days(1)), "2027-01-01");
  EXPECT_EQ(format_date(Date{20512}.plus_days(1)), "2026-03-01");  // 2026-02-28 + 1
  EXPECT_EQ(format_date(Date{20780}.plus_days(0)), "2026-11-23");
}

TEST(Date, CivilConversionsAgree) {
  EXPECT_EQ(date_from_civil(2026, 11, 23).days, 20780);
  const CivilDate c = civil_from_date(Date{19782});
  EXPECT_EQ(c.year, 2024);
  EXPECT_EQ(c.month, 2u);
  EXPECT_EQ(c.day, 29u);
}

// --- HH:MM ------------------------------------------------------------------

TEST(ParseHhMm, BoundsAreZeroToTwentyThreeFiftyNine) {
  EXPECT_EQ(*parse_hh_mm("00:00"), 0);
  EXPECT_EQ(*parse_hh_mm("00:01"), 1);
  EXPECT_EQ(*parse_hh_mm("07:05"), 425);   // 7 x 60 + 5
  EXPECT_EQ(*parse_hh_mm("18:00"), 1080);  // 18 x 60
  EXPECT_EQ(*parse_hh_mm("23:59"), 1439);  // 23 x 60 + 59
}

TEST(ParseHhMm, OutOfRangeOrMalformedIsRejected) {
  for (const char* text :
       {"24:00", "23:60", "7:00", "07:5", "0700", "07:00 ", "-1:00", "", "ab:cd", "07:00:00"}) {
    const Result<int> r = parse_hh_mm(text);
    ASSERT_FALSE(r.ok()) << "'" << text << "'";
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  }
}

TEST(FormatHhMm, PadsHoursAndMinutes) {
  EXPECT_EQ(format_hh_mm(0), "00:00");
  EXPECT_EQ(format_hh_mm(425), "07:05");
  EXPECT_EQ(format_hh_mm(1439), "23:59");
}

}  // namespace
}  // namespace settle
