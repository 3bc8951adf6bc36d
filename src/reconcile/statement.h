// External statements as plain values: what a bank (camt.053, MT940) or an
// acquirer (settlement CSV) says happened, in minor units of each currency.
// Every parser turns its format into these; the matcher reads only these.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/money.h"
#include "common/result.h"
#include "common/time.h"

namespace settle::reconcile {

enum class StatementFormat : std::uint8_t { kCamt053, kMt940, kAcquirerCsv, kBai2 };
std::string_view format_name(StatementFormat format);  // "camt053", "mt940", "acquirer-csv", "bai2"
// "camt053" | "mt940" | "acquirer-csv" | "bai2"; kInvalidArgument otherwise.
Result<StatementFormat> parse_format_name(std::string_view name);
// Guesses the format from the first bytes: an XML document with a camt.053
// namespace, a SWIFT block or ":20:" tag, a BAI2 file header ("01," and a
// "/"-terminated record), or a CSV header line.
Result<StatementFormat> detect_format(std::string_view content);

// A decimal amount ("1234.56", "1234,56", "0,", ".11", "-5") as minor units of
// a currency with `exponent` digits, exactly: more fraction digits than the
// exponent are refused unless they are zeros. `what` names the place for the
// error message ("line 7: :61: amount").
Result<Minor> parse_decimal_minor(std::string_view text, int exponent, std::string_view what);

// One transaction inside a bank entry (camt.053 NtryDtls/TxDtls). An entry
// without transaction details is one transaction carrying the entry's figures.
struct BankTransaction {
  std::string end_to_end_id;  // Refs/EndToEndId (our payout reference), "" when absent/NOTPROVIDED
  std::string reference;      // Refs/AcctSvcrRef or TxId
  std::optional<Minor> amount;  // signed (credit +), in the entry's currency; absent = not given
  std::string remittance;     // RmtInf/Ustrd (joined) or structured reference
  std::string location;       // XPath of the TxDtls
};

struct BankEntry {
  std::string currency;
  Minor amount = 0;            // signed: credit +, debit -
  std::string status = "BOOK";  // BOOK, PDNG, INFO (camt) ; MT940 entries are BOOK
  std::optional<Date> booking_date;
  std::optional<Date> value_date;
  std::string bank_ref;    // AcctSvcrRef (camt) or the :61: bank reference after "//"
  std::string entry_ref;   // NtryRef (camt) or the :61: customer reference
  std::string info;        // :86: text or entry-level AddtlNtryInf
  bool reversal = false;
  std::vector<BankTransaction> transactions;
  std::string location;    // "line 12" or an XPath
};

struct BankBalance {
  Minor amount = 0;  // signed: credit +
  std::string currency;
  Date date;
};

struct BankStatement {
  std::string id;          // Stmt/Id or :20: (+ :28C:)
  std::string account;     // IBAN / other id / :25:
  std::string currency;    // the account's currency when known
  std::optional<BankBalance> opening;  // OPBD/PRCD or :60F:/:60M:
  std::optional<BankBalance> closing;  // CLBD or :62F:/:62M:
  bool closing_is_final = true;        // false for an intermediate :62M:
  std::optional<Date> from;  // FrToDt, or the earliest booking date
  std::optional<Date> to;
  std::vector<BankEntry> entries;
};

// Acquirer settlement report: per-transaction lines and per-batch totals.
struct AcquirerLine {
  std::string merchant_id;
  std::string reference;  // our event id
  std::string type;       // capture, refund, chargeback, chargeback_reversal, adjustment (normalized)
  std::string currency;
  Minor gross = 0;        // >= 0 except adjustments
  Minor fee = 0;
  Minor net = 0;
  std::optional<Date> batch_date;
  int line = 0;
};

struct AcquirerBatchTotal {
  std::string merchant_id;
  std::string currency;
  Date batch_date;
  std::int64_t count = 0;
  Minor gross = 0;  // captures - refunds - chargebacks + reversals + adjustments
  Minor fee = 0;
  Minor net = 0;
  int line = 0;
};

struct AcquirerReport {
  std::vector<AcquirerLine> lines;
  std::vector<AcquirerBatchTotal> totals;
};

}  // namespace settle::reconcile
