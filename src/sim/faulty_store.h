// A Store that forwards to another and injects faults (sim/faults.h): lock
// requests that time out, leases lost at once (the holder paused past its
// ttl: the simulated clock jumps beyond it, so a rival may take the key), and
// failed unlocks (the lease then lives until its ttl).
#pragma once

#include <chrono>

#include "idempotency/clock.h"
#include "idempotency/store.h"
#include "sim/faults.h"

namespace settle::sim {

class FaultyStore final : public idempotency::Store {
 public:
  FaultyStore(idempotency::Store* inner, Faults& faults, idempotency::ManualClock& clock)
      : inner_(inner), faults_(faults), clock_(clock) {}
  void reset(idempotency::Store* inner) { inner_ = inner; }

  Result<idempotency::PutOutcome> put_if_absent(std::string_view key, std::string_view value,
                                                std::chrono::milliseconds ttl) override;
  Result<std::optional<std::string>> get(std::string_view key) override;
  Result<bool> delete_if_equal(std::string_view key, std::string_view expected) override;
  Result<bool> replace_if_equal(std::string_view key, std::string_view expected, std::string_view value,
                                std::chrono::milliseconds ttl) override;
  Result<std::optional<idempotency::Lease>> try_lock(std::string_view key, std::chrono::milliseconds ttl) override;
  Result<bool> extend(const idempotency::Lease& lease, std::chrono::milliseconds ttl) override;
  Result<bool> unlock(const idempotency::Lease& lease) override;

 private:
  idempotency::Store* inner_;
  Faults& faults_;
  idempotency::ManualClock& clock_;
};

}  // namespace settle::sim
