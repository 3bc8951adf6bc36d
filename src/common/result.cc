#include "common/result.h"

#include <cstdio>
#include <cstdlib>

namespace settle {

const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return "invalid_argument";
    case ErrorCode::kNotFound: return "not_found";
    case ErrorCode::kConflict: return "conflict";
    case ErrorCode::kOverflow: return "overflow";
    case ErrorCode::kIo: return "io";
    case ErrorCode::kCorruption: return "corruption";
    case ErrorCode::kUnavailable: return "unavailable";
    case ErrorCode::kFenced: return "fenced";
    case ErrorCode::kFailedPrecondition: return "failed_precondition";
  }
  return "unknown";
}

std::string Error::to_string() const {
  return std::string(error_code_name(code)) + ": " + message;
}

namespace detail {
void assert_fail(const char* expr, const char* msg, const char* file, int line) {
  std::fprintf(stderr, "assertion failed: %s (%s) at %s:%d\n", expr, msg, file, line);
  std::fflush(stderr);
  std::abort();
}
}  // namespace detail

}  // namespace settle
