#include "reconcile/camt053_parser.h"

#include <fmt/format.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include <cstring>
#include <limits>
#include <memory>
#include <string>

namespace settle::reconcile {
namespace {

using Node = xmlNode*;

struct DocFree {
  void operator()(xmlDoc* d) const { xmlFreeDoc(d); }
};

bool is_named(Node n, const char* name) {
  return n != nullptr && n->type == XML_ELEMENT_NODE &&
         std::strcmp(reinterpret_cast<const char*>(n->name), name) == 0;
}

Node child(Node parent, const char* name) {
  if (parent == nullptr) return nullptr;
  for (Node c = parent->children; c != nullptr; c = c->next) {
    if (is_named(c, name)) return c;
  }
  return nullptr;
}

std::vector<Node> children(Node parent, const char* name) {
  std::vector<Node> out;
  if (parent == nullptr) return out;
  for (Node c = parent->children; c != nullptr; c = c->next) {
    if (is_named(c, name)) out.push_back(c);
  }
  return out;
}

// Follows a path of element names ("Acct/Id/IBAN"); nullptr if any is absent.
Node path(Node n, std::string_view p) {
  while (n != nullptr && !p.empty()) {
    const std::size_t slash = p.find('/');
    const std::string name(p.substr(0, slash));
    n = child(n, name.c_str());
    p = slash == std::string_view::npos ? std::string_view{} : p.substr(slash + 1);
  }
  return n;
}

std::string trim(std::string s) {
  const char* ws = " \t\r\n";
  const std::size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return {};
  const std::size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

std::string text(Node n) {
  if (n == nullptr) return {};
  xmlChar* c = xmlNodeGetContent(n);
  if (c == nullptr) return {};
  std::string s(reinterpret_cast<const char*>(c));
  xmlFree(c);
  return trim(std::move(s));
}

std::string attr(Node n, const char* name) {
  if (n == nullptr) return {};
  xmlChar* c = xmlGetProp(n, reinterpret_cast<const xmlChar*>(name));
  if (c == nullptr) return {};
  std::string s(reinterpret_cast<const char*>(c));
  xmlFree(c);
  return trim(std::move(s));
}

Error at(const std::string& xpath, const std::string& what) {
  return make_error(ErrorCode::kInvalidArgument, fmt::format("camt.053 {}: {}", xpath, what));
}

std::string indexed(const std::string& base, const char* name, std::size_t i) {
  return fmt::format("{}/{}[{}]", base, name, i + 1);
}

// Dt or DtTm under `n` (e.g. BookgDt): the calendar date as written.
Result<std::optional<Date>> date_choice(Node n, const std::string& xpath) {
  if (n == nullptr) return std::optional<Date>{};
  Node d = child(n, "Dt");
  Node dt = child(n, "DtTm");
  if (d == nullptr && dt == nullptr) return at(xpath, "expected a Dt or DtTm element");
  const std::string s = text(d != nullptr ? d : dt);
  const std::string where = xpath + (d != nullptr ? "/Dt" : "/DtTm");
  if (s.size() < 10) return at(where, fmt::format("expected a date YYYY-MM-DD, found '{}'", s));
  auto r = parse_date(std::string_view(s).substr(0, 10));
  if (!r.ok()) return at(where, fmt::format("expected a date YYYY-MM-DD, found '{}'", s));
  return std::optional<Date>{*r};
}

struct Amount {
  Minor value = 0;
  std::string currency;
};

// An element like <Amt Ccy="EUR">12.30</Amt>.
Result<Amount> amount_of(Node amt, const std::string& xpath) {
  if (amt == nullptr) return at(xpath, "expected an amount element with a Ccy attribute");
  Amount a;
  a.currency = attr(amt, "Ccy");
  if (a.currency.empty()) return at(xpath, "expected a Ccy attribute (ISO 4217 code)");
  auto cur = find_currency(a.currency);
  if (!cur.ok()) return at(xpath + "/@Ccy", fmt::format("expected an ISO 4217 currency, found '{}'", a.currency));
  SETTLE_ASSIGN_OR_RETURN(a.value, parse_decimal_minor(text(amt), cur->exponent(), "camt.053 " + xpath));
  if (a.value < 0) return at(xpath, "expected a non-negative amount (the sign is CdtDbtInd)");
  return a;
}

Result<bool> is_credit(Node ind, const std::string& xpath) {
  const std::string s = text(ind);
  if (s == "CRDT") return true;
  if (s == "DBIT") return false;
  if (ind == nullptr) return at(xpath, "expected a CdtDbtInd element (CRDT or DBIT)");
  return at(xpath, fmt::format("expected CRDT or DBIT, found '{}'", s));
}

Result<BankBalance> balance_of(Node bal, const std::string& xpath) {
  BankBalance b;
  SETTLE_ASSIGN_OR_RETURN(Amount a, amount_of(child(bal, "Amt"), xpath + "/Amt"));
  // Some banks leave CdtDbtInd out of a balance (it is mandatory in the
  // schema); balances are informative here, so a missing one reads as CRDT.
  bool credit = true;
  if (Node ind = child(bal, "CdtDbtInd"); ind != nullptr) {
    SETTLE_ASSIGN_OR_RETURN(credit, is_credit(ind, xpath + "/CdtDbtInd"));
  }
  b.amount = credit ? a.value : -a.value;
  b.currency = a.currency;
  SETTLE_ASSIGN_OR_RETURN(std::optional<Date> d, date_choice(child(bal, "Dt"), xpath + "/Dt"));
  if (!d) return at(xpath, "expected a Dt element");
  b.date = *d;
  return b;
}

std::string remittance_of(Node rmt) {
  if (rmt == nullptr) return {};
  std::string out;
  for (Node u : children(rmt, "Ustrd")) {
    if (!out.empty()) out += ' ';
    out += text(u);
  }
  for (Node s : children(rmt, "Strd")) {
    const std::string ref = text(path(s, "CdtrRefInf/Ref"));
    if (ref.empty()) continue;
    if (!out.empty()) out += ' ';
    out += ref;
  }
  return out;
}

Result<BankTransaction> transaction_of(Node tx, const std::string& xpath, const BankEntry& entry) {
  BankTransaction t;
  t.location = xpath;
  Node refs = child(tx, "Refs");
  t.end_to_end_id = text(child(refs, "EndToEndId"));
  if (t.end_to_end_id == "NOTPROVIDED") t.end_to_end_id.clear();
  t.reference = text(child(refs, "AcctSvcrRef"));
  if (t.reference.empty()) t.reference = text(child(refs, "TxId"));
  t.remittance = remittance_of(child(tx, "RmtInf"));
  std::string amt_path = xpath + "/Amt";
  Node amt = child(tx, "Amt");
  if (amt == nullptr) {
    amt = path(tx, "AmtDtls/TxAmt/Amt");
    amt_path = xpath + "/AmtDtls/TxAmt/Amt";
  }
  if (amt != nullptr) {
    SETTLE_ASSIGN_OR_RETURN(Amount a, amount_of(amt, amt_path));
    // An amount in another currency than the entry's (a foreign-currency
    // transfer) cannot be compared with the entry; it is left out.
    if (a.currency == entry.currency) {
      bool credit = entry.amount >= 0;
      if (Node ind = child(tx, "CdtDbtInd"); ind != nullptr) {
        SETTLE_ASSIGN_OR_RETURN(credit, is_credit(ind, xpath + "/CdtDbtInd"));
      }
      t.amount = credit ? a.value : -a.value;
    }
  }
  return t;
}

Result<BankEntry> entry_of(Node ntry, const std::string& xpath) {
  BankEntry e;
  e.location = xpath;
  SETTLE_ASSIGN_OR_RETURN(Amount a, amount_of(child(ntry, "Amt"), xpath + "/Amt"));
  SETTLE_ASSIGN_OR_RETURN(bool credit, is_credit(child(ntry, "CdtDbtInd"), xpath + "/CdtDbtInd"));
  e.currency = a.currency;
  e.amount = credit ? a.value : -a.value;
  e.reversal = text(child(ntry, "RvslInd")) == "true";
  Node sts = child(ntry, "Sts");
  if (sts != nullptr) {
    Node cd = child(sts, "Cd");
    e.status = text(cd != nullptr ? cd : sts);
  }
  if (e.status != "BOOK" && e.status != "PDNG" && e.status != "INFO" && e.status != "FUTR") {
    return at(xpath + "/Sts", fmt::format("expected BOOK, PDNG, INFO or FUTR, found '{}'", e.status));
  }
  SETTLE_ASSIGN_OR_RETURN(e.booking_date, date_choice(child(ntry, "BookgDt"), xpath + "/BookgDt"));
  SETTLE_ASSIGN_OR_RETURN(e.value_date, date_choice(child(ntry, "ValDt"), xpath + "/ValDt"));
  e.bank_ref = text(child(ntry, "AcctSvcrRef"));
  e.entry_ref = text(child(ntry, "NtryRef"));
  e.info = text(child(ntry, "AddtlNtryInf"));
  const std::vector<Node> details = children(ntry, "NtryDtls");
  for (std::size_t d = 0; d < details.size(); ++d) {
    const std::string dpath = indexed(xpath, "NtryDtls", d);
    const std::vector<Node> txs = children(details[d], "TxDtls");
    for (std::size_t i = 0; i < txs.size(); ++i) {
      SETTLE_ASSIGN_OR_RETURN(BankTransaction t, transaction_of(txs[i], indexed(dpath, "TxDtls", i), e));
      e.transactions.push_back(std::move(t));
    }
  }
  return e;
}

Result<BankStatement> statement_of(Node stmt, const std::string& xpath) {
  BankStatement s;
  s.id = text(child(stmt, "Id"));
  if (s.id.empty()) return at(xpath + "/Id", "expected the statement's Id");
  Node acct = child(stmt, "Acct");
  s.account = text(path(acct, "Id/IBAN"));
  if (s.account.empty()) s.account = text(path(acct, "Id/Othr/Id"));
  s.currency = text(child(acct, "Ccy"));
  if (Node fr = child(stmt, "FrToDt"); fr != nullptr) {
    const std::string f = text(child(fr, "FrDtTm")), t = text(child(fr, "ToDtTm"));
    if (f.size() >= 10) {
      if (auto d = parse_date(std::string_view(f).substr(0, 10)); d.ok()) s.from = *d;
    }
    if (t.size() >= 10) {
      if (auto d = parse_date(std::string_view(t).substr(0, 10)); d.ok()) s.to = *d;
    }
  }
  const std::vector<Node> bals = children(stmt, "Bal");
  for (std::size_t i = 0; i < bals.size(); ++i) {
    const std::string code = text(path(bals[i], "Tp/CdOrPrtry/Cd"));
    if (code != "OPBD" && code != "PRCD" && code != "CLBD") continue;
    SETTLE_ASSIGN_OR_RETURN(BankBalance b, balance_of(bals[i], indexed(xpath, "Bal", i)));
    if (code == "CLBD") {
      s.closing = b;
    } else if (!s.opening || code == "OPBD") {
      s.opening = b;
    }
  }
  if (s.currency.empty() && s.opening) s.currency = s.opening->currency;
  const std::vector<Node> entries = children(stmt, "Ntry");
  for (std::size_t i = 0; i < entries.size(); ++i) {
    SETTLE_ASSIGN_OR_RETURN(BankEntry e, entry_of(entries[i], indexed(xpath, "Ntry", i)));
    s.entries.push_back(std::move(e));
  }
  if (!s.from || !s.to) {
    // Without FrToDt the period is the span of booking (else value) dates.
    std::optional<Date> lo, hi;
    for (const BankEntry& e : s.entries) {
      const std::optional<Date> d = e.booking_date ? e.booking_date : e.value_date;
      if (!d) continue;
      if (!lo || *d < *lo) lo = d;
      if (!hi || *d > *hi) hi = d;
    }
    if (!s.from) s.from = lo ? lo : (s.opening ? std::optional<Date>(s.opening->date) : std::nullopt);
    if (!s.to) s.to = hi ? hi : (s.closing ? std::optional<Date>(s.closing->date) : std::nullopt);
  }
  return s;
}

void silence(void*, const char*, ...) {}

}  // namespace

Result<std::vector<BankStatement>> parse_camt053(std::string_view xml) {
  if (xml.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    return make_error(ErrorCode::kInvalidArgument, "camt.053: document too large");
  }
  xmlSetGenericErrorFunc(nullptr, silence);
  std::unique_ptr<xmlDoc, DocFree> doc(
      xmlReadMemory(xml.data(), static_cast<int>(xml.size()), "statement.xml", nullptr,
                    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING));
  if (!doc) {
    const xmlError* err = xmlGetLastError();
    if (err != nullptr && err->message != nullptr) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("camt.053: not well-formed XML: line {}: {}", err->line,
                                    trim(err->message)));
    }
    return make_error(ErrorCode::kInvalidArgument, "camt.053: not well-formed XML");
  }
  Node root = xmlDocGetRootElement(doc.get());
  if (!is_named(root, "Document")) {
    return at("/", fmt::format("expected a Document root element, found '{}'",
                               root != nullptr ? reinterpret_cast<const char*>(root->name) : ""));
  }
  const char* ns = root->ns != nullptr ? reinterpret_cast<const char*>(root->ns->href) : "";
  if (std::strstr(ns, "camt.053") == nullptr) {
    return at("/Document", fmt::format("expected a camt.053 namespace, found '{}'", ns));
  }
  Node body = child(root, "BkToCstmrStmt");
  if (body == nullptr) return at("/Document", "expected a BkToCstmrStmt element");
  const std::vector<Node> stmts = children(body, "Stmt");
  if (stmts.empty()) return at("/Document/BkToCstmrStmt", "expected at least one Stmt element");
  std::vector<BankStatement> out;
  for (std::size_t i = 0; i < stmts.size(); ++i) {
    SETTLE_ASSIGN_OR_RETURN(BankStatement s, statement_of(stmts[i], indexed("/Document/BkToCstmrStmt", "Stmt", i)));
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace settle::reconcile
