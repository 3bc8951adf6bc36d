#include "reconcile/matcher.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <tuple>

namespace settle::reconcile {

std::string_view reason_name(Reason reason) {
  switch (reason) {
    case Reason::kMissingInLedger: return "missing_in_ledger";
    case Reason::kMissingInStatement: return "missing_in_statement";
    case Reason::kAmountMismatch: return "amount_mismatch";
    case Reason::kFeeMismatch: return "fee_mismatch";
    case Reason::kDuplicateInStatement: return "duplicate_in_statement";
    case Reason::kOutsideDateWindow: return "outside_date_window";
    case Reason::kCurrencyMismatch: return "currency_mismatch";
  }
  return "?";
}

Result<Reason> parse_reason(std::string_view name) {
  for (Reason r : kAllReasons) {
    if (reason_name(r) == name) return r;
  }
  return make_error(ErrorCode::kInvalidArgument,
                    fmt::format("unknown reason '{}' (expected missing_in_ledger, missing_in_statement, "
                                "amount_mismatch, fee_mismatch, duplicate_in_statement, outside_date_window or "
                                "currency_mismatch)",
                                name));
}

const Tolerance& MatchConfig::tolerance(std::string_view merchant_id, std::string_view currency) const {
  if (auto it = by_merchant.find(std::string(merchant_id)); it != by_merchant.end()) return it->second;
  if (auto it = by_currency.find(std::string(currency)); it != by_currency.end()) return it->second;
  return defaults;
}

namespace {

Status read_tolerance(const nlohmann::json& j, Tolerance& t, const std::string& where) {
  if (!j.is_object()) return make_error(ErrorCode::kInvalidArgument, fmt::format("match config {}: expected an object", where));
  for (auto it = j.begin(); it != j.end(); ++it) {
    if ((it.key() == "amount" || it.key() == "window_days") && it.value().is_number_integer() &&
        it.value().get<std::int64_t>() >= 0 && it.value().get<std::int64_t>() <= 1'000'000'000'000) {
      if (it.key() == "amount") {
        t.amount = it.value().get<std::int64_t>();
      } else {
        t.window_days = static_cast<int>(std::min<std::int64_t>(it.value().get<std::int64_t>(), 3660));
      }
    } else if (it.key() != "amount" && it.key() != "window_days" && it.key() != "currencies" &&
               it.key() != "merchants" && it.key() != "max_group") {
      return make_error(ErrorCode::kInvalidArgument, fmt::format("match config {}: unknown key '{}'", where, it.key()));
    } else if (it.key() == "amount" || it.key() == "window_days") {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("match config {}: '{}' must be an integer >= 0", where, it.key()));
    }
  }
  return ok_status();
}

}  // namespace

Result<MatchConfig> parse_match_config_json(std::string_view json) {
  MatchConfig c;
  nlohmann::json j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return make_error(ErrorCode::kInvalidArgument, "match config: expected a JSON object");
  SETTLE_TRY(read_tolerance(j, c.defaults, "(top level)"));
  if (j.contains("max_group")) {
    if (!j["max_group"].is_number_integer() || j["max_group"].get<std::int64_t>() < 1 ||
        j["max_group"].get<std::int64_t>() > 16) {
      return make_error(ErrorCode::kInvalidArgument, "match config: 'max_group' must be an integer 1..16");
    }
    c.max_group = static_cast<std::size_t>(j["max_group"].get<std::int64_t>());
  }
  for (const char* group : {"currencies", "merchants"}) {
    if (!j.contains(group)) continue;
    const nlohmann::json& g = j[group];
    if (!g.is_object()) return make_error(ErrorCode::kInvalidArgument, fmt::format("match config: '{}' must be an object", group));
    for (auto it = g.begin(); it != g.end(); ++it) {
      Tolerance t = c.defaults;
      SETTLE_TRY(read_tolerance(it.value(), t, fmt::format("{}.{}", group, it.key())));
      (std::string_view(group) == "currencies" ? c.by_currency : c.by_merchant)[it.key()] = t;
    }
  }
  return c;
}

