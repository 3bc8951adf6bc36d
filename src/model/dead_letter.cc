#include "model/dead_letter.h"

#include <nlohmann/json.hpp>

namespace settle::model {

using nlohmann::json;

std::string dead_letter_json(const DeadLetter& d) {
  json j;
  j["source_topic"] = d.source_topic;
  j["source_partition"] = d.source_partition;
  j["source_offset"] = d.source_offset;
  j["merchant_id"] = d.merchant_id;
  j["event_id"] = d.event_id;
  j["reason"] = d.reason;
  // The value may be any bytes; JSON strings must be UTF-8, so invalid
  // sequences are replaced rather than refused.
  j["value"] = d.value;
  j["at_ms"] = d.at_ms;
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<DeadLetter> parse_dead_letter_json(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return make_error(ErrorCode::kInvalidArgument, "dead letter: not a JSON object");
  }
  DeadLetter d;
  try {
    d.source_topic = j.at("source_topic").get<std::string>();
    d.source_partition = j.at("source_partition").get<std::int32_t>();
    d.source_offset = j.at("source_offset").get<std::int64_t>();
    d.merchant_id = j.value("merchant_id", "");
    d.event_id = j.value("event_id", "");
    d.reason = j.value("reason", "");
    d.value = j.value("value", "");
    d.at_ms = j.value("at_ms", std::int64_t{0});
  } catch (const json::exception& e) {
    return make_error(ErrorCode::kInvalidArgument, std::string("dead letter: ") + e.what());
  }
  return d;
}

}  // namespace settle::model
