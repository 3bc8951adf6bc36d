// The simulator's one source of randomness and its fault plan: every choice of
// a run (workload, schedule, faults) is drawn from one PRNG seeded by the seed,
// so a seed replays exactly. Not thread safe: the simulator runs one thread.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace settle::sim {

// Probabilities of each fault, per call of the wrapped operation.
struct FaultOptions {
  double append_lost = 0.03;        // a bus append fails before writing
  double append_unacked = 0.03;     // a bus append writes, then reports failure
  double short_read = 0.2;          // a bus read returns fewer records (delayed delivery)
  double commit_lost = 0.03;        // a consumer-group commit fails
  double post_lost = 0.03;          // a ledger post fails before committing
  double post_unacked = 0.03;       // a ledger post commits, then reports failure
  double close_unacked = 0.05;      // a batch close commits, then reports failure
  double ledger_read_fails = 0.01;  // a ledger read times out
  double lock_timeout = 0.05;       // the store does not answer a lock request
  double lock_lost = 0.05;          // a granted lease expires at once (a long pause)
  double unlock_fails = 0.1;
  double stale_worker = 0.2;        // another worker takes a batch over while its closer sleeps
};

class Faults {
 public:
  Faults(std::uint64_t seed, bool enabled, FaultOptions options = {});

  std::uint64_t next();                    // xoshiro256**: the same on every platform
  std::uint64_t below(std::uint64_t n);    // uniform in [0, n); n > 0
  bool coin(double p);                     // true with probability p (schedule choices)
  // True with probability p when faults are enabled, and counts it by name.
  bool inject(double p, const char* name);

  const FaultOptions& options() const { return options_; }
  bool enabled() const { return enabled_; }
  void count(const std::string& name) { ++counts_[name]; }
  const std::map<std::string, std::int64_t>& counts() const { return counts_; }

 private:
  std::uint64_t s_[4];
  bool enabled_;
  FaultOptions options_;
  std::map<std::string, std::int64_t> counts_;
};

}  // namespace settle::sim
