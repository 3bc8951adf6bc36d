// What every Ledger implementation checks of its callers' input before it
// touches storage (the port's preconditions, src/ledger/ledger.h), so that
// both backends refuse the same input with the same words.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "common/result.h"
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

}  // namespace settle::ledger::checks
