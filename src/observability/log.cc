#include "observability/log.h"

#include <spdlog/formatter.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>

#include <nlohmann/json.hpp>

#include "observability/trace.h"

namespace settle::observability {
namespace {

thread_local std::string t_trace_id;
thread_local std::string t_merchant_id;

std::atomic<LogLevel> g_level{LogLevel::kInfo};
std::atomic<LogFormat> g_format{LogFormat::kText};

spdlog::level::level_enum to_spdlog(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace: return spdlog::level::trace;
    case LogLevel::kDebug: return spdlog::level::debug;
    case LogLevel::kInfo: return spdlog::level::info;
    case LogLevel::kWarn: return spdlog::level::warn;
    case LogLevel::kError: return spdlog::level::err;
  }
  return spdlog::level::info;
}

std::string_view level_name(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace: return "trace";
    case spdlog::level::debug: return "debug";
    case spdlog::level::info: return "info";
    case spdlog::level::warn: return "warn";
    case spdlog::level::err: return "error";
    case spdlog::level::critical: return "critical";
    default: return "off";
  }
}

// UTC, milliseconds: 2026-03-28T10:00:00.123Z.
std::string utc_millis(spdlog::log_clock::time_point at) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(at.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, ms % 1000);
}

// Formats on the calling thread (the logger is synchronous), so the
// thread's LogScope is the record's.
class RecordFormatter final : public spdlog::formatter {
 public:
  explicit RecordFormatter(LogFormat format) : format_(format) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const std::string_view component(msg.logger_name.data(), msg.logger_name.size());
    const std::string_view payload(msg.payload.data(), msg.payload.size());
    const bool breaks = payload.find_first_of("\r\n") != std::string_view::npos;
    const std::string flattened = breaks ? one_line(payload) : std::string();
    const std::string_view message = breaks ? std::string_view(flattened) : payload;
    std::string line;
    if (format_ == LogFormat::kJson) {
      nlohmann::ordered_json j;
      j["time"] = utc_millis(msg.time);
      j["level"] = level_name(msg.level);
      j["component"] = component;
      j["message"] = message;
      if (!t_trace_id.empty()) j["trace_id"] = t_trace_id;
      if (!t_merchant_id.empty()) j["merchant_id"] = t_merchant_id;
      // Invalid UTF-8 (an input's bytes quoted in a message) is replaced,
      // never a reason to lose the record.
      line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    } else {
      line = fmt::format("{} {:<5} settled {}: {}", utc_millis(msg.time), level_name(msg.level), component, message);
      if (!t_trace_id.empty()) line += " trace_id=" + t_trace_id;
      if (!t_merchant_id.empty()) line += " merchant_id=" + t_merchant_id;
    }
    line += '\n';
    dest.append(line.data(), line.data() + line.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<RecordFormatter>(format_); }

 private:
  LogFormat format_;
};

// One sink shared by every component's logger, so that lines never interleave.
std::shared_ptr<spdlog::sinks::stderr_sink_mt> sink() {
  static const auto s = [] {
    auto made = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    made->set_formatter(std::make_unique<RecordFormatter>(LogFormat::kText));
    made->set_level(spdlog::level::trace);
    return made;
  }();
  return s;
}

}  // namespace

Result<LogLevel> parse_log_level(std::string_view name) {
  if (name == "trace") return LogLevel::kTrace;
  if (name == "debug") return LogLevel::kDebug;
  if (name == "info") return LogLevel::kInfo;
  if (name == "warn" || name == "warning") return LogLevel::kWarn;
  if (name == "error") return LogLevel::kError;
  return make_error(ErrorCode::kInvalidArgument,
                    fmt::format("--log-level must be trace, debug, info, warn or error, not '{}'", name));
}

Result<LogFormat> parse_log_format(std::string_view name) {
  if (name == "text") return LogFormat::kText;
  if (name == "json") return LogFormat::kJson;
  return make_error(ErrorCode::kInvalidArgument, fmt::format("--log-format must be text or json, not '{}'", name));
}

void init_logging(LogLevel level, LogFormat format) {
  g_level.store(level);
  g_format.store(format);
  sink()->set_formatter(std::make_unique<RecordFormatter>(format));
}

LogScope::LogScope(std::string_view trace_id, std::string_view merchant_id)
    : saved_trace_id_(t_trace_id), saved_merchant_id_(t_merchant_id) {
  if (!trace_id.empty()) t_trace_id = trace_id;
  if (!merchant_id.empty()) t_merchant_id = merchant_id;
}

LogScope::~LogScope() {
  t_trace_id = std::move(saved_trace_id_);
  t_merchant_id = std::move(saved_merchant_id_);
}

std::string one_line(std::string_view message) {
  std::string out;
  out.reserve(message.size());
  bool pending_break = false;  // a line break seen since the last kept character
  for (std::size_t i = 0; i < message.size(); ++i) {
    const char c = message[i];
    if (c == '\r' || c == '\n') {
      while (!out.empty() && (out.back() == ' ' || out.back() == '\t')) out.pop_back();
      pending_break = true;
    } else if (pending_break && (c == ' ' || c == '\t')) {
      continue;  // the next line's indentation
    } else {
      if (pending_break && !out.empty()) out += ' ';
      pending_break = false;
      out += c;
    }
  }
  return out;
}

std::string trace_id_of(std::string_view traceparent) {
  auto c = parse_traceparent(traceparent);
  return c.ok() ? c->trace_id : std::string();
}

bool Logger::enabled(LogLevel level) const { return level >= g_level.load(std::memory_order_relaxed); }

void Logger::write(LogLevel level, std::string_view message) const {
  // A logger per call is cheap next to the write, and needs no registry
  // (whose names would have to be unique process-wide).
  spdlog::logger logger(component_, sink());
  logger.set_level(spdlog::level::trace);
  logger.log(to_spdlog(level), "{}", message);
}

}  // namespace settle::observability
