// Status updates published on the `status` topic: what happened to an event or
// a batch, for operators, merchants, the CLI and the notify role.
//
// Order and sequence: the topic is keyed by merchant, so every update of a
// merchant lands on one partition and its offset there is the update's
// sequence number: assigned by the bus when the update is published,
// increasing with every update of the merchant (not contiguous: merchants
// share partitions). notify/ pairs it with an epoch that changes when the
// partition's log cannot be continued (see notify/status_cache.h).
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
  kBatchOpen,          // the processor posted events to an open batch: its running totals
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
  std::optional<Date> payout_date;      // kBatchClosed
  std::optional<ControlTotals> totals;  // kBatchOpen: the batch's running totals; kBatchClosed: its totals
};

std::string status_json(const StatusUpdate& update);
Result<StatusUpdate> parse_status_json(std::string_view json);

}  // namespace settle::model
