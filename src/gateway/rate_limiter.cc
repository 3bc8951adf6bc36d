#include "gateway/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace settle::gateway {

RateLimiter::Bucket& RateLimiter::refill(std::string_view merchant, std::chrono::steady_clock::time_point now) {
  auto [it, inserted] = buckets_.try_emplace(std::string(merchant), Bucket{defaults_.burst, now});
  Bucket& b = it->second;
  if (!inserted) {
    const double dt = std::chrono::duration<double>(now - b.at).count();
    b.tokens = std::min(defaults_.burst, b.tokens + dt * defaults_.rate_per_s);
    b.at = now;
  }
  return b;
}

RateDecision RateLimiter::take(std::string_view merchant, std::int64_t n) {
  RateDecision d;
  if (!enabled()) return d;
  std::lock_guard lock(mu_);
  Bucket& b = refill(merchant, std::chrono::steady_clock::now());
  const double need = static_cast<double>(n);
  d.limit = static_cast<std::int64_t>(defaults_.burst);
  if (b.tokens >= need) {
    b.tokens -= need;
  } else {
    d.allowed = false;
    d.retry_after_s = std::max<std::int64_t>(
        1, static_cast<std::int64_t>(std::ceil((need - b.tokens) / defaults_.rate_per_s)));
  }
  d.remaining = std::max<std::int64_t>(0, static_cast<std::int64_t>(std::floor(b.tokens)));
  d.reset_s = static_cast<std::int64_t>(std::ceil((defaults_.burst - b.tokens) / defaults_.rate_per_s));
  return d;
}

void RateLimiter::charge(std::string_view merchant, std::int64_t n) {
  if (!enabled()) return;
  std::lock_guard lock(mu_);
  Bucket& b = refill(merchant, std::chrono::steady_clock::now());
  b.tokens -= static_cast<double>(n);
}

}  // namespace settle::gateway
