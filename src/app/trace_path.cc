#include "app/trace_path.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include <nlohmann/json.hpp>

#include "common/money.h"
#include "common/time.h"
#include "model/event_json.h"
#include "model/status_update.h"
#include "observability/trace.h"
#include "processor/topics.h"

namespace settle::app {
namespace {

constexpr std::size_t kReadChunk = 2000;

// Calls `visit` on every record of a topic, partition by partition.
template <typename Visit>
Status scan(bus::Bus& bus, std::string_view topic, Visit visit) {
  SETTLE_ASSIGN_OR_RETURN(std::int32_t partitions, bus.partition_count(topic));
  for (std::int32_t p = 0; p < partitions; ++p) {
    SETTLE_ASSIGN_OR_RETURN(std::int64_t end, bus.end_offset(topic, p));
    std::int64_t next = 0;
    while (next < end) {
      SETTLE_ASSIGN_OR_RETURN(auto records, bus.read(topic, p, next, kReadChunk));
      if (records.empty()) break;  // retention removed the rest
      for (const bus::StoredRecord& r : records) visit(r);
      next = records.back().offset + 1;
    }
  }
  return ok_status();
}

}  // namespace

Result<std::vector<EventPath>> find_trace(bus::Bus& bus, ledger::Ledger& ledger, std::string_view trace_id) {
  std::vector<EventPath> paths;
  model::EventParser parser;
  SETTLE_TRY(scan(bus, processor::kEventsTopic, [&](const bus::StoredRecord& r) {
    auto context = observability::parse_traceparent(r.header("traceparent"));
    if (!context.ok() || context->trace_id != trace_id) return;
    EventPath path;
    path.merchant_id = r.key;
    path.traceparent = std::string(r.header("traceparent"));
    std::string what = "unreadable event";
    if (auto e = parser.parse(r.value); e.ok()) {
      path.event_id = e->event_id.str();
      auto currency = find_currency(e->currency);
      what = fmt::format("{} {} {}", model::event_type_name(e->type),
                         format_minor(e->amount, currency.ok() ? currency->exponent() : 2), e->currency);
    }
    path.steps.push_back({"accepted", r.timestamp_ms,
                          fmt::format("{} on the bus: events partition {} offset {}", what, r.partition, r.offset)});
    paths.push_back(std::move(path));
  }));
  if (paths.empty()) return paths;

  // The ledger: each event's journal and the batch it settles in.
  std::map<std::pair<std::string, std::string>, std::vector<EventPath*>> by_batch;  // (merchant, "date/CUR")
  for (EventPath& path : paths) {
    if (path.event_id.empty()) continue;
    ledger::PostingQuery q;
    q.merchant_id = path.merchant_id;
    q.limit = 1'000'000;
    SETTLE_ASSIGN_OR_RETURN(auto rows, ledger.postings(q));
    auto it = std::find_if(rows.begin(), rows.end(), [&](const ledger::PostingRow& row) { return row.ref == path.event_id; });
    if (it == rows.end()) {
      path.steps.push_back({"posted", std::nullopt, "not in the ledger yet"});
      continue;
    }
    path.steps.push_back({"posted", std::nullopt,
                          fmt::format("ledger journal {}/{}: {}, batch {}, settles in {} {}{}", path.merchant_id,
                                      path.event_id, it->kind, format_date(it->batch_date), format_date(it->settle_date),
                                      it->currency, it->late ? " (late)" : "")});
    by_batch[{path.merchant_id, format_date(it->settle_date) + "/" + it->currency}].push_back(&path);
  }

  // The status topic: the statuses that carry the trace (what the processor
  // said about the event, the open batch it was counted in), and when those
  // batches passed cut-off and closed.
  SETTLE_TRY(scan(bus, processor::kStatusTopic, [&](const bus::StoredRecord& r) {
    const bool traced = r.value.find(trace_id) != std::string::npos;
    if (!traced &&
        std::none_of(by_batch.begin(), by_batch.end(), [&](const auto& b) { return b.first.first == r.key; })) {
      return;
    }
    auto u = model::parse_status_json(r.value);
    if (!u.ok()) return;
    if (u->trace_id == trace_id) {
      for (EventPath& path : paths) {
        if (path.merchant_id != u->merchant_id) continue;
        if (u->kind == model::StatusKind::kBatchOpen && u->batch) {
          const auto b = by_batch.find({u->merchant_id, format_date(u->batch->batch_date) + "/" + u->batch->currency});
          if (b == by_batch.end() || std::find(b->second.begin(), b->second.end(), &path) == b->second.end()) continue;
          path.steps.push_back({"status", u->at_ms,
                                fmt::format("batch_open: batch {} counts {} event(s)", u->batch->to_string(),
                                            u->totals ? u->totals->event_count() : 0)});
        } else if (u->kind == model::StatusKind::kEventPosted) {
          if (std::find(u->event_ids.begin(), u->event_ids.end(), path.event_id) == u->event_ids.end() &&
              u->count <= static_cast<std::int64_t>(u->event_ids.size())) {
            continue;  // names all it counts, and not this event
          }
          path.steps.push_back({"status", u->at_ms,
                                fmt::format("event_posted: {} event(s) of the chunk, through events offset {}",
                                            u->count, u->offset)});
        } else if (u->event_id == path.event_id) {  // both empty for an unreadable event
          path.steps.push_back({"status", u->at_ms, fmt::format("{}: {}", model::status_kind_name(u->kind), u->reason)});
        }
      }
      return;
    }
    if (!u->batch) return;
    const auto it = by_batch.find({u->merchant_id, format_date(u->batch->batch_date) + "/" + u->batch->currency});
    if (it == by_batch.end()) return;
    std::string stage, detail;
    switch (u->kind) {
      case model::StatusKind::kBatchClosing:
        stage = "batch_closing";
        detail = fmt::format("batch {} passed cut-off plus grace; settlement task emitted", u->batch->to_string());
        break;
      case model::StatusKind::kBatchClosed: {
        auto currency = find_currency(u->batch->currency);
        stage = "batch_closed";
        detail = fmt::format("batch {} closed, payout {}", u->batch->to_string(),
                             format_minor(u->payout, currency.ok() ? currency->exponent() : 2));
        break;
      }
      case model::StatusKind::kBatchCloseFailed:
        stage = "batch_close_failed";
        detail = fmt::format("batch {} not closed: {}", u->batch->to_string(), u->reason);
        break;
      default: return;
    }
    for (EventPath* path : it->second) path->steps.push_back({stage, u->at_ms, detail});
  }));
  return paths;
}

std::vector<Span> spans_of(const EventPath& path) {
  std::vector<Span> spans;
  auto parent = observability::parse_traceparent(path.traceparent);
  if (!parent.ok()) return spans;
  auto at = [&](std::string_view stage) -> std::optional<std::int64_t> {
    for (const TraceStep& s : path.steps) {
      if (s.stage == stage && s.at_ms) return s.at_ms;
    }
    return std::nullopt;
  };
  const std::vector<std::pair<std::string, std::string>> attributes = {{"merchant.id", path.merchant_id},
                                                                       {"event.id", path.event_id}};
  auto add = [&](std::string name, std::int64_t start, std::int64_t end) {
    spans.push_back({std::move(name), observability::child_of(*parent).span_id, parent->span_id, start,
                     std::max(start, end), attributes});
  };
  const auto accepted = at("accepted");
  const auto closing = at("batch_closing");
  const auto closed = at("batch_closed") ? at("batch_closed") : at("batch_close_failed");
  if (accepted) add("bus.accepted", *accepted, *accepted);
  // Posted somewhere in here: the journal keeps no time of its own.
  if (accepted && closing) add("batch.wait", *accepted, *closing);
  if (closing && closed) add("batch.close", *closing, *closed);
  return spans;
}

std::string otlp_json(std::string_view trace_id, const std::vector<Span>& spans) {
  using nlohmann::ordered_json;
  ordered_json out_spans = ordered_json::array();
  for (const Span& s : spans) {
    ordered_json attributes = ordered_json::array();
    for (const auto& [key, value] : s.attributes) {
      attributes.push_back({{"key", key}, {"value", {{"stringValue", value}}}});
    }
    out_spans.push_back({{"traceId", trace_id},
                         {"spanId", s.span_id},
                         {"parentSpanId", s.parent_span_id},
                         {"name", s.name},
                         {"kind", 1},  // SPAN_KIND_INTERNAL
                         {"startTimeUnixNano", std::to_string(s.start_ms * 1'000'000)},
                         {"endTimeUnixNano", std::to_string(s.end_ms * 1'000'000)},
                         {"attributes", std::move(attributes)}});
  }
  ordered_json request = {
      {"resourceSpans",
       ordered_json::array({{{"resource", {{"attributes", ordered_json::array({{{"key", "service.name"},
                                                                                 {"value", {{"stringValue", "settled"}}}}})}}},
                             {"scopeSpans", ordered_json::array({{{"scope", {{"name", "settled trace"}}},
                                                                  {"spans", std::move(out_spans)}}})}}})}};
  return request.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace settle::app
