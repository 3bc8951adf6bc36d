// production_bench: the production path, each role its own process, on real
// servers it starts on 127.0.0.1 (PostgreSQL 15, redis-server, librdkafka's
// mock cluster). For N generated events it times, separately:
//   ingest    `settled ingest` parses the file and produces to Kafka
//   process   P processor processes consume, post to PostgreSQL, emit tasks
//   settle    W worker processes close every batch (Redis leases, PostgreSQL)
// and prints events/s per phase and end to end, and each phase's share.
// The mock cluster keeps only a few MiB per partition, so a phase reads what
// the previous one wrote only while it fits: keep N x ~250 B / partitions
// under ~4 MiB (the default 150000 events over 16 partitions does), and the
// bench checks that every event was read.
// Usage: production_bench [events] [processors] [workers]
#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "row.h"
#include "support/kafka_mock.h"
#include "support/postgres_server.h"
#include "support/process.h"
#include "support/redis_server.h"
#include "workload.h"

namespace {

namespace fs = std::filesystem;
using settle::testing::Process;
using settle::testing::ProcessOptions;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Runs `count` processes of a role with --drain and waits for all of them.
// Returns the wall time, or a negative value when one failed.
double run_role(const std::string& role, int count, const std::vector<std::string>& backends, const fs::path& logs,
                long long* events_read) {
  std::vector<std::unique_ptr<Process>> procs;
  const auto t0 = Clock::now();
  for (int i = 0; i < count; ++i) {
    std::vector<std::string> argv{SETTLED_BIN, role, "--drain", "--idle-ms", "500", "--grace-ms", "0"};
    argv.insert(argv.end(), backends.begin(), backends.end());
    procs.push_back(std::make_unique<Process>(
        ProcessOptions{argv, {}, {}, logs / fmt::format("{}-{}.log", role, i), {}}));
  }
  bool ok = true;
  for (auto& p : procs) {
    auto status = p->wait(std::chrono::minutes(30));
    if (!status || !WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
      std::fprintf(stderr, "%s failed:\n%s\n", role.c_str(), p->log_tail().c_str());
      ok = false;
    }
    const std::string log = p->log_tail(2000);
    const auto at = log.rfind("stopped; ");
    if (events_read != nullptr && at != std::string::npos) *events_read += std::stoll(log.substr(at + 9));
  }
  // --drain waits for idle-ms + 0.5 s of quiet before it exits: not work.
  return ok ? seconds_since(t0) - 1.0 : -1;
}

}  // namespace

int main(int argc, char** argv) {
  const long long events = argc > 1 ? std::stoll(argv[1]) : 150'000;
  const int processors = argc > 2 ? std::stoi(argv[2]) : 2;
  const int workers = argc > 3 ? std::stoi(argv[3]) : 2;
  settle::testing::TempDir dir("settle-prod-bench");
  settle::bench::write_inputs(dir.path(), events);

  auto& pg = settle::testing::PostgresServer::shared();
  pg.create_database("bench");
  // A 3 s session timeout (10 s by default): the mock's group coordinator
  // holds a rebalance of a non-empty group for up to the session timeout less
  // 1 s unless every known member rejoins, so a member leaving at the end of
  // its --drain stalled the other for up to 9 s, and a phase's time varied
  // from 6 to 23 s between runs. (A first join still waits the mock's 3 s,
  // as group.initial.rebalance.delay.ms does on a broker.)
  const std::vector<std::string> backends{"--bus",    settle::testing::KafkaMock::shared().url("session_timeout_ms=3000"),
                                          "--store",  settle::testing::RedisServer::shared().url(),
                                          "--ledger", pg.url("bench"),
                                          "--partitions", "16"};
  std::vector<std::string> ingest{SETTLED_BIN, "ingest", "--migrate", "--merchants",
                                  (dir.path() / "merchants.ndjson").string(), "--events",
                                  (dir.path() / "events.ndjson").string()};
  ingest.insert(ingest.end(), backends.begin(), backends.end());
  auto t0 = Clock::now();
  std::string out;
  if (settle::testing::run(ProcessOptions{ingest, {}, {}, {}, {}}, &out) != 0) {
    std::fprintf(stderr, "ingest failed:\n%s\n", out.c_str());
    return 1;
  }
  const double ingest_s = seconds_since(t0);
  long long read = 0;
  const double process_s = run_role("processor", processors, backends, dir.path(), &read);
  const double settle_s = run_role("worker", workers, backends, dir.path(), nullptr);
  if (process_s < 0 || settle_s < 0) return 1;
  if (read != events) {
    std::fprintf(stderr, "processors read %lld of %lld events: the mock cluster dropped some; use fewer events\n",
                 read, events);
    return 1;
  }
  const double total = ingest_s + process_s + settle_s;
  std::printf("production path: %lld events, %d processors, %d workers, 16 partitions\n", events, processors,
              workers);
  std::printf("%-10s %10s %14s %8s\n", "phase", "seconds", "events/s", "share");
  const auto row = [&](const char* name, double s) {
    std::printf("%-10s %10.2f %14.0f %7.0f%%\n", name, s, static_cast<double>(events) / s, 100.0 * s / total);
  };
  row("ingest", ingest_s);
  row("process", process_s);
  row("settle", settle_s);
  row("total", total);
  settle::bench::print_row(
      fmt::format("production path, {} events, {} processors, {} worker process{}", events, processors, workers,
                  workers == 1 ? "" : "es"),
      fmt::format("{:.1f} s ({:.0f} events/s); closing batches {:.1f} s", total, static_cast<double>(events) / total,
                  settle_s),
      "", "", "", "");
  return 0;
}
