#include "sim/workload.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "rules/rules.h"

namespace settle::sim {

using model::EventType;

Workload make_workload(Faults& rng, int events) {
  static const char* kZones[] = {"UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney"};
  static const char* kCurrencies[] = {"EUR", "USD", "JPY", "KWD"};
  static const int kCutoffs[] = {0, 18 * 60, 12 * 60 + 30, 23 * 60 + 59};
  Workload w;
  const int merchants = 1 + static_cast<int>(rng.below(3));
  std::vector<std::vector<std::string>> currencies;
  for (int i = 0; i < merchants; ++i) {
    model::Merchant m;
    m.id = MerchantId(fmt::format("m{}", i));
    m.timezone = *TimeZone::locate(kZones[rng.below(std::size(kZones))]);
    m.cutoff_minutes = kCutoffs[rng.below(std::size(kCutoffs))];
    m.delay_days = static_cast<int>(rng.below(3));
    for (auto& f : m.fees) f = {static_cast<std::int64_t>(rng.below(400)), static_cast<std::int64_t>(rng.below(40))};
    if (rng.coin(0.6)) {
      m.reserve_bps = 100 + static_cast<std::int64_t>(rng.below(2000));
      m.reserve_days = 1 + static_cast<int>(rng.below(2));
    }
    std::vector<std::string> cs{kCurrencies[rng.below(std::size(kCurrencies))]};
    if (rng.coin(0.4)) {
      const std::string other = kCurrencies[rng.below(std::size(kCurrencies))];
      if (other != cs[0]) cs.push_back(other);
    }
    currencies.push_back(cs);
    w.merchants.push_back(std::move(m));
  }
  // Four days around the start of European summer time (2026-03-29).
  const std::int64_t start_ns = static_cast<std::int64_t>(date_from_civil(2026, 3, 27).days) * 86'400'000'000'000;
  const std::int64_t span_ns = std::int64_t{4} * 86'400'000'000'000;
  for (int i = 0; i < events; ++i) {
    model::Event e;
    const std::size_t mi = rng.below(w.merchants.size());
    e.merchant_id = w.merchants[mi].id;
    e.event_id = EventId(fmt::format("e{}", i));
    const std::uint64_t t = rng.below(100);
    e.type = t < 55 ? EventType::kCapture
           : t < 70 ? EventType::kRefund
           : t < 80 ? EventType::kChargeback
           : t < 88 ? EventType::kChargebackReversal
                    : EventType::kAdjustment;
    e.amount = 1 + static_cast<Minor>(rng.below(rng.coin(0.1) ? 200'000 : 20'000));
    if (e.type == EventType::kAdjustment && rng.coin(0.6)) e.amount = -e.amount;
    e.currency = currencies[mi][rng.below(currencies[mi].size())];
    e.occurred_at = Timestamp{start_ns + static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(span_ns / 1000))) * 1000};
    w.batch_dates.push_back(rules::batch_date_of(w.merchants[mi], e.occurred_at));
    w.events.push_back(std::move(e));
  }
  if (rng.coin(0.1)) {
    // An event no configured merchant owns: it must be dead-lettered.
    model::Event e;
    e.merchant_id = MerchantId("ghost");
    e.event_id = EventId("g0");
    e.amount = 100;
    e.currency = "EUR";
    e.occurred_at = Timestamp{start_ns};
    w.events.push_back(std::move(e));
    w.batch_dates.push_back(Date{});
  }
  std::set<Date> dates;
  for (std::size_t i = 0; i < w.events.size(); ++i) {
    if (w.events[i].merchant_id.str() != "ghost") dates.insert(w.batch_dates[i]);
  }
  w.dates.assign(dates.begin(), dates.end());
  w.through = w.dates.empty() ? Date{} : w.dates.back();
  return w;
}

std::string reference_report(const Workload& w) {
  std::map<std::string, const model::Merchant*> merchants;
  for (const auto& m : w.merchants) merchants[m.id.str()] = &m;
  // (merchant, currency) -> date -> totals
  std::map<std::pair<std::string, std::string>, std::map<Date, model::ControlTotals>> batches;
  for (std::size_t i = 0; i < w.events.size(); ++i) {
    const model::Event& e = w.events[i];
    auto m = merchants.find(e.merchant_id.str());
    if (m == merchants.end() || w.batch_dates[i] > w.through) continue;
    const Minor fee = e.type == EventType::kAdjustment ? 0 : *rules::event_fee(*m->second, e.type, e.amount);
    auto& t = batches[{e.merchant_id.str(), e.currency}][w.batch_dates[i]];
    SETTLE_ASSERT(rules::add_to_totals(t, e.type, e.amount, fee).ok(), "workload amounts are small");
  }
  std::string out = rules::report_header() + "\n";
  for (const auto& [mc, by_date] : batches) {
    const model::Merchant& m = *merchants.at(mc.first);
    Minor carry = 0;
    std::vector<rules::HeldReserve> holds;
    for (const auto& [date, totals] : by_date) {
      auto outcome = rules::settle_batch(m, model::BatchKey{m.id, date, mc.second}, totals, carry, holds);
      SETTLE_ASSERT(outcome.ok(), "workload amounts are small");
      std::erase_if(holds, [&](const rules::HeldReserve& h) {
        return std::find(outcome->released.begin(), outcome->released.end(), h.batch_date) != outcome->released.end();
      });
      if (outcome->summary.reserve_held > 0) holds.push_back({date, outcome->summary.reserve_held});
      carry = outcome->summary.carry_out;
      out += rules::report_row(outcome->summary) + "\n";
    }
  }
  return out;
}

}  // namespace settle::sim
