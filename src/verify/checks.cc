#include "verify/checks.h"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <set>
#include <tuple>
#include <utility>

#include "model/event.h"
#include "model/journal.h"
#include "processor/topics.h"
#include "rules/rules.h"

namespace settle::verify {
namespace {

using model::BatchKey;
using model::BatchSummary;
using model::ControlTotals;
using model::EventType;

constexpr std::string_view kBatchRefPrefix = "§batch:";

bool is_batch_ref(std::string_view ref) { return ref.substr(0, kBatchRefPrefix.size()) == kBatchRefPrefix; }

std::string num(Minor v) { return std::to_string(v); }

// One identity's rows in the ledger, split by the batch date they settle in.
struct JournalCopies {
  std::string kind;
  std::string currency;
  struct AtDate {
    std::map<std::string, Minor> legs;       // account -> amount (first copy)
    std::map<std::string, int> leg_counts;   // account -> how many rows
    int copies() const {
      int n = 0;
      for (const auto& [a, c] : leg_counts) n = std::max(n, c);
      return n;
    }
  };
  std::map<Date, AtDate> by_settle_date;
  Minor leg_sum = 0;
  int copies() const {
    int n = 0;
    for (const auto& [d, at] : by_settle_date) n += at.copies();
    return n;
  }
};

using Identity = std::pair<std::string, std::string>;  // merchant, ref
using MerchantCurrency = std::pair<std::string, std::string>;

Minor leg(const std::map<std::string, Minor>& legs, const std::string& account) {
  auto it = legs.find(account);
  return it == legs.end() ? 0 : it->second;
}

// An event journal's amount and fee, read back from its legs (SETTLEMENT_RULES §6).
std::pair<Minor, Minor> amount_and_fee(EventType type, const std::map<std::string, Minor>& legs,
                                       const std::string& merchant) {
  const Minor fee = -leg(legs, "platform:fees");
  switch (type) {
    case EventType::kCapture:
    case EventType::kChargebackReversal:
      return {leg(legs, "platform:clearing"), fee};
    case EventType::kRefund:
    case EventType::kChargeback:
      return {-leg(legs, "platform:clearing"), fee};
    case EventType::kAdjustment:
      return {-leg(legs, model::account_name(model::AccountRole::kMerchantPayable, merchant)), 0};
  }
  return {0, 0};
}

std::string_view totals_label(EventType t) {
  switch (t) {
    case EventType::kCapture: return "captures";
    case EventType::kRefund: return "refunds";
    case EventType::kChargeback: return "chargebacks";
    case EventType::kChargebackReversal: return "reversals";
    case EventType::kAdjustment: return "adjustments";
  }
  return "?";
}

class Checker {
 public:
  explicit Checker(const Input& in) : in_(in) {}

  Findings run() {
    index_journals();
    check_trial_balance();
    check_exactly_once();
    check_batches();
    check_identities();
    return std::move(f_);
  }

 private:
  void add(BreakKind kind, std::string where, std::string what, std::string expected, std::string actual,
           std::string note = {}) {
    f_.breaks.push_back(Break{kind, std::move(where), std::move(what), std::move(expected), std::move(actual),
                              std::move(note)});
  }

  void index_journals() {
    for (const ledger::PostingRow& p : in_.postings) {
      JournalCopies& j = journals_[{p.merchant_id, p.ref}];
      j.kind = p.kind;
      j.currency = p.currency;
      JournalCopies::AtDate& at = j.by_settle_date[p.settle_date];
      if (at.leg_counts[p.account]++ == 0) at.legs[p.account] = p.amount;
      j.leg_sum += p.amount;
      if (!is_batch_ref(p.ref)) {
        // The sums of §6: payable postings of events, by where they settle.
        if (p.account == model::account_name(model::AccountRole::kMerchantPayable, p.merchant_id)) {
          payable_by_settle_[{p.merchant_id, p.currency}][p.settle_date] += p.amount;
        }
      } else if (p.account == model::account_name(model::AccountRole::kMerchantPayable, p.merchant_id)) {
        batch_payable_[{p.merchant_id, p.currency}] += p.amount;
      }
    }
    for (const BatchSummary& s : in_.closed) {
      closed_[{s.key.merchant_id.str(), s.key.currency}].push_back(&s);
    }
    for (auto& [mc, list] : closed_) {
      std::sort(list.begin(), list.end(),
                [](const BatchSummary* a, const BatchSummary* b) { return a->key.batch_date < b->key.batch_date; });
    }
  }

