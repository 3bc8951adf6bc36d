// A merchant's settlement configuration (SETTLEMENT_RULES §2). Plain value.
#pragma once

#include <array>
#include <cstdint>

#include "common/ids.h"
#include "common/time_zone.h"
#include "model/event.h"

namespace settle::model {

struct FeeSchedule {
  std::int64_t bps = 0;    // >= 0
  std::int64_t fixed = 0;  // >= 0, minor units
  bool operator==(const FeeSchedule&) const = default;
};

struct Merchant {
  MerchantId id;
  TimeZone timezone = TimeZone::utc();
  int cutoff_minutes = 0;  // local minutes after midnight; 0 = "00:00"
  int delay_days = 1;
  // Indexed by EventType for capture, refund, chargeback, chargeback_reversal;
  // adjustments never carry a fee.
  std::array<FeeSchedule, 4> fees{};
  std::int64_t reserve_bps = 0;  // 0..10000
  int reserve_days = 0;          // >= 1 when reserve_bps > 0

  const FeeSchedule& fee_for(EventType type) const {
    return fees[static_cast<std::size_t>(type)];
  }
};

}  // namespace settle::model
