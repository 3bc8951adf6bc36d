// Acquirer settlement reports (CSV): per-transaction lines whose reference is
// our event id, and per-batch total lines. The columns are configurable
// (CsvMapping); the default layout, written by acquirers that follow ours and
// by `settled` tests, is
//
//   record_type,merchant_id,reference,type,currency,gross,fee,net,batch_date,count
//   transaction,m1,e-1,capture,EUR,100.00,1.60,98.40,2026-03-28,
//   batch_total,m1,,,EUR,100.00,1.60,98.40,2026-03-28,1
//
// Amounts are decimals in major units ("1.60", "1,60" with ';' delimiters),
// converted exactly to minor units with the currency's exponent. RFC 4180
// quoting ("a, b", "say ""hi""", newlines inside quotes) is understood.
//
// Errors (kInvalidArgument) name the 1-based line where the record starts
// and the column, e.g. "acquirer csv line 7: column 'gross': '12.x' is not an amount ...".
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "reconcile/statement.h"

namespace settle::reconcile {

struct CsvMapping {
  std::string name = "default";
  char delimiter = ',';
  // Column telling transaction lines from batch totals; "" = every line is a
  // transaction.
  std::string record_type = "record_type";
  std::string transaction_value = "transaction";
  std::string total_value = "batch_total";
  std::string merchant_id = "merchant_id";  // "" = the merchant given to the parser
  std::string reference = "reference";
  std::string type = "type";
  std::string currency = "currency";
  // Amount columns are summed; a name starting with '-' is subtracted
  // (Adyen's "Gross Credit (GC)" and "-Gross Debit (GC)"). Empty cells are 0.
  std::vector<std::string> gross = {"gross"};
  std::vector<std::string> fee = {"fee"};
  std::vector<std::string> net = {"net"};
  std::string batch_date = "batch_date";  // its first 10 characters, YYYY-MM-DD
  std::string count = "count";
  // The acquirer's type names -> ours (capture, refund, chargeback,
  // chargeback_reversal, adjustment). Empty: the column holds our names.
  // A line whose type is not in a non-empty map (fees, payouts, transfers) is
  // skipped and counted.
  std::map<std::string, std::string> types;
};

// Built-in mappings: "default" (above), "adyen" (Settlement Details Report),
// "stripe" (balance/settlement report: balance_transaction_id, reporting_category).
Result<CsvMapping> builtin_mapping(std::string_view name);
// A mapping as JSON: {"delimiter":";","reference":"Ref","gross":["Amount"],
// "types":{"Sale":"capture"}, ...}; absent keys keep the default's values.
Result<CsvMapping> parse_mapping_json(std::string_view json);

struct AcquirerParseStats {
  std::int64_t skipped_lines = 0;  // types outside the mapping
};

Result<AcquirerReport> parse_acquirer_csv(std::string_view text, const CsvMapping& mapping,
                                          std::string_view default_merchant = {},
                                          AcquirerParseStats* stats = nullptr);

}  // namespace settle::reconcile
