// SETTLEMENT_RULES §1: minor units, ISO 4217 exponents, 128-bit basis-point
// products, half-to-even rounding, overflow as an error. Every expectation is
// worked out by hand in the comment next to it.
#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <limits>
#include <set>
#include <string>

#include "common/money.h"

namespace settle {
namespace {

constexpr Minor kMax = std::numeric_limits<Minor>::max();  //  9223372036854775807
constexpr Minor kMin = std::numeric_limits<Minor>::min();  // -9223372036854775808

Minor bps_ok(Minor amount, std::int64_t bps) {
  const Result<Minor> r = apply_bps(amount, bps);
  EXPECT_TRUE(r.ok()) << amount << " x " << bps << ": " << r.error().to_string();
  return r.ok() ? *r : 0;
}

// --- half-to-even at exact halves ---------------------------------------

TEST(ApplyBps, ExactHalfRoundsDownToEven) {
  EXPECT_EQ(bps_ok(100, 250), 2);    // 100 x 250 / 10000 = 2.5 -> 2 (even)
  EXPECT_EQ(bps_ok(500, 250), 12);   // 12.5 -> 12
  EXPECT_EQ(bps_ok(1, 5000), 0);     // 0.5 -> 0
  EXPECT_EQ(bps_ok(5, 5000), 2);     // 2.5 -> 2
}

TEST(ApplyBps, ExactHalfRoundsUpToEven) {
  EXPECT_EQ(bps_ok(300, 250), 8);    // 300 x 250 / 10000 = 7.5 -> 8 (even)
  EXPECT_EQ(bps_ok(3, 5000), 2);     // 1.5 -> 2
  EXPECT_EQ(bps_ok(700, 250), 18);   // 17.5 -> 18
}

TEST(ApplyBps, NegativeExactHalvesRoundToEven) {
  EXPECT_EQ(bps_ok(-100, 250), -2);  // -2.5 -> -2 (not -3: no rounding away from zero)
  EXPECT_EQ(bps_ok(-300, 250), -8);  // -7.5 -> -8 (not -7: no rounding toward +inf)
  EXPECT_EQ(bps_ok(-1, 5000), 0);    // -0.5 -> 0
  EXPECT_EQ(bps_ok(-3, 5000), -2);   // -1.5 -> -2
}

TEST(ApplyBps, NonHalvesRoundToNearest) {
  EXPECT_EQ(bps_ok(101, 250), 3);    // 2.525 -> 3 (above the half)
  EXPECT_EQ(bps_ok(99, 250), 2);     // 2.475 -> 2 (below the half)
  EXPECT_EQ(bps_ok(1, 4999), 0);     // 0.4999 -> 0
  EXPECT_EQ(bps_ok(1, 5001), 1);     // 0.5001 -> 1
  EXPECT_EQ(bps_ok(-1, 5001), -1);   // -0.5001 -> -1
  EXPECT_EQ(bps_ok(-1, 4999), 0);    // -0.4999 -> 0
  EXPECT_EQ(bps_ok(1999, 290), 58);  // 579710 / 10000 = 57.971 -> 58
  EXPECT_EQ(bps_ok(-1999, 290), -58);
}

TEST(ApplyBps, ExactQuotientsAndZero) {
  EXPECT_EQ(bps_ok(10000, 290), 290);  // 10000 x 290 / 10000
  EXPECT_EQ(bps_ok(12345, 10000), 12345);
  EXPECT_EQ(bps_ok(12345, 0), 0);
  EXPECT_EQ(bps_ok(0, 9999), 0);
}

// --- 128-bit intermediates ----------------------------------------------------

TEST(ApplyBps, Int64MaxTimesTenThousandIsExact) {
  // INT64_MAX x 10000 ~ 9.2e22 overflows int64, but the quotient is INT64_MAX.
  EXPECT_EQ(bps_ok(kMax, 10000), kMax);
  EXPECT_EQ(bps_ok(kMin, 10000), kMin);
}

TEST(ApplyBps, ProductBeyondInt64ThatDividesBackIntoRangeIsFine) {
  // 10^15 x 10000 = 10^19 > INT64_MAX (~9.22e18); / 10000 = 10^15.
  EXPECT_EQ(bps_ok(1'000'000'000'000'000, 10000), 1'000'000'000'000'000);
  // 9223372036854775807 x 9999 / 10000
  //   = 9223372036854775807 - 922337203685477.5807 = 9222449699651090329.4193 -> ...329
  EXPECT_EQ(bps_ok(kMax, 9999), 9222449699651090329);
  // -9223372036854775808 x 9999 / 10000 = -9222449699651090330.4192 -> ...330
  EXPECT_EQ(bps_ok(kMin, 9999), -9222449699651090330);
  // 9223372036854775807 / 2 = 4611686018427387903.5, an exact half: the odd
  // ...903 rounds up to the even ...904.
  EXPECT_EQ(bps_ok(kMax, 5000), 4611686018427387904);
}

TEST(ApplyBps, ResultOutOfRangeIsOverflowNotWrap) {
  // INT64_MAX x 10001 / 10000 = INT64_MAX + 922337203685477.5807: beyond int64.
  const Result<Minor> up = apply_bps(kMax, 10001);
  ASSERT_FALSE(up.ok());
  EXPECT_EQ(up.error().code, ErrorCode::kOverflow);
  const Result<Minor> down = apply_bps(kMin, 10001);
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.error().code, ErrorCode::kOverflow);
  const Result<Minor> big_bps = apply_bps(kMax / 2, 30000);  // ~1.38e19
  ASSERT_FALSE(big_bps.ok());
  EXPECT_EQ(big_bps.error().code, ErrorCode::kOverflow);
}

TEST(DivRoundHalfEven, FloorsNegativeRemaindersBeforeRounding) {
  EXPECT_EQ(static_cast<std::int64_t>(div_round_half_even(-25, 10)), -2);  // -2.5
  EXPECT_EQ(static_cast<std::int64_t>(div_round_half_even(-35, 10)), -4);  // -3.5
  EXPECT_EQ(static_cast<std::int64_t>(div_round_half_even(-26, 10)), -3);  // -2.6
  EXPECT_EQ(static_cast<std::int64_t>(div_round_half_even(-24, 10)), -2);  // -2.4
  EXPECT_EQ(static_cast<std::int64_t>(div_round_half_even(7, 7)), 1);
  EXPECT_EQ(static_cast<std::int64_t>(div_round_half_even(0, 3)), 0);
}

// --- checked arithmetic -------------------------------------------------------

TEST(CheckedAdd, OverflowAtTheInt64LimitsIsAnError) {
  ASSERT_TRUE(checked_add(kMax, 0).ok());
  EXPECT_EQ(*checked_add(kMax - 1, 1), kMax);
  EXPECT_EQ(*checked_add(kMax, kMin), -1);
  const Result<Minor> over = checked_add(kMax, 1);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code, ErrorCode::kOverflow);
  const Result<Minor> under = checked_add(kMin, -1);
  ASSERT_FALSE(under.ok());
  EXPECT_EQ(under.error().code, ErrorCode::kOverflow);
  EXPECT_EQ(*checked_add(kMin + 1, -1), kMin);
}

TEST(CheckedSub, OverflowAtTheInt64LimitsIsAnError) {
  EXPECT_EQ(*checked_sub(kMin + 1, 1), kMin);
  EXPECT_EQ(*checked_sub(-1, kMin), kMax);  // -1 + 2^63 = 2^63 - 1
  const Result<Minor> under = checked_sub(kMin, 1);
  ASSERT_FALSE(under.ok());
  EXPECT_EQ(under.error().code, ErrorCode::kOverflow);
  const Result<Minor> negate_min = checked_sub(0, kMin);  // 2^63 does not fit
  ASSERT_FALSE(negate_min.ok());
  EXPECT_EQ(negate_min.error().code, ErrorCode::kOverflow);
  const Result<Minor> over = checked_sub(kMax, -1);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code, ErrorCode::kOverflow);
}

