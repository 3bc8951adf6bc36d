// The ledger port: the authoritative double-entry record.
//
// Contract (tests/ledger/ledger_contract.h runs it against every implementation):
// - post() writes journals and consumer checkpoints in one transaction; a
//   checkpoint whose version does not follow the stored one is kFenced. A
//   journal's identity is (merchant_id, ref): a second post of an identity with
//   an equal digest is a no-op reported kDuplicate, with a different digest it
//   is refused and reported kConflict. Nothing of a failed call is written.
// - Every stored journal balances (legs sum to 0); the sum of all postings of a
//   currency is 0.
// - close_batch() writes the batch's journals and its summary in one
//   transaction, unique on (merchant_id, batch_date, currency); closing a
//   closed batch again with an equal summary is kAlreadyClosed, with a
//   different one kConflict. A fencing token lower than one registered for the
//   batch is refused (kFenced) and nothing is written.
// - Batches of one merchant and currency close in ascending batch_date, each
//   from the history the previous closes left: close_batch() refuses
//   (kFailedPrecondition) a batch when a later one is closed, when its
//   carried_in is not the carry_out of the latest closed batch, or when
//   `released` does not name closed, unreleased holds that add up to its
//   reserve_released (a summary computed from a stale batch_history()).
// Thread safety: every method may be called from any thread; calls are
// serialized where the backend needs it.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "model/batch.h"
#include "model/journal.h"

namespace settle::ledger {

enum class PostOutcome : std::uint8_t { kPosted, kDuplicate, kConflict };

// A consumer's position in one input partition, with its opaque state,
// committed atomically with the effects of the input it covers.
//
// `version` counts the checkpoint's writes: checkpoint() returns the stored
// one, and post() writes a checkpoint only as the successor of the stored
// version (version 1 when none is stored). Anything else is refused with
// kFenced and nothing of the call is written, so a writer that lost the
// partition (a processor that slept through a rebalance) cannot overwrite the
// position its successor, or a `settled replay`, wrote after it read.
struct Checkpoint {
  std::string consumer;  // e.g. "processor"
  std::int32_t partition = 0;
  std::int64_t next_offset = 0;
  std::string state;
  std::int64_t version = 1;
  bool operator==(const Checkpoint&) const = default;
};

// What the ledger remembers of a merchant's closed batches in one currency,
// which the next batch's settlement needs (SETTLEMENT_RULES §5).
struct BatchHistory {
  std::optional<Date> last_closed;  // latest closed batch_date
  Minor carry_out = 0;              // of the latest closed batch
  struct Hold {
    Date batch_date;
    Minor amount = 0;
  };
  std::vector<Hold> unreleased;  // holds not yet released, ascending batch_date
};

enum class CloseOutcome : std::uint8_t { kClosed, kAlreadyClosed };

struct Balance {
  std::string account;  // "merchant:m1:payable", "platform:fees", ...
  std::string currency;
  Minor balance = 0;  // debits positive, credits negative
  std::int64_t postings = 0;
};

struct TrialBalance {
  std::string currency;
  Minor debits = 0;   // sum of positive postings
  Minor credits = 0;  // sum of negative postings (<= 0)
  Minor net = 0;      // debits + credits; 0 in a sound ledger
};

struct PostingRow {
  std::string merchant_id;
  std::string ref;
  std::string kind;
  std::string account;
  std::string currency;
  Minor amount = 0;
  Date batch_date;
  Date settle_date;
  bool late = false;
};

struct PostingQuery {
  std::optional<std::string> merchant_id;
  std::optional<std::string> account;  // full account name
  std::optional<Date> settle_from;     // inclusive
  std::optional<Date> settle_to;       // inclusive
  std::size_t limit = 1000;
};

struct BatchQuery {
  std::optional<std::string> merchant_id;
  std::optional<Date> from;  // inclusive
  std::optional<Date> to;    // inclusive
};

class Ledger {
 public:
  virtual ~Ledger() = default;

  // Posts journals (each must balance) and saves the checkpoints, atomically.
  // Returns one outcome per journal, in order.
  virtual Result<std::vector<PostOutcome>> post(std::span<const model::Journal> journals,
                                                std::span<const Checkpoint> checkpoints) = 0;
  // post(), which also calls `committed` (on its own thread) once the
  // transaction has committed: later calls see it and commit after it, though
  // it may not be durable yet. The call still returns only once it is
  // durable, so a caller that starts its next post() on `committed` overlaps
  // that call's work with this one's wait for the disk. Not called when the
  // call fails before its commit. By default: post(), then `committed`.
  virtual Result<std::vector<PostOutcome>> post_pipelined(std::span<const model::Journal> journals,
                                                          std::span<const Checkpoint> checkpoints,
                                                          const std::function<void()>& committed) {
    auto out = post(journals, checkpoints);
    if (out.ok()) committed();
    return out;
  }
  virtual Result<std::optional<Checkpoint>> checkpoint(std::string_view consumer,
                                                       std::int32_t partition) = 0;

  // Control totals of the event journals that settle in `key`, recomputed
  // from the stored journals.
  virtual Result<model::ControlTotals> settling_totals(const model::BatchKey& key) = 0;
  virtual Result<BatchHistory> batch_history(std::string_view merchant_id,
                                             std::string_view currency) = 0;

  // Raises the batch's fence to `token` (never lowers it). kFenced if a higher
  // token is already registered.
  virtual Status register_fence(const model::BatchKey& key, std::uint64_t token) = 0;
  // Writes the summary and journals atomically. `released` names the batch
  // dates whose holds this batch releases.
  virtual Result<CloseOutcome> close_batch(const model::BatchSummary& summary,
                                           std::span<const Date> released,
                                           std::span<const model::Journal> journals,
                                           std::uint64_t fencing_token) = 0;
  // close_batch(), whose commit may become durable only at the next sync():
  // for a caller that closes several batches before it tells anyone, with
  // one wait for the disk for all of them. Later calls see it at once. By
  // default: close_batch().
  virtual Result<CloseOutcome> close_batch_deferred(const model::BatchSummary& summary,
                                                    std::span<const Date> released,
                                                    std::span<const model::Journal> journals,
                                                    std::uint64_t fencing_token) {
    return close_batch(summary, released, journals, fencing_token);
  }
  // Makes every commit so far durable (those of close_batch_deferred()). By
  // default there are none to wait for.
  virtual Status sync() { return ok_status(); }

  // Closed batches sorted by merchant_id, currency, batch_date.
  virtual Result<std::vector<model::BatchSummary>> closed_batches(const BatchQuery& query) = 0;
  // Balances sorted by account, currency; only a merchant's accounts when given.
  virtual Result<std::vector<Balance>> balances(std::optional<std::string_view> merchant_id) = 0;
  virtual Result<std::vector<TrialBalance>> trial_balance() = 0;
  virtual Result<std::vector<PostingRow>> postings(const PostingQuery& query) = 0;
};

}  // namespace settle::ledger
