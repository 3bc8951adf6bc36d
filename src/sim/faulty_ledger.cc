#include "sim/faulty_ledger.h"

namespace settle::sim {

Status FaultyLedger::read_fault() {
  if (faults_.inject(faults_.options().ledger_read_fails, "ledger read timed out")) {
    return make_error(ErrorCode::kUnavailable, "injected: ledger read timed out");
  }
  return ok_status();
}

Result<std::vector<ledger::PostOutcome>> FaultyLedger::post(std::span<const model::Journal> journals,
                                                            std::span<const ledger::Checkpoint> checkpoints) {
  const FaultOptions& o = faults_.options();
  if (faults_.inject(o.post_lost, "ledger post lost")) return make_error(ErrorCode::kUnavailable, "injected: post lost");
  auto r = inner_->post(journals, checkpoints);
  if (r.ok() && faults_.inject(o.post_unacked, "ledger post committed, unacknowledged")) {
    return make_error(ErrorCode::kUnavailable, "injected: post committed but not acknowledged");
  }
  return r;
}

Result<std::optional<ledger::Checkpoint>> FaultyLedger::checkpoint(std::string_view consumer, std::int32_t partition) {
  SETTLE_TRY(read_fault());
  return inner_->checkpoint(consumer, partition);
}

Result<model::ControlTotals> FaultyLedger::settling_totals(const model::BatchKey& key) {
  SETTLE_TRY(read_fault());
  return inner_->settling_totals(key);
}

Result<ledger::BatchHistory> FaultyLedger::batch_history(std::string_view merchant_id, std::string_view currency) {
  SETTLE_TRY(read_fault());
  return inner_->batch_history(merchant_id, currency);
}

Status FaultyLedger::register_fence(const model::BatchKey& key, std::uint64_t token) {
  SETTLE_TRY(read_fault());
  return inner_->register_fence(key, token);
}

Result<ledger::CloseOutcome> FaultyLedger::close_batch(const model::BatchSummary& summary,
                                                       std::span<const Date> released,
                                                       std::span<const model::Journal> journals,
                                                       std::uint64_t fencing_token) {
  if (before_close) before_close();
  auto r = inner_->close_batch(summary, released, journals, fencing_token);
  if (r.ok() && faults_.inject(faults_.options().close_unacked, "ledger close committed, unacknowledged")) {
    return make_error(ErrorCode::kUnavailable, "injected: close committed but not acknowledged");
  }
  return r;
}

Result<std::vector<model::BatchSummary>> FaultyLedger::closed_batches(const ledger::BatchQuery& query) {
  SETTLE_TRY(read_fault());
  return inner_->closed_batches(query);
}

Result<std::vector<ledger::Balance>> FaultyLedger::balances(std::optional<std::string_view> merchant_id) {
  return inner_->balances(merchant_id);
}

Result<std::vector<ledger::TrialBalance>> FaultyLedger::trial_balance() { return inner_->trial_balance(); }

Result<std::vector<ledger::PostingRow>> FaultyLedger::postings(const ledger::PostingQuery& query) {
  return inner_->postings(query);
}

}  // namespace settle::sim