// --- formatting ---------------------------------------------------------------

TEST(FormatMinor, ExponentZeroHasNoDecimalPoint) {
  EXPECT_EQ(format_minor(700, 0), "700");
  EXPECT_EQ(format_minor(0, 0), "0");
  EXPECT_EQ(format_minor(-1234, 0), "-1234");
}

TEST(FormatMinor, ExponentTwoPadsLeadingZeros) {
  EXPECT_EQ(format_minor(123456, 2), "1234.56");
  EXPECT_EQ(format_minor(5, 2), "0.05");
  EXPECT_EQ(format_minor(50, 2), "0.50");
  EXPECT_EQ(format_minor(100, 2), "1.00");
  EXPECT_EQ(format_minor(0, 2), "0.00");
  EXPECT_EQ(format_minor(-5, 2), "-0.05");
  EXPECT_EQ(format_minor(-100, 2), "-1.00");
}

TEST(FormatMinor, ExponentThreeAndFour) {
  EXPECT_EQ(format_minor(-5, 3), "-0.005");
  EXPECT_EQ(format_minor(1234567, 3), "1234.567");
  EXPECT_EQ(format_minor(1000, 3), "1.000");
  EXPECT_EQ(format_minor(12345, 4), "1.2345");
  EXPECT_EQ(format_minor(1, 4), "0.0001");
  EXPECT_EQ(format_minor(-10000, 4), "-1.0000");
}

