// libFuzzer target: the MT940 parser on arbitrary bytes. A statement it
// accepts must balance: opening + entries = closing.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "reconcile/mt940_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto r = settle::reconcile::parse_mt940(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!r.ok()) {
    if (r.error().message.empty()) __builtin_trap();
    return 0;
  }
  for (const auto& s : *r) {
    __int128 sum = s.opening->amount;
    for (const auto& e : s.entries) sum += e.amount;
    if (sum != s.closing->amount) __builtin_trap();
  }
  return 0;
}
