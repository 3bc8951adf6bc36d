// Assertions on invariants. They stay on in every build type: a broken
// invariant in a money system must stop the process, not continue quietly.
#pragma once

namespace settle::detail {
[[noreturn]] void assert_fail(const char* expr, const char* msg, const char* file, int line);
}

#define SETTLE_ASSERT(cond, msg)                                              \
  do {                                                                        \
    if (!(cond)) [[unlikely]]                                                 \
      ::settle::detail::assert_fail(#cond, (msg), __FILE__, __LINE__);        \
  } while (0)
