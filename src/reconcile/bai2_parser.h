// BAI2 (BAI Cash Management Balance Reporting Specifications, version 2):
// the North American bank statement file.
//
// Records: 01 file header, 02 group header (as-of date, currency), 03 account
// identifier (account, currency, status and summary amounts), 16 transaction
// detail (type code, amount, funds type with its availability fields, bank
// reference, customer reference, free text), 88 continuation of any record,
// 49 account trailer, 98 group trailer, 99 file trailer. A record ends at
// its line end or at '/'; several records may share a line ("/ " before the
// next record code), LF or CRLF. An 88 continues the previous record's
// fields (or, once a 16 has reached its text, its text, joined with a space);
// a line that starts with no record code (a 16's text wrapped onto the next
// line) continues the previous record.
//
// Amounts carry no decimal point: they are minor units of the account's
// currency (03, else 02, else USD; ISO 4217 exponent implied), exactly.
// Balances and totals may be signed; a 16's amount is unsigned and its type
// code gives the direction: 100-399 and 920-959 credit, 400-699 and 960-999
// debit, 890 non-monetary (status INFO).
//
// Checked: the record order, every 49/98/99 control total (the algebraic sum
// of the amounts of the 03 and 16 records below it, availability fields
// excluded) and record count (88s included), the number of accounts and
// groups, version 2 in the 01 record, dates YYMMDD, known currencies.
//
// Each account of each group becomes one BankStatement: id
// "<file id>/<account>/<as-of date>", opening = type 010 (opening ledger),
// closing = 015 (closing ledger), period = the as-of date, one BOOK entry per
// 16 (booking date = the as-of date, value date = a funds type V date when
// given; entry_ref = the customer reference, bank_ref = the bank reference,
// info = the text).
//
// Errors (kInvalidArgument) name the 1-based line, the record and what was
// expected, e.g. "bai2 line 7: 16: amount '12.50' is not digits (BAI2
// amounts have no decimal point)".
#pragma once

#include <string_view>
#include <vector>

#include "reconcile/statement.h"

namespace settle::reconcile {

Result<std::vector<BankStatement>> parse_bai2(std::string_view text);

}  // namespace settle::reconcile
