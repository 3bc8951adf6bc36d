// Money: signed 64-bit counts of minor units; ISO 4217 currencies; exact
// basis-point arithmetic with 128-bit intermediates and half-to-even rounding.
// Nothing here is floating point. Overflow of an int64 result is an error.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace settle {

using Minor = std::int64_t;  // an amount in minor units of its currency

// An active ISO 4217 currency: its alphabetic code and its exponent (minor unit
// digits). Instances come only from find_currency(); copying is cheap.
class Currency {
 public:
  std::string_view code() const { return code_; }
  int exponent() const { return exponent_; }
  friend bool operator==(const Currency& a, const Currency& b) { return a.code() == b.code(); }

 private:
  friend Result<Currency> find_currency(std::string_view code);
  friend Currency currency_at(std::size_t index);
  Currency(const char* code, int exponent) : code_(code), exponent_(exponent) {}
  const char* code_;
  int exponent_;
};

// Looks up an active ISO 4217 alphabetic code (exact, upper case). An unknown
// code is kInvalidArgument; there is no default currency.
Result<Currency> find_currency(std::string_view code);
std::size_t currency_count();
Currency currency_at(std::size_t index);

// round_half_even(numerator / denominator), denominator > 0, computed exactly.
__int128 div_round_half_even(__int128 numerator, __int128 denominator);

// round_half_even(amount × bps / 10000) with a 128-bit product; kOverflow when
// the result does not fit in int64.
Result<Minor> apply_bps(Minor amount, std::int64_t bps);

// Checked int64 arithmetic: kOverflow instead of wrapping.
Result<Minor> checked_add(Minor a, Minor b);
Result<Minor> checked_sub(Minor a, Minor b);

// Formats minor units as a decimal string with the currency's exponent:
// (123456, 2) -> "1234.56"; (-5, 3) -> "-0.005"; (700, 0) -> "700".
std::string format_minor(Minor amount, int exponent);

}  // namespace settle
