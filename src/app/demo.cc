#include "app/demo.h"

#include <fmt/format.h>

#include <algorithm>
#include <random>

#include "model/event.h"
#include "model/event_json.h"
#include "model/merchant_json.h"

namespace settle::app {
namespace {

struct Profile {
  const char* json;            // the merchant's configuration
  const char* currency;
  std::int64_t ticket_min;     // capture amount range, minor units
  std::int64_t ticket_max;
  int refund_pct;              // share of events that are refunds
  int chargeback_pct;
};

// Five merchants a PSP might have: cut-offs, reserves, zero- and
// three-decimal currencies, one with heavy chargebacks that runs negative.
constexpr Profile kProfiles[] = {
    {R"({"merchant_id":"berlin-books","timezone":"Europe/Berlin","cutoff":"18:00","delay_days":1,
        "fees":{"capture":{"bps":140,"fixed":25},"refund":{"bps":0,"fixed":25},"chargeback":{"bps":0,"fixed":1500}}})",
     "EUR", 800, 9000, 4, 1},
    {R"({"merchant_id":"tokyo-tea","timezone":"Asia/Tokyo","delay_days":2,
        "fees":{"capture":{"bps":325,"fixed":0},"chargeback":{"bps":0,"fixed":1000}}})",
     "JPY", 500, 12000, 3, 1},
    {R"({"merchant_id":"kuwait-motors","timezone":"Asia/Kuwait","cutoff":"22:00","delay_days":1,
        "fees":{"capture":{"bps":180,"fixed":50}},"reserve_bps":1000,"reserve_days":2})",
     "KWD", 20000, 900000, 2, 0},
    {R"({"merchant_id":"sf-surf","timezone":"America/Los_Angeles","cutoff":"17:00","delay_days":2,
        "fees":{"capture":{"bps":290,"fixed":30},"refund":{"bps":0,"fixed":0},"chargeback":{"bps":0,"fixed":1500},
                "chargeback_reversal":{"bps":0,"fixed":0}},"reserve_bps":500,"reserve_days":1})",
     "USD", 1500, 25000, 5, 2},
    {R"({"merchant_id":"risky-gadgets","timezone":"UTC","delay_days":1,
        "fees":{"capture":{"bps":450,"fixed":30},"chargeback":{"bps":0,"fixed":2500}}})",
     "GBP", 500, 4000, 12, 25},
};

}  // namespace

Sample make_sample(std::uint64_t seed, int events_per_merchant_day) {
  Sample s;
  std::mt19937_64 rng(seed);
  auto uniform = [&](std::int64_t lo, std::int64_t hi) {
    return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
  };
  // The week Europe moves its clocks forward (Sunday 2026-03-29).
  s.first_day = date_from_civil(2026, 3, 27);
  const int days = 4;
  s.through = s.first_day.plus_days(days - 1);

  s.merchants_json = "[\n";
  for (std::size_t i = 0; i < std::size(kProfiles); ++i) {
    auto m = model::parse_merchant_json(kProfiles[i].json);
    SETTLE_ASSERT(m.ok(), "demo merchant must parse");
    s.merchants.push_back(*m);
    s.merchants_json += "  " + model::merchant_json(*m) + (i + 1 < std::size(kProfiles) ? ",\n" : "\n");
  }
  s.merchants_json += "]\n";

  std::vector<std::string> lines;
  int seq = 0;
  for (std::size_t i = 0; i < std::size(kProfiles); ++i) {
    const Profile& p = kProfiles[i];
    const model::Merchant& m = s.merchants[i];
    std::vector<std::pair<std::string, std::int64_t>> captured;  // for refunds and chargebacks
    // One day more than settled: those events stay in an open batch.
    for (int d = 0; d <= days; ++d) {
      const std::int64_t day_start = static_cast<std::int64_t>(s.first_day.plus_days(d).days) * kNsPerDay;
      for (int k = 0; k < events_per_merchant_day; ++k) {
        model::Event ev;
        ev.merchant_id = m.id;
        ev.event_id = EventId(fmt::format("evt_{:06d}", ++seq));
        ev.currency = p.currency;
        ev.occurred_at = Timestamp{day_start + uniform(0, kNsPerDay / kNsPerSecond - 1) * kNsPerSecond};
        const int roll = static_cast<int>(uniform(0, 99));
        if (!captured.empty() && roll < p.chargeback_pct) {
          ev.type = model::EventType::kChargeback;
          ev.amount = captured[static_cast<std::size_t>(uniform(0, static_cast<std::int64_t>(captured.size()) - 1))].second;
          ev.metadata = {{"reason", "fraudulent"}};
        } else if (!captured.empty() && roll < p.chargeback_pct + p.refund_pct) {
          ev.type = model::EventType::kRefund;
          const auto& orig = captured[static_cast<std::size_t>(uniform(0, static_cast<std::int64_t>(captured.size()) - 1))];
          ev.amount = std::max<std::int64_t>(1, orig.second / (1 + uniform(0, 2)));
          ev.metadata = {{"original", orig.first}};
        } else if (roll == 99) {
          ev.type = model::EventType::kAdjustment;
          ev.amount = uniform(0, 1) ? uniform(100, 2000) : -uniform(100, 2000);
          ev.metadata = {{"note", "manual correction"}};
        } else if (roll == 98 && !captured.empty()) {
          ev.type = model::EventType::kChargebackReversal;
          ev.amount = captured.back().second;
        } else {
          ev.type = model::EventType::kCapture;
          ev.amount = uniform(p.ticket_min, p.ticket_max);
          captured.emplace_back(ev.event_id.str(), ev.amount);
        }
        lines.push_back(model::canonical_event_json(ev));
      }
    }
  }
  // Arrival order is not event-time order, and a few events arrive twice.
  std::shuffle(lines.begin(), lines.end(), rng);
  const std::size_t dups = lines.size() / 100;
  for (std::size_t i = 0; i < dups; ++i) {
    lines.push_back(lines[static_cast<std::size_t>(uniform(0, static_cast<std::int64_t>(lines.size()) - 1))]);
  }
  for (const auto& l : lines) {
    s.events_ndjson += l;
    s.events_ndjson += '\n';
  }
  return s;
}

