// W3C Trace Context (https://www.w3.org/TR/trace-context/): the
// `traceparent` header that follows an event from the HTTP request through
// the bus's record headers to its ledger journal and status messages.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace settle::observability {

struct TraceContext {
  std::string trace_id;  // 32 lowercase hex digits, not all zero
  std::string span_id;   // 16 lowercase hex digits, not all zero
  std::uint8_t flags = 1;  // bit 0: sampled
};

// Parses a version-00 traceparent ("00-<trace id>-<span id>-<flags>"); a
// later version is read by its first four fields, as the spec asks.
Result<TraceContext> parse_traceparent(std::string_view header);
std::string format_traceparent(const TraceContext& context);

// A new trace (random ids, sampled).
TraceContext new_trace();
// format_traceparent(new_trace()) written into `out` (replacing its content,
// reusing its buffer: no allocation once it has grown).
void assign_new_traceparent(std::string& out);
// A new span of the same trace.
TraceContext child_of(const TraceContext& parent);

// The traceparent a component stamps on what it emits for an incoming
// request: a child of `incoming` when it is a valid traceparent, else the
// root of a new trace.
std::string continue_or_start(std::string_view incoming);

}  // namespace settle::observability
