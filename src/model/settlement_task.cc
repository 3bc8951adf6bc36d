#include "model/settlement_task.h"

#include <nlohmann/json.hpp>

#include "model/merchant_json.h"

namespace settle::model {
namespace {

using nlohmann::json;

json totals_to_json(const ControlTotals& t) {
  json j = json::object();
  for (int i = 0; i < kEventTypeCount; ++i) {
    const TypeTotals& tt = t.by_type[static_cast<std::size_t>(i)];
    j[std::string(event_type_name(static_cast<EventType>(i)))] = {
        {"count", tt.count}, {"amount", tt.amount}, {"fees", tt.fees}};
  }
  return j;
}

Result<ControlTotals> totals_from_json(const json& j) {
  ControlTotals t;
  if (!j.is_object()) return make_error(ErrorCode::kInvalidArgument, "totals must be an object");
  for (const auto& [name, v] : j.items()) {
    auto type = event_type_from_name(name);
    if (!type || !v.is_object() || !v.contains("count") || !v.contains("amount") || !v.contains("fees")) {
      return make_error(ErrorCode::kInvalidArgument, "totals: bad entry '" + name + "'");
    }
    TypeTotals& tt = t.of(*type);
    tt.count = v["count"].get<std::int64_t>();
    tt.amount = v["amount"].get<std::int64_t>();
    tt.fees = v["fees"].get<std::int64_t>();
  }
  return t;
}

}  // namespace

std::string control_totals_json(const ControlTotals& totals) { return totals_to_json(totals).dump(); }

std::string task_json(const SettlementTask& task) {
  json j;
  j["merchant_id"] = task.key.merchant_id.str();
  j["batch_date"] = format_date(task.key.batch_date);
  j["currency"] = task.key.currency;
  j["totals"] = totals_to_json(task.totals);
  j["previous_batch"] = task.previous_batch ? json(format_date(*task.previous_batch)) : json(nullptr);
  j["merchant"] = json::parse(merchant_json(task.merchant));
  return j.dump();
}

Result<SettlementTask> parse_task_json(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return make_error(ErrorCode::kInvalidArgument, "settlement task: not a JSON object");
  }
  try {
    SettlementTask t;
    t.key.merchant_id = MerchantId(j.at("merchant_id").get<std::string>());
    SETTLE_ASSIGN_OR_RETURN(t.key.batch_date, parse_date(j.at("batch_date").get<std::string>()));
    t.key.currency = j.at("currency").get<std::string>();
    SETTLE_ASSIGN_OR_RETURN(t.totals, totals_from_json(j.at("totals")));
    if (!j.at("previous_batch").is_null()) {
      SETTLE_ASSIGN_OR_RETURN(Date prev, parse_date(j.at("previous_batch").get<std::string>()));
      t.previous_batch = prev;
    }
    SETTLE_ASSIGN_OR_RETURN(t.merchant, parse_merchant_json(j.at("merchant").dump()));
    return t;
  } catch (const json::exception& e) {
    return make_error(ErrorCode::kInvalidArgument, std::string("settlement task: ") + e.what());
  }
}

}  // namespace settle::model
