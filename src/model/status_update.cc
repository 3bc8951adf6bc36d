#include "model/status_update.h"

#include <nlohmann/json.hpp>

namespace settle::model {

using nlohmann::json;

namespace {
constexpr StatusKind kKinds[] = {StatusKind::kEventDuplicate, StatusKind::kEventConflict,
                                 StatusKind::kEventRejected,  StatusKind::kEventLate,
                                 StatusKind::kBatchClosing,   StatusKind::kBatchClosed,
                                 StatusKind::kBatchCloseFailed, StatusKind::kBatchOpen};
constexpr EventType kTypes[] = {EventType::kCapture, EventType::kRefund, EventType::kChargeback,
                                EventType::kChargebackReversal, EventType::kAdjustment};
}

std::string_view status_kind_name(StatusKind kind) {
  switch (kind) {
    case StatusKind::kEventDuplicate: return "event_duplicate";
    case StatusKind::kEventConflict: return "event_conflict";
    case StatusKind::kEventRejected: return "event_rejected";
    case StatusKind::kEventLate: return "event_late";
    case StatusKind::kBatchClosing: return "batch_closing";
    case StatusKind::kBatchClosed: return "batch_closed";
    case StatusKind::kBatchCloseFailed: return "batch_close_failed";
    case StatusKind::kBatchOpen: return "batch_open";
  }
  SETTLE_ASSERT(false, "unknown status kind");
}

std::string status_json(const StatusUpdate& u) {
  json j;
  j["kind"] = status_kind_name(u.kind);
  j["merchant_id"] = u.merchant_id;
  if (!u.event_id.empty()) j["event_id"] = u.event_id;
  if (!u.source.empty()) j["source"] = u.source;
  if (u.batch) {
    j["batch_date"] = format_date(u.batch->batch_date);
    j["currency"] = u.batch->currency;
  }
  if (u.kind == StatusKind::kBatchClosed) {
    j["payout"] = u.payout;
    j["carry_out"] = u.carry_out;
  }
  if (u.payout_date) j["payout_date"] = format_date(*u.payout_date);
  if (u.totals) {
    json t = json::object();
    for (EventType type : kTypes) {
      const TypeTotals& tt = u.totals->of(type);
      if (tt.count == 0) continue;
      t[std::string(event_type_name(type))] = {{"count", tt.count}, {"amount", tt.amount}, {"fees", tt.fees}};
    }
    j["event_count"] = u.totals->event_count();
    j["fees"] = u.totals->fees();
    j["totals"] = std::move(t);
  }
  if (!u.reason.empty()) j["reason"] = u.reason;
  j["at_ms"] = u.at_ms;
  return j.dump();
}

Result<StatusUpdate> parse_status_json(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return make_error(ErrorCode::kInvalidArgument, "status update: not a JSON object");
  }
  try {
    StatusUpdate u;
    const auto kind = j.at("kind").get<std::string>();
    bool found = false;
    for (StatusKind k : kKinds) {
      if (status_kind_name(k) == kind) {
        u.kind = k;
        found = true;
      }
    }
    if (!found) return make_error(ErrorCode::kInvalidArgument, "status update: unknown kind '" + kind + "'");
    u.merchant_id = j.at("merchant_id").get<std::string>();
    u.event_id = j.value("event_id", "");
    u.source = j.value("source", "");
    if (j.contains("batch_date")) {
      BatchKey k;
      k.merchant_id = MerchantId(u.merchant_id);
      SETTLE_ASSIGN_OR_RETURN(k.batch_date, parse_date(j["batch_date"].get<std::string>()));
      k.currency = j.value("currency", "");
      u.batch = k;
    }
    u.payout = j.value("payout", Minor{0});
    u.carry_out = j.value("carry_out", Minor{0});
    if (j.contains("payout_date")) {
      SETTLE_ASSIGN_OR_RETURN(u.payout_date, parse_date(j["payout_date"].get<std::string>()));
    }
    if (j.contains("totals")) {
      ControlTotals totals;
      for (const auto& [name, tt] : j["totals"].items()) {
        auto type = event_type_from_name(name);
        if (!type) return make_error(ErrorCode::kInvalidArgument, "status update: unknown event type '" + name + "' in totals");
        totals.of(*type) = TypeTotals{tt.at("count").get<std::int64_t>(), tt.at("amount").get<Minor>(),
                                      tt.at("fees").get<Minor>()};
      }
      u.totals = totals;
    }
    u.reason = j.value("reason", "");
    u.at_ms = j.value("at_ms", std::int64_t{0});
    return u;
  } catch (const json::exception& e) {
    return make_error(ErrorCode::kInvalidArgument, std::string("status update: ") + e.what());
  }
}

}  // namespace settle::model
