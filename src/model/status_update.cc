#include "model/status_update.h"

#include <nlohmann/json.hpp>

namespace settle::model {

using nlohmann::json;

namespace {
constexpr StatusKind kKinds[] = {StatusKind::kEventDuplicate, StatusKind::kEventConflict,
                                 StatusKind::kEventRejected,  StatusKind::kEventLate,
                                 StatusKind::kBatchClosing,   StatusKind::kBatchClosed,
                                 StatusKind::kBatchCloseFailed};
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
    u.reason = j.value("reason", "");
    u.at_ms = j.value("at_ms", std::int64_t{0});
    return u;
  } catch (const json::exception& e) {
    return make_error(ErrorCode::kInvalidArgument, std::string("status update: ") + e.what());
  }
}

}  // namespace settle::model
