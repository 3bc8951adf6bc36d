// Events as JSON: strict validation per SETTLEMENT_RULES §2 (every error names
// the field), a canonical serialization (fixed field order, occurred_at in
// UTC, metadata sorted by key) and its 128-bit digest. Two events have the
// same content exactly when their canonical forms are equal.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"
#include "model/event.h"
#include "model/journal.h"

namespace settle::model {

// Reusable parser (holds simdjson's buffers); not thread safe, one per thread.
class EventParser {
 public:
  EventParser();
  ~EventParser();
  EventParser(const EventParser&) = delete;
  EventParser& operator=(const EventParser&) = delete;

  // Parses one JSON object. Errors are kInvalidArgument with a message of the
  // form "field 'amount': must be > 0".
  Result<Event> parse(std::string_view json);
  // The same, into `event`, reusing its strings' buffers (for a caller that
  // parses many events). On an error `event` holds a part of the JSON.
  Status parse_into(std::string_view json, Event& event);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string canonical_event_json(const Event& event);
// The same, written into `out` (replacing its content, reusing its buffer).
void assign_canonical_event_json(std::string& out, const Event& event);
Digest digest_of(std::string_view bytes);
std::string metadata_json(const Event& event);  // "" when there is none
// The same, written into `out` (replacing its content, reusing its buffer).
void assign_metadata_json(std::string& out, const Event& event);
// digest_of(canonical_event_json(event)), without a string per call.
Digest canonical_digest(const Event& event);

// Checks a merchant id: 1-64 characters of [A-Za-z0-9_-].
Status validate_merchant_id(std::string_view id);
// Escapes a string for inclusion in JSON (quotes not included).
void append_json_escaped(std::string& out, std::string_view s);

}  // namespace settle::model
