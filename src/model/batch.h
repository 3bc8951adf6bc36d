// Batches: the key, the control totals a processor keeps per open batch, and
// the settled summary (SETTLEMENT_RULES §5). Plain values.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "common/ids.h"
#include "common/money.h"
#include "common/time.h"
#include "model/event.h"

namespace settle::model {

struct BatchKey {
  MerchantId merchant_id;
  Date batch_date;
  std::string currency;
  auto operator<=>(const BatchKey&) const = default;
  std::string to_string() const;  // "m1/2026-11-23/USD"
};

struct TypeTotals {
  std::int64_t count = 0;
  Minor amount = 0;  // sum of amounts (signed for adjustments)
  Minor fees = 0;    // sum of per-event fees
  bool operator==(const TypeTotals&) const = default;
};

// Counts and sums per event type, and fees: what a batch's postings must add
// up to. Indexed by EventType.
struct ControlTotals {
  std::array<TypeTotals, kEventTypeCount> by_type{};

  TypeTotals& of(EventType t) { return by_type[static_cast<std::size_t>(t)]; }
  const TypeTotals& of(EventType t) const { return by_type[static_cast<std::size_t>(t)]; }
  std::int64_t event_count() const;
  Minor fees() const;  // over all types; fits int64 when built by rules::add_to_totals
  bool operator==(const ControlTotals&) const = default;
  std::string to_string() const;  // for mismatch messages
};

struct BatchSummary {
  BatchKey key;
  ControlTotals totals;
  Minor reserve_held = 0;
  Minor reserve_released = 0;
  Minor carried_in = 0;
  Minor net = 0;
  Minor payout = 0;
  Minor carry_out = 0;
  Date payout_date;
  bool operator==(const BatchSummary&) const = default;
};

}  // namespace settle::model
