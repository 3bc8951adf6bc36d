// settled trace TRACE_ID: one trace's events through the components, with
// their timestamps and stage spans; optionally exported to an OTLP/HTTP
// collector.
#include <fmt/format.h>

#include <cstdio>
#include <memory>
#include <optional>

#include "app/cli.h"
#include "app/role_flags.h"
#include "app/runtime.h"
#include "app/trace_path.h"
#include "observability/otlp_export.h"

namespace settle::app {
namespace {

bool is_trace_id(const std::string& s) {
  return s.size() == 32 && s.find_first_not_of("0123456789abcdef") == std::string::npos &&
         s != std::string(32, '0');
}

std::string at_text(std::int64_t ms) { return format_rfc3339(Timestamp{ms * 1'000'000}); }

int run_trace(const RoleFlags& flags, std::string trace_id, const std::string& otlp_endpoint) {
  // A whole traceparent is accepted too: its trace id is the one meant.
  if (trace_id.size() == 55 && trace_id[2] == '-') trace_id = trace_id.substr(3, 32);
  if (!is_trace_id(trace_id)) {
    return fatal(fmt::format("trace id '{}': expected 32 lowercase hex digits (not all zero)", trace_id));
  }
  auto ro = runtime_options(flags);
  if (!ro.ok()) return fatal(ro.error().message);
  ro->create = false;
  auto rt = Runtime::open(*ro);
  if (!rt.ok()) return fatal(rt.error().message);
  auto paths = find_trace(*rt->bus, *rt->ledger, trace_id);
  if (!paths.ok()) return fatal(paths.error().message);
  if (paths->empty()) {
    std::fprintf(stderr, "settled trace: no event on the bus carries trace %s\n", trace_id.c_str());
    return kExitRejected;
  }
  std::printf("trace %s: %zu event%s\n", trace_id.c_str(), paths->size(), paths->size() == 1 ? "" : "s");
  std::vector<Span> all_spans;
  for (const EventPath& path : *paths) {
    std::printf("\nevent %s/%s (traceparent %s)\n", path.merchant_id.c_str(), path.event_id.c_str(),
                path.traceparent.c_str());
    std::optional<std::int64_t> previous;
    for (const TraceStep& step : path.steps) {
      std::string when = step.at_ms ? at_text(*step.at_ms) : std::string(24, ' ');
      std::string delta;
      if (step.at_ms && previous) delta = fmt::format("  (+{:.3f} s)", static_cast<double>(*step.at_ms - *previous) / 1000.0);
      std::printf("  %-24s  %-18s  %s%s\n", when.c_str(), step.stage.c_str(), step.detail.c_str(), delta.c_str());
      if (step.at_ms) previous = step.at_ms;
    }
    const auto spans = spans_of(path);
    if (!spans.empty()) std::printf("  spans:\n");
    for (const Span& s : spans) {
      std::printf("    %-14s %s  %.3f s\n", s.name.c_str(), at_text(s.start_ms).c_str(),
                  static_cast<double>(s.end_ms - s.start_ms) / 1000.0);
    }
    all_spans.insert(all_spans.end(), spans.begin(), spans.end());
  }
  if (!otlp_endpoint.empty()) {
    if (auto s = observability::post_otlp_json(otlp_endpoint, otlp_json(trace_id, all_spans)); !s.ok()) {
      return fatal(s.error().message);
    }
    std::fprintf(stderr, "settled trace: %zu spans sent to %s\n", all_spans.size(), otlp_endpoint.c_str());
  }
  return kExitOk;
}

}  // namespace

void add_trace_commands(CLI::App& cli, Commands& commands) {
  auto flags = std::make_shared<RoleFlags>();
  auto trace_id = std::make_shared<std::string>();
  auto otlp = std::make_shared<std::string>();
  CLI::App* cmd = cli.add_subcommand(
      "trace", "Print one trace's events through the bus, the ledger and their batch's close, with timestamps and spans");
  cmd->add_option("trace_id", *trace_id, "The W3C trace id (32 hex digits) or a whole traceparent")->required();
  cmd->add_option("--otlp-endpoint", *otlp, "Also send the spans to this OTLP/HTTP collector (JSON), e.g. http://127.0.0.1:4318")
      ->envname("SETTLE_OTLP_ENDPOINT");
  add_role_flags(*cmd, *flags);
  commands.push_back({cmd, [=] { return run_trace(*flags, *trace_id, *otlp); }});
}

}  // namespace settle::app
