// settled verify | simulate. verify checks the exactly-once and settlement invariants over what
// the bus and the ledger hold (verify/checks.h) and lists every break;
// simulate runs the deterministic simulator (sim/simulator.h).
#include <fmt/format.h>

#include <cstdio>
#include <memory>

#include "app/cli.h"
#include "app/role_flags.h"
#include "app/runtime.h"
#include "sim/simulator.h"
#include "verify/checks.h"
#include "verify/collect.h"

namespace settle::app {
namespace {

int run_verify(const RoleFlags& flags, bool quiet) {
  auto ro = runtime_options(flags);
  if (!ro.ok()) return fatal(ro.error().message);
  ro->create = false;
  auto rt = Runtime::open(*ro);
  if (!rt.ok()) return fatal(rt.error().message);
  auto input = verify::collect(*rt->bus, *rt->ledger);
  if (!input.ok()) return fatal(input.error().message);
  const verify::Findings f = verify::check(*input);
  if (!quiet || !f.clean()) {
    std::printf(
        "settled verify: %lld event records on the bus, %lld distinct events: %lld posted, %lld dead-lettered; "
        "%lld event journals in the ledger; %lld closed batches\n",
        static_cast<long long>(f.records), static_cast<long long>(f.events), static_cast<long long>(f.posted),
        static_cast<long long>(f.dead_lettered), static_cast<long long>(f.journals),
        static_cast<long long>(f.batches));
  }
  if (f.clean()) {
    if (!quiet) std::printf("clean: no breaks\n");
    return kExitOk;
  }
  std::printf("%zu breaks:\n", f.breaks.size());
  for (std::size_t i = 0; i < f.breaks.size(); ++i) {
    std::printf("%4zu. %s\n", i + 1, verify::format_break(f.breaks[i]).c_str());
  }
  return kExitRejected;
}

struct SimulateFlags {
  std::uint64_t seed = 1;
  std::uint64_t seeds = 1;
  int events = 24;
  bool no_faults = false;
  std::string dir;
  bool verbose = false;
};

void print_result(const sim::SimOptions& o, const sim::SimResult& r, bool verbose) {
  std::int64_t faults = 0;
  for (const auto& [name, n] : r.faults) faults += n;
  std::printf("seed %llu: %s: %lld events, %d partitions, %lld steps, %lld faults (%lld processor crashes, "
              "%lld worker crashes, %lld process crashes, %lld torn tails, %lld stale workers); %lld batches\n",
              static_cast<unsigned long long>(o.seed), r.ok ? "ok" : "FAILED", static_cast<long long>(r.events),
              r.partitions, static_cast<long long>(r.steps), static_cast<long long>(faults),
              static_cast<long long>(r.processor_crashes), static_cast<long long>(r.worker_crashes),
              static_cast<long long>(r.process_crashes), static_cast<long long>(r.torn_tails),
              static_cast<long long>(r.stale_workers), static_cast<long long>(r.findings.batches));
  if (verbose) {
    for (const auto& [name, n] : r.faults) std::printf("  %-40s %lld\n", name.c_str(), static_cast<long long>(n));
  }
  if (r.ok) return;
  std::printf("  failure: %s\n", r.failure.c_str());
  for (const auto& b : r.findings.breaks) std::printf("  break: %s\n", verify::format_break(b).c_str());
  if (r.report != r.expected) {
    std::printf("  expected report (the rules):\n%s  the ledger's report:\n%s", r.expected.c_str(), r.report.c_str());
  }
  std::printf("  replay: %s\n", sim::replay_command(o).c_str());
}

int run_simulate(const SimulateFlags& flags) {
  if (flags.events < 1 || flags.events > 100'000) return fatal("--events must be 1-100000");
  int failed = 0;
  for (std::uint64_t i = 0; i < flags.seeds; ++i) {
    sim::SimOptions o;
    o.seed = flags.seed + i;
    o.events = flags.events;
    o.faults = !flags.no_faults;
    if (!flags.dir.empty()) o.dir = flags.dir;
    const sim::SimResult r = sim::simulate(o);
    if (!r.ok || flags.seeds == 1 || flags.verbose) print_result(o, r, flags.verbose || flags.seeds == 1);
    failed += r.ok ? 0 : 1;
  }
  if (flags.seeds > 1) {
    std::printf("%llu seeds from %llu: %d failed\n", static_cast<unsigned long long>(flags.seeds),
                static_cast<unsigned long long>(flags.seed), failed);
  }
  return failed == 0 ? kExitOk : kExitRejected;
}

}  // namespace

void add_verify_commands(CLI::App& cli, Commands& commands) {
  auto flags = std::make_shared<RoleFlags>();
  auto quiet = std::make_shared<bool>(false);
  CLI::App* cmd = cli.add_subcommand(
      "verify",
      "Check that every accepted event settled exactly once and every closed batch adds up; exit 1 listing "
      "each break");
  add_role_flags(*cmd, *flags);
  cmd->add_flag("--quiet", *quiet, "Print nothing when clean");
  commands.push_back({cmd, [=] { return run_verify(*flags, *quiet); }});

  auto sim_flags = std::make_shared<SimulateFlags>();
  CLI::App* sim_cmd = cli.add_subcommand(
      "simulate",
      "Run the deterministic simulator: the whole pipeline under injected faults, driven by one seed; exit 1 if "
      "the report differs from the rules' or verify finds a break");
  sim_cmd->add_option("--seed", sim_flags->seed, "The seed (a run replays exactly)")->capture_default_str();
  sim_cmd->add_option("--seeds", sim_flags->seeds, "Run this many seeds from --seed")->capture_default_str();
  sim_cmd->add_option("--events", sim_flags->events, "Distinct events in the workload")->capture_default_str();
  sim_cmd->add_flag("--no-faults", sim_flags->no_faults, "Inject no faults (the fault-free run of the workload)");
  sim_cmd->add_option("--dir", sim_flags->dir, "Keep the bus and ledger here (default: a temporary directory)");
  sim_cmd->add_flag("--verbose", sim_flags->verbose, "Print every seed and the faults injected by kind");
  commands.push_back({sim_cmd, [=] { return run_simulate(*sim_flags); }});
}

}  // namespace settle::app
