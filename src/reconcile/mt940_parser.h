// SWIFT MT940 customer statements: one file may hold many messages, with or
// without the SWIFT envelope ({1:}{2:}{4: ... -}), LF or CRLF line ends, and
// bank header lines before the first :20: (ignored).
//
// Read: :20: (statement id), :25: (account), :28C:/:28: (sequence),
// :60F:/:60M: (opening), each :61: (value date, optional entry date, mark C,
// D, RC or RD, optional funds code, amount with a comma (or point) decimal
// mark, transaction type, customer reference, //bank reference,
// supplementary details on the next line) with the :86: that follows it over
// as many lines as it takes, and :62F:/:62M: (closing). A reversal RC books as
// a debit, RD as a credit. Each message must satisfy opening + entries =
// closing, in minor units of the :60: currency.
//
// Errors (kInvalidArgument) name the 1-based line and the tag, e.g.
// "mt940 line 14: :61: expected a mark C, D, RC or RD after the dates, found 'X'".
#pragma once

#include <string_view>
#include <vector>

#include "reconcile/statement.h"

namespace settle::reconcile {

Result<std::vector<BankStatement>> parse_mt940(std::string_view text);

// A statement split across messages or files (:62M: closing one part, :60M:
// opening the next): joins consecutive parts of one account whose opening
// equals the previous part's closing. Parts of different accounts stay apart.
// kInvalidArgument when an intermediate closing does not meet the next opening.
Result<std::vector<BankStatement>> join_statement_parts(std::vector<BankStatement> parts);

}  // namespace settle::reconcile
