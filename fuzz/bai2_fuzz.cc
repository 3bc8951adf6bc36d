// libFuzzer target: the BAI2 parser on arbitrary bytes. Every refusal has a
// message; an accepted file reads the same with CRLF line ends, and each
// entry is in its statement's currency, BOOK or INFO.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "reconcile/bai2_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto r = settle::reconcile::parse_bai2(text);
  if (!r.ok()) {
    if (r.error().message.empty()) __builtin_trap();
    return 0;
  }
  for (const auto& s : *r) {
    for (const auto& e : s.entries) {
      if (e.currency != s.currency || (e.status != "BOOK" && e.status != "INFO")) __builtin_trap();
    }
  }
  if (text.find('\r') == std::string_view::npos) {
    std::string crlf;
    for (char c : text) {
      if (c == '\n') crlf += '\r';
      crlf += c;
    }
    auto again = settle::reconcile::parse_bai2(crlf);
    if (!again.ok() || again->size() != r->size()) __builtin_trap();
    for (std::size_t i = 0; i < r->size(); ++i) {
      if ((*again)[i].entries.size() != (*r)[i].entries.size()) __builtin_trap();
      for (std::size_t j = 0; j < (*r)[i].entries.size(); ++j) {
        if ((*again)[i].entries[j].amount != (*r)[i].entries[j].amount) __builtin_trap();
      }
    }
  }
  return 0;
}
