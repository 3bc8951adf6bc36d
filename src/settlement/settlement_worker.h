// The settlement worker: consumes `settlement-tasks` and closes batches.
//
// For each task it takes a lease on the batch (idempotency store; the lease's
// fencing token is registered with the ledger, so a stale worker's close is
// refused), checks the ledger's postings for the batch against the task's
// control totals (a mismatch fails the task visibly and leaves the batch
// open), settles it per SETTLEMENT_RULES §5 from the ledger's history of the
// merchant's earlier batches, writes the batch's journals and summary in one
// ledger transaction and publishes a status update. The closes of one poll
// are made durable together (Ledger::close_batch_deferred(), then sync()),
// before their statuses are published and while their leases are still
// held. Its consumer-group offset is committed (once per poll) only after
// the ledger transactions it covers,
// so a crash redelivers the tasks, and a redelivered task of a closed batch
// only republishes its status. A task it cannot read goes to the
// `dead-letters` topic (before the offset passes it) and does not block the
// partition.
//
// Thread safety: one thread per SettlementWorker; any number of workers may
// share the bus, ledger and store.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "bus/bus.h"
#include "common/result.h"
#include "idempotency/store.h"
#include "ledger/ledger.h"
#include "model/settlement_task.h"
#include "model/status_update.h"

namespace settle::settlement {

struct WorkerOptions {
  std::string group = "settlement-worker";
  // How long a claim on a batch lasts; a worker that dies mid-close blocks the
  // batch at most this long.
  std::chrono::milliseconds lease_ttl{30'000};
  std::size_t max_tasks_per_poll = 256;
  // Called for every batch this worker closed, with the milliseconds from its
  // task's append to the bus to the close's commit (metrics); may be empty.
  std::function<void(std::int64_t ms)> observe_closed;
};

struct WorkerStats {
  std::int64_t closed = 0;
  std::int64_t already_closed = 0;
  std::int64_t failed = 0;
  std::int64_t dead_letters = 0;  // unreadable tasks sent to the dead-letters topic
  // failed, by reason: unreadable_task, later_batch_closed, out_of_order,
  // control_totals_mismatch, rules_refused, ledger_refused.
  std::map<std::string, std::int64_t, std::less<>> failed_by_reason;
};

class SettlementWorker {
 public:
  SettlementWorker(bus::Bus& bus, ledger::Ledger& ledger, idempotency::Store& store, WorkerOptions options);

  // Handles the partition's pending tasks (from the group's committed offset);
  // returns how many it handled. A task whose batch is leased by another
  // worker stops the poll there (kUnavailable is not an error: 0 handled).
  Result<std::size_t> poll(std::int32_t partition);

  std::int64_t next_offset(std::int32_t partition);
  const WorkerStats& stats() const { return stats_; }
  // Human-readable reasons of the tasks that failed, in order.
  const std::vector<std::string>& failures() const { return failures_; }

 private:
  enum class Handled { kDone, kRetryLater };
  Result<Handled> handle(const model::SettlementTask& task);
  // `code` is the reason's class for metrics (WorkerStats::failed_by_reason).
  void fail(const model::SettlementTask& task, std::string_view code, std::string reason);
  static model::StatusUpdate closed_status(const model::BatchSummary& summary);
  void publish(const model::StatusUpdate& update);  // buffered until flush_statuses()
  Status flush_statuses();
  Status flush_dead_letters();

  bus::Bus& bus_;
  ledger::Ledger& ledger_;
  idempotency::Store& store_;
  WorkerOptions options_;
  std::map<std::int32_t, std::int64_t> next_offsets_;
  WorkerStats stats_;
  std::vector<std::string> failures_;
  std::vector<bus::Record> pending_statuses_;
  std::vector<bus::Record> pending_dead_letters_;
  // Leases of the batches this poll closed, released once the closes are
  // durable (Ledger::sync()).
  std::vector<idempotency::Lease> held_leases_;
  std::int64_t task_appended_ms_ = 0;  // the record timestamp of the task in hand
};

}  // namespace settle::settlement
