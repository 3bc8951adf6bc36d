// The deterministic simulator: every seed of SETTLE_SIM_SEEDS (2000; 200
// under the sanitizers) must end with the rules' report of its workload and
// verify clean, under crashes, duplicates, reordering, torn tails, store
// time-outs, lost leases and stale workers; a failing seed prints the command
// that replays it. SETTLE_SIM_SEEDS in the environment overrides the count.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <string>

#include "sim/simulator.h"

namespace settle::sim {
namespace {

std::uint64_t seed_count() {
  if (const char* env = std::getenv("SETTLE_SIM_SEEDS"); env != nullptr && *env != '\0') {
    return std::strtoull(env, nullptr, 10);
  }
  return SETTLE_SIM_SEEDS;
}

std::string explain(const SimOptions& o, const SimResult& r) {
  std::string out = "seed " + std::to_string(o.seed) + ": " + r.failure + "\n";
  if (r.report != r.expected) out += "expected:\n" + r.expected + "got:\n" + r.report;
  out += "replay: " + replay_command(o);
  return out;
}

TEST(Simulator, EverySeedEndsWithTheRulesReportAndVerifyClean) {
  const auto started = std::chrono::steady_clock::now();
  const std::uint64_t seeds = seed_count();
  std::int64_t faults = 0, crashes = 0, stale = 0, torn = 0;
  int failed = 0;
  for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
    SimOptions o;
    o.seed = seed;
    o.events = 4 + static_cast<int>(seed % 13);
    const SimResult r = simulate(o);
    if (!r.ok) {
      ADD_FAILURE() << explain(o, r);
      if (++failed >= 5) break;
      continue;
    }
    for (const auto& [name, n] : r.faults) faults += n;
    crashes += r.processor_crashes + r.worker_crashes + r.process_crashes;
    stale += r.stale_workers;
    torn += r.torn_tails;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("%llu seeds in %.1f s: %lld faults injected, %lld crashes, %lld stale workers, %lld torn tails\n",
              static_cast<unsigned long long>(seeds), seconds, static_cast<long long>(faults),
              static_cast<long long>(crashes), static_cast<long long>(stale), static_cast<long long>(torn));
  // The faults must actually happen, or the test proves nothing.
  if (seeds >= 100) {
    EXPECT_GT(crashes, static_cast<std::int64_t>(seeds));
    EXPECT_GT(stale, 0);
    EXPECT_GT(torn, 0);
  }
}

TEST(Simulator, ASeedReplaysExactly) {
  SimOptions o;
  o.seed = 42;
  o.events = 20;
  const SimResult a = simulate(o);
  const SimResult b = simulate(o);
  ASSERT_TRUE(a.ok) << explain(o, a);
  EXPECT_EQ(a.steps, b.steps);
  EXPECT_EQ(a.faults, b.faults);
  EXPECT_EQ(a.report, b.report);
}

TEST(Simulator, AFaultFreeRunGivesTheRulesReportToo) {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    SimOptions o;
    o.seed = seed;
    o.faults = false;
    const SimResult r = simulate(o);
    EXPECT_TRUE(r.ok) << explain(o, r);
    EXPECT_TRUE(r.faults.empty());
  }
}

}  // namespace
}  // namespace settle::sim
