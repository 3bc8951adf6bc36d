// Matching, pure (no I/O): bank entries <-> our payouts, acquirer lines <->
// our ledger events, acquirer batch totals <-> our batch control totals.
// Every match records its rule and a confidence; what does not match becomes
// a Finding with a reason code, which the store turns into a discrepancy task.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "model/batch.h"
#include "reconcile/payout.h"
#include "reconcile/statement.h"

namespace settle::reconcile {

enum class Reason : std::uint8_t {
  kMissingInLedger,       // the statement has it, our ledger does not
  kMissingInStatement,    // our ledger has it, the statement (covering its date) does not
  kAmountMismatch,        // same item, amounts differ beyond the tolerance
  kFeeMismatch,           // same item, fees differ beyond the tolerance
  kDuplicateInStatement,  // the statement has it twice (or an earlier statement had it already)
  kOutsideDateWindow,     // same item, dated outside the window
  kCurrencyMismatch,      // same reference, another currency
};
inline constexpr Reason kAllReasons[] = {Reason::kMissingInLedger,       Reason::kMissingInStatement,
                                         Reason::kAmountMismatch,        Reason::kFeeMismatch,
                                         Reason::kDuplicateInStatement,  Reason::kOutsideDateWindow,
                                         Reason::kCurrencyMismatch};
std::string_view reason_name(Reason reason);  // "missing_in_ledger", ...
Result<Reason> parse_reason(std::string_view name);

struct Tolerance {
  Minor amount = 0;     // |ours - theirs| <= amount counts as equal
  int window_days = 2;  // |our date - their date| <= window_days
  bool operator==(const Tolerance&) const = default;
};

struct MatchConfig {
  Tolerance defaults;
  std::map<std::string, Tolerance> by_currency;
  std::map<std::string, Tolerance> by_merchant;  // wins over by_currency
  std::size_t max_group = 8;  // most items one side of a one-to-many / many-to-one sum may have
  // Settlement grace: a payout dated after this day (its payout date plus the
  // settle days has not passed yet) is not expected in a bank statement, so
  // it is not raised as missing_in_statement. nullopt = every payout is due.
  std::optional<Date> due_through;

  const Tolerance& tolerance(std::string_view merchant_id, std::string_view currency) const;
};
// {"amount": 0, "window_days": 2, "max_group": 8,
//  "currencies": {"JPY": {"amount": 1}}, "merchants": {"m1": {"window_days": 5}}}
// Amounts are minor units; a key left out keeps the default.
Result<MatchConfig> parse_match_config_json(std::string_view json);

struct Finding {
  Reason reason = Reason::kMissingInLedger;
  std::string subject;  // "payout:<ref>", "event:<merchant>/<event_id>", "batch:<merchant>/<date>/<cur>", "bank:<stmt>@<where>"
  std::string merchant_id;  // "" when unknown (money the ledger does not know)
  std::string currency;
  Minor expected = 0;  // ours (0 when missing in the ledger)
  Minor actual = 0;    // theirs (0 when missing in the statement)
  Minor drift = 0;     // the unexplained amount, >= 0 (see docs/reconciliation.md)
  std::string our_ref;
  std::string their_ref;  // the statement's reference or location
  std::string detail;
};

struct Match {
  std::string rule;    // exact_reference, amount_date, one_to_many, many_to_one, event_reference, batch_totals
  int confidence = 0;  // percent
  std::vector<std::string> ours;    // subjects
  std::vector<std::string> theirs;  // statement locations
};

struct MatchResult {
  std::vector<Match> matches;
  std::vector<Finding> findings;
  std::vector<std::string> matched_subjects;  // ours that found their counterpart
  std::int64_t items = 0;                     // statement items considered
};

// Bank statements against payouts. `payouts` are all known payouts (a
// reference may name any of them); only those with a payout date inside a
// statement's period, in a currency the statement carries, are expected in
// it. `already_matched` holds payout subjects matched by earlier statements.
MatchResult match_bank(const std::vector<BankStatement>& statements, const std::vector<Payout>& payouts,
                       const std::set<std::string>& already_matched, const MatchConfig& config);

// An event journal as the ledger holds it.
struct LedgerEvent {
  std::string merchant_id;
  std::string ref;  // event id
  std::string type;
  std::string currency;
  Minor amount = 0;
  Minor fee = 0;
  Date batch_date;
  Date settle_date;
};

// Acquirer report against the ledger's events and closed batches. Expected
// in the report: the events settling in a batch it has a total line for (or,
// without total lines, in a (merchant, batch date) its lines name).
MatchResult match_acquirer(const AcquirerReport& report, const std::vector<LedgerEvent>& events,
                           const std::vector<model::BatchSummary>& batches, const MatchConfig& config);

// Our payout reference inside free text (an MT940 :86: "EREF+PO-..."), or "".
std::string find_payout_reference(std::string_view text);

}  // namespace settle::reconcile