std::string find_payout_reference(std::string_view text) {
  // PO-YYYYMMDD-CUR-<16 hex>
  constexpr std::size_t kLen = 32;
  for (std::size_t p = text.find("PO-"); p != std::string_view::npos; p = text.find("PO-", p + 1)) {
    if (p + kLen > text.size()) break;
    const std::string_view c = text.substr(p, kLen);
    bool ok = c[11] == '-' && c[15] == '-';
    for (std::size_t i = 3; ok && i < 11; ++i) ok = c[i] >= '0' && c[i] <= '9';
    for (std::size_t i = 12; ok && i < 15; ++i) ok = c[i] >= 'A' && c[i] <= 'Z';
    for (std::size_t i = 16; ok && i < kLen; ++i) ok = (c[i] >= '0' && c[i] <= '9') || (c[i] >= 'a' && c[i] <= 'f');
    if (ok) return std::string(c);
  }
  return {};
}

namespace {

Minor abs_minor(Minor a) { return a < 0 ? (a == INT64_MIN ? INT64_MAX : -a) : a; }
// |a - b| without overflow, saturated at INT64_MAX.
Minor abs_diff(Minor a, Minor b) {
  const __int128 d = static_cast<__int128>(a) - b;
  const __int128 m = d < 0 ? -d : d;
  return m > INT64_MAX ? INT64_MAX : static_cast<Minor>(m);
}
int day_distance(Date a, Date b) { return a.days > b.days ? a.days - b.days : b.days - a.days; }

struct BankItem {
  std::string location;
  std::string currency;
  Minor amount = 0;  // magnitude of a debit
  Date date;
  std::string ref;  // a payout reference when one is found
  bool used = false;
};

struct PayoutSlot {
  const Payout* p = nullptr;
  std::string subject;
  bool matched = false;
};

// Indices of `pool` (at most max_group of them) whose amounts add up to
// `target` within `tol`; depth-first over at most 24 candidates.
std::optional<std::vector<std::size_t>> subset_sum(const std::vector<std::pair<std::size_t, Minor>>& pool,
                                                   Minor target, Minor tol, std::size_t max_group) {
  std::vector<std::pair<std::size_t, Minor>> c(pool.begin(), pool.begin() + std::min<std::size_t>(pool.size(), 24));
  std::sort(c.begin(), c.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  std::vector<std::size_t> chosen;
  std::int64_t budget = 200'000;  // bounds the search on adversarial input
  auto dfs = [&](auto&& self, std::size_t i, __int128 sum) -> bool {
    if (--budget < 0) return false;
    if (chosen.size() >= 2 && (sum > target ? sum - target : target - sum) <= tol) return true;
    if (i >= c.size() || chosen.size() >= max_group || sum > static_cast<__int128>(target) + tol) return false;
    chosen.push_back(c[i].first);
    if (self(self, i + 1, sum + c[i].second)) return true;
    chosen.pop_back();
    return self(self, i + 1, sum);
  };
  if (dfs(dfs, 0, 0)) return chosen;
  return std::nullopt;
}

}  // namespace

MatchResult match_bank(const std::vector<BankStatement>& statements, const std::vector<Payout>& payouts,
                       const std::set<std::string>& already_matched, const MatchConfig& config) {
  MatchResult out;
  std::vector<PayoutSlot> slots;
  std::map<std::string, std::size_t> by_ref;
  for (const Payout& p : payouts) {
    slots.push_back(PayoutSlot{&p, "payout:" + p.reference, already_matched.count("payout:" + p.reference) > 0});
    by_ref.emplace(p.reference, slots.size() - 1);
  }

  std::vector<BankItem> items;
  for (const BankStatement& s : statements) {
    for (const BankEntry& e : s.entries) {
      if (e.status != "BOOK" || e.amount >= 0) continue;  // payouts are booked debits
      const Date date = e.booking_date ? *e.booking_date : (e.value_date ? *e.value_date : s.from.value_or(Date{}));
      std::string entry_ref = find_payout_reference(e.entry_ref);
      if (entry_ref.empty()) entry_ref = find_payout_reference(e.info);
      const bool split = e.transactions.size() > 1 &&
                         std::all_of(e.transactions.begin(), e.transactions.end(),
                                     [](const BankTransaction& t) { return t.amount.has_value(); });
      if (split) {
        for (const BankTransaction& t : e.transactions) {
          BankItem it{fmt::format("{}@{}", s.id, t.location), e.currency, abs_minor(*t.amount), date, {}, false};
          it.ref = find_payout_reference(t.end_to_end_id);
          if (it.ref.empty()) it.ref = find_payout_reference(t.remittance);
          items.push_back(std::move(it));
        }
        continue;
      }
      BankItem it{fmt::format("{}@{}", s.id, e.location), e.currency, abs_minor(e.amount), date, entry_ref, false};
      for (const BankTransaction& t : e.transactions) {
        if (!it.ref.empty()) break;
        it.ref = find_payout_reference(t.end_to_end_id);
        if (it.ref.empty()) it.ref = find_payout_reference(t.remittance);
      }
      items.push_back(std::move(it));
    }
  }
  out.items = static_cast<std::int64_t>(items.size());

  // Duplicates: a reference seen again in this statement, or matched by an earlier one.
  std::set<std::string> seen;
  for (BankItem& it : items) {
    if (it.ref.empty()) continue;
    auto slot = by_ref.find(it.ref);
    const std::string subject = "payout:" + it.ref;
    const bool earlier = slot != by_ref.end() && slots[slot->second].matched;
    if (!seen.insert(it.ref).second || earlier) {
      Finding f;
      f.reason = Reason::kDuplicateInStatement;
      f.subject = subject;
      f.currency = it.currency;
      f.actual = it.amount;
      f.drift = it.amount;
      f.our_ref = it.ref;
      f.their_ref = it.location;
      if (slot != by_ref.end()) {
        f.merchant_id = slots[slot->second].p->merchant_id;
        f.expected = slots[slot->second].p->amount;
      }
      f.detail = earlier && seen.count(it.ref) == 1 && slot != by_ref.end()
                     ? fmt::format("payout {} was already matched by an earlier statement", it.ref)
                     : fmt::format("payout {} appears more than once in the statement", it.ref);
      out.findings.push_back(std::move(f));
      it.used = true;
    }
  }

  // 1. Exact reference.
  for (BankItem& it : items) {
    if (it.used || it.ref.empty()) continue;
    auto found = by_ref.find(it.ref);
    if (found == by_ref.end()) continue;
    PayoutSlot& slot = slots[found->second];
    const Payout& p = *slot.p;
    it.used = true;
    slot.matched = true;
    out.matched_subjects.push_back(slot.subject);
    const Tolerance& tol = config.tolerance(p.merchant_id, p.currency);
    Finding f;
    f.subject = slot.subject;
    f.merchant_id = p.merchant_id;
    f.currency = p.currency;
    f.expected = p.amount;
    f.actual = it.amount;
    f.our_ref = p.reference;
    f.their_ref = it.location;
    int confidence = 100;
    if (it.currency != p.currency) {
      f.reason = Reason::kCurrencyMismatch;
      f.drift = p.amount;
      f.detail = fmt::format("payout {} is {} {}; the bank booked it in {}", p.reference,
                             format_minor(p.amount, find_currency(p.currency)->exponent()), p.currency, it.currency);
      out.findings.push_back(f);
      confidence = 50;
    } else if (abs_diff(it.amount, p.amount) > tol.amount) {
      f.reason = Reason::kAmountMismatch;
      f.drift = abs_diff(it.amount, p.amount);
      const int exp = find_currency(p.currency)->exponent();
      f.detail = fmt::format("payout {}: ledger {} {}, bank {} {}", p.reference, format_minor(p.amount, exp),
                             p.currency, format_minor(it.amount, exp), it.currency);
      out.findings.push_back(f);
      confidence = 70;
    } else if (day_distance(it.date, p.payout_date) > tol.window_days) {
      f.reason = Reason::kOutsideDateWindow;
      f.drift = 0;
      f.detail = fmt::format("payout {} due {} was booked {} ({} days; window {})", p.reference,
                             format_date(p.payout_date), format_date(it.date), day_distance(it.date, p.payout_date),
                             tol.window_days);
      out.findings.push_back(f);
      confidence = 90;
    }
    out.matches.push_back(Match{"exact_reference", confidence, {slot.subject}, {it.location}});
  }

  auto candidate = [&](const PayoutSlot& s, const BankItem& it) {
    const Tolerance& tol = config.tolerance(s.p->merchant_id, s.p->currency);
    return !s.matched && s.p->currency == it.currency && day_distance(it.date, s.p->payout_date) <= tol.window_days;
  };

  // 2. Amount within tolerance and date within window; a unique candidate is
  // more certain than the nearest of several.
  for (BankItem& it : items) {
    if (it.used) continue;
    std::vector<std::size_t> cands;
    for (std::size_t i = 0; i < slots.size(); ++i) {
      const Tolerance& tol = config.tolerance(slots[i].p->merchant_id, slots[i].p->currency);
      if (candidate(slots[i], it) && abs_diff(slots[i].p->amount, it.amount) <= tol.amount) cands.push_back(i);
    }
    if (cands.empty()) continue;
    const std::size_t best = *std::min_element(cands.begin(), cands.end(), [&](std::size_t a, std::size_t b) {
      return std::make_tuple(abs_diff(slots[a].p->amount, it.amount), day_distance(slots[a].p->payout_date, it.date),
                             a) < std::make_tuple(abs_diff(slots[b].p->amount, it.amount),
                                                  day_distance(slots[b].p->payout_date, it.date), b);
    });
    const bool exact = slots[best].p->amount == it.amount && slots[best].p->payout_date == it.date;
    const int confidence = cands.size() == 1 ? (exact ? 85 : 75) : 50;
    it.used = true;
    slots[best].matched = true;
    out.matched_subjects.push_back(slots[best].subject);
    out.matches.push_back(Match{"amount_date", confidence, {slots[best].subject}, {it.location}});
  }

  // 3. One bank item paying several payouts (a batch booking).
  for (BankItem& it : items) {
    if (it.used) continue;
    std::vector<std::pair<std::size_t, Minor>> pool;
    Minor tol = 0;
    for (std::size_t i = 0; i < slots.size(); ++i) {
      if (candidate(slots[i], it)) {
        pool.emplace_back(i, slots[i].p->amount);
        tol = std::max(tol, config.tolerance(slots[i].p->merchant_id, slots[i].p->currency).amount);
      }
    }
    auto found = subset_sum(pool, it.amount, tol, config.max_group);
    if (!found) continue;
    Match m{"one_to_many", 60, {}, {it.location}};
    for (std::size_t i : *found) {
      slots[i].matched = true;
      out.matched_subjects.push_back(slots[i].subject);
      m.ours.push_back(slots[i].subject);
    }
    it.used = true;
    out.matches.push_back(std::move(m));
  }

  // 4. One payout paid in several bank items (the bank split it).
  for (PayoutSlot& s : slots) {
    if (s.matched) continue;
    const Tolerance& tol = config.tolerance(s.p->merchant_id, s.p->currency);
    std::vector<std::pair<std::size_t, Minor>> pool;
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (!items[i].used && items[i].currency == s.p->currency &&
          day_distance(items[i].date, s.p->payout_date) <= tol.window_days) {
        pool.emplace_back(i, items[i].amount);
      }
    }
    auto found = subset_sum(pool, s.p->amount, tol.amount, config.max_group);
    if (!found) continue;
    Match m{"many_to_one", 60, {s.subject}, {}};
    for (std::size_t i : *found) {
      items[i].used = true;
      m.theirs.push_back(items[i].location);
    }
    s.matched = true;
    out.matched_subjects.push_back(s.subject);
    out.matches.push_back(std::move(m));
  }

