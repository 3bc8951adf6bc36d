#include "reconcile/payout.h"

#include <fmt/format.h>
#include <libxml/xmlwriter.h>
#include <xxhash.h>

#include <algorithm>
#include <map>
#include <memory>

namespace settle::reconcile {

std::string payout_reference(std::string_view merchant_id, Date batch_date, std::string_view currency) {
  const std::string date = format_date(batch_date);
  const std::string key = fmt::format("{}\x1f{}\x1f{}", merchant_id, date, currency);
  const XXH64_hash_t h = XXH3_64bits(key.data(), key.size());
  std::string compact;
  for (char c : date) {
    if (c != '-') compact += c;
  }
  return fmt::format("PO-{}-{}-{:016x}", compact, currency, static_cast<std::uint64_t>(h));
}

std::vector<Payout> payouts_of(const std::vector<model::BatchSummary>& batches) {
  std::vector<Payout> out;
  for (const model::BatchSummary& b : batches) {
    if (b.payout <= 0) continue;
    Payout p;
    p.merchant_id = b.key.merchant_id.str();
    p.batch_date = b.key.batch_date;
    p.currency = b.key.currency;
    p.amount = b.payout;
    p.payout_date = b.payout_date;
    p.reference = payout_reference(p.merchant_id, p.batch_date, p.currency);
    out.push_back(std::move(p));
  }
  std::sort(out.begin(), out.end(), [](const Payout& a, const Payout& b) {
    return std::tie(a.merchant_id, a.currency, a.batch_date) < std::tie(b.merchant_id, b.currency, b.batch_date);
  });
  return out;
}

namespace {

struct WriterFree {
  void operator()(xmlTextWriter* w) const { xmlFreeTextWriter(w); }
};
struct BufferFree {
  void operator()(xmlBuffer* b) const { xmlBufferFree(b); }
};

const xmlChar* x(const char* s) { return reinterpret_cast<const xmlChar*>(s); }

class Writer {
 public:
  explicit Writer(xmlTextWriter* w) : w_(w) {}
  void open(const char* name) { ok_ = ok_ && xmlTextWriterStartElement(w_, x(name)) >= 0; }
  void close() { ok_ = ok_ && xmlTextWriterEndElement(w_) >= 0; }
  void attr(const char* name, const std::string& value) {
    ok_ = ok_ && xmlTextWriterWriteAttribute(w_, x(name), x(value.c_str())) >= 0;
  }
  void leaf(const char* name, const std::string& value) {
    ok_ = ok_ && xmlTextWriterWriteElement(w_, x(name), x(value.c_str())) >= 0;
  }
  bool ok() const { return ok_; }

