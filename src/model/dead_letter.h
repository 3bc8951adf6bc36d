// A record no role could handle, as published on the `dead-letters` topic:
// where it was read from (topic, partition, offset), why it could not be
// handled, and the record itself. `settled verify` counts an event that was
// dead-lettered at every offset it was read from as accounted for.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace settle::model {

struct DeadLetter {
  std::string source_topic;  // "events"
  std::int32_t source_partition = 0;
  std::int64_t source_offset = 0;
  std::string merchant_id;   // the record's key, or the event's merchant when readable
  std::string event_id;      // "" when the record could not be read as an event
  std::string reason;        // "field 'amount': must be > 0", "unknown merchant 'm9' after 60000 ms"
  std::string value;         // the record's value, as read
  std::int64_t at_ms = 0;    // when it was dead-lettered
  bool operator==(const DeadLetter&) const = default;
};

std::string dead_letter_json(const DeadLetter& letter);
Result<DeadLetter> parse_dead_letter_json(std::string_view json);

}  // namespace settle::model
