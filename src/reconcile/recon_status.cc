#include "reconcile/recon_status.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include "reconcile/payout.h"

namespace settle::reconcile {
namespace {

using model::StatusKind;
using model::StatusUpdate;

std::int64_t ms_of(Timestamp t) { return t.ns / 1'000'000; }

StatusUpdate batch_update(StatusKind kind, const model::BatchKey& key, const BatchIndex& batches, std::string reason,
                          std::int64_t at_ms) {
  StatusUpdate u{kind, key.merchant_id.str(), "", "", key, 0, 0, std::move(reason), at_ms, std::nullopt, std::nullopt};
  if (const model::BatchSummary* b = batches.find(key)) {
    u.payout = b->payout;
    u.carry_out = b->carry_out;
    u.payout_date = b->payout_date;
    u.totals = b->totals;
  }
  return u;
}

std::int64_t open_on_batch(const std::vector<Discrepancy>& open, const model::BatchKey& key, const BatchIndex& batches) {
  std::int64_t n = 0;
  for (const Discrepancy& d : open) {
    if (d.state == TaskState::kResolved) continue;
    if (auto k = batches.of_subject(d.finding.subject); k && *k == key) ++n;
  }
  return n;
}

StatusUpdate merchant_update(const std::string& merchant, const std::vector<Discrepancy>& open, std::int64_t at_ms) {
  StatusUpdate u{StatusKind::kMerchantDiscrepancies, merchant, "", "", std::nullopt, 0, 0, "", at_ms, std::nullopt,
                 std::nullopt};
  for (const Discrepancy& d : open) {
    if (d.finding.merchant_id != merchant || d.state == TaskState::kResolved) continue;
    ++u.open_discrepancies;
    if (u.discrepancies.size() < model::kDiscrepancyNotesMax) u.discrepancies.push_back(note_of(d));
  }
  return u;
}

StatusUpdate discrepancy_update(const Discrepancy& d, const model::BatchKey& key, const std::vector<Discrepancy>& open,
                                const BatchIndex& batches, std::int64_t at_ms) {
  StatusUpdate u = batch_update(StatusKind::kBatchDiscrepancy, key, batches,
                                fmt::format("discrepancy {} {}: {}", d.id, state_name(d.state), d.finding.detail), at_ms);
  u.discrepancies.push_back(note_of(d));
  u.open_discrepancies = open_on_batch(open, key, batches);
  return u;
}

}  // namespace

BatchIndex::BatchIndex(const std::vector<model::BatchSummary>& batches) {
  for (const model::BatchSummary& b : batches) {
    by_key_.emplace(b.key, &b);
    if (b.payout > 0) {
      by_reference_.emplace(payout_reference(b.key.merchant_id.view(), b.key.batch_date, b.key.currency), &b);
    }
  }
}

const model::BatchSummary* BatchIndex::find(const model::BatchKey& key) const {
  auto it = by_key_.find(key);
  return it == by_key_.end() ? nullptr : it->second;
}

std::optional<model::BatchKey> BatchIndex::of_subject(std::string_view subject) const {
  if (subject.starts_with("payout:")) {
    auto it = by_reference_.find(std::string(subject.substr(7)));
    if (it == by_reference_.end()) return std::nullopt;
    return it->second->key;
  }
  if (!subject.starts_with("batch:")) return std::nullopt;
  const std::string_view rest = subject.substr(6);
  const auto cur = rest.rfind('/');
  if (cur == std::string_view::npos || cur == 0) return std::nullopt;
  const auto day = rest.rfind('/', cur - 1);
  if (day == std::string_view::npos || day == 0) return std::nullopt;
  auto date = parse_date(rest.substr(day + 1, cur - day - 1));
  if (!date.ok()) return std::nullopt;
  return model::BatchKey{MerchantId(std::string(rest.substr(0, day))), *date, std::string(rest.substr(cur + 1))};
}

std::optional<model::BatchKey> batch_of_subject(std::string_view subject, const std::vector<model::BatchSummary>& batches) {
  return BatchIndex(batches).of_subject(subject);
}

model::DiscrepancyNote note_of(const Discrepancy& d) {
  return model::DiscrepancyNote{d.id,           std::string(reason_name(d.finding.reason)), std::string(state_name(d.state)),
                                d.finding.subject, d.finding.currency, d.finding.drift};
}

std::vector<StatusUpdate> run_statuses(const std::vector<Match>& matches, const std::vector<Discrepancy>& changed,
                                       const std::vector<Discrepancy>& open,
                                       const std::vector<model::BatchSummary>& batches, std::int64_t at_ms) {
  return run_statuses(matches, changed, open, BatchIndex(batches), at_ms);
}

std::vector<StatusUpdate> run_statuses(const std::vector<Match>& matches, const std::vector<Discrepancy>& changed,
                                       const std::vector<Discrepancy>& open, const BatchIndex& batches,
                                       std::int64_t at_ms) {
  std::vector<StatusUpdate> out;
  std::set<std::string> merchants;
  std::set<std::pair<StatusKind, std::string>> seen;
  for (const Match& m : matches) {
    for (const std::string& subject : m.ours) {
      StatusKind kind;
      if (subject.starts_with("payout:")) {
        kind = StatusKind::kBatchPaidOut;
      } else if (subject.starts_with("batch:") && m.rule == "batch_totals") {
        kind = StatusKind::kBatchReconciled;
      } else {
        continue;
      }
      auto key = batches.of_subject(subject);
      if (!key || !seen.insert({kind, key->to_string()}).second) continue;
      merchants.insert(key->merchant_id.str());
      out.push_back(batch_update(kind, *key, batches,
                                 fmt::format("{} matched by {} ({}% confidence)", m.theirs.empty() ? "" : m.theirs.front(),
                                             m.rule, m.confidence),
                                 at_ms));
    }
  }
  for (const Discrepancy& d : changed) {
    if (d.finding.merchant_id.empty()) continue;  // money the ledger cannot place: no merchant to tell
    merchants.insert(d.finding.merchant_id);
    if (auto key = batches.of_subject(d.finding.subject)) {
      out.push_back(discrepancy_update(d, *key, open, batches, at_ms));
    }
  }
  for (const std::string& m : merchants) out.push_back(merchant_update(m, open, at_ms));
  return out;
}

void ReconStatusPublisher::count(const Status& s, std::size_t n) {
  if (s.ok()) published_ += static_cast<std::int64_t>(n);  // failures: the caller counts them
}

Result<std::vector<Discrepancy>> ReconStatusPublisher::open_of(const std::vector<std::string>& merchants) {
  std::vector<Discrepancy> out;
  for (const std::string& m : merchants) {
    for (TaskState s : {TaskState::kOpen, TaskState::kAcknowledged}) {
      DiscrepancyQuery q;
      q.state = s;
      q.merchant_id = m;
      SETTLE_ASSIGN_OR_RETURN(auto list, inner_.discrepancies(q));
      for (Discrepancy& d : list) out.push_back(std::move(d));
    }
  }
  return out;
}

Status ReconStatusPublisher::publish_run(const RunRecord& run, const RunOutcome& outcome) {
  SETTLE_ASSIGN_OR_RETURN(auto closed, ledger_.closed_batches(ledger::BatchQuery{}));
  const BatchIndex batches(closed);  // once for the run
  std::set<std::string> merchants;
  for (const Finding& f : run.findings) {
    if (!f.merchant_id.empty()) merchants.insert(f.merchant_id);
  }
  for (const Match& m : run.matches) {
    for (const std::string& s : m.ours) {
      if (auto k = batches.of_subject(s)) merchants.insert(k->merchant_id.str());
    }
  }
  SETTLE_ASSIGN_OR_RETURN(auto open, open_of(std::vector<std::string>(merchants.begin(), merchants.end())));
  const std::set<std::int64_t> opened(outcome.opened_ids.begin(), outcome.opened_ids.end());
  std::vector<Discrepancy> changed;
  for (const Discrepancy& d : open) {
    if (opened.contains(d.id)) changed.push_back(d);
  }
  std::vector<StatusUpdate> updates = run_statuses(run.matches, changed, open, batches, ms_of(run.at));
  // Merchants with findings but neither a batch match nor a new task (an
  // already open task found again) still get their summary.
  std::set<std::string> summarized;
  for (const StatusUpdate& u : updates) {
    if (u.kind == StatusKind::kMerchantDiscrepancies) summarized.insert(u.merchant_id);
  }
  for (const std::string& m : merchants) {
    if (!summarized.contains(m)) updates.push_back(merchant_update(m, open, ms_of(run.at)));
  }
  if (updates.empty()) return ok_status();
  std::vector<bus::Record> records;
  records.reserve(updates.size());
  for (const StatusUpdate& u : updates) records.push_back(bus::Record{u.merchant_id, model::status_json(u), {}, 0});
  auto appended = bus_.append(topic_, records);
  if (!appended.ok()) return appended.error();
  count(ok_status(), records.size());
  return ok_status();
}

Status ReconStatusPublisher::publish_change(const Discrepancy& d, Timestamp at) {
  if (d.finding.merchant_id.empty()) return ok_status();
  SETTLE_ASSIGN_OR_RETURN(auto closed, ledger_.closed_batches(ledger::BatchQuery{d.finding.merchant_id, {}, {}}));
  const BatchIndex batches(closed);
  SETTLE_ASSIGN_OR_RETURN(auto open, open_of({d.finding.merchant_id}));
  std::vector<StatusUpdate> updates;
  if (auto key = batches.of_subject(d.finding.subject)) {
    updates.push_back(discrepancy_update(d, *key, open, batches, ms_of(at)));
  }
  updates.push_back(merchant_update(d.finding.merchant_id, open, ms_of(at)));
  std::vector<bus::Record> records;
  for (const StatusUpdate& u : updates) records.push_back(bus::Record{u.merchant_id, model::status_json(u), {}, 0});
  auto appended = bus_.append(topic_, records);
  if (!appended.ok()) return appended.error();
  count(ok_status(), records.size());
  return ok_status();
}

Result<RunOutcome> ReconStatusPublisher::record_run(const RunRecord& run) {
  SETTLE_ASSIGN_OR_RETURN(RunOutcome outcome, inner_.record_run(run));
  if (!outcome.duplicate_statement) {
    if (Status s = publish_run(run, outcome); !s.ok()) ++publish_failures_;
  }
  return outcome;
}

Result<Discrepancy> ReconStatusPublisher::acknowledge(std::int64_t id, Timestamp at) {
  SETTLE_ASSIGN_OR_RETURN(Discrepancy d, inner_.acknowledge(id, at));
  if (Status s = publish_change(d, at); !s.ok()) ++publish_failures_;
  return d;
}

Result<Discrepancy> ReconStatusPublisher::resolve(std::int64_t id, std::string_view comment, Timestamp at) {
  SETTLE_ASSIGN_OR_RETURN(Discrepancy d, inner_.resolve(id, comment, at));
  if (Status s = publish_change(d, at); !s.ok()) ++publish_failures_;
  return d;
}

}  // namespace settle::reconcile
