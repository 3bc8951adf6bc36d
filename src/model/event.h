// A money event of one merchant, as accepted by ingestion. Plain value.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/ids.h"
#include "common/money.h"
#include "common/time.h"

namespace settle::model {

enum class EventType : std::uint8_t {
  kCapture = 0,
  kRefund = 1,
  kChargeback = 2,
  kChargebackReversal = 3,
  kAdjustment = 4,
};
inline constexpr int kEventTypeCount = 5;

std::string_view event_type_name(EventType type);
std::optional<EventType> event_type_from_name(std::string_view name);

struct Event {
  MerchantId merchant_id;
  EventId event_id;
  EventType type = EventType::kCapture;
  Minor amount = 0;
  std::string currency;  // an active ISO 4217 code (validated)
  Timestamp occurred_at;
  std::vector<std::pair<std::string, std::string>> metadata;  // sorted by key
};

}  // namespace settle::model
