// The deterministic simulator (TigerBeetle's VOPR is the model): one seed
// drives a workload through the whole pipeline in one thread, on the embedded
// backends behind fault-injecting wrappers, on a simulated clock:
// - a load generator appends events in random subsets (reordering within and
//   across partitions, delays), re-sends some it already had acknowledged and
//   every one it had not (duplicates);
// - the processor and two workers take one step at a time in a random order;
//   any of them crashes at any step (its in-memory state dropped, the bus and
//   ledger kept), and so does the whole process (the store's leases lost too;
//   sometimes with a torn write at the tail of an events partition);
// - the wrappers lose or half-complete bus appends, ledger posts and closes,
//   time out store calls, lose leases, and let a stale worker wake up after a
//   rival closed its batch with a higher fencing token.
// Batches close day by day once every event of the day is on the bus and
// processed (the offline rule, SETTLEMENT_RULES §8), so a run must end with
// the report the rules give for the workload, and `verify` clean.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

#include "sim/faults.h"
#include "verify/checks.h"

namespace settle::sim {

struct SimOptions {
  std::uint64_t seed = 1;
  int events = 24;           // distinct events of the workload
  bool faults = true;        // false: no faults injected (the fault-free run of the workload)
  std::int64_t max_steps = 50'000;  // a run that has not finished by then fails
  // A run still going after this much wall-clock time fails too (a livelock
  // whose steps grow slower, e.g. a backlog re-read on every recovery); it is
  // a safety net, not a figure of the run: seeds that pass finish in well
  // under a second.
  std::chrono::milliseconds max_wall{20'000};
  std::filesystem::path dir;  // for the bus and ledger; empty: a temporary one, removed after
  FaultOptions fault_options;
};

struct SimResult {
  bool ok = false;
  std::string failure;   // why not ok
  std::string report;    // the ledger's report at the end
  std::string expected;  // the rules' report of the workload
  verify::Findings findings;
  std::int64_t steps = 0;
  std::int64_t sends = 0;        // event appends attempted
  std::int64_t processor_crashes = 0;
  std::int64_t worker_crashes = 0;
  std::int64_t process_crashes = 0;
  std::int64_t torn_tails = 0;
  std::int64_t stale_workers = 0;
  std::map<std::string, std::int64_t> faults;  // injected, by kind
  std::int32_t partitions = 0;
  std::int64_t events = 0;  // distinct events of the workload
};

SimResult simulate(const SimOptions& options);

// "settled simulate --seed N --events E": the command that replays a run.
std::string replay_command(const SimOptions& options);

}  // namespace settle::sim