namespace {

std::string money(Minor amount, std::string_view currency) {
  auto c = find_currency(currency);
  return format_minor(amount, c.ok() ? c->exponent() : 0);
}

std::string render(const std::vector<std::vector<std::string>>& rows, const std::vector<bool>& right) {
  std::vector<std::size_t> width(rows.front().size(), 0);
  for (const auto& r : rows) {
    for (std::size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  std::string out;
  for (std::size_t n = 0; n < rows.size(); ++n) {
    std::string line;
    for (std::size_t i = 0; i < rows[n].size(); ++i) {
      if (i) line += "  ";
      const std::string& cell = rows[n][i];
      const std::string pad(width[i] - cell.size(), ' ');
      line += right[i] ? pad + cell : cell + pad;
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + '\n';
    if (n == 0) {
      std::size_t total = 0;
      for (auto w : width) total += w;
      out += std::string(total + 2 * (width.size() - 1), '-') + '\n';
    }
  }
  return out;
}

}  // namespace

std::string format_report_table(ledger::Ledger& ledger) {
  auto batches = ledger.closed_batches(ledger::BatchQuery{});
  if (!batches.ok()) return "error: " + batches.error().message + "\n";
  std::vector<std::vector<std::string>> rows = {{"merchant", "batch", "cur", "events", "captures", "refunds+cb",
                                                 "fees", "reserve", "released", "carried in", "payout",
                                                 "carry out", "pays on"}};
  for (const auto& b : *batches) {
    const auto& t = b.totals;
    const std::string& c = b.key.currency;
    rows.push_back({b.key.merchant_id.str(), format_date(b.key.batch_date), c, std::to_string(t.event_count()),
                    money(t.of(model::EventType::kCapture).amount, c),
                    money(t.of(model::EventType::kRefund).amount + t.of(model::EventType::kChargeback).amount, c),
                    money(t.fees(), c), money(b.reserve_held, c), money(b.reserve_released, c),
                    money(b.carried_in, c), money(b.payout, c), money(b.carry_out, c),
                    format_date(b.payout_date)});
  }
  return render(rows, {false, false, false, true, true, true, true, true, true, true, true, true, false});
}

std::string format_balances_table(ledger::Ledger& ledger, std::optional<std::string_view> merchant) {
  auto balances = ledger.balances(merchant);
  if (!balances.ok()) return "error: " + balances.error().message + "\n";
  std::vector<std::vector<std::string>> rows = {{"account", "currency", "balance", "postings"}};
  for (const auto& b : *balances) {
    rows.push_back({b.account, b.currency, money(b.balance, b.currency), std::to_string(b.postings)});
  }
  return render(rows, {false, false, true, true});
}

std::string format_trial_balance(ledger::Ledger& ledger) {
  auto tb = ledger.trial_balance();
  if (!tb.ok()) return "error: " + tb.error().message + "\n";
  std::vector<std::vector<std::string>> rows = {{"currency", "debits", "credits", "net"}};
  for (const auto& t : *tb) {
    rows.push_back({t.currency, money(t.debits, t.currency), money(t.credits, t.currency), money(t.net, t.currency)});
  }
  return render(rows, {false, true, true, true});
}

}  // namespace settle::app
