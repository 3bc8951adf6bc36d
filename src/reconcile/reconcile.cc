#include "reconcile/reconcile.h"

#include <fmt/format.h>
#include <xxhash.h>

#include <map>
#include <set>

#include "reconcile/bai2_parser.h"
#include "reconcile/camt053_parser.h"
#include "reconcile/mt940_parser.h"

namespace settle::reconcile {
namespace {

std::string statement_key(const std::vector<std::string>& contents, const std::string& ids) {
  XXH3_state_t* st = XXH3_createState();
  XXH3_128bits_reset(st);
  for (const std::string& c : contents) {
    const std::uint64_t n = c.size();
    XXH3_128bits_update(st, &n, sizeof n);
    XXH3_128bits_update(st, c.data(), c.size());
  }
  const XXH128_hash_t h = XXH3_128bits_digest(st);
  XXH3_freeState(st);
  return fmt::format("{:016x}{:016x}:{}", h.high64, h.low64, ids);
}

Result<std::vector<LedgerEvent>> ledger_events(ledger::Ledger& ledger, const AcquirerReport& report,
                                               const MatchConfig& config) {
  std::map<std::string, std::pair<Date, Date>> span;  // merchant -> dates named by the report
  auto widen = [&](const std::string& m, Date d) {
    auto [it, fresh] = span.emplace(m, std::make_pair(d, d));
    if (!fresh) {
      it->second.first = std::min(it->second.first, d);
      it->second.second = std::max(it->second.second, d);
    }
  };
  for (const AcquirerLine& l : report.lines) {
    if (l.batch_date) widen(l.merchant_id, *l.batch_date);
  }
  for (const AcquirerBatchTotal& t : report.totals) widen(t.merchant_id, t.batch_date);
  std::map<std::pair<std::string, std::string>, LedgerEvent> events;
  for (const auto& [merchant, dates] : span) {
    int window = config.defaults.window_days;
    for (const auto& [k, t] : config.by_currency) window = std::max(window, t.window_days);
    if (auto it = config.by_merchant.find(merchant); it != config.by_merchant.end()) {
      window = std::max(window, it->second.window_days);
    }
    ledger::PostingQuery q;
    q.merchant_id = merchant;
    q.settle_from = dates.first.plus_days(-window);
    q.settle_to = dates.second.plus_days(window);
    q.limit = 50'000'000;
    SETTLE_ASSIGN_OR_RETURN(std::vector<ledger::PostingRow> rows, ledger.postings(q));
    for (const ledger::PostingRow& r : rows) {
      if (r.kind == "reserve_hold" || r.kind == "reserve_release" || r.kind == "payout") continue;
      LedgerEvent& e = events[{r.merchant_id, r.ref}];
      e.merchant_id = r.merchant_id;
      e.ref = r.ref;
      e.type = r.kind;
      e.currency = r.currency;
      e.batch_date = r.batch_date;
      e.settle_date = r.settle_date;
      // SETTLEMENT_RULES §6: clearing carries ±A, adjustments +A, fees −F.
      if (r.account == "platform:clearing") e.amount = r.amount < 0 ? -r.amount : r.amount;
      if (r.account == "platform:adjustments") e.amount = r.amount;
      if (r.account == "platform:fees") e.fee = -r.amount;
    }
  }
  std::vector<LedgerEvent> out;
  out.reserve(events.size());
  for (auto& [k, e] : events) out.push_back(std::move(e));
  return out;
}

}  // namespace

Result<std::vector<Payout>> ledger_payouts(ledger::Ledger& ledger) {
  SETTLE_ASSIGN_OR_RETURN(std::vector<model::BatchSummary> batches, ledger.closed_batches(ledger::BatchQuery{}));
  return payouts_of(batches);
}

Result<ParsedStatement> parse_statement(const std::vector<std::string>& contents, const RunOptions& options) {
  if (contents.empty()) return make_error(ErrorCode::kInvalidArgument, "no statement given");
  ParsedStatement p;
  if (options.format) {
    p.format = *options.format;
  } else {
    SETTLE_ASSIGN_OR_RETURN(p.format, detect_format(contents.front()));
  }
  for (std::size_t i = 0; i < contents.size(); ++i) {
    const std::string& c = contents[i];
    auto part = [&](const Error& e) {
      return contents.size() == 1 ? e : make_error(e.code, fmt::format("file {}: {}", i + 1, e.message));
    };
    switch (p.format) {
      case StatementFormat::kCamt053: {
        auto r = parse_camt053(c);
        if (!r.ok()) return part(r.error());
        for (BankStatement& s : *r) p.bank.push_back(std::move(s));
        break;
      }
      case StatementFormat::kMt940: {
        auto r = parse_mt940(c);
        if (!r.ok()) return part(r.error());
        for (BankStatement& s : *r) p.bank.push_back(std::move(s));
        break;
      }
      case StatementFormat::kBai2: {
        auto r = parse_bai2(c);
        if (!r.ok()) return part(r.error());
        for (BankStatement& s : *r) p.bank.push_back(std::move(s));
        break;
      }
      case StatementFormat::kAcquirerCsv: {
        auto r = parse_acquirer_csv(c, options.csv_mapping, options.merchant_id);
        if (!r.ok()) return part(r.error());
        for (AcquirerLine& l : r->lines) p.acquirer.lines.push_back(std::move(l));
        for (AcquirerBatchTotal& t : r->totals) p.acquirer.totals.push_back(std::move(t));
        break;
      }
    }
  }
  if (p.format == StatementFormat::kMt940) {
    SETTLE_ASSIGN_OR_RETURN(p.bank, join_statement_parts(std::move(p.bank)));
  }
  return p;
}

Result<RunReport> run(ledger::Ledger& ledger, ReconStore& store, const std::vector<std::string>& contents,
                      const RunOptions& options) {
  SETTLE_ASSIGN_OR_RETURN(ParsedStatement parsed, parse_statement(contents, options));
  RunReport report;
  report.format = parsed.format;
  std::string ids;
  for (const BankStatement& s : parsed.bank) ids += (ids.empty() ? "" : ",") + s.id;
  if (parsed.format == StatementFormat::kAcquirerCsv) ids = "acquirer-csv";
  report.statement_ids = ids;
  report.statement_key = statement_key(contents, ids);

  MatchResult m;
  if (parsed.format == StatementFormat::kAcquirerCsv) {
    SETTLE_ASSIGN_OR_RETURN(std::vector<LedgerEvent> events, ledger_events(ledger, parsed.acquirer, options.match));
    SETTLE_ASSIGN_OR_RETURN(std::vector<model::BatchSummary> batches, ledger.closed_batches(ledger::BatchQuery{}));
    m = match_acquirer(parsed.acquirer, events, batches, options.match);
  } else {
    SETTLE_ASSIGN_OR_RETURN(std::vector<Payout> payouts, ledger_payouts(ledger));
    SETTLE_ASSIGN_OR_RETURN(std::vector<std::string> earlier, store.matched_subjects("payout:"));
    m = match_bank(parsed.bank, payouts, std::set<std::string>(earlier.begin(), earlier.end()), options.match);
  }
  report.items = m.items;
  RunRecord rec;
  rec.statement_key = report.statement_key;
  rec.format = std::string(format_name(parsed.format));
  rec.statement_ids = ids;
  rec.at = options.now;
  rec.items = m.items;
  rec.matches = m.matches;
  rec.findings = m.findings;
  rec.matched_subjects = m.matched_subjects;
  SETTLE_ASSIGN_OR_RETURN(report.outcome, store.record_run(rec));
  report.matches = std::move(m.matches);
  report.findings = std::move(m.findings);
  return report;
}

}  // namespace settle::reconcile
