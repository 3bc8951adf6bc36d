#include "model/merchant_json.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "model/event_json.h"

namespace settle::model {
namespace {

using nlohmann::json;

Error field_error(std::string_view field, std::string_view why) {
  return make_error(ErrorCode::kInvalidArgument, fmt::format("field '{}': {}", field, why));
}

// nlohmann keeps the last of duplicate keys without a word; JSON leaves their
// meaning undefined, so a merchant with a repeated key is rejected, as an event
// is. `element` is the 1-based index in a top-level array (0 for an object).
struct Duplicate {
  std::string key;
  std::size_t element = 0;
};

json parse_checking_duplicates(std::string_view text, Duplicate& duplicate) {
  std::vector<std::set<std::string>> open;  // the keys of each open object
  std::size_t element = 0;
  auto callback = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth == 1 && (event == json::parse_event_t::object_start ||
                       event == json::parse_event_t::array_start ||
                       event == json::parse_event_t::value)) {
      ++element;
    }
    if (event == json::parse_event_t::object_start) {
      open.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      if (!open.empty()) open.pop_back();
    } else if (event == json::parse_event_t::key && !open.empty()) {
      const auto& key = parsed.get_ref<const std::string&>();
      if (!open.back().insert(key).second && duplicate.key.empty()) {
        duplicate = Duplicate{key, element};
      }
    }
    return true;
  };
  return json::parse(text, callback, /*allow_exceptions=*/false);
}

Result<std::int64_t> get_int(const json& v, std::string_view field, std::int64_t lo, std::int64_t hi) {
  if (!v.is_number_integer()) return field_error(field, "must be an integer");
  if (v.is_number_unsigned() && v.get<std::uint64_t>() > static_cast<std::uint64_t>(hi)) {
    return field_error(field, fmt::format("must be between {} and {}", lo, hi));
  }
  const auto n = v.get<std::int64_t>();
  if (n < lo || n > hi) return field_error(field, fmt::format("must be between {} and {}", lo, hi));
  return n;
}

Result<Merchant> from_json(const json& j) {
  if (!j.is_object()) return make_error(ErrorCode::kInvalidArgument, "a merchant must be a JSON object");
  Merchant m;
  bool have_id = false;
  bool have_reserve_days = false;
  for (const auto& [key, v] : j.items()) {
    if (key == "merchant_id") {
      if (!v.is_string()) return field_error(key, "must be a string");
      const auto& s = v.get_ref<const std::string&>();
      SETTLE_TRY(validate_merchant_id(s));
      m.id = MerchantId(s);
      have_id = true;
    } else if (key == "timezone") {
      if (!v.is_string()) return field_error(key, "must be a string");
      auto tz = TimeZone::locate(v.get_ref<const std::string&>());
      if (!tz.ok()) return field_error(key, tz.error().message);
      m.timezone = *tz;
    } else if (key == "cutoff") {
      if (!v.is_string()) return field_error(key, "must be a string \"HH:MM\"");
      auto c = parse_hh_mm(v.get_ref<const std::string&>());
      if (!c.ok()) return field_error(key, c.error().message);
      m.cutoff_minutes = *c;
    } else if (key == "delay_days") {
      SETTLE_ASSIGN_OR_RETURN(auto n, get_int(v, key, 0, 3650));
      m.delay_days = static_cast<int>(n);
    } else if (key == "reserve_bps") {
      SETTLE_ASSIGN_OR_RETURN(m.reserve_bps, get_int(v, key, 0, 10000));
    } else if (key == "reserve_days") {
      SETTLE_ASSIGN_OR_RETURN(auto n, get_int(v, key, 0, 3650));
      m.reserve_days = static_cast<int>(n);
      have_reserve_days = true;
    } else if (key == "fees") {
      if (!v.is_object()) return field_error(key, "must be an object of event type to {bps, fixed}");
      for (const auto& [type_name, sched] : v.items()) {
        const std::string f = "fees." + type_name;
        auto t = event_type_from_name(type_name);
        if (!t || *t == EventType::kAdjustment) {
          return field_error(f, "is not one of capture, refund, chargeback, chargeback_reversal");
        }
        if (!sched.is_object()) return field_error(f, "must be an object {\"bps\": int, \"fixed\": int}");
        FeeSchedule fs;
        for (const auto& [sk, sv] : sched.items()) {
          if (sk == "bps") {
            SETTLE_ASSIGN_OR_RETURN(fs.bps, get_int(sv, f + ".bps", 0, 1'000'000));
          } else if (sk == "fixed") {
            SETTLE_ASSIGN_OR_RETURN(fs.fixed, get_int(sv, f + ".fixed", 0, INT64_MAX));
          } else {
            return field_error(f + "." + sk, "is not a known field");
          }
        }
        m.fees[static_cast<std::size_t>(*t)] = fs;
      }
    } else {
      return field_error(key, "is not a known field");
    }
  }
  if (!have_id) return field_error("merchant_id", "is required");
  if (m.reserve_bps > 0 && m.reserve_days < 1) {
    return field_error("reserve_days", have_reserve_days ? "must be >= 1 when reserve_bps > 0"
                                                         : "is required when reserve_bps > 0");
  }
  return m;
}

}  // namespace

