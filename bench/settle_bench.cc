// settle_bench: N generated events through `settled settle` end to end
// (parse, bus append, processor, ledger, worker, report). Prints events/s and
// the child's peak RSS for each size, so that RSS independence from the
// event count is visible. Usage: settle_bench [events...] (default 100000 1000000)
#include <fmt/format.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "workload.h"

namespace {

namespace fs = std::filesystem;
using namespace settle;
using settle::bench::write_inputs;

struct Figures {
  double seconds;
  long max_rss_kib;
  int exit_code;
};

Figures run_settle(const fs::path& dir, const std::vector<std::string>& extra) {
  std::vector<std::string> args = {SETTLED_BIN, "settle", "--quiet", "--merchants", (dir / "merchants.ndjson").string(),
                                   "--events", (dir / "events.ndjson").string(), "--through", "2026-03-31",
                                   "--data-dir", (dir / "data").string()};
  args.insert(args.end(), extra.begin(), extra.end());
  fs::remove_all(dir / "data");
  const auto t0 = std::chrono::steady_clock::now();
  const pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (!freopen("/dev/null", "w", stdout)) _exit(127);
    execv(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  rusage usage{};
  wait4(pid, &status, 0, &usage);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return Figures{s, usage.ru_maxrss, WIFEXITED(status) ? WEXITSTATUS(status) : -1};
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::int64_t> sizes;
  for (int i = 1; i < argc; ++i) sizes.push_back(std::stoll(argv[i]));
  if (sizes.empty()) sizes = {100'000, 1'000'000};
  const fs::path root = fs::temp_directory_path() / fmt::format("settle-bench-{}", getpid());
  std::printf("%-10s %-34s %10s %14s %12s\n", "events", "durability", "seconds", "events/s", "peak RSS");
  std::fflush(stdout);  // before fork(), or the child's exit flushes it again
  for (std::int64_t n : sizes) {
    const fs::path dir = root / std::to_string(n);
    fs::create_directories(dir);
    write_inputs(dir, n);
    struct Mode {
      const char* name;
      std::vector<std::string> flags;
    };
    const Mode modes[] = {{"fsync every append, ledger full", {}},
                          {"no fsync, ledger normal", {"--fsync", "none", "--ledger-sync", "normal"}}};
    for (const Mode& mode : modes) {
      const Figures f = run_settle(dir, mode.flags);
      if (f.exit_code != 0) {
        std::fprintf(stderr, "settled exited with %d\n", f.exit_code);
        return 1;
      }
      std::printf("%-10lld %-34s %10.2f %14.0f %9.1f MiB\n", static_cast<long long>(n), mode.name, f.seconds,
                  static_cast<double>(n) / f.seconds, static_cast<double>(f.max_rss_kib) / 1024.0);
      std::fflush(stdout);
    }
    fs::remove_all(dir);
  }
  fs::remove_all(root);
  return 0;
}
