#include "observability/trace.h"

#include <fmt/format.h>

#include <random>

namespace settle::observability {
namespace {

bool lower_hex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// Writes v as 16 lower-case hex digits at out.
void put_hex64(char* out, std::uint64_t v) {
  static constexpr char kDigits[] = "0123456789abcdef";
  for (int i = 15; i >= 0; --i) {
    out[i] = kDigits[v & 0xf];
    v >>= 4;
  }
}

bool all_zero(std::string_view s) { return s.find_first_not_of('0') == std::string_view::npos; }

std::uint64_t random64() {
  thread_local std::mt19937_64 rng{[] {
    std::random_device device;
    return (static_cast<std::uint64_t>(device()) << 32) ^ device();
  }()};
  return rng();
}

}  // namespace

namespace {

// Why `h` is not a traceparent header we can continue, or null.
const char* traceparent_problem(std::string_view h) {
  // version(2) - trace id(32) - span id(16) - flags(2)
  if (h.size() < 55 || h[2] != '-' || h[35] != '-' || h[52] != '-') return "expected 00-<32 hex>-<16 hex>-<2 hex>";
  const auto version = h.substr(0, 2);
  if (!lower_hex(version) || version == "ff") return "invalid version";
  if (version == "00" && h.size() != 55) return "version 00 has exactly four fields";
  if (version != "00" && h.size() > 55 && h[55] != '-') return "expected '-' after the flags";
  const auto trace_id = h.substr(3, 32);
  const auto span_id = h.substr(36, 16);
  if (!lower_hex(trace_id) || all_zero(trace_id)) return "the trace id must be 32 lowercase hex digits, not all zero";
  if (!lower_hex(span_id) || all_zero(span_id)) return "the parent id must be 16 lowercase hex digits, not all zero";
  if (!lower_hex(h.substr(53, 2))) return "the flags must be 2 lowercase hex digits";
  return nullptr;
}

int hex_value(char c) { return c <= '9' ? c - '0' : c - 'a' + 10; }

}  // namespace

Result<TraceContext> parse_traceparent(std::string_view h) {
  if (const char* why = traceparent_problem(h)) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("traceparent '{}': {}", h, why));
  }
  TraceContext c;
  c.trace_id = std::string(h.substr(3, 32));
  c.span_id = std::string(h.substr(36, 16));
  c.flags = static_cast<std::uint8_t>(hex_value(h[53]) * 16 + hex_value(h[54]));
  return c;
}

std::string format_traceparent(const TraceContext& c) {
  return fmt::format("00-{}-{}-{:02x}", c.trace_id, c.span_id, c.flags);
}

TraceContext new_trace() {
  TraceContext c;
  c.trace_id = fmt::format("{:016x}{:016x}", random64(), random64() | 1);
  c.span_id = fmt::format("{:016x}", random64() | 1);
  c.flags = 1;
  return c;
}

void assign_new_traceparent(std::string& out) {
  const std::uint64_t hi = random64(), lo = random64() | 1, span = random64() | 1;
  // "00-" trace id (32) "-" span id (16) "-01": written in place, as every
  // line of `settled settle` takes one.
  out.assign("00-################################-################-01");
  put_hex64(out.data() + 3, hi);
  put_hex64(out.data() + 19, lo);
  put_hex64(out.data() + 36, span);
}

TraceContext child_of(const TraceContext& parent) {
  TraceContext c = parent;
  c.span_id = fmt::format("{:016x}", random64() | 1);
  return c;
}

std::string continue_or_start(std::string_view incoming) {
  std::string out;
  if (incoming.empty() || traceparent_problem(incoming) != nullptr) {
    assign_new_traceparent(out);
    return out;
  }
  // A child span of the caller's: its trace id and flags, a new span id.
  out.assign("00-");
  out.append(incoming.substr(3, 32));
  out.append("-################-");
  put_hex64(out.data() + 36, random64() | 1);
  out.append(incoming.substr(53, 2));
  return out;
}

}  // namespace settle::observability
