// ISO 20022 camt.053 (BankToCustomerStatement), versions 001.02 and later:
// the namespace's version is not checked beyond "camt.053", since the
// elements read here keep their names and places across versions.
//
// Read: Stmt/Id, Acct (IBAN or Othr/Id, Ccy), FrToDt, Bal (OPBD/PRCD as
// opening, CLBD as closing), and each Ntry: Amt@Ccy, CdtDbtInd, RvslInd, Sts
// (text in 001.02-.08, Sts/Cd later), BookgDt and ValDt (Dt or DtTm: the date
// as written), AcctSvcrRef, NtryRef, AddtlNtryInf, and every
// NtryDtls/TxDtls with Refs/EndToEndId, Refs/AcctSvcrRef or TxId, its own
// Amt (or AmtDtls/TxAmt/Amt) and RmtInf (Ustrd, or Strd/CdtrRefInf/Ref).
//
// Errors (kInvalidArgument) name the XPath of the offending element, with
// 1-based positions, and what was expected there, e.g.
// "camt.053 /Document/BkToCstmrStmt/Stmt[1]/Ntry[2]/CdtDbtInd: expected CRDT or DBIT, found 'X'".
// No DTD is loaded and no entity is expanded; the network is never used.
#pragma once

#include <string_view>
#include <vector>

#include "reconcile/statement.h"

namespace settle::reconcile {

Result<std::vector<BankStatement>> parse_camt053(std::string_view xml);

}  // namespace settle::reconcile