  void check_trial_balance() {
    std::set<std::string> reported;
    for (const ledger::TrialBalance& t : in_.trial) {
      if (t.net != 0) {
        reported.insert(t.currency);
        add(BreakKind::kTrialBalance, t.currency, "sum of postings", "0", num(t.net),
            fmt::format("debits {}, credits {}", t.debits, t.credits));
      }
    }
    // The ledger's figure may come from running balances; the postings must
    // agree with it.
    std::map<std::string, Minor> sums;
    for (const ledger::PostingRow& p : in_.postings) sums[p.currency] += p.amount;
    for (const auto& [currency, sum] : sums) {
      if (sum != 0 && !reported.contains(currency)) {
        add(BreakKind::kTrialBalance, currency, "sum of the journals' postings", "0", num(sum));
      }
    }
    for (const auto& [id, j] : journals_) {
      if (j.leg_sum != 0) {
        add(BreakKind::kUnbalanced, fmt::format("journal {}/{}", id.first, id.second), "sum of its legs", "0",
            num(j.leg_sum));
      }
    }
  }

  void check_exactly_once() {
    std::set<std::tuple<std::int32_t, std::int64_t>> dead;
    for (const model::DeadLetter& d : in_.dead_letters) {
      if (d.source_topic == processor::kEventsTopic) dead.insert({d.source_partition, d.source_offset});
    }
    std::map<Identity, std::vector<const AcceptedEvent*>> accepted;
    for (const AcceptedEvent& e : in_.accepted) {
      ++f_.records;
      if (e.event_id.empty()) {
        if (!dead.contains({e.partition, e.offset})) {
          add(BreakKind::kMissing, fmt::format("{}/{} offset {}", processor::kEventsTopic, e.partition, e.offset),
              "unreadable record", "posted or dead-lettered", "neither",
              e.merchant_id.empty() ? "" : fmt::format("key '{}'", e.merchant_id));
        } else {
          ++f_.dead_lettered;
        }
        continue;
      }
      accepted[{e.merchant_id, e.event_id}].push_back(&e);
    }
    f_.events = static_cast<std::int64_t>(accepted.size());
    for (const auto& [id, where] : accepted) {
      auto j = journals_.find(id);
      if (j != journals_.end()) {
        ++f_.posted;
        continue;
      }
      std::vector<std::string> live;
      for (const AcceptedEvent* e : where) {
        if (!dead.contains({e->partition, e->offset})) {
          live.push_back(fmt::format("{}/{} offset {}", processor::kEventsTopic, e->partition, e->offset));
        }
      }
      if (live.empty()) {
        ++f_.dead_lettered;
        continue;
      }
      std::string at;
      for (const auto& l : live) at += (at.empty() ? "" : ", ") + l;
      add(BreakKind::kMissing, fmt::format("event {}/{}", id.first, id.second), "journals in the ledger", "1", "0",
          "accepted at " + at + ", neither posted nor dead-lettered");
    }
    for (const auto& [id, j] : journals_) {
      if (is_batch_ref(id.second)) continue;
      ++f_.journals;
      const std::string where = fmt::format("event {}/{}", id.first, id.second);
      if (!accepted.contains(id)) {
        add(BreakKind::kNotOnBus, where, "records on the bus", ">= 1", "0",
            "the ledger holds a journal for an event the bus never carried");
      }
      if (const int copies = j.copies(); copies > 1) {
        add(BreakKind::kDoubled, where, "journals in the ledger", "1", std::to_string(copies));
      }
      if (j.by_settle_date.size() > 1) {
        std::string dates;
        for (const auto& [d, at] : j.by_settle_date) dates += (dates.empty() ? "" : ", ") + format_date(d);
        add(BreakKind::kTwoBatches, where, "batches it settles in", "1", std::to_string(j.by_settle_date.size()),
            "settles in " + dates);
      }
    }
  }

  const model::Merchant* merchant(const std::string& id) const {
    auto it = in_.merchants.find(id);
    return it == in_.merchants.end() ? nullptr : &it->second;
  }

