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
#include <vector>

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
  kEventAccepted,      // the gateway has the events on the bus (coalesced: event_ids, count)
  kEventPosted,        // the processor posted their journals (coalesced: event_ids, count)
  kBatchPaidOut,       // a bank statement shows the batch's payout debited
  kBatchReconciled,    // an acquirer report's batch totals match the batch's control totals
  kBatchDiscrepancy,   // a discrepancy on the batch (or its payout) opened, was acknowledged or resolved
  kMerchantDiscrepancies,  // the merchant's open discrepancies after a change (count, first items)
};
std::string_view status_kind_name(StatusKind kind);

inline constexpr std::size_t kEventIdsMax = 100;
inline constexpr std::size_t kDiscrepancyNotesMax = 50;

// A reconciliation discrepancy task as status updates carry it.
struct DiscrepancyNote {
  std::int64_t id = 0;
  std::string reason;   // reconcile's reason code, e.g. "amount_mismatch"
  std::string state;    // "open", "acknowledged", "resolved"
  std::string subject;  // "payout:<ref>", "batch:<merchant>/<date>/<cur>", ...
  std::string currency;
  Minor drift = 0;
  bool operator==(const DiscrepancyNote&) const = default;
};

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

  // kEventAccepted, kEventPosted: one update stands for `count` events of the
  // merchant (one bus append, one ledger transaction), the first
  // kEventIdsMax of them named; `partition`/`offset`: the events topic's
  // partition and the processor's next offset there after them (posted).
  std::vector<std::string> event_ids = {};
  std::int64_t count = 0;
  std::int32_t partition = -1;
  std::int64_t offset = -1;
  // kBatchDiscrepancy (one task) and kMerchantDiscrepancies (the open ones).
  std::vector<DiscrepancyNote> discrepancies = {};
  std::int64_t open_discrepancies = 0;  // open or acknowledged, on the batch or the merchant
  // The W3C trace id of the event that caused it, when its bus record had a
  // traceparent: the event statuses (rejected, duplicate, conflict, late);
  // kEventPosted and kBatchOpen (coalesced per chunk): the trace of the last
  // event they count, empty if that one had none. Batch closes and
  // discrepancies have none (a batch holds many traces).
  std::string trace_id = {};
};

std::string status_json(const StatusUpdate& update);
Result<StatusUpdate> parse_status_json(std::string_view json);

}  // namespace settle::model