  for (const BankItem& it : items) {
    if (it.used) continue;
    Finding f;
    f.reason = Reason::kMissingInLedger;
    f.subject = "bank:" + it.location;
    f.currency = it.currency;
    f.actual = it.amount;
    f.drift = it.amount;
    f.their_ref = it.location;
    f.our_ref = it.ref;
    const int exp = find_currency(it.currency).ok() ? find_currency(it.currency)->exponent() : 2;
    f.detail = fmt::format("bank debit {} {} on {} matches no payout{}", format_minor(it.amount, exp), it.currency,
                           format_date(it.date), it.ref.empty() ? "" : " (reference " + it.ref + " is unknown)");
    out.findings.push_back(std::move(f));
  }

  // Payouts due inside a statement's period, in its currencies, not found.
  for (const PayoutSlot& s : slots) {
    if (s.matched) continue;
    if (config.due_through && s.p->payout_date > *config.due_through) continue;  // not due yet
    bool expected = false;
    for (const BankStatement& st : statements) {
      if (!st.from || !st.to) continue;
      bool has_currency = st.currency == s.p->currency;
      for (const BankEntry& e : st.entries) has_currency = has_currency || e.currency == s.p->currency;
      if (has_currency && s.p->payout_date >= *st.from && s.p->payout_date <= *st.to) expected = true;
    }
    if (!expected) continue;
    Finding f;
    f.reason = Reason::kMissingInStatement;
    f.subject = s.subject;
    f.merchant_id = s.p->merchant_id;
    f.currency = s.p->currency;
    f.expected = s.p->amount;
    f.drift = s.p->amount;
    f.our_ref = s.p->reference;
    f.detail = fmt::format("payout {} of {} {} due {} is not in the statement", s.p->reference,
                           format_minor(s.p->amount, find_currency(s.p->currency)->exponent()), s.p->currency,
                           format_date(s.p->payout_date));
    out.findings.push_back(std::move(f));
  }
  return out;
}

