#include "gateway/csv_events.h"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>

#include "model/event_json.h"

namespace settle::gateway {
namespace {

bool is_integer_token(std::string_view v) {
  if (!v.empty() && v[0] == '-') v.remove_prefix(1);
  return !v.empty() && std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
}

constexpr std::string_view kColumns[] = {"event_id", "merchant_id", "type", "amount",
                                         "currency", "occurred_at", "metadata"};

}  // namespace

std::vector<std::string> split_csv(std::string_view text) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          out.back() += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        out.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.emplace_back();
    } else {
      out.back() += c;
    }
  }
  return out;
}

Result<std::vector<std::string>> csv_header(std::string_view record) {
  std::vector<std::string> columns = split_csv(record);
  for (auto& c : columns) {
    while (!c.empty() && c.back() == ' ') c.pop_back();
    while (!c.empty() && c.front() == ' ') c.erase(c.begin());
  }
  for (const auto& c : columns) {
    if (std::find(std::begin(kColumns), std::end(kColumns), c) == std::end(kColumns)) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("column '{}' is not a known field (expected {})", c,
                                    "event_id, merchant_id, type, amount, currency, occurred_at, metadata"));
    }
  }
  return columns;
}

std::string csv_event_json(const std::vector<std::string>& columns, const std::vector<std::string>& cells,
                           bool& has_metadata) {
  has_metadata = false;
  std::string json;
  json.push_back('{');
  for (std::size_t c = 0; c < cells.size() && c < columns.size(); ++c) {
    const std::string& v = cells[c];
    if (v.empty()) continue;
    if (json.size() > 1) json += ',';
    json += '"';
    json += columns[c];
    json += "\":";
    if ((columns[c] == "amount" && is_integer_token(v)) || columns[c] == "metadata") {
      has_metadata = has_metadata || columns[c] == "metadata";
      json += v;
    } else {
      json += '"';
      model::append_json_escaped(json, v);
      json += '"';
    }
  }
  json += '}';
  return json;
}

}  // namespace settle::gateway
