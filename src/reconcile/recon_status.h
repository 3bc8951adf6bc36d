// Reconciliation on the `status` topic: what a run, an acknowledgement or a
// resolution means for merchants, published as status updates the way the
// pipeline publishes its own (keyed by merchant, so each gets the merchant's
// sequence number).
//
//   batch_paid_out     a bank statement matched the batch's payout
//   batch_reconciled   an acquirer report's batch totals matched the batch
//   batch_discrepancy  a discrepancy on the batch or its payout opened, was
//                      acknowledged or resolved; with the batch's open count
//   merchant_discrepancies  after any change, the merchant's open (and
//                      acknowledged) discrepancies: count and the first
//                      kDiscrepancyNotesMax
// Batch updates carry the batch's payout, payout date and totals from the
// ledger, so a batch's latest state still says what it paid.
//
// ReconStatusPublisher is a ReconStore that does this around another store:
// the CLI, the recon role and the API wrap theirs in it when they have a bus.
// Statuses are informational: a failed publish is counted, never the
// store call's failure (the store's write stands).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "bus/bus.h"
#include "ledger/ledger.h"
#include "model/status_update.h"
#include "reconcile/recon_store.h"

namespace settle::reconcile {

// Closed batches by key and by payout reference (of those with a payout),
// built once per run or change: a lookup per subject instead of a scan of
// every batch. Refers to `batches`, which must outlive it; where two batches
// share a key or reference, the first counts (as a scan in order would find).
class BatchIndex {
 public:
  explicit BatchIndex(const std::vector<model::BatchSummary>& batches);
  // The batch a subject names: "payout:<ref>" (a closed batch with a payout)
  // or "batch:<merchant>/<date>/<cur>" (closed or not); nullopt for others
  // (events, bank entries).
  std::optional<model::BatchKey> of_subject(std::string_view subject) const;
  // The closed batch of `key`, or null.
  const model::BatchSummary* find(const model::BatchKey& key) const;

 private:
  std::map<model::BatchKey, const model::BatchSummary*, std::less<>> by_key_;
  std::unordered_map<std::string, const model::BatchSummary*> by_reference_;
};

// BatchIndex(batches).of_subject(subject), for a single lookup.
std::optional<model::BatchKey> batch_of_subject(std::string_view subject,
                                                const std::vector<model::BatchSummary>& batches);

model::DiscrepancyNote note_of(const Discrepancy& d);

// Pure: the updates of a recorded run. `matches` are the run's; `changed`
// the discrepancies it opened; `open` every open or acknowledged discrepancy
// of the merchants the run touched (after it).
std::vector<model::StatusUpdate> run_statuses(const std::vector<Match>& matches, const std::vector<Discrepancy>& changed,
                                              const std::vector<Discrepancy>& open, const BatchIndex& batches,
                                              std::int64_t at_ms);
std::vector<model::StatusUpdate> run_statuses(const std::vector<Match>& matches, const std::vector<Discrepancy>& changed,
                                              const std::vector<Discrepancy>& open,
                                              const std::vector<model::BatchSummary>& batches, std::int64_t at_ms);

class ReconStatusPublisher final : public ReconStore {
 public:
  // `inner` and `ledger` outlive this; `topic` is the status topic.
  ReconStatusPublisher(ReconStore& inner, ledger::Ledger& ledger, bus::Bus& bus, std::string topic)
      : inner_(inner), ledger_(ledger), bus_(bus), topic_(std::move(topic)) {}

  Result<RunOutcome> record_run(const RunRecord& run) override;
  Result<std::vector<std::string>> matched_subjects(std::string_view prefix) override {
    return inner_.matched_subjects(prefix);
  }
  Result<std::vector<Discrepancy>> discrepancies(const DiscrepancyQuery& query) override {
    return inner_.discrepancies(query);
  }
  Result<Discrepancy> acknowledge(std::int64_t id, Timestamp at) override;
  Result<Discrepancy> resolve(std::int64_t id, std::string_view comment, Timestamp at) override;
  Result<std::vector<DriftSample>> drift(std::size_t last) override { return inner_.drift(last); }

  std::int64_t published() const { return published_.load(); }
  std::int64_t publish_failures() const { return publish_failures_.load(); }

 private:
  Status publish_run(const RunRecord& run, const RunOutcome& outcome);
  Status publish_change(const Discrepancy& d, Timestamp at);
  Result<std::vector<Discrepancy>> open_of(const std::vector<std::string>& merchants);
  void count(const Status& s, std::size_t n);

  ReconStore& inner_;
  ledger::Ledger& ledger_;
  bus::Bus& bus_;
  std::string topic_;
  std::atomic<std::int64_t> published_{0};
  std::atomic<std::int64_t> publish_failures_{0};
};

}  // namespace settle::reconcile
