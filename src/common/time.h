// Instants, civil dates and RFC 3339. An instant is a count of nanoseconds
// since 1970-01-01T00:00:00Z (UTC, no leap seconds); a Date is a count of days
// since 1970-01-01. Both are plain integers underneath: cheap to copy, compare
// and store.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace settle {

struct Timestamp {
  std::int64_t ns = 0;  // since the Unix epoch, UTC
  auto operator<=>(const Timestamp&) const = default;
};

inline constexpr std::int64_t kNsPerSecond = 1'000'000'000;
inline constexpr std::int64_t kNsPerMinute = 60 * kNsPerSecond;
inline constexpr std::int64_t kNsPerDay = 86'400 * kNsPerSecond;

struct Date {
  std::int32_t days = 0;  // since 1970-01-01
  auto operator<=>(const Date&) const = default;
  Date plus_days(std::int32_t n) const { return Date{days + n}; }
};

struct CivilDate {
  int year;
  unsigned month;  // 1..12
  unsigned day;    // 1..31
};

Date date_from_civil(int year, unsigned month, unsigned day);
CivilDate civil_from_date(Date date);

// "YYYY-MM-DD"; errors name the text and what is wrong with it.
Result<Date> parse_date(std::string_view text);
std::string format_date(Date date);
// The same text written at `out` (kDateTextLen characters), for hot paths that
// must not allocate. Asserts a four-digit year, as format_date() does.
inline constexpr std::size_t kDateTextLen = 10;
void put_date(char* out, Date date);

// RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM). The
// fraction has 1 to 9 digits; 'T' and 'Z' may be lower case. Leap seconds
// (:60) and years outside 1678-2261 are errors: the range keeps every instant,
// and every local time derived from it, inside int64 nanoseconds.
Result<Timestamp> parse_rfc3339(std::string_view text);
// UTC, with as many fraction digits as needed (none, 3, 6 or 9) and 'Z'.
std::string format_rfc3339(Timestamp ts);
// The same text written at `out` (at most kRfc3339TextMax characters); returns
// its length.
inline constexpr std::size_t kRfc3339TextMax = 30;  // "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ"
std::size_t put_rfc3339(char* out, Timestamp ts);

// "HH:MM", 00:00..23:59, as minutes after midnight.
Result<int> parse_hh_mm(std::string_view text);
std::string format_hh_mm(int minutes);

}  // namespace settle