  void check_batches() {
    // Totals recomputed from the event journals, by the batch they settle in.
    std::map<BatchKey, ControlTotals> totals;
    for (const auto& [id, j] : journals_) {
      if (is_batch_ref(id.second)) continue;
      const auto type = model::event_type_from_name(j.kind);
      if (!type) continue;
      for (const auto& [date, at] : j.by_settle_date) {
        const auto [amount, fee] = amount_and_fee(*type, at.legs, id.first);
        ControlTotals& t = totals[BatchKey{MerchantId(id.first), date, j.currency}];
        for (int c = 0; c < at.copies(); ++c) (void)rules::add_to_totals(t, *type, amount, fee);
      }
    }
    std::set<BatchKey> closed_keys;
    for (const auto& [mc, list] : closed_) {
      for (const BatchSummary* s : list) closed_keys.insert(s->key);
    }
    // Stranded: settling in a batch date that is not closed while a later one is.
    for (const auto& [key, t] : totals) {
      if (closed_keys.contains(key)) continue;
      auto c = closed_.find({key.merchant_id.str(), key.currency});
      if (c == closed_.end() || c->second.back()->key.batch_date < key.batch_date) continue;
      add(BreakKind::kStranded, key.to_string(), "events settling in a batch that can no longer close", "0",
          std::to_string(t.event_count()),
          fmt::format("batch {} is closed and this earlier one is not", format_date(c->second.back()->key.batch_date)));
    }
    // Batch journals of batches that are not closed.
    for (const auto& [id, j] : journals_) {
      if (!is_batch_ref(id.second)) continue;
      for (const auto& [date, at] : j.by_settle_date) {
        if (!closed_keys.contains(BatchKey{MerchantId(id.first), date, j.currency})) {
          add(BreakKind::kBatchJournal, fmt::format("journal {}/{}", id.first, id.second), "closed batch", "1", "0",
              "a batch journal without its batch's summary");
        }
      }
    }
    for (const auto& [mc, list] : closed_) {
      const model::Merchant* m = merchant(mc.first);
      Minor carry = 0;
      std::vector<rules::HeldReserve> holds;
      for (const BatchSummary* s : list) {
        ++f_.batches;
        const std::string where = s->key.to_string();
        const ControlTotals posted = totals.contains(s->key) ? totals.at(s->key) : ControlTotals{};
        for (int i = 0; i < model::kEventTypeCount; ++i) {
          const auto type = static_cast<EventType>(i);
          const model::TypeTotals& a = s->totals.of(type);
          const model::TypeTotals& b = posted.of(type);
          const std::string label(totals_label(type));
          const std::string note = "summary vs. the event journals settling in the batch";
          if (a.count != b.count) add(BreakKind::kBatchTotals, where, label + "_count", num(b.count), num(a.count), note);
          if (a.amount != b.amount) add(BreakKind::kBatchTotals, where, label, num(b.amount), num(a.amount), note);
          if (a.fees != b.fees) {
            add(BreakKind::kBatchTotals, where, std::string(model::event_type_name(type)) + " fees", num(b.fees),
                num(a.fees), note);
          }
        }
        check_batch_journals(*s);
        if (m == nullptr) {
          add(BreakKind::kUnknownMerchant, where, "merchant configuration", "present", "absent",
              "its figures cannot be recomputed from the rules");
          continue;
        }
        auto outcome = rules::settle_batch(*m, s->key, posted, std::min<Minor>(carry, 0), holds);
        if (!outcome.ok()) {
          add(BreakKind::kBatchRules, where, "settlement", "a result", "an error", outcome.error().message);
        } else {
          const BatchSummary& r = outcome->summary;
          const std::string note = "recomputed per SETTLEMENT_RULES §5 from its postings and earlier batches";
          auto cmp = [&](const char* what, Minor want, Minor have) {
            if (want != have) add(BreakKind::kBatchRules, where, what, num(want), num(have), note);
          };
          cmp("reserve_held", r.reserve_held, s->reserve_held);
          cmp("reserve_released", r.reserve_released, s->reserve_released);
          cmp("carried_in", r.carried_in, s->carried_in);
          cmp("net", r.net, s->net);
          cmp("payout", r.payout, s->payout);
          cmp("carry_out", r.carry_out, s->carry_out);
          if (r.payout_date != s->payout_date) {
            add(BreakKind::kBatchRules, where, "payout_date", format_date(r.payout_date), format_date(s->payout_date),
                note);
          }
          std::erase_if(holds, [&](const rules::HeldReserve& h) {
            return std::find(outcome->released.begin(), outcome->released.end(), h.batch_date) !=
                   outcome->released.end();
          });
        }
        // The chain goes on from what the ledger recorded, so one bad batch
        // is reported once rather than in every later one.
        if (s->reserve_held > 0) holds.push_back(rules::HeldReserve{s->key.batch_date, s->reserve_held});
        carry = s->carry_out;
      }
    }
  }

