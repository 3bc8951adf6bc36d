#include "common/time_zone.h"

#include <date/tz.h>

#include <exception>

namespace settle {

Result<TimeZone> TimeZone::locate(std::string_view name) {
  try {
    return TimeZone(date::locate_zone(name));
  } catch (const std::exception&) {
    return make_error(ErrorCode::kInvalidArgument,
                      "unknown time zone '" + std::string(name) + "' (not in the IANA tz database)");
  }
}

TimeZone TimeZone::utc() {
  static const TimeZone kUtc(date::locate_zone("UTC"));
  return kUtc;
}

std::string_view TimeZone::name() const { return zone_->name(); }

LocalDateTime TimeZone::to_local(Timestamp ts) const {
  using namespace std::chrono;
  const date::sys_time<nanoseconds> sys{nanoseconds{ts.ns}};
  const date::sys_info info = zone_->get_info(date::floor<seconds>(sys));
  const std::int64_t local_ns = ts.ns + duration_cast<nanoseconds>(info.offset).count();
  std::int64_t days = local_ns / kNsPerDay;
  std::int64_t rem = local_ns % kNsPerDay;
  if (rem < 0) {
    rem += kNsPerDay;
    days -= 1;
  }
  return LocalDateTime{Date{static_cast<std::int32_t>(days)}, rem};
}

Timestamp TimeZone::local_end(Date day, int minute_of_day) const {
  using namespace std::chrono;
  const date::local_seconds local{seconds{static_cast<std::int64_t>(day.days) * 86400 +
                                          static_cast<std::int64_t>(minute_of_day) * 60}};
  const date::local_info info = zone_->get_info(local);
  seconds utc{};
  switch (info.result) {
    case date::local_info::unique:
      utc = local.time_since_epoch() - info.first.offset;
      break;
    case date::local_info::ambiguous:
      // The local time happens twice; the second occurrence (with the second
      // offset) is the later instant.
      utc = local.time_since_epoch() - info.second.offset;
      break;
    case date::local_info::nonexistent:
      // Skipped by a forward jump: the first instant after the gap.
      utc = info.second.begin.time_since_epoch();
      break;
  }
  return Timestamp{duration_cast<nanoseconds>(utc).count()};
}

}  // namespace settle
