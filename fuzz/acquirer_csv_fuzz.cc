// libFuzzer target: the acquirer CSV parser (default and Adyen mappings) on
// arbitrary bytes. Accepted lines carry a reference, a known currency and
// non-negative fees.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "reconcile/acquirer_csv_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (const char* name : {"default", "adyen"}) {
    auto mapping = settle::reconcile::builtin_mapping(name);
    auto r = settle::reconcile::parse_acquirer_csv(text, *mapping, "fuzz-merchant");
    if (!r.ok()) {
      if (r.error().message.empty()) __builtin_trap();
      continue;
    }
    for (const auto& l : r->lines) {
      if (l.reference.empty() || l.fee < 0 || !settle::find_currency(l.currency).ok()) __builtin_trap();
    }
  }
  return 0;
}
