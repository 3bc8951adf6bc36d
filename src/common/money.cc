#include "common/money.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>

namespace settle {
namespace {

struct CurrencyRow {
  const char* code;
  int exponent;
};

// ISO 4217 active alphabetic codes with a defined minor unit (List One),
// sorted by code. Codes whose minor unit is "N.A." (precious metals, SDR,
// testing, no-currency) are not money in minor units and are left out.
constexpr auto kCurrencies = std::to_array<CurrencyRow>({
    {"AED", 2}, {"AFN", 2}, {"ALL", 2}, {"AMD", 2}, {"ANG", 2}, {"AOA", 2}, {"ARS", 2},
    {"AUD", 2}, {"AWG", 2}, {"AZN", 2}, {"BAM", 2}, {"BBD", 2}, {"BDT", 2}, {"BGN", 2},
    {"BHD", 3}, {"BIF", 0}, {"BMD", 2}, {"BND", 2}, {"BOB", 2}, {"BOV", 2}, {"BRL", 2},
    {"BSD", 2}, {"BTN", 2}, {"BWP", 2}, {"BYN", 2}, {"BZD", 2}, {"CAD", 2}, {"CDF", 2},
    {"CHE", 2}, {"CHF", 2}, {"CHW", 2}, {"CLF", 4}, {"CLP", 0}, {"CNY", 2}, {"COP", 2},
    {"COU", 2}, {"CRC", 2}, {"CUC", 2}, {"CUP", 2}, {"CVE", 2}, {"CZK", 2}, {"DJF", 0},
    {"DKK", 2}, {"DOP", 2}, {"DZD", 2}, {"EGP", 2}, {"ERN", 2}, {"ETB", 2}, {"EUR", 2},
    {"FJD", 2}, {"FKP", 2}, {"GBP", 2}, {"GEL", 2}, {"GHS", 2}, {"GIP", 2}, {"GMD", 2},
    {"GNF", 0}, {"GTQ", 2}, {"GYD", 2}, {"HKD", 2}, {"HNL", 2}, {"HTG", 2}, {"HUF", 2},
    {"IDR", 2}, {"ILS", 2}, {"INR", 2}, {"IQD", 3}, {"IRR", 2}, {"ISK", 0}, {"JMD", 2},
    {"JOD", 3}, {"JPY", 0}, {"KES", 2}, {"KGS", 2}, {"KHR", 2}, {"KMF", 0}, {"KPW", 2},
    {"KRW", 0}, {"KWD", 3}, {"KYD", 2}, {"KZT", 2}, {"LAK", 2}, {"LBP", 2}, {"LKR", 2},
    {"LRD", 2}, {"LSL", 2}, {"LYD", 3}, {"MAD", 2}, {"MDL", 2}, {"MGA", 2}, {"MKD", 2},
    {"MMK", 2}, {"MNT", 2}, {"MOP", 2}, {"MRU", 2}, {"MUR", 2}, {"MVR", 2}, {"MWK", 2},
    {"MXN", 2}, {"MXV", 2}, {"MYR", 2}, {"MZN", 2}, {"NAD", 2}, {"NGN", 2}, {"NIO", 2},
    {"NOK", 2}, {"NPR", 2}, {"NZD", 2}, {"OMR", 3}, {"PAB", 2}, {"PEN", 2}, {"PGK", 2},
    {"PHP", 2}, {"PKR", 2}, {"PLN", 2}, {"PYG", 0}, {"QAR", 2}, {"RON", 2}, {"RSD", 2},
    {"RUB", 2}, {"RWF", 0}, {"SAR", 2}, {"SBD", 2}, {"SCR", 2}, {"SDG", 2}, {"SEK", 2},
    {"SGD", 2}, {"SHP", 2}, {"SLE", 2}, {"SLL", 2}, {"SOS", 2}, {"SRD", 2}, {"SSP", 2},
    {"STN", 2}, {"SVC", 2}, {"SYP", 2}, {"SZL", 2}, {"THB", 2}, {"TJS", 2}, {"TMT", 2},
    {"TND", 3}, {"TOP", 2}, {"TRY", 2}, {"TTD", 2}, {"TWD", 2}, {"TZS", 2}, {"UAH", 2},
    {"UGX", 0}, {"USD", 2}, {"USN", 2}, {"UYI", 0}, {"UYU", 2}, {"UYW", 4}, {"UZS", 2},
    {"VED", 2}, {"VES", 2}, {"VND", 0}, {"VUV", 0}, {"WST", 2}, {"XAF", 0}, {"XCD", 2},
    {"XCG", 2}, {"XOF", 0}, {"XPF", 0}, {"YER", 2}, {"ZAR", 2}, {"ZMW", 2}, {"ZWG", 2},
});

constexpr bool sorted_by_code() {
  for (std::size_t i = 1; i < kCurrencies.size(); ++i) {
    if (!(std::string_view(kCurrencies[i - 1].code) < std::string_view(kCurrencies[i].code))) {
      return false;
    }
  }
  return true;
}
static_assert(sorted_by_code(), "kCurrencies must be sorted and unique for binary search");

constexpr bool three_letters() {
  for (const CurrencyRow& row : kCurrencies) {
    if (std::string_view(row.code).size() != 3) return false;
  }
  return true;
}
static_assert(three_letters(), "every code has three letters (find_currency compares three)");

// A three-letter code as one integer, first letter highest: integers compare
// as the codes do, so the search compares integers instead of strings (an
// event's currency is looked up on every path it takes).
constexpr std::uint32_t packed(const char* code) {
  return (std::uint32_t{static_cast<unsigned char>(code[0])} << 16) |
         (std::uint32_t{static_cast<unsigned char>(code[1])} << 8) | std::uint32_t{static_cast<unsigned char>(code[2])};
}

constexpr auto kPackedCodes = [] {
  std::array<std::uint32_t, kCurrencies.size()> out{};
  for (std::size_t i = 0; i < kCurrencies.size(); ++i) out[i] = packed(kCurrencies[i].code);
  return out;
}();

}  // namespace

Result<Currency> find_currency(std::string_view code) {
  if (code.size() == 3) {
    const std::uint32_t key = packed(code.data());
    const auto* it = std::lower_bound(kPackedCodes.begin(), kPackedCodes.end(), key);
    if (it != kPackedCodes.end() && *it == key) {
      const CurrencyRow& row = kCurrencies[static_cast<std::size_t>(it - kPackedCodes.begin())];
      return Currency(row.code, row.exponent);
    }
  }
  return make_error(ErrorCode::kInvalidArgument,
                    "unknown currency '" + std::string(code) + "' (not an active ISO 4217 code)");
}

std::size_t currency_count() { return kCurrencies.size(); }

Currency currency_at(std::size_t index) {
  SETTLE_ASSERT(index < kCurrencies.size(), "currency index out of range");
  return Currency(kCurrencies[index].code, kCurrencies[index].exponent);
}

__int128 div_round_half_even(__int128 numerator, __int128 denominator) {
  SETTLE_ASSERT(denominator > 0, "denominator must be positive");
  __int128 q = numerator / denominator;
  __int128 r = numerator % denominator;
  if (r < 0) {  // make q the floor and 0 <= r < denominator
    q -= 1;
    r += denominator;
  }
  const __int128 twice = 2 * r;
  if (twice > denominator || (twice == denominator && (q & 1) != 0)) q += 1;
  return q;
}

namespace {
constexpr __int128 kMin = std::numeric_limits<Minor>::min();
constexpr __int128 kMax = std::numeric_limits<Minor>::max();

Result<Minor> narrow(__int128 v, const char* what) {
  if (v < kMin || v > kMax) {
    return make_error(ErrorCode::kOverflow, std::string(what) + " overflows a 64-bit amount");
  }
  return static_cast<Minor>(v);
}
}  // namespace

Result<Minor> apply_bps(Minor amount, std::int64_t bps) {
  const __int128 product = static_cast<__int128>(amount) * bps;
  return narrow(div_round_half_even(product, 10000), "amount x bps / 10000");
}

Result<Minor> checked_add(Minor a, Minor b) {
  return narrow(static_cast<__int128>(a) + b, "sum");
}

Result<Minor> checked_sub(Minor a, Minor b) {
  return narrow(static_cast<__int128>(a) - b, "difference");
}

std::string format_minor(Minor amount, int exponent) {
  const bool negative = amount < 0;
  // Work on the magnitude as unsigned so INT64_MIN formats correctly.
  unsigned __int128 mag = negative ? static_cast<unsigned __int128>(-static_cast<__int128>(amount))
                                   : static_cast<unsigned __int128>(amount);
  std::string digits;
  do {
    digits.push_back(static_cast<char>('0' + static_cast<int>(mag % 10)));
    mag /= 10;
  } while (mag != 0);
  while (static_cast<int>(digits.size()) <= exponent) digits.push_back('0');
  std::string out = negative ? "-" : "";
  for (int i = static_cast<int>(digits.size()) - 1; i >= 0; --i) {
    out.push_back(digits[static_cast<std::size_t>(i)]);
    if (i == exponent && exponent > 0) out.push_back('.');
  }
  return out;
}

}  // namespace settle
