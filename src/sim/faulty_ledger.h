// A Ledger that forwards to another and injects faults (sim/faults.h): posts
// lost before they commit, or committed and then reported failed (the
// processor must recover and replay: duplicates); batch closes committed and
// reported failed; reads that time out. Before each close it calls
// `before_close`, where the simulator can let a stale worker's rival take the
// batch over while the closer sleeps.
#pragma once

#include <functional>

#include "ledger/ledger.h"
#include "sim/faults.h"

namespace settle::sim {

class FaultyLedger final : public ledger::Ledger {
 public:
  FaultyLedger(ledger::Ledger* inner, Faults& faults) : inner_(inner), faults_(faults) {}
  void reset(ledger::Ledger* inner) { inner_ = inner; }
  std::function<void()> before_close;

  Result<std::vector<ledger::PostOutcome>> post(std::span<const model::Journal> journals,
                                                std::span<const ledger::Checkpoint> checkpoints) override;
  Result<std::optional<ledger::Checkpoint>> checkpoint(std::string_view consumer, std::int32_t partition) override;
  Result<model::ControlTotals> settling_totals(const model::BatchKey& key) override;
  Result<ledger::BatchHistory> batch_history(std::string_view merchant_id, std::string_view currency) override;
  Status register_fence(const model::BatchKey& key, std::uint64_t token) override;
  Result<ledger::CloseOutcome> close_batch(const model::BatchSummary& summary, std::span<const Date> released,
                                           std::span<const model::Journal> journals,
                                           std::uint64_t fencing_token) override;
  Result<std::vector<model::BatchSummary>> closed_batches(const ledger::BatchQuery& query) override;
  Result<std::vector<ledger::Balance>> balances(std::optional<std::string_view> merchant_id) override;
  Result<std::vector<ledger::TrialBalance>> trial_balance() override;
  Result<std::vector<ledger::PostingRow>> postings(const ledger::PostingQuery& query) override;

 private:
  Status read_fault();

  ledger::Ledger* inner_;
  Faults& faults_;
};

}  // namespace settle::sim