MatchResult match_acquirer(const AcquirerReport& report, const std::vector<LedgerEvent>& events,
                           const std::vector<model::BatchSummary>& batches, const MatchConfig& config) {
  MatchResult out;
  out.items = static_cast<std::int64_t>(report.lines.size() + report.totals.size());
  std::map<std::pair<std::string, std::string>, const LedgerEvent*> by_ref;
  for (const LedgerEvent& e : events) by_ref.emplace(std::make_pair(e.merchant_id, e.ref), &e);

  // What the report is expected to cover.
  std::set<std::tuple<std::string, Date, std::string>> covered_batches;
  std::set<std::pair<std::string, Date>> covered_days;
  for (const AcquirerBatchTotal& t : report.totals) covered_batches.emplace(t.merchant_id, t.batch_date, t.currency);
  if (report.totals.empty()) {
    for (const AcquirerLine& l : report.lines) {
      if (l.batch_date) covered_days.emplace(l.merchant_id, *l.batch_date);
    }
  }

  std::set<std::pair<std::string, std::string>> seen;
  for (const AcquirerLine& l : report.lines) {
    const std::string subject = fmt::format("event:{}/{}", l.merchant_id, l.reference);
    const std::string where = fmt::format("line {}", l.line);
    const int exp = find_currency(l.currency)->exponent();
    Finding f;
    f.subject = subject;
    f.merchant_id = l.merchant_id;
    f.currency = l.currency;
    f.actual = l.gross;
    f.our_ref = l.reference;
    f.their_ref = where;
    if (!seen.emplace(l.merchant_id, l.reference).second) {
      f.reason = Reason::kDuplicateInStatement;
      f.drift = abs_minor(l.gross);
      f.detail = fmt::format("event {} of {} appears more than once in the report", l.reference, l.merchant_id);
      out.findings.push_back(std::move(f));
      continue;
    }
    auto found = by_ref.find({l.merchant_id, l.reference});
    if (found == by_ref.end()) {
      f.reason = Reason::kMissingInLedger;
      f.drift = abs_minor(l.gross);
      f.detail = fmt::format("{} {} {} {} of {} is not in the ledger", l.type, l.reference,
                             format_minor(l.gross, exp), l.currency, l.merchant_id);
      out.findings.push_back(std::move(f));
      continue;
    }
    const LedgerEvent& e = *found->second;
    out.matched_subjects.push_back(subject);
    f.expected = e.amount;
    const Tolerance& tol = config.tolerance(l.merchant_id, l.currency);
    int confidence = 100;
    if (e.currency != l.currency) {
      f.reason = Reason::kCurrencyMismatch;
      f.drift = abs_minor(l.gross);
      f.detail = fmt::format("event {}: ledger {}, report {}", l.reference, e.currency, l.currency);
      out.findings.push_back(f);
      confidence = 50;
    } else if (e.type != l.type || abs_diff(e.amount, l.gross) > tol.amount) {
      f.reason = Reason::kAmountMismatch;
      f.drift = e.type != l.type ? abs_minor(l.gross) : abs_diff(e.amount, l.gross);
      f.detail = fmt::format("event {}: ledger {} {}, report {} {}", l.reference, e.type, format_minor(e.amount, exp),
                             l.type, format_minor(l.gross, exp));
      out.findings.push_back(f);
      confidence = 70;
    } else if (abs_diff(e.fee, l.fee) > tol.amount) {
      f.reason = Reason::kFeeMismatch;
      f.expected = e.fee;
      f.actual = l.fee;
      f.drift = abs_diff(e.fee, l.fee);
      f.detail = fmt::format("event {}: ledger fee {}, report fee {} {}", l.reference, format_minor(e.fee, exp),
                             format_minor(l.fee, exp), l.currency);
      out.findings.push_back(f);
      confidence = 80;
    } else if (l.batch_date && day_distance(*l.batch_date, e.settle_date) > tol.window_days &&
               day_distance(*l.batch_date, e.batch_date) > tol.window_days) {
      f.reason = Reason::kOutsideDateWindow;
      f.drift = 0;
      f.detail = fmt::format("event {}: ledger batch {}, report {}", l.reference, format_date(e.settle_date),
                             format_date(*l.batch_date));
      out.findings.push_back(f);
      confidence = 90;
    }
    out.matches.push_back(Match{"event_reference", confidence, {subject}, {where}});
  }

  for (const LedgerEvent& e : events) {
    const bool expected = covered_batches.count({e.merchant_id, e.settle_date, e.currency}) > 0 ||
                          covered_days.count({e.merchant_id, e.settle_date}) > 0 ||
                          covered_days.count({e.merchant_id, e.batch_date}) > 0;
    if (!expected || seen.count({e.merchant_id, e.ref}) > 0) continue;
    Finding f;
    f.reason = Reason::kMissingInStatement;
    f.subject = fmt::format("event:{}/{}", e.merchant_id, e.ref);
    f.merchant_id = e.merchant_id;
    f.currency = e.currency;
    f.expected = e.amount;
    f.drift = abs_minor(e.amount);
    f.our_ref = e.ref;
    f.detail = fmt::format("{} {} settled on {} is not in the report", e.type, e.ref, format_date(e.settle_date));
    out.findings.push_back(std::move(f));
  }

  std::map<std::tuple<std::string, Date, std::string>, const model::BatchSummary*> by_batch;
  for (const model::BatchSummary& b : batches) by_batch.emplace(std::make_tuple(b.key.merchant_id.str(), b.key.batch_date, b.key.currency), &b);
  for (const AcquirerBatchTotal& t : report.totals) {
    const std::string subject = fmt::format("batch:{}/{}/{}", t.merchant_id, format_date(t.batch_date), t.currency);
    const std::string where = fmt::format("line {}", t.line);
    const int exp = find_currency(t.currency)->exponent();
    Finding f;
    f.subject = subject;
    f.merchant_id = t.merchant_id;
    f.currency = t.currency;
    f.actual = t.gross;
    f.their_ref = where;
    auto found = by_batch.find({t.merchant_id, t.batch_date, t.currency});
    if (found == by_batch.end()) {
      f.reason = Reason::kMissingInLedger;
      f.drift = abs_minor(t.gross);
      f.detail = fmt::format("batch total {} {} of {} on {}: no closed batch in the ledger", format_minor(t.gross, exp),
                             t.currency, t.merchant_id, format_date(t.batch_date));
      out.findings.push_back(std::move(f));
      continue;
    }
    const model::ControlTotals& c = found->second->totals;
    const Minor gross = c.of(model::EventType::kCapture).amount - c.of(model::EventType::kRefund).amount -
                        c.of(model::EventType::kChargeback).amount +
                        c.of(model::EventType::kChargebackReversal).amount +
                        c.of(model::EventType::kAdjustment).amount;
    const Tolerance& tol = config.tolerance(t.merchant_id, t.currency);
    out.matched_subjects.push_back(subject);
    f.expected = gross;
    int confidence = 100;
    if (abs_diff(gross, t.gross) > tol.amount || (t.count != 0 && t.count != c.event_count())) {
      f.reason = Reason::kAmountMismatch;
      f.drift = abs_diff(gross, t.gross);
      f.detail = fmt::format("batch {}: ledger {} events, gross {}; report {} events, gross {}", subject,
                             c.event_count(), format_minor(gross, exp), t.count, format_minor(t.gross, exp));
      out.findings.push_back(f);
      confidence = 70;
    } else if (abs_minor(c.fees() - t.fee) > tol.amount) {
      f.reason = Reason::kFeeMismatch;
      f.expected = c.fees();
      f.actual = t.fee;
      f.drift = abs_minor(c.fees() - t.fee);
      f.detail = fmt::format("batch {}: ledger fees {}, report fees {}", subject, format_minor(c.fees(), exp),
                             format_minor(t.fee, exp));
      out.findings.push_back(f);
      confidence = 80;
    }
    out.matches.push_back(Match{"batch_totals", confidence, {subject}, {where}});
  }
  return out;
}

}  // namespace settle::reconcile
