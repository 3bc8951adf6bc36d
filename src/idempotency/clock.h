// A source of steady time for the idempotency store, so tests can move time by
// hand instead of sleeping through ttls.
// Thread safety: now() and advance() may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>

#include "common/assert.h"

namespace settle::idempotency {

class Clock {
 public:
  virtual ~Clock() = default;
  // Never goes backwards.
  virtual std::chrono::steady_clock::time_point now() = 0;
};

class SystemClock final : public Clock {
 public:
  std::chrono::steady_clock::time_point now() override {
    return std::chrono::steady_clock::now();
  }
};

// Starts at the steady clock's epoch and moves only when advance() is called.
class ManualClock final : public Clock {
 public:
  std::chrono::steady_clock::time_point now() override {
    return std::chrono::steady_clock::time_point(
        std::chrono::steady_clock::duration(ticks_.load(std::memory_order_acquire)));
  }

  // Accepts any duration that converts to steady ticks without loss (ms, us, ns).
  void advance(std::chrono::steady_clock::duration by) {
    SETTLE_ASSERT(by.count() >= 0, "ManualClock::advance: a steady clock cannot go back");
    ticks_.fetch_add(by.count(), std::memory_order_acq_rel);
  }

 private:
  std::atomic<std::chrono::steady_clock::rep> ticks_{0};
};

}  // namespace settle::idempotency
