// libFuzzer target: the camt.053 parser never crashes, leaks or reads out of
// bounds, whatever the bytes; it answers statements or an error.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "reconcile/camt053_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto r = settle::reconcile::parse_camt053(std::string_view(reinterpret_cast<const char*>(data), size));
  if (r.ok()) {
    for (const auto& s : *r) {
      for (const auto& e : s.entries) (void)e.amount;
    }
  } else if (r.error().message.empty()) {
    __builtin_trap();  // an error must say what and where
  }
  return 0;
}