TEST(FormatMinor, Int64LimitsFormatWithoutOverflow) {
  EXPECT_EQ(format_minor(kMin, 0), "-9223372036854775808");
  EXPECT_EQ(format_minor(kMin, 2), "-92233720368547758.08");
  EXPECT_EQ(format_minor(kMax, 3), "9223372036854775.807");
}

// --- the ISO 4217 table -------------------------------------------------------

int exponent_of(std::string_view code) {
  const Result<Currency> c = find_currency(code);
  EXPECT_TRUE(c.ok()) << code;
  return c.ok() ? c->exponent() : -1;
}

TEST(Currency, ZeroDecimalCurrencies) {
  EXPECT_EQ(exponent_of("JPY"), 0);
  EXPECT_EQ(exponent_of("KRW"), 0);
}

TEST(Currency, ThreeDecimalCurrencies) {
  for (const char* code : {"BHD", "JOD", "KWD", "OMR", "TND"}) {
    EXPECT_EQ(exponent_of(code), 3) << code;
  }
}

TEST(Currency, TwoAndFourDecimalCurrencies) {
  EXPECT_EQ(exponent_of("USD"), 2);
  EXPECT_EQ(exponent_of("EUR"), 2);
  EXPECT_EQ(exponent_of("GBP"), 2);
  EXPECT_EQ(exponent_of("CLF"), 4);
}

TEST(Currency, FoundCurrencyCarriesItsCode) {
  const Result<Currency> c = find_currency("KWD");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->code(), "KWD");
}

TEST(Currency, UnknownCodeIsInvalidArgumentNotADefault) {
  for (const char* code : {"XXX", "usd", "US", "", "USDX", "ZZZ", "XAU"}) {
    const Result<Currency> c = find_currency(code);
    ASSERT_FALSE(c.ok()) << "'" << code << "'";
    EXPECT_EQ(c.error().code, ErrorCode::kInvalidArgument);
  }
}

TEST(Currency, ThreeBytesThatAreNotACodeAreUnknownWhateverTheirValues) {
  // The lookup compares the three bytes packed into one integer: bytes above
  // 0x7F, a NUL, and neighbours of real codes must not land on a real row.
  for (const std::string& code : {std::string("EU\0", 3), std::string("\xC3\x89U"), std::string("EUQ"),
                                 std::string("EUS"), std::string("\xFF\xFF\xFF"), std::string("AAA"),
                                 std::string("ZZZ"), std::string("AED\0", 4)}) {
    EXPECT_FALSE(find_currency(code).ok()) << code;
  }
  EXPECT_TRUE(find_currency("AED").ok());  // the first row
  EXPECT_TRUE(find_currency("ZWG").ok());  // the last row
}

TEST(Currency, UnknownCodeErrorNamesTheCode) {
  const Result<Currency> c = find_currency("ABC");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("ABC"), std::string::npos) << c.error().message;
}

TEST(Currency, TableHasNoDuplicatesAndOnlyThreeUpperCaseLetters) {
  ASSERT_GT(currency_count(), 150u);  // ISO 4217 List One has ~155 priced codes
  std::set<std::string> seen;
  for (std::size_t i = 0; i < currency_count(); ++i) {
    const Currency c = currency_at(i);
    const std::string code(c.code());
    ASSERT_EQ(code.size(), 3u) << code;
    for (char ch : code) EXPECT_TRUE(ch >= 'A' && ch <= 'Z') << code;
    EXPECT_TRUE(seen.insert(code).second) << "duplicate " << code;
    EXPECT_TRUE(c.exponent() >= 0 && c.exponent() <= 4) << code;
    // Every row is reachable through the lookup, with the same exponent.
    const Result<Currency> found = find_currency(code);
    ASSERT_TRUE(found.ok()) << code;
    EXPECT_EQ(found->exponent(), c.exponent()) << code;
  }
}

}  // namespace
}  // namespace settle