Result<Merchant> parse_merchant_json(std::string_view text) {
  Duplicate duplicate;
  json j = parse_checking_duplicates(text, duplicate);
  if (j.is_discarded()) return make_error(ErrorCode::kInvalidArgument, "not valid JSON");
  if (!duplicate.key.empty()) return field_error(duplicate.key, "appears more than once");
  return from_json(j);
}

std::string merchant_json(const Merchant& m) {
  json j;
  j["merchant_id"] = m.id.str();
  j["timezone"] = std::string(m.timezone.name());
  j["cutoff"] = format_hh_mm(m.cutoff_minutes);
  j["delay_days"] = m.delay_days;
  json fees = json::object();
  for (int i = 0; i < 4; ++i) {
    const auto& fs = m.fees[static_cast<std::size_t>(i)];
    fees[std::string(event_type_name(static_cast<EventType>(i)))] = {{"bps", fs.bps}, {"fixed", fs.fixed}};
  }
  j["fees"] = fees;
  j["reserve_bps"] = m.reserve_bps;
  j["reserve_days"] = m.reserve_days;
  return j.dump();
}

Result<std::vector<Merchant>> parse_merchant_list(std::string_view text, std::string_view source) {
  std::vector<Merchant> out;
  std::set<std::string> ids;
  auto add = [&](Result<Merchant> r, const std::string& where) -> Status {
    if (!r.ok()) {
      return make_error(ErrorCode::kInvalidArgument, fmt::format("{}: {}: {}", source, where, r.error().message));
    }
    if (!ids.insert(r->id.str()).second) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("{}: {}: merchant '{}' appears more than once", source, where, r->id.str()));
    }
    out.push_back(std::move(r).value());
    return ok_status();
  };
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && text[first] == '[') {
    Duplicate duplicate;
    json j = parse_checking_duplicates(text, duplicate);
    if (j.is_discarded()) return make_error(ErrorCode::kInvalidArgument, fmt::format("{}: not valid JSON", source));
    if (!duplicate.key.empty()) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("{}: element {}: field '{}': appears more than once", source,
                                    duplicate.element, duplicate.key));
    }
    for (std::size_t i = 0; i < j.size(); ++i) {
      SETTLE_TRY(add(from_json(j[i]), fmt::format("element {}", i + 1)));
    }
    return out;
  }
  std::size_t line_no = 0;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const auto nl = text.find('\n', pos);
    const auto line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    ++line_no;
    if (line.find_first_not_of(" \t\r") != std::string_view::npos) {
      SETTLE_TRY(add(parse_merchant_json(line), fmt::format("line {}", line_no)));
    }
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  return out;
}

}  // namespace settle::model
