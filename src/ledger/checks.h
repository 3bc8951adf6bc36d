// What every Ledger implementation checks of its callers' input before it
// touches storage (the port's preconditions, src/ledger/ledger.h), so that
// both backends refuse the same input with the same words.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/money.h"
#include "common/time.h"
#include "ledger/ledger.h"
#include "model/batch.h"
#include "model/journal.h"

namespace settle::ledger::checks {

// The dates a ledger stores: four-digit years, as 'YYYY-MM-DD' needs.
Date first_date();
Date last_date();
bool date_in_range(Date d);

// "journal MERCHANT/REF", for messages.
std::string journal_id_text(const model::Journal& j);
bool is_event_kind(model::JournalKind kind);

// kInvalidArgument with what is wrong, or ok.
Status check_key(const model::BatchKey& key);
// A journal: identity, currency, kind, dates, 2..kMaxLegs legs of known
// accounts, none zero, summing to 0; no NUL byte in its text fields.
Status validate_journal(const model::Journal& j);
// A close_batch() call: its key, payout date, released holds (earlier
// batches), journals (valid, of the batch's merchant and currency) and a
// fencing token that fits a signed 64-bit column.
Status validate_close(const model::BatchSummary& summary, std::span<const Date> released,
                      std::span<const model::Journal> journals, std::uint64_t fencing_token);

// kFenced for a checkpoint that post() did not write because its version
// does not follow the stored one.
Error checkpoint_fenced(const Checkpoint& c);

// --- close_batch() against the stored history ------------------------------
// Each backend reads the rows (in its transaction, under its lock) and asks
// these what to refuse, so both refuse the same history with the same words.
// A Refusal is the error's code and reason; the backend adds where and what.

struct Refusal {
  ErrorCode code;
  std::string why;
};

// The summary in one line, for messages.
std::string summary_text(const model::BatchSummary& s);

// A close with `token` when `registered` (if any) is the batch's fence.
std::optional<Refusal> fence_refusal(std::int64_t token, std::optional<std::int64_t> registered);
// The batch is already closed as `stored`, and `given` differs from it.
Refusal different_summary(const model::BatchSummary& stored, const model::BatchSummary& given);
// A later batch of the merchant and currency (closed on `later_date`) exists.
Refusal later_batch_closed(std::string_view later_date);

// The latest closed batch of the merchant and currency: its date and carry_out.
struct LastClosed {
  std::string batch_date;
  Minor carry_out = 0;
};
// `carried_in` must be the latest closed batch's carry_out (0 when none).
std::optional<Refusal> carry_refusal(Minor carried_in, const std::optional<LastClosed>& last);

// A closed batch's reserve hold as stored: what it held, and the date of the
// batch that released it, if one did.
struct StoredHold {
  Minor held = 0;
  std::optional<std::string> released_by;
};
// The holds a close releases: each date once, each a closed batch whose hold
// is positive and not released yet; together they sum to reserve_released.
class HoldReleases {
 public:
  // Before reading the hold of `d`: refuses a date named twice.
  std::optional<Refusal> name(Date d);
  // The stored hold of the date just named (nullopt: no closed batch then).
  std::optional<Refusal> take(Date d, const std::optional<StoredHold>& stored);
  // After the last: the holds taken must sum to `reserve_released`.
  std::optional<Refusal> finish(Minor reserve_released) const;
  // The dates taken, 'YYYY-MM-DD', in the order named.
  const std::vector<std::string>& dates() const { return dates_; }

 private:
  std::set<Date> seen_;
  std::vector<std::string> dates_;
  __int128 sum_ = 0;
};

// A journal of the close is already stored with different content.
Refusal journal_conflict(const model::Journal& j);
// The batch's fees over all event types (the batches table's fees column).
Result<std::int64_t> batch_fees(const model::BatchSummary& s);

}  // namespace settle::ledger::checks
