#include "sim/faulty_store.h"

namespace settle::sim {

Result<idempotency::PutOutcome> FaultyStore::put_if_absent(std::string_view key, std::string_view value,
                                                           std::chrono::milliseconds ttl) {
  return inner_->put_if_absent(key, value, ttl);
}

Result<std::optional<std::string>> FaultyStore::get(std::string_view key) { return inner_->get(key); }

Result<bool> FaultyStore::delete_if_equal(std::string_view key, std::string_view expected) {
  return inner_->delete_if_equal(key, expected);
}

Result<bool> FaultyStore::replace_if_equal(std::string_view key, std::string_view expected, std::string_view value,
                                           std::chrono::milliseconds ttl) {
  return inner_->replace_if_equal(key, expected, value, ttl);
}

Result<std::optional<idempotency::Lease>> FaultyStore::try_lock(std::string_view key, std::chrono::milliseconds ttl) {
  if (faults_.inject(faults_.options().lock_timeout, "store lock timed out")) {
    return make_error(ErrorCode::kUnavailable, "injected: store did not answer");
  }
  auto r = inner_->try_lock(key, ttl);
  if (r.ok() && r->has_value() && faults_.inject(faults_.options().lock_lost, "store lease lost")) {
    clock_.advance(ttl + std::chrono::milliseconds(1));
  }
  return r;
}

Result<bool> FaultyStore::extend(const idempotency::Lease& lease, std::chrono::milliseconds ttl) {
  return inner_->extend(lease, ttl);
}

Result<bool> FaultyStore::unlock(const idempotency::Lease& lease) {
  if (faults_.inject(faults_.options().unlock_fails, "store unlock failed")) {
    return make_error(ErrorCode::kUnavailable, "injected: unlock failed");
  }
  return inner_->unlock(lease);
}

}  // namespace settle::sim
