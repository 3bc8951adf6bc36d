// libFuzzer target: the bulk CSV parser (gateway/csv_events.h) on arbitrary
// bytes, framed into records the way POST /v1/events/bulk frames them (a
// newline outside quotes ends a record; the first is the header). A record
// that parses into an event carries exactly its event_id and merchant_id
// cells: no cell (metadata included) can smuggle in another field's value.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/csv_events.h"
#include "model/event_json.h"

namespace {

void check(const std::vector<std::string>& columns, std::string_view record, settle::model::EventParser& parser) {
  if (!record.empty() && record.back() == '\r') record.remove_suffix(1);
  const auto cells = settle::gateway::split_csv(record);
  if (cells.empty()) __builtin_trap();
  if (cells.size() != columns.size()) return;  // rejected by line in bulk
  bool has_metadata = false;
  const std::string json = settle::gateway::csv_event_json(columns, cells, has_metadata);
  auto ev = parser.parse(json);
  if (!ev.ok()) {
    if (ev.error().message.empty()) __builtin_trap();
    return;
  }
  for (std::size_t c = 0; c < columns.size(); ++c) {
    if (columns[c] == "event_id" && ev->event_id.str() != cells[c]) __builtin_trap();
    if (columns[c] == "merchant_id" && ev->merchant_id.str() != cells[c]) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static settle::model::EventParser parser;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> columns;
  bool have_header = false;
  bool quoted = false;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= text.size(); ++i) {
    if (i < text.size()) {
      if (text[i] == '"') quoted = !quoted;
      if (text[i] != '\n' || quoted) continue;
    }
    const std::string_view record = text.substr(start, i - start);
    start = i + 1;
    if (record.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    if (!have_header) {
      auto h = settle::gateway::csv_header(record);
      if (!h.ok()) return 0;  // the upload is refused with the column's name
      columns = std::move(h).value();
      have_header = true;
      continue;
    }
    check(columns, record, parser);
  }
  return 0;
}
