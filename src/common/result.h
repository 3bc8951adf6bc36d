// Result<T>: an expected failure as a value. A closed set of error codes and a
// message that says what and where (the field, the line, the file).
#pragma once

#include <string>
#include <utility>
#include <variant>

#include "common/assert.h"

namespace settle {

enum class ErrorCode {
  kInvalidArgument,  // bad input: a field, a line, a flag
  kNotFound,         // a named thing does not exist
  kConflict,         // same identity, different content
  kOverflow,         // an amount left the int64 range
  kIo,               // the OS refused (open, write, fsync)
  kCorruption,       // stored bytes fail their checksum or framing
  kUnavailable,      // a server or lock is unavailable now; retry later
  kFenced,           // a newer owner holds the resource (stale fencing token)
  kFailedPrecondition,  // the state does not allow it (e.g. batch already closed)
};

const char* error_code_name(ErrorCode code);

struct Error {
  ErrorCode code;
  std::string message;

  std::string to_string() const;
};

inline Error make_error(ErrorCode code, std::string message) {
  return Error{code, std::move(message)};
}

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  const T& value() const& {
    SETTLE_ASSERT(ok(), "Result::value() on an error");
    return std::get<0>(v_);
  }
  T& value() & {
    SETTLE_ASSERT(ok(), "Result::value() on an error");
    return std::get<0>(v_);
  }
  T&& value() && {
    SETTLE_ASSERT(ok(), "Result::value() on an error");
    return std::get<0>(std::move(v_));
  }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

  const Error& error() const {
    SETTLE_ASSERT(!ok(), "Result::error() on a value");
    return std::get<1>(v_);
  }

 private:
  std::variant<T, Error> v_;
};

// Result<void>: success carries nothing.
struct Ok {};
using Status = Result<Ok>;
inline Status ok_status() { return Ok{}; }

}  // namespace settle

// Propagate an error from an expression yielding Result<T>/Status.
#define SETTLE_TRY(expr)                            \
  do {                                              \
    auto settle_try_r_ = (expr);                    \
    if (!settle_try_r_.ok()) return settle_try_r_.error(); \
  } while (0)

#define SETTLE_CONCAT_INNER(a, b) a##b
#define SETTLE_CONCAT(a, b) SETTLE_CONCAT_INNER(a, b)
// Assign the value of a Result<T> to `lhs`, or return its error.
#define SETTLE_ASSIGN_OR_RETURN(lhs, expr)                        \
  auto SETTLE_CONCAT(settle_r_, __LINE__) = (expr);               \
  if (!SETTLE_CONCAT(settle_r_, __LINE__).ok())                   \
    return SETTLE_CONCAT(settle_r_, __LINE__).error();            \
  lhs = std::move(SETTLE_CONCAT(settle_r_, __LINE__)).value()
