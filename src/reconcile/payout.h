// Payouts out: the stable payout reference of a closed batch and the
// ISO 20022 pain.001 credit-transfer file that instructs the bank to pay.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/money.h"
#include "common/result.h"
#include "common/time.h"
#include "model/batch.h"

namespace settle::reconcile {

// "PO-YYYYMMDD-CUR-" + 16 lower-case hex digits of XXH3-64 over
// "merchant_id\x1fYYYY-MM-DD\x1fCUR": 32 characters, deterministic from the
// batch's identity (merchant_id, batch_date, currency), within ISO 20022's
// Max35Text and SEPA's EndToEndId alphabet ([A-Za-z0-9-]). The date in it is
// the batch date (one payout per batch), not the payout date.
std::string payout_reference(std::string_view merchant_id, Date batch_date, std::string_view currency);

struct Payout {
  std::string reference;
  std::string merchant_id;
  Date batch_date;
  std::string currency;
  Minor amount = 0;  // > 0
  Date payout_date;
};

// The payouts of closed batches with a payout > 0, sorted by merchant,
// currency, batch date.
std::vector<Payout> payouts_of(const std::vector<model::BatchSummary>& batches);

struct Pain001Options {
  std::string message_id;  // GrpHdr/MsgId, <= 35 chars; default "SETTLE-PAYOUTS-YYYYMMDD"
  Timestamp created_at;    // GrpHdr/CreDtTm
  std::string debtor_name = "Settlement platform";
  // The platform's own account. When not configured a documented placeholder
  // (Othr/Id "PLATFORM-SETTLEMENT-ACCOUNT") is written.
  std::string debtor_iban;
  std::string debtor_bic;  // "" = FinInstnId/Othr/Id NOTPROVIDED
};

// pain.001.001.09 CustomerCreditTransferInitiation: GrpHdr (MsgId, CreDtTm,
// NbOfTxs, CtrlSum, InitgPty), one PmtInf per currency (PmtMtd TRF,
// ReqdExctnDt = the payout date, NbOfTxs, CtrlSum, Dbtr, DbtrAcct, DbtrAgt)
// with one CdtTrfTxInf per payout (PmtId/InstrId and EndToEndId = the payout
// reference, Amt/InstdAmt@Ccy with the currency's exponent, Cdtr/Nm = the
// merchant id, RmtInf/Ustrd). Merchants have no bank account in the model
// (SETTLEMENT_RULES §2), so CdtrAcct is a placeholder, Othr/Id
// "MERCHANT:<merchant_id>" (cut to 34 characters) with SchmeNm/Prtry
// "SETTLE-MERCHANT-ID", for the bank-facing system to resolve.
// kInvalidArgument when the payouts do not share one payout date.
Result<std::string> write_pain001(const std::vector<Payout>& payouts, const Pain001Options& options);

// CSV: reference,merchant_id,batch_date,currency,amount,payout_date with the
// amount as a decimal in major units.
std::string write_payouts_csv(const std::vector<Payout>& payouts);

}  // namespace settle::reconcile
