#include <fmt/format.h>

#include "common/assert.h"
#include "model/batch.h"
#include "model/event.h"
#include "model/journal.h"

namespace settle::model {

std::string_view event_type_name(EventType type) {
  switch (type) {
    case EventType::kCapture: return "capture";
    case EventType::kRefund: return "refund";
    case EventType::kChargeback: return "chargeback";
    case EventType::kChargebackReversal: return "chargeback_reversal";
    case EventType::kAdjustment: return "adjustment";
  }
  SETTLE_ASSERT(false, "unknown event type");
}

std::optional<EventType> event_type_from_name(std::string_view name) {
  for (int i = 0; i < kEventTypeCount; ++i) {
    const auto t = static_cast<EventType>(i);
    if (event_type_name(t) == name) return t;
  }
  return std::nullopt;
}

std::string BatchKey::to_string() const {
  return fmt::format("{}/{}/{}", merchant_id.str(), format_date(batch_date), currency);
}

std::int64_t ControlTotals::event_count() const {
  std::int64_t n = 0;
  for (const auto& t : by_type) n += t.count;
  return n;
}

Minor ControlTotals::fees() const {
  __int128 f = 0;
  for (const auto& t : by_type) f += t.fees;
  // rules::add_to_totals keeps the sum in range; totals built otherwise must too.
  SETTLE_ASSERT(f >= INT64_MIN && f <= INT64_MAX, "batch fees overflow int64");
  return static_cast<Minor>(f);
}

std::string ControlTotals::to_string() const {
  std::string out;
  for (int i = 0; i < kEventTypeCount; ++i) {
    const auto& t = by_type[static_cast<std::size_t>(i)];
    if (!out.empty()) out += ' ';
    out += fmt::format("{}={}/{}/fee {}", event_type_name(static_cast<EventType>(i)), t.count,
                       t.amount, t.fees);
  }
  return out;
}

std::string account_name(AccountRole role, std::string_view merchant_id) {
  switch (role) {
    case AccountRole::kMerchantPayable: return fmt::format("merchant:{}:payable", merchant_id);
    case AccountRole::kMerchantReserve: return fmt::format("merchant:{}:reserve", merchant_id);
    case AccountRole::kPlatformClearing: return "platform:clearing";
    case AccountRole::kPlatformFees: return "platform:fees";
    case AccountRole::kPlatformAdjustments: return "platform:adjustments";
    case AccountRole::kPlatformPayouts: return "platform:payouts";
  }
  SETTLE_ASSERT(false, "unknown account role");
}

bool is_merchant_account(AccountRole role) {
  return role == AccountRole::kMerchantPayable || role == AccountRole::kMerchantReserve;
}

std::string_view journal_kind_name(JournalKind kind) {
  switch (kind) {
    case JournalKind::kCapture: return "capture";
    case JournalKind::kRefund: return "refund";
    case JournalKind::kChargeback: return "chargeback";
    case JournalKind::kChargebackReversal: return "chargeback_reversal";
    case JournalKind::kAdjustment: return "adjustment";
    case JournalKind::kReserveHold: return "reserve_hold";
    case JournalKind::kReserveRelease: return "reserve_release";
    case JournalKind::kPayout: return "payout";
  }
  SETTLE_ASSERT(false, "unknown journal kind");
}

JournalKind journal_kind_of(EventType type) { return static_cast<JournalKind>(type); }

void Journal::add_leg(AccountRole account, Minor leg_amount) {
  if (leg_amount == 0) return;
  SETTLE_ASSERT(leg_count < kMaxLegs, "a journal has at most three legs");
  legs[leg_count++] = Posting{account, leg_amount};
}

Minor Journal::leg_sum() const {
  __int128 sum = 0;
  for (std::uint8_t i = 0; i < leg_count; ++i) sum += legs[i].amount;
  return static_cast<Minor>(sum);
}

}  // namespace settle::model
