// Sends spans to an OpenTelemetry collector over OTLP/HTTP with the JSON
// encoding (https://opentelemetry.io/docs/specs/otlp/#otlphttp): one POST of
// an ExportTraceServiceRequest to the endpoint, Content-Type
// application/json. Plain http:// only (a local collector or agent).
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/result.h"

namespace settle::observability {

// `endpoint`: http://host:port[/path]; without a path the spec's
// /v1/traces. A non-2xx answer is an error naming the status and body.
Status post_otlp_json(std::string_view endpoint, const std::string& body,
                      std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace settle::observability
