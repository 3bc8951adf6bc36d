// Status updates published on the `status` topic: what happened to an event or
// a batch, for operators, merchants and the CLI.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "model/batch.h"

namespace settle::model {

enum class StatusKind : std::uint8_t {
  kEventDuplicate,     // same identity, same content: ignored
  kEventConflict,      // same identity, different content: rejected
  kEventRejected,      // failed validation or unknown merchant on the processor
  kEventLate,          // settled in a later batch than its own
  kBatchClosing,       // the processor emitted its settlement task
  kBatchClosed,        // the worker wrote its summary
  kBatchCloseFailed,   // the worker refused to close it (reason says why)
};
std::string_view status_kind_name(StatusKind kind);

struct StatusUpdate {
  StatusKind kind = StatusKind::kBatchClosed;
  std::string merchant_id;
  std::string event_id;          // event statuses
  std::string source;            // where the event came from, e.g. "events.ndjson:12"
  std::optional<BatchKey> batch; // batch statuses, and the settling batch of a late event
  Minor payout = 0;              // kBatchClosed
  Minor carry_out = 0;           // kBatchClosed
  std::string reason;            // human-readable detail
  std::int64_t at_ms = 0;        // wall clock when it happened
};

std::string status_json(const StatusUpdate& update);
Result<StatusUpdate> parse_status_json(std::string_view json);

}  // namespace settle::model