 private:
  xmlTextWriter* w_;
  bool ok_ = true;
};

// An exact decimal sum over currencies with different exponents: CtrlSum is
// a plain decimal (ISO 20022 DecimalNumber), so it is kept in units of 10^-4
// (the largest exponent, CLF's) and printed without trailing zeros beyond 2.
std::string decimal_sum(const std::vector<const Payout*>& ps) {
  __int128 units = 0;
  for (const Payout* p : ps) {
    __int128 v = p->amount;
    const int exp = find_currency(p->currency)->exponent();
    for (int k = exp; k < 4; ++k) v *= 10;
    units += v;
  }
  std::string digits;
  __int128 u = units;
  do {
    digits.insert(digits.begin(), static_cast<char>('0' + static_cast<int>(u % 10)));
    u /= 10;
  } while (u != 0);
  while (digits.size() < 5) digits.insert(digits.begin(), '0');
  std::string whole = digits.substr(0, digits.size() - 4), frac = digits.substr(digits.size() - 4);
  while (frac.size() > 2 && frac.back() == '0') frac.pop_back();
  return whole + "." + frac;
}

}  // namespace

Result<std::string> write_pain001(const std::vector<Payout>& payouts, const Pain001Options& options) {
  for (const Payout& p : payouts) {
    if (p.payout_date != payouts.front().payout_date) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("pain.001: payouts of {} and {} in one file", format_date(p.payout_date),
                                    format_date(payouts.front().payout_date)));
    }
    if (!find_currency(p.currency).ok() || p.amount <= 0) {
      return make_error(ErrorCode::kInvalidArgument, fmt::format("pain.001: payout {} has no valid amount", p.reference));
    }
  }
  std::unique_ptr<xmlBuffer, BufferFree> buf(xmlBufferCreate());
  std::unique_ptr<xmlTextWriter, WriterFree> tw(xmlNewTextWriterMemory(buf.get(), 0));
  if (!buf || !tw) return make_error(ErrorCode::kIo, "pain.001: cannot create the XML writer");
  xmlTextWriterSetIndent(tw.get(), 1);
  xmlTextWriterSetIndentString(tw.get(), x("  "));
  Writer w(tw.get());
  if (xmlTextWriterStartDocument(tw.get(), nullptr, "UTF-8", nullptr) < 0) {
    return make_error(ErrorCode::kIo, "pain.001: cannot start the document");
  }
  std::vector<const Payout*> all;
  std::map<std::string, std::vector<const Payout*>> by_currency;
  for (const Payout& p : payouts) {
    all.push_back(&p);
    by_currency[p.currency].push_back(&p);
  }
  const std::string date = payouts.empty() ? format_date(Date{}) : format_date(payouts.front().payout_date);
  std::string compact;
  for (char c : date) {
    if (c != '-') compact += c;
  }
  const std::string msg_id = options.message_id.empty() ? "SETTLE-PAYOUTS-" + compact : options.message_id;
  // ISO DateTime; whole seconds are what banks' validators expect.
  const std::string created = format_rfc3339(Timestamp{options.created_at.ns - options.created_at.ns % kNsPerSecond});

  w.open("Document");
  w.attr("xmlns", "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09");
  w.open("CstmrCdtTrfInitn");
  w.open("GrpHdr");
  w.leaf("MsgId", msg_id.substr(0, 35));
  w.leaf("CreDtTm", created);
  w.leaf("NbOfTxs", std::to_string(payouts.size()));
  w.leaf("CtrlSum", decimal_sum(all));
  w.open("InitgPty");
  w.leaf("Nm", options.debtor_name);
  w.close();
  w.close();  // GrpHdr
  for (const auto& [currency, ps] : by_currency) {
    const int exp = find_currency(currency)->exponent();
    w.open("PmtInf");
    w.leaf("PmtInfId", fmt::format("{}-{}", msg_id.substr(0, 31), currency));
    w.leaf("PmtMtd", "TRF");
    w.leaf("NbOfTxs", std::to_string(ps.size()));
    w.leaf("CtrlSum", decimal_sum(ps));
    w.open("ReqdExctnDt");
    w.leaf("Dt", date);
    w.close();
    w.open("Dbtr");
    w.leaf("Nm", options.debtor_name);
    w.close();
    w.open("DbtrAcct");
    w.open("Id");
    if (!options.debtor_iban.empty()) {
      w.leaf("IBAN", options.debtor_iban);
    } else {
      w.open("Othr");
      w.leaf("Id", "PLATFORM-SETTLEMENT-ACCOUNT");
      w.close();
    }
    w.close();
    w.leaf("Ccy", currency);
    w.close();  // DbtrAcct
    w.open("DbtrAgt");
    w.open("FinInstnId");
    if (!options.debtor_bic.empty()) {
      w.leaf("BICFI", options.debtor_bic);
    } else {
      w.open("Othr");
      w.leaf("Id", "NOTPROVIDED");
      w.close();
    }
    w.close();
    w.close();  // DbtrAgt
    w.leaf("ChrgBr", "SLEV");
    for (const Payout* p : ps) {
      w.open("CdtTrfTxInf");
      w.open("PmtId");
      w.leaf("InstrId", p->reference);
      w.leaf("EndToEndId", p->reference);
      w.close();
      w.open("Amt");
      w.open("InstdAmt");
      w.attr("Ccy", currency);
      if (xmlTextWriterWriteString(tw.get(), x(format_minor(p->amount, exp).c_str())) < 0) {
        return make_error(ErrorCode::kIo, "pain.001: write failed");
      }
      w.close();
      w.close();  // Amt
      w.open("Cdtr");
      w.leaf("Nm", p->merchant_id);
      w.close();
      w.open("CdtrAcct");
      w.open("Id");
      w.open("Othr");
      w.leaf("Id", ("MERCHANT:" + p->merchant_id).substr(0, 34));
      w.open("SchmeNm");
      w.leaf("Prtry", "SETTLE-MERCHANT-ID");
      w.close();
      w.close();  // Othr
      w.close();  // Id
      w.close();  // CdtrAcct
      w.open("RmtInf");
      w.leaf("Ustrd", fmt::format("Settlement {} {} batch {}", p->merchant_id, currency, format_date(p->batch_date))
                          .substr(0, 140));
      w.close();
      w.close();  // CdtTrfTxInf
    }
    w.close();  // PmtInf
  }
  w.close();  // CstmrCdtTrfInitn
  w.close();  // Document
  if (!w.ok() || xmlTextWriterEndDocument(tw.get()) < 0) return make_error(ErrorCode::kIo, "pain.001: write failed");
  tw.reset();
  std::string out(reinterpret_cast<const char*>(xmlBufferContent(buf.get())),
                  static_cast<std::size_t>(xmlBufferLength(buf.get())));
  if (!out.ends_with('\n')) out += '\n';
  return out;
}

std::string write_payouts_csv(const std::vector<Payout>& payouts) {
  std::string out = "reference,merchant_id,batch_date,currency,amount,payout_date\n";
  for (const Payout& p : payouts) {
    out += fmt::format("{},{},{},{},{},{}\n", p.reference, p.merchant_id, format_date(p.batch_date), p.currency,
                       format_minor(p.amount, find_currency(p.currency)->exponent()), format_date(p.payout_date));
  }
  return out;
}

}  // namespace settle::reconcile
