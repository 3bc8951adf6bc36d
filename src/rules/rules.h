// SETTLEMENT_RULES.md as pure functions: batch date (§3), per-event fee (§4),
// batch totals (§5), journals (§6) and the report row (§7). No I/O, no clocks,
// no state; every function is deterministic in its arguments.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"
#include "model/batch.h"
#include "model/event.h"
#include "model/journal.h"
#include "model/merchant.h"

namespace settle::rules {

using model::BatchKey;
using model::BatchSummary;
using model::ControlTotals;
using model::Event;
using model::EventType;
using model::Journal;
using model::Merchant;

// §3: the batch an instant belongs to in the merchant's zone and cut-off.
Date batch_date_of(const Merchant& merchant, Timestamp occurred_at);

// The instant by which every event of `batch_date` has happened: each event
// with batch_date_of(e) == batch_date has occurred_at < batch_end(batch_date).
// A stream processor may close the batch once its watermark passes this.
Timestamp batch_end(const Merchant& merchant, Date batch_date);

// §4: round_half_even(amount × bps / 10000) + fixed; 0 for adjustments.
Result<Minor> event_fee(const Merchant& merchant, EventType type, Minor amount);

// §6: the journal of one event, with its fee, batch dates, lateness, digest of
// its canonical content and legs. The legs always sum to zero.
Result<Journal> event_journal(const Event& event, const Merchant& merchant, Date batch_date,
                              Date settle_date, bool late);
// The same, written over `journal` (every field; its trace_id is cleared),
// reusing its strings' buffers. On an error `journal` is partly written.
Status assign_event_journal(Journal& journal, const Event& event, const Merchant& merchant,
                            Date batch_date, Date settle_date, bool late);

// Adds one event's amount and fee to a batch's control totals; kOverflow if a
// sum leaves int64.
Status add_to_totals(ControlTotals& totals, EventType type, Minor amount, Minor fee);

struct HeldReserve {
  Date batch_date;  // the batch that held it
  Minor amount = 0;
  bool operator==(const HeldReserve&) const = default;
};

struct BatchOutcome {
  BatchSummary summary;
  std::vector<Date> released;  // batch dates of the holds this batch releases
};

// §5: settles one batch. `carried_in` is the previous batch's carry_out (<= 0);
// `unreleased` are the holds of earlier batches of this merchant and currency
// not yet released. kOverflow if any figure leaves int64.
Result<BatchOutcome> settle_batch(const Merchant& merchant, const BatchKey& key,
                                  const ControlTotals& totals, Minor carried_in,
                                  const std::vector<HeldReserve>& unreleased);

// §6: the batch-close journals (reserve hold, reserve release, payout), each
// only when its amount is non-zero.
std::vector<Journal> batch_journals(const BatchSummary& summary);

// §7.
std::string report_header();
std::string report_row(const BatchSummary& summary);

}  // namespace settle::rules
