// The roles' operational log (spdlog underneath, kept out of this header):
// one line per record on stderr, as text for a terminal or as JSON lines for
// a log pipeline (--log-format json):
//
//   {"time":"2026-03-28T10:00:00.123Z","level":"info","component":"processor",
//    "message":"...","trace_id":"4bf9...","merchant_id":"m1"}
//
// trace_id and merchant_id come from the LogScope of the calling thread,
// present only when known. CLI output meant for the user (reports, the
// error line of bad input) is not logging and stays on stdout/stderr as is.
//
// Thread safety: every function may be called from any thread; records are
// written whole, one line each.
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

#include "common/result.h"

namespace settle::observability {

enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError };
enum class LogFormat { kText, kJson };

// "trace", "debug", "info", "warn", "error"; "text", "json".
Result<LogLevel> parse_log_level(std::string_view name);
Result<LogFormat> parse_log_format(std::string_view name);

// Process-wide; before the first call: info, text.
void init_logging(LogLevel level, LogFormat format);

// What the records a thread writes are about, while the scope lives (an
// HTTP request, an event being posted). Scopes nest; the inner one wins and
// an empty field leaves the outer one's value.
class LogScope {
 public:
  LogScope(std::string_view trace_id, std::string_view merchant_id);
  ~LogScope();
  LogScope(const LogScope&) = delete;
  LogScope& operator=(const LogScope&) = delete;

 private:
  std::string saved_trace_id_, saved_merchant_id_;
};

// `message` as one line, as every record is written: each line break (CR or
// LF), with the spaces and tabs around it, becomes one space, and breaks at
// either end go. libpq's errors, for one, end with an indented hint
// ("...unexpectedly\n\tThis probably means...\n").
std::string one_line(std::string_view message);

// The trace id of a traceparent header ("" when it is not one).
std::string trace_id_of(std::string_view traceparent);

// A component's logger ("gateway", "processor", "worker", "recon", ...).
class Logger {
 public:
  explicit Logger(std::string component) : component_(std::move(component)) {}

  bool enabled(LogLevel level) const;
  void write(LogLevel level, std::string_view message) const;

  template <typename... Args>
  void log(LogLevel level, fmt::format_string<Args...> f, Args&&... args) const {
    if (enabled(level)) write(level, fmt::format(f, std::forward<Args>(args)...));
  }
  template <typename... Args>
  void debug(fmt::format_string<Args...> f, Args&&... args) const {
    log(LogLevel::kDebug, f, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void info(fmt::format_string<Args...> f, Args&&... args) const {
    log(LogLevel::kInfo, f, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void warn(fmt::format_string<Args...> f, Args&&... args) const {
    log(LogLevel::kWarn, f, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void error(fmt::format_string<Args...> f, Args&&... args) const {
    log(LogLevel::kError, f, std::forward<Args>(args)...);
  }

 private:
  std::string component_;
};

}  // namespace settle::observability
