// The deterministic simulator: every seed of SETTLE_SIM_SEEDS (3000; fewer
// under the sanitizers, see CMakeLists.txt) must end with the rules' report of
// its workload and verify clean, under crashes, duplicates, reordering, torn
// tails, store time-outs, lost leases and stale workers; a failing seed prints
// the command that replays it, and so does one that runs past its step or
// time bound or hangs. SETTLE_SIM_SEEDS in the environment overrides the count.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

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

// A run bounds its steps and its wall time (SimOptions), but one step that
// never returns would hang the test until ctest's timeout, without saying
// which seed. The watchdog names it: past `limit` on one seed it prints the
// replay command and ends the process.
class Watchdog {
 public:
  explicit Watchdog(std::chrono::seconds limit) : limit_(limit), thread_([this] { watch(); }) {}
  ~Watchdog() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void running(const SimOptions& o) {
    std::lock_guard lock(mu_);
    command_ = replay_command(o);
    since_ = std::chrono::steady_clock::now();
  }

 private:
  void watch() {
    std::unique_lock lock(mu_);
    while (!done_) {
      cv_.wait_for(lock, std::chrono::seconds(1));
      if (!done_ && !command_.empty() && std::chrono::steady_clock::now() - since_ > limit_) {
        std::fprintf(stderr, "a seed ran for more than %lld s (hung in one step?); replay: %s\n",
                     static_cast<long long>(limit_.count()), command_.c_str());
        std::fflush(stderr);
        std::_Exit(1);
      }
    }
  }
  const std::chrono::seconds limit_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::string command_;
  std::chrono::steady_clock::time_point since_;
  std::thread thread_;
};

TEST(Simulator, EverySeedEndsWithTheRulesReportAndVerifyClean) {
  const auto started = std::chrono::steady_clock::now();
  const std::uint64_t seeds = seed_count();
  std::int64_t faults = 0, crashes = 0, stale = 0, torn = 0, steps = 0, slowest_steps = 0;
  double slowest = 0;
  std::uint64_t slowest_seed = 0;
  int failed = 0;
  Watchdog watchdog(std::chrono::seconds(60));
  for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
    SimOptions o;
    o.seed = seed;
    o.events = 4 + static_cast<int>(seed % 13);
    watchdog.running(o);
    const auto t0 = std::chrono::steady_clock::now();
    const SimResult r = simulate(o);
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (took > slowest) slowest = took, slowest_seed = seed, slowest_steps = r.steps;
    steps += r.steps;
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
  std::printf("%llu seeds in %.1f s (%lld steps; slowest: seed %llu, %.2f s, %lld steps): %lld faults injected, "
              "%lld crashes, %lld stale workers, %lld torn tails\n",
              static_cast<unsigned long long>(seeds), seconds, static_cast<long long>(steps),
              static_cast<unsigned long long>(slowest_seed), slowest, static_cast<long long>(slowest_steps),
              static_cast<long long>(faults), static_cast<long long>(crashes), static_cast<long long>(stale),
              static_cast<long long>(torn));
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
