// The invariants of exactly-once settlement, checked over data read from the
// bus and the ledger (collect.h reads it through the ports). Pure: no I/O, no
// clock; the same input gives the same findings in the same order.
//
// What is checked (each break names what broke, where, and the two figures):
// - trial balance: every currency's postings sum to 0;
// - exactly once: every event accepted on `events` is posted once by its
//   identity (merchant_id, event_id), or dead-lettered at every offset it was
//   read from; no event journal exists that the bus never carried; no journal
//   is stored twice; no event settles in two batches; no posted event is
//   stranded in a batch date that can no longer close (a later batch of its
//   merchant and currency is closed and its own is not);
// - batches: each closed batch's control totals equal those recomputed from the
//   event journals that settle in it; its reserve, release, carry, net, payout
//   and payout date equal SETTLEMENT_RULES §5 applied to those totals and to the
//   merchant's earlier closed batches; its hold, release and payout journals
//   carry those amounts;
// - SETTLEMENT_RULES §6: per merchant and currency, the payable account over
//   closed batches equals -carry_out of the latest closed batch, the reserve
//   balance equals -(held - released); per currency platform:payouts equals
//   -(sum of payouts).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/money.h"
#include "ledger/ledger.h"
#include "model/batch.h"
#include "model/dead_letter.h"
#include "model/merchant.h"

namespace settle::verify {

// One record of the `events` topic, by the identity it carries.
struct AcceptedEvent {
  std::string merchant_id;
  std::string event_id;  // "" when the record could not be read as an event
  std::int32_t partition = 0;
  std::int64_t offset = 0;
};

struct Input {
  std::vector<AcceptedEvent> accepted;
  std::vector<model::DeadLetter> dead_letters;
  std::vector<ledger::PostingRow> postings;      // every posting of every journal
  std::vector<model::BatchSummary> closed;       // every closed batch
  std::vector<ledger::TrialBalance> trial;       // as the ledger reports it
  std::vector<ledger::Balance> balances;         // every account
  std::map<std::string, model::Merchant> merchants;  // by merchant id
};

enum class BreakKind : std::uint8_t {
  kTrialBalance,
  kMissing,         // accepted on the bus, neither posted nor dead-lettered
  kDoubled,         // one identity stored more than once
  kTwoBatches,      // one event settling in two batches
  kNotOnBus,        // an event journal the bus never carried
  kStranded,        // posted in a batch that can no longer close
  kUnbalanced,      // a journal whose legs do not sum to 0
  kBatchTotals,     // a closed batch's totals differ from its postings
  kBatchRules,      // a closed batch's figures differ from the rules
  kBatchJournal,    // a batch journal differs from its summary
  kPayable,         // §6 payable identity
  kReserve,         // §6 reserve identity
  kPayouts,         // §6 payouts identity
  kUnknownMerchant  // a closed batch of a merchant with no configuration
};
std::string_view break_kind_name(BreakKind kind);

struct Break {
  BreakKind kind = BreakKind::kTrialBalance;
  std::string where;  // "m-eur/2026-03-27/EUR", "event m-eur/e1 (events/3 offset 17)", "EUR"
  std::string what;   // "payout", "captures", "trial balance", ...
  std::string expected;  // what the invariant requires
  std::string actual;    // what the data holds
  std::string note;   // anything else worth saying
};
// "batch-rules m-eur/2026-03-27/EUR: payout is 9001, the rules give 9000".
std::string format_break(const Break& b);

struct Findings {
  std::vector<Break> breaks;
  std::int64_t records = 0;         // event records on the bus
  std::int64_t events = 0;          // distinct identities among them
  std::int64_t posted = 0;          // of those, posted
  std::int64_t dead_lettered = 0;   // of those, dead-lettered (not posted)
  std::int64_t journals = 0;        // event journals in the ledger
  std::int64_t batches = 0;         // closed batches checked
  bool clean() const { return breaks.empty(); }
};

Findings check(const Input& input);

}  // namespace settle::verify
