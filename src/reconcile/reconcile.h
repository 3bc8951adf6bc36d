// The library entry point of reconciliation: parse one statement (or one
// statement split over several files), match it against the ledger, and
// record the run in the store. The CLI (`settled recon run`), the scheduled
// `recon` role and `POST /v1/statements` all call run().
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ledger/ledger.h"
#include "reconcile/acquirer_csv_parser.h"
#include "reconcile/matcher.h"
#include "reconcile/recon_store.h"
#include "reconcile/statement.h"

namespace settle::reconcile {

struct RunOptions {
  std::optional<StatementFormat> format;  // nullopt = detect from the content
  CsvMapping csv_mapping;                 // acquirer CSV only
  std::string merchant_id;                // acquirer CSV whose mapping has no merchant column
  MatchConfig match;
  Timestamp now;
};

struct RunReport {
  StatementFormat format = StatementFormat::kCamt053;
  std::string statement_key;
  std::string statement_ids;
  std::int64_t items = 0;
  std::vector<Match> matches;
  std::vector<Finding> findings;  // everything found, including findings already open
  RunOutcome outcome;             // what the store did (duplicate_statement: nothing)
};

// Parses a statement without matching it (for tests, fuzzing and `--dry-run`).
struct ParsedStatement {
  StatementFormat format = StatementFormat::kCamt053;
  std::vector<BankStatement> bank;
  AcquirerReport acquirer;
};
Result<ParsedStatement> parse_statement(const std::vector<std::string>& contents, const RunOptions& options);

// Errors: a parse error (kInvalidArgument, naming the line or XPath), or a
// ledger/store error. `contents` are the bytes of the file(s) of one
// statement, in order (a statement split over files is joined).
Result<RunReport> run(ledger::Ledger& ledger, ReconStore& store, const std::vector<std::string>& contents,
                      const RunOptions& options);

// Every payout of the ledger's closed batches (with its reference).
Result<std::vector<Payout>> ledger_payouts(ledger::Ledger& ledger);

}  // namespace settle::reconcile