  void check_batch_journals(const BatchSummary& s) {
    const std::string merchant_id = s.key.merchant_id.str();
    const std::string base = fmt::format("§batch:{}:{}:", format_date(s.key.batch_date), s.key.currency);
    auto check = [&](const char* suffix, const std::string& account, Minor want) {
      auto j = journals_.find({merchant_id, base + suffix});
      Minor have = 0;
      if (j != journals_.end()) {
        for (const auto& [d, at] : j->second.by_settle_date) have += leg(at.legs, account) * at.copies();
      }
      if (have != want) {
        add(BreakKind::kBatchJournal, s.key.to_string(), fmt::format("{} journal's {} leg", suffix, account),
            num(want), num(have), "the batch journal must carry the summary's figure");
      }
    };
    const std::string reserve = model::account_name(model::AccountRole::kMerchantReserve, merchant_id);
    check("hold", reserve, -s.reserve_held);
    check("release", reserve, s.reserve_released);
    check("payout", "platform:payouts", -s.payout);
  }

  void check_identities() {
    std::map<std::pair<std::string, std::string>, Minor> balance;  // (account, currency)
    for (const ledger::Balance& b : in_.balances) balance[{b.account, b.currency}] = b.balance;
    auto balance_of = [&](const std::string& account, const std::string& currency) {
      auto it = balance.find({account, currency});
      return it == balance.end() ? Minor{0} : it->second;
    };
    std::map<std::string, Minor> payouts;
    for (const auto& [mc, list] : closed_) {
      const auto& [merchant_id, currency] = mc;
      const std::string where = fmt::format("merchant {} {}", merchant_id, currency);
      // Payable over closed batches: their events' postings and the batch journals.
      Minor payable = 0;
      if (auto it = batch_payable_.find(mc); it != batch_payable_.end()) payable += it->second;
      if (auto it = payable_by_settle_.find(mc); it != payable_by_settle_.end()) {
        for (const BatchSummary* s : list) {
          if (auto d = it->second.find(s->key.batch_date); d != it->second.end()) payable += d->second;
        }
      }
      const Minor carry_out = list.back()->carry_out;
      if (payable != -carry_out) {
        add(BreakKind::kPayable, where,
            fmt::format("merchant:{}:payable over closed batches", merchant_id), num(-carry_out), num(payable),
            fmt::format("-carry_out of the latest closed batch ({})", format_date(list.back()->key.batch_date)));
      }
      Minor held = 0, released = 0;
      for (const BatchSummary* s : list) {
        held += s->reserve_held;
        released += s->reserve_released;
        payouts[currency] += s->payout;
      }
      const std::string reserve = model::account_name(model::AccountRole::kMerchantReserve, merchant_id);
      if (const Minor have = balance_of(reserve, currency); have != -(held - released)) {
        add(BreakKind::kReserve, where, reserve + " balance", num(-(held - released)), num(have),
            fmt::format("-(held {} - released {}) over closed batches", held, released));
      }
    }
    for (const auto& [key, b] : balance) {
      if (key.first == "platform:payouts" && !payouts.contains(key.second)) payouts[key.second] = 0;
    }
    for (const auto& [currency, sum] : payouts) {
      if (const Minor have = balance_of("platform:payouts", currency); have != -sum) {
        add(BreakKind::kPayouts, currency, "platform:payouts balance", num(-sum), num(have),
            "-(sum of payouts of closed batches)");
      }
    }
  }

  const Input& in_;
  Findings f_;
  std::map<Identity, JournalCopies> journals_;
  std::map<MerchantCurrency, std::vector<const BatchSummary*>> closed_;
  std::map<MerchantCurrency, std::map<Date, Minor>> payable_by_settle_;
  std::map<MerchantCurrency, Minor> batch_payable_;
};

}  // namespace

std::string_view break_kind_name(BreakKind kind) {
  switch (kind) {
    case BreakKind::kTrialBalance: return "trial-balance";
    case BreakKind::kMissing: return "missing";
    case BreakKind::kDoubled: return "doubled";
    case BreakKind::kTwoBatches: return "two-batches";
    case BreakKind::kNotOnBus: return "not-on-bus";
    case BreakKind::kStranded: return "stranded";
    case BreakKind::kUnbalanced: return "unbalanced";
    case BreakKind::kBatchTotals: return "batch-totals";
    case BreakKind::kBatchRules: return "batch-rules";
    case BreakKind::kBatchJournal: return "batch-journal";
    case BreakKind::kPayable: return "payable";
    case BreakKind::kReserve: return "reserve";
    case BreakKind::kPayouts: return "payouts";
    case BreakKind::kUnknownMerchant: return "unknown-merchant";
  }
  return "?";
}

std::string format_break(const Break& b) {
  std::string out = fmt::format("{} {}: {} is {}, expected {}", break_kind_name(b.kind), b.where, b.what, b.actual,
                                b.expected);
  if (!b.note.empty()) out += " (" + b.note + ")";
  return out;
}

Findings check(const Input& input) { return Checker(input).run(); }

}  // namespace settle::verify
