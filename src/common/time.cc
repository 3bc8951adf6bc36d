#include "common/time.h"

#include <date/date.h>

#include <array>
#include <cstdio>
#include <cstring>

#include "common/assert.h"

namespace settle {
namespace {

// Writes `value` as exactly `width` decimal digits, zero-padded.
void put_digits(char* out, int width, unsigned value) {
  for (int i = width - 1; i >= 0; --i) {
    out[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
}

bool digits(std::string_view s, std::size_t pos, std::size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    const char c = s[i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

constexpr int kYearMin = 1678;
constexpr int kYearMax = 2261;

Error bad_timestamp(std::string_view text, const std::string& why) {
  return make_error(ErrorCode::kInvalidArgument,
                    "'" + std::string(text) + "' is not an RFC 3339 timestamp: " + why);
}

bool valid_civil(int y, int m, int d) {
  if (m < 1 || m > 12 || d < 1) return false;
  const date::year_month_day ymd{date::year{y}, date::month{static_cast<unsigned>(m)},
                                 date::day{static_cast<unsigned>(d)}};
  return ymd.ok();
}

}  // namespace

Date date_from_civil(int year, unsigned month, unsigned day) {
  const date::sys_days d = date::year{year} / date::month{month} / date::day{day};
  return Date{static_cast<std::int32_t>(d.time_since_epoch().count())};
}

CivilDate civil_from_date(Date d) {
  const date::year_month_day ymd{date::sys_days{date::days{d.days}}};
  return CivilDate{static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                   static_cast<unsigned>(ymd.day())};
}

Result<Date> parse_date(std::string_view text) {
  int y = 0, m = 0, d = 0;
  if (text.size() != 10 || !digits(text, 0, 4, &y) || text[4] != '-' || !digits(text, 5, 2, &m) ||
      text[7] != '-' || !digits(text, 8, 2, &d)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "'" + std::string(text) + "' is not a date of the form YYYY-MM-DD");
  }
  if (!valid_civil(y, m, d)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "'" + std::string(text) + "' is not a calendar date");
  }
  return date_from_civil(y, static_cast<unsigned>(m), static_cast<unsigned>(d));
}

void put_date(char* out, Date date) {
  // Callers format a few dozen distinct dates many times over (three per
  // ledger row, one per event's canonical form): the text of the latest date
  // per slot is kept, which spares the calendar arithmetic.
  struct Slot {
    bool set = false;
    std::int32_t days = 0;
    char text[kDateTextLen];
  };
  thread_local std::array<Slot, 64> recent;
  Slot& slot = recent[static_cast<std::uint32_t>(date.days) % recent.size()];
  if (!slot.set || slot.days != date.days) {
    const CivilDate c = civil_from_date(date);
    // Years are 1678..2261 for instants we parse; dates from plus_days() stay
    // four-digit in any realistic use, and are asserted so.
    SETTLE_ASSERT(c.year >= 0 && c.year <= 9999, "date outside years 0000-9999");
    put_digits(slot.text, 4, static_cast<unsigned>(c.year));
    slot.text[4] = '-';
    put_digits(slot.text + 5, 2, c.month);
    slot.text[7] = '-';
    put_digits(slot.text + 8, 2, c.day);
    slot.set = true;
    slot.days = date.days;
  }
  std::memcpy(out, slot.text, kDateTextLen);
}

std::string format_date(Date date) {
  char buf[kDateTextLen];
  put_date(buf, date);
  return std::string(buf, sizeof buf);
}

Result<Timestamp> parse_rfc3339(std::string_view s) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (!digits(s, 0, 4, &y) || s.size() < 20 || s[4] != '-' || !digits(s, 5, 2, &mo) ||
      s[7] != '-' || !digits(s, 8, 2, &d) || (s[10] != 'T' && s[10] != 't') ||
      !digits(s, 11, 2, &h) || s[13] != ':' || !digits(s, 14, 2, &mi) || s[16] != ':' ||
      !digits(s, 17, 2, &sec)) {
    return bad_timestamp(s, "expected YYYY-MM-DDTHH:MM:SS followed by Z or an offset");
  }
  // The written year bounds the instant: with any offset (< 1 day) it stays
  // about 100 days inside the int64 nanosecond range (1677-09-21..2262-04-11),
  // so adding a zone's offset to it later (to_local) cannot overflow.
  if (y < kYearMin || y > kYearMax) {
    return bad_timestamp(s, "outside the supported range of years 1678-2261");
  }
  if (!valid_civil(y, mo, d)) return bad_timestamp(s, "no such calendar date");
  if (h > 23 || mi > 59) return bad_timestamp(s, "time of day out of range");
  if (sec == 60) return bad_timestamp(s, "leap seconds are not supported");
  if (sec > 59) return bad_timestamp(s, "seconds out of range");

  std::size_t pos = 19;
  std::int64_t frac_ns = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    std::size_t n = 0;
    std::int64_t scale = 100'000'000;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (++n > 9) return bad_timestamp(s, "fraction finer than nanoseconds");
      frac_ns += (s[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (n == 0) return bad_timestamp(s, "empty fraction after '.'");
  }
  if (pos >= s.size()) return bad_timestamp(s, "missing Z or offset");
  std::int64_t offset_minutes = 0;
  if (s[pos] == 'Z' || s[pos] == 'z') {
    ++pos;
  } else if (s[pos] == '+' || s[pos] == '-') {
    int oh = 0, om = 0;
    if (!digits(s, pos + 1, 2, &oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !digits(s, pos + 4, 2, &om)) {
      return bad_timestamp(s, "offset must be +HH:MM or -HH:MM");
    }
    if (oh > 23 || om > 59) return bad_timestamp(s, "offset out of range");
    offset_minutes = (s[pos] == '-' ? -1 : 1) * (oh * 60 + om);
    pos += 6;
  } else {
    return bad_timestamp(s, "expected Z or an offset after the time");
  }
  if (pos != s.size()) return bad_timestamp(s, "unexpected text after the offset");

  // Years 1678..2261 (checked above) fit int64 nanoseconds with any offset.
  const std::int64_t days = date_from_civil(y, static_cast<unsigned>(mo),
                                            static_cast<unsigned>(d)).days;
  const std::int64_t seconds = days * 86400 + h * 3600 + mi * 60 + sec - offset_minutes * 60;
  return Timestamp{seconds * kNsPerSecond + frac_ns};
}

std::size_t put_rfc3339(char* out, Timestamp ts) {
  std::int64_t days = ts.ns / kNsPerDay;
  std::int64_t rem = ts.ns % kNsPerDay;
  if (rem < 0) {
    rem += kNsPerDay;
    days -= 1;
  }
  // Hand-formatted: this runs once per event on the hot paths, where
  // snprintf's format parsing and a string per call showed up in profiles.
  put_date(out, Date{static_cast<std::int32_t>(days)});
  const auto secs = static_cast<unsigned>(rem / kNsPerSecond);
  const auto frac = static_cast<unsigned>(rem % kNsPerSecond);
  out[10] = 'T';
  put_digits(out + 11, 2, secs / 3600);
  out[13] = ':';
  put_digits(out + 14, 2, secs / 60 % 60);
  out[16] = ':';
  put_digits(out + 17, 2, secs % 60);
  std::size_t n = 19;
  if (frac != 0) {
    out[n++] = '.';
    if (frac % 1'000'000 == 0) {
      put_digits(out + n, 3, frac / 1'000'000);
      n += 3;
    } else if (frac % 1000 == 0) {
      put_digits(out + n, 6, frac / 1000);
      n += 6;
    } else {
      put_digits(out + n, 9, frac);
      n += 9;
    }
  }
  out[n++] = 'Z';
  return n;
}

std::string format_rfc3339(Timestamp ts) {
  char buf[kRfc3339TextMax];
  return std::string(buf, put_rfc3339(buf, ts));
}

Result<int> parse_hh_mm(std::string_view text) {
  int h = 0, m = 0;
  if (text.size() != 5 || !digits(text, 0, 2, &h) || text[2] != ':' || !digits(text, 3, 2, &m) ||
      h > 23 || m > 59) {
    return make_error(ErrorCode::kInvalidArgument,
                      "'" + std::string(text) + "' is not a time of day HH:MM (00:00-23:59)");
  }
  return h * 60 + m;
}

std::string format_hh_mm(int minutes) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%02d:%02d", minutes / 60, minutes % 60);
  return buf;
}

}  // namespace settle
