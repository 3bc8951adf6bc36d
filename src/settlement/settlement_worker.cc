#include "settlement/settlement_worker.h"

#include <fmt/format.h>

#include "model/dead_letter.h"
#include "processor/topics.h"
#include "rules/rules.h"

namespace settle::settlement {
namespace {

using model::StatusKind;
using model::StatusUpdate;

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string date_or_none(const std::optional<Date>& d) { return d ? format_date(*d) : "none"; }

}  // namespace

SettlementWorker::SettlementWorker(bus::Bus& bus, ledger::Ledger& ledger, idempotency::Store& store,
                                   WorkerOptions options)
    : bus_(bus), ledger_(ledger), store_(store), options_(std::move(options)) {}

std::int64_t SettlementWorker::next_offset(std::int32_t partition) {
  auto it = next_offsets_.find(partition);
  if (it != next_offsets_.end()) return it->second;
  auto committed = bus_.committed(options_.group, processor::kTasksTopic, partition);
  const std::int64_t offset = committed.ok() ? *committed : 0;
  next_offsets_[partition] = offset;
  return offset;
}

Result<std::size_t> SettlementWorker::poll(std::int32_t partition) {
  const std::int64_t from = next_offset(partition);
  SETTLE_ASSIGN_OR_RETURN(auto records,
                          bus_.read(processor::kTasksTopic, partition, from, options_.max_tasks_per_poll));
  std::size_t handled = 0;
  std::int64_t next = from;
  Status status = ok_status();
  for (const bus::StoredRecord& rec : records) {
    auto task = model::parse_task_json(rec.value);
    if (!task.ok()) {
      // A task we cannot read is a bug upstream; say so and move on rather
      // than block every later batch of the partition.
      ++stats_.failed;
      ++stats_.failed_by_reason["unreadable_task"];
      failures_.push_back(fmt::format("{}/{} offset {}: {}", processor::kTasksTopic, partition, rec.offset,
                                      task.error().message));
      const model::DeadLetter letter{processor::kTasksTopic, partition, rec.offset, rec.key, "",
                                     task.error().message, rec.value, wall_ms()};
      pending_dead_letters_.push_back(bus::Record{rec.key, model::dead_letter_json(letter), rec.headers, 0});
    } else {
      task_appended_ms_ = rec.timestamp_ms;
      auto h = handle(*task);
      if (!h.ok()) {
        status = h.error();
        break;
      }
      if (*h == Handled::kRetryLater) break;
    }
    next = rec.offset + 1;
    ++handled;
  }
  // The poll's closes are made durable together, before anything tells of
  // them; their batches stay leased until then. Statuses, then the offset,
  // once per poll and only after the ledger transactions of the tasks they
  // cover: a crash before the commit redelivers those tasks, which find
  // their batches closed and publish their statuses again.
  const Status synced = ledger_.sync();
  for (const idempotency::Lease& lease : held_leases_) (void)store_.unlock(lease);
  held_leases_.clear();
  SETTLE_TRY(synced);
  SETTLE_TRY(flush_statuses());
  SETTLE_TRY(flush_dead_letters());
  if (next != from) {
    SETTLE_TRY(bus_.commit(options_.group, processor::kTasksTopic, partition, next));
    next_offsets_[partition] = next;
  }
  SETTLE_TRY(status);
  return handled;
}

Result<SettlementWorker::Handled> SettlementWorker::handle(const model::SettlementTask& task) {
  const model::BatchKey& key = task.key;
  SETTLE_ASSIGN_OR_RETURN(auto lease, store_.try_lock("batch:" + key.to_string(), options_.lease_ttl));
  if (!lease) return Handled::kRetryLater;
  // Released on every path out, but one that closed the batch: that lease
  // is held until the poll's closes are durable. A crash leaves it to expire.
  struct Release {
    idempotency::Store& store;
    const idempotency::Lease& lease;
    std::vector<idempotency::Lease>* hold_in = nullptr;
    ~Release() {
      if (hold_in != nullptr) {
        hold_in->push_back(lease);
      } else {
        (void)store.unlock(lease);
      }
    }
  } release{store_, *lease};

  if (auto st = ledger_.register_fence(key, lease->token); !st.ok()) {
    if (st.error().code == ErrorCode::kFenced) return Handled::kRetryLater;
    return st.error();
  }

  SETTLE_ASSIGN_OR_RETURN(auto history, ledger_.batch_history(key.merchant_id.view(), key.currency));
  if (history.last_closed && *history.last_closed >= key.batch_date) {
    // Redelivered, or closed by another worker: the ledger has it already.
    ledger::BatchQuery q{key.merchant_id.str(), key.batch_date, key.batch_date};
    SETTLE_ASSIGN_OR_RETURN(auto closed, ledger_.closed_batches(q));
    for (const auto& summary : closed) {
      if (summary.key == key) {
        ++stats_.already_closed;
        publish(closed_status(summary));
        return Handled::kDone;
      }
    }
    fail(task, "later_batch_closed", fmt::format("a later batch ({}) is already closed", format_date(*history.last_closed)));
    return Handled::kDone;
  }
  if (history.last_closed != task.previous_batch) {
    fail(task, "out_of_order", fmt::format("out of order: the ledger's latest closed batch is {}, the task follows {}",
                                      date_or_none(history.last_closed), date_or_none(task.previous_batch)));
    return Handled::kDone;
  }

  SETTLE_ASSIGN_OR_RETURN(auto posted, ledger_.settling_totals(key));
  if (posted != task.totals) {
    fail(task, "control_totals_mismatch", fmt::format("control totals mismatch: task has [{}], ledger postings have [{}]",
                                      task.totals.to_string(), posted.to_string()));
    return Handled::kDone;
  }

  std::vector<rules::HeldReserve> holds;
  for (const auto& h : history.unreleased) holds.push_back(rules::HeldReserve{h.batch_date, h.amount});
  auto outcome = rules::settle_batch(task.merchant, key, task.totals, history.carry_out, holds);
  if (!outcome.ok()) {
    fail(task, "rules_refused", outcome.error().message);
    return Handled::kDone;
  }
  const auto journals = rules::batch_journals(outcome->summary);
  auto closed = ledger_.close_batch_deferred(outcome->summary, outcome->released, journals, lease->token);
  if (!closed.ok()) {
    if (closed.error().code == ErrorCode::kFenced) return Handled::kRetryLater;
    if (closed.error().code == ErrorCode::kIo || closed.error().code == ErrorCode::kUnavailable) {
      return closed.error();
    }
    fail(task, "ledger_refused", closed.error().message);
    return Handled::kDone;
  }
  release.hold_in = &held_leases_;
  if (*closed == ledger::CloseOutcome::kAlreadyClosed) {
    ++stats_.already_closed;
  } else {
    ++stats_.closed;
    if (options_.observe_closed) options_.observe_closed(wall_ms() - task_appended_ms_);
  }
  publish(closed_status(outcome->summary));
  return Handled::kDone;
}

void SettlementWorker::fail(const model::SettlementTask& task, std::string_view code, std::string reason) {
  ++stats_.failed;
  auto it = stats_.failed_by_reason.find(code);
  if (it == stats_.failed_by_reason.end()) it = stats_.failed_by_reason.emplace(std::string(code), 0).first;
  ++it->second;
  failures_.push_back(fmt::format("batch {}: {}", task.key.to_string(), reason));
  publish(StatusUpdate{StatusKind::kBatchCloseFailed, task.key.merchant_id.str(), "", "", task.key, 0, 0,
                       std::move(reason), wall_ms(), std::nullopt, std::nullopt});
}

StatusUpdate SettlementWorker::closed_status(const model::BatchSummary& s) {
  return StatusUpdate{StatusKind::kBatchClosed, s.key.merchant_id.str(), "", "", s.key, s.payout, s.carry_out,
                      fmt::format("payout on {}", format_date(s.payout_date)), wall_ms(), s.payout_date, s.totals};
}

void SettlementWorker::publish(const StatusUpdate& update) {
  pending_statuses_.push_back(bus::Record{update.merchant_id, model::status_json(update), {}, 0});
}

Status SettlementWorker::flush_dead_letters() {
  if (pending_dead_letters_.empty()) return ok_status();
  auto appended = bus_.append(processor::kDeadLettersTopic, pending_dead_letters_);
  if (!appended.ok() && appended.error().code == ErrorCode::kNotFound) {
    SETTLE_ASSIGN_OR_RETURN(const std::int32_t partitions, bus_.partition_count(processor::kTasksTopic));
    SETTLE_TRY(bus_.create_topic({processor::kDeadLettersTopic, partitions, false}));
    appended = bus_.append(processor::kDeadLettersTopic, pending_dead_letters_);
  }
  SETTLE_TRY(appended);
  stats_.dead_letters += static_cast<std::int64_t>(pending_dead_letters_.size());
  pending_dead_letters_.clear();
  return ok_status();
}

Status SettlementWorker::flush_statuses() {
  if (pending_statuses_.empty()) return ok_status();
  SETTLE_TRY(bus_.append(processor::kStatusTopic, pending_statuses_));
  pending_statuses_.clear();
  return ok_status();
}

}  // namespace settle::settlement
