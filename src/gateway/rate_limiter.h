// Token buckets per merchant, counted in events: a request of n events takes
// n tokens. Tokens refill at `rate_per_s` up to `burst`. A bulk upload takes
// its batches' sizes even beyond the balance (the bucket goes into debt), so
// a large upload is paid for by the merchant's next requests.
// Thread safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace settle::gateway {

struct RateLimit {
  double rate_per_s = 0;  // 0: unlimited
  double burst = 0;
};

struct RateDecision {
  bool allowed = true;
  std::int64_t limit = 0;      // the burst
  std::int64_t remaining = 0;  // tokens left (after this request when allowed)
  std::int64_t reset_s = 0;    // seconds until the bucket is full again
  std::int64_t retry_after_s = 0;  // when not allowed: seconds until n tokens are there
};

class RateLimiter {
 public:
  explicit RateLimiter(RateLimit defaults) : defaults_(defaults) {}
  bool enabled() const { return defaults_.rate_per_s > 0; }
  // Takes n tokens when there are; otherwise takes none.
  RateDecision take(std::string_view merchant, std::int64_t n);
  // Takes n tokens whatever the balance (bulk).
  void charge(std::string_view merchant, std::int64_t n);

 private:
  struct Bucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point at;
  };
  Bucket& refill(std::string_view merchant, std::chrono::steady_clock::time_point now);
  RateLimit defaults_;
  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace settle::gateway
