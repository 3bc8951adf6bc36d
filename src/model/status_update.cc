#include "model/status_update.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "model/event_json.h"

namespace settle::model {

using nlohmann::json;

namespace {
constexpr StatusKind kKinds[] = {StatusKind::kEventDuplicate, StatusKind::kEventConflict,
                                 StatusKind::kEventRejected,  StatusKind::kEventLate,
                                 StatusKind::kBatchClosing,   StatusKind::kBatchClosed,
                                 StatusKind::kBatchCloseFailed, StatusKind::kBatchOpen,
                                 StatusKind::kEventAccepted,  StatusKind::kEventPosted,
                                 StatusKind::kBatchPaidOut,   StatusKind::kBatchReconciled,
                                 StatusKind::kBatchDiscrepancy, StatusKind::kMerchantDiscrepancies};
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
    case StatusKind::kEventAccepted: return "event_accepted";
    case StatusKind::kEventPosted: return "event_posted";
    case StatusKind::kBatchPaidOut: return "batch_paid_out";
    case StatusKind::kBatchReconciled: return "batch_reconciled";
    case StatusKind::kBatchDiscrepancy: return "batch_discrepancy";
    case StatusKind::kMerchantDiscrepancies: return "merchant_discrepancies";
  }
  SETTLE_ASSERT(false, "unknown status kind");
}

namespace {

// event_accepted and event_posted, the statuses of every group of events,
// written directly: what nlohmann::json's dump() writes for them (its keys in
// sorted order, no spaces), without a JSON tree of nodes and strings first.
bool is_plain_event_status(const StatusUpdate& u) {
  return (u.kind == StatusKind::kEventAccepted || u.kind == StatusKind::kEventPosted) && !u.batch &&
         !u.payout_date && !u.totals;
}

void append_key(std::string& out, std::string_view key) {
  out += ",\"";
  out += key;
  out += "\":";
}

void append_string(std::string& out, std::string_view s) {
  out += '"';
  append_json_escaped(out, s);
  out += '"';
}

void append_number(std::string& out, std::int64_t n) {
  const fmt::format_int digits(n);
  out.append(digits.data(), digits.size());
}

std::string plain_event_status_json(const StatusUpdate& u) {
  std::string out;
  out.reserve(128 + u.event_ids.size() * 24);
  out += "{\"at_ms\":";
  append_number(out, u.at_ms);
  append_key(out, "count");
  append_number(out, u.count);
  if (!u.event_id.empty()) {
    append_key(out, "event_id");
    append_string(out, u.event_id);
  }
  append_key(out, "event_ids");
  out += '[';
  for (std::size_t i = 0; i < u.event_ids.size(); ++i) {
    if (i) out += ',';
    append_string(out, u.event_ids[i]);
  }
  out += ']';
  append_key(out, "kind");
  append_string(out, status_kind_name(u.kind));
  append_key(out, "merchant_id");
  append_string(out, u.merchant_id);
  if (u.offset >= 0) {
    append_key(out, "offset");
    append_number(out, u.offset);
  }
  if (u.partition >= 0) {
    append_key(out, "partition");
    append_number(out, u.partition);
  }
  if (!u.reason.empty()) {
    append_key(out, "reason");
    append_string(out, u.reason);
  }
  if (!u.source.empty()) {
    append_key(out, "source");
    append_string(out, u.source);
  }
  if (!u.trace_id.empty()) {
    append_key(out, "trace_id");
    append_string(out, u.trace_id);
  }
  out += '}';
  return out;
}

}  // namespace

std::string status_json(const StatusUpdate& u) {
  if (is_plain_event_status(u)) return plain_event_status_json(u);
  json j;
  j["kind"] = status_kind_name(u.kind);
  j["merchant_id"] = u.merchant_id;
  if (!u.event_id.empty()) j["event_id"] = u.event_id;
  if (!u.source.empty()) j["source"] = u.source;
  if (u.batch) {
    j["batch_date"] = format_date(u.batch->batch_date);
    j["currency"] = u.batch->currency;
  }
  const bool with_payout = u.kind == StatusKind::kBatchClosed || u.kind == StatusKind::kBatchPaidOut ||
                           u.kind == StatusKind::kBatchReconciled || u.kind == StatusKind::kBatchDiscrepancy;
  if (with_payout) {
    j["payout"] = u.payout;
    j["carry_out"] = u.carry_out;
  }
  if (u.kind == StatusKind::kEventAccepted || u.kind == StatusKind::kEventPosted) {
    j["event_ids"] = u.event_ids;
    j["count"] = u.count;
    if (u.partition >= 0) j["partition"] = u.partition;
    if (u.offset >= 0) j["offset"] = u.offset;
  }
  if (u.kind == StatusKind::kBatchDiscrepancy || u.kind == StatusKind::kMerchantDiscrepancies) {
    json list = json::array();
    for (const DiscrepancyNote& d : u.discrepancies) {
      list.push_back({{"id", d.id}, {"reason", d.reason}, {"state", d.state}, {"subject", d.subject},
                      {"currency", d.currency}, {"drift", d.drift}});
    }
    j["discrepancies"] = std::move(list);
    j["open_discrepancies"] = u.open_discrepancies;
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
  if (!u.trace_id.empty()) j["trace_id"] = u.trace_id;
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
    if (j.contains("event_ids")) u.event_ids = j["event_ids"].get<std::vector<std::string>>();
    u.count = j.value("count", std::int64_t{0});
    u.partition = j.value("partition", std::int32_t{-1});
    u.offset = j.value("offset", std::int64_t{-1});
    if (j.contains("discrepancies")) {
      for (const auto& d : j["discrepancies"]) {
        u.discrepancies.push_back(DiscrepancyNote{d.at("id").get<std::int64_t>(), d.at("reason").get<std::string>(),
                                                  d.at("state").get<std::string>(), d.value("subject", ""),
                                                  d.value("currency", ""), d.value("drift", Minor{0})});
      }
    }
    u.open_discrepancies = j.value("open_discrepancies", std::int64_t{0});
    u.reason = j.value("reason", "");
    u.trace_id = j.value("trace_id", "");
    u.at_ms = j.value("at_ms", std::int64_t{0});
    return u;
  } catch (const json::exception& e) {
    return make_error(ErrorCode::kInvalidArgument, std::string("status update: ") + e.what());
  }
}

}  // namespace settle::model
