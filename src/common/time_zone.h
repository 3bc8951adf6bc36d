// IANA time zones from the system's tz database (/usr/share/zoneinfo), through
// Howard Hinnant's date library. A TimeZone is a cheap handle to an immutable,
// process-wide zone; lookups are thread safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"
#include "common/time.h"

namespace date {
class time_zone;
}

namespace settle {

struct LocalDateTime {
  Date date;
  std::int64_t ns_of_day;  // 0 .. 86'400e9 - 1
};

class TimeZone {
 public:
  // An IANA name such as "Europe/Berlin" or "UTC"; unknown names are
  // kInvalidArgument.
  static Result<TimeZone> locate(std::string_view name);
  static TimeZone utc();

  std::string_view name() const;
  LocalDateTime to_local(Timestamp ts) const;

  // The instant at which the local wall clock of `date` first reads
  // `minute_of_day` or later, taking the later occurrence when the local time
  // happens twice (the clocks went back) and the end of the gap when it does
  // not happen (the clocks went forward). Every instant whose local time is on
  // `date` and before `minute_of_day` is earlier than this.
  Timestamp local_end(Date date, int minute_of_day) const;

  friend bool operator==(const TimeZone& a, const TimeZone& b) { return a.zone_ == b.zone_; }

 private:
  explicit TimeZone(const date::time_zone* zone) : zone_(zone) {}
  const date::time_zone* zone_;
};

}  // namespace settle
