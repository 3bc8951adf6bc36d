// `settled trace TRACE_ID`: one trace's events followed through the
// components, from what they left behind (no tracing backend needed):
//   accepted      the events topic's record whose traceparent header has the
//                 trace (its bus timestamp, partition, offset)
//   posted        the event's ledger journal (kind, batch, settle date)
//   status        a status message that carries the trace: what the
//                 processor said about the event (duplicate, conflict,
//                 rejected, late) or the open batch that counted it
//   batch closing the processor's status when the settling batch passed its
//                 cut-off plus grace and its settlement task was emitted
//   batch closed  the worker's status when it wrote the batch (or
//                 batch close failed, with the reason)
// and as spans (a stage between two of those moments), which can be sent to
// an OpenTelemetry collector as OTLP/HTTP JSON.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bus/bus.h"
#include "common/result.h"
#include "ledger/ledger.h"

namespace settle::app {

struct TraceStep {
  std::string stage;  // "accepted", "posted", "status", "batch_closing", "batch_closed", "batch_close_failed"
  std::optional<std::int64_t> at_ms;  // wall clock; none when the component keeps no time (the journal)
  std::string detail;
};

struct EventPath {
  std::string merchant_id, event_id;
  std::string traceparent;  // of the bus record (the gateway's span)
  std::vector<TraceStep> steps;  // in the order of the pipeline
};

// Reads the events topic (every partition), the ledger and the status topic.
// An empty result: no record of the bus carries the trace.
Result<std::vector<EventPath>> find_trace(bus::Bus& bus, ledger::Ledger& ledger, std::string_view trace_id);

struct Span {
  std::string name;  // "bus.accepted", "batch.wait", "batch.close"
  std::string span_id, parent_span_id;
  std::int64_t start_ms = 0, end_ms = 0;
  std::vector<std::pair<std::string, std::string>> attributes;
};

// The stages of one event's path with a time at both ends, children of the
// gateway's span (the record's traceparent).
std::vector<Span> spans_of(const EventPath& path);

// An OTLP ExportTraceServiceRequest in its JSON encoding (ids as hex,
// times as decimal strings of Unix nanoseconds).
std::string otlp_json(std::string_view trace_id, const std::vector<Span>& spans);

}  // namespace settle::app
