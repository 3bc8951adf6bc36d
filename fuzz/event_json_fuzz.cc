// libFuzzer target: the gateway's event JSON parser (model::EventParser, the
// body of POST /v1/events and each NDJSON line) on arbitrary bytes. An
// accepted event's canonical form parses again to the same canonical form,
// and every refusal says why.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "model/event_json.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static settle::model::EventParser parser;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto ev = parser.parse(text);
  if (!ev.ok()) {
    if (ev.error().message.empty()) __builtin_trap();
    return 0;
  }
  const std::string canon = settle::model::canonical_event_json(*ev);
  auto again = parser.parse(canon);
  if (!again.ok()) __builtin_trap();  // the canonical form must be valid input
  if (settle::model::canonical_event_json(*again) != canon) __builtin_trap();
  return 0;
}
