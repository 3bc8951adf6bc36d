// The production path end to end, on real servers started by the test on
// 127.0.0.1: PostgreSQL 15 (ledger), redis-server (idempotency store, leases
// with fencing tokens from a PostgreSQL sequence) and librdkafka's mock
// cluster (bus, consumer groups). Two processor processes and two worker
// processes settle a seeded workload; one worker is killed with SIGKILL
// mid-run and started again. The report must equal the embedded backends'
// report byte for byte.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/kafka_mock.h"
#include "support/postgres_server.h"
#include "support/process.h"
#include "support/redis_server.h"

namespace settle {
namespace {

namespace fs = std::filesystem;
using testing::Process;
using testing::ProcessOptions;
using testing::TempDir;

struct CmdRun {
  int code = -1;
  std::string output;
};

CmdRun settled(std::vector<std::string> args) {
  args.insert(args.begin(), SETTLED_BIN);
  CmdRun r;
  r.code = testing::run(ProcessOptions{args, {}, {}, {}, {}}, &r.output);
  return r;
}

std::string stdout_of(const std::string& command) {
  TempDir tmp("settle-prod-out");
  const fs::path out = tmp.path() / "out";
  const int status = std::system((command + " >" + out.string() + " 2>" + (tmp.path() / "err").string()).c_str());
  std::ifstream in(out);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (status != 0) {
    std::ifstream err(tmp.path() / "err");
    std::ostringstream es;
    es << err.rdbuf();
    ADD_FAILURE() << command << " failed: " << es.str();
  }
  return ss.str();
}

int lines(const std::string& text) { return static_cast<int>(std::count(text.begin(), text.end(), '\n')); }

class ProductionRoles : public ::testing::Test {
 protected:
  void SetUp() override {
    auto& pg = testing::PostgresServer::shared();
    const std::string db = "prod_roles_" + std::to_string(::getpid());
    pg.create_database(db);
    ledger_ = pg.url(db);
    store_ = testing::RedisServer::shared().url();
    bus_ = testing::KafkaMock::shared().url();
  }

  std::vector<std::string> backends() const {
    return {"--bus", bus_, "--store", store_, "--ledger", ledger_, "--partitions", "4"};
  }

  std::unique_ptr<Process> start_role(const std::string& role, const std::string& name) {
    std::vector<std::string> argv{SETTLED_BIN, role, "--idle-ms", "300", "--grace-ms", "0"};
    for (const auto& a : backends()) argv.push_back(a);
    return std::make_unique<Process>(ProcessOptions{argv, {}, {}, logs_.path() / (name + ".log"), {}});
  }

  TempDir logs_{"settle-prod-logs"};
  std::string ledger_, store_, bus_;
};

// Whether the process's SigIgn mask (/proc/PID/status) holds `signal`.
bool ignores_signal(pid_t pid, int signal) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("SigIgn:", 0) == 0) {
      const unsigned long long mask = std::stoull(line.substr(7), nullptr, 16);
      return (mask >> (signal - 1)) & 1ULL;
    }
  }
  return false;
}

TEST_F(ProductionRoles, TwoProcessorsAndTwoWorkersOnRealServersMatchTheEmbeddedReportDespiteAKilledWorker) {
  TempDir sample("settle-prod-sample");
  const fs::path demo = sample.path() / "demo";
  ASSERT_EQ(settled({"demo", "--data-dir", demo.string(), "--events-per-day", "30"}).code, 0);
  const fs::path merchants = demo / "merchants.json", events = demo / "events.ndjson";
  const std::string expected = stdout_of(std::string(SETTLED_BIN) + " settle --quiet --merchants " +
                                         merchants.string() + " --events " + events.string() +
                                         " --through 2100-01-01");
  ASSERT_GT(lines(expected), 10);

  // Schema and topics, then the events onto Kafka.
  std::vector<std::string> ingest{"ingest", "--migrate", "--merchants", merchants.string(), "--events", events.string()};
  for (const auto& a : backends()) ingest.push_back(a);
  const CmdRun in = settled(ingest);
  ASSERT_EQ(in.code, 0) << in.output;

  auto p1 = start_role("processor", "processor-1");
  auto p2 = start_role("processor", "processor-2");
  auto w1 = start_role("worker", "worker-1");
  auto w2 = start_role("worker", "worker-2");

  // Kill one worker as soon as batches start closing, then start it again.
  const std::string report_cmd = std::string(SETTLED_BIN) + " report --ledger '" + ledger_ + "'";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  bool killed = false;
  std::string report;
  while (std::chrono::steady_clock::now() < deadline) {
    report = stdout_of(report_cmd);
    if (!killed && lines(report) > 1) {
      ::kill(w1->pid(), SIGKILL);
      w1->wait(std::chrono::seconds(5));
      w1 = start_role("worker", "worker-1-restarted");
      ASSERT_TRUE(w1->wait_for_output("stop with SIGTERM", std::chrono::seconds(60))) << w1->log_tail();
      killed = true;
    }
    if (report == expected) break;
    for (Process* p : {p1.get(), p2.get(), w1.get(), w2.get()}) {
      ASSERT_TRUE(p->running()) << "a role died: " << p->log_tail();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  EXPECT_TRUE(killed) << "no batch closed before the deadline";
  EXPECT_EQ(report, expected) << "processor-1:\n" << p1->log_tail() << "\nworker-2:\n" << w2->log_tail();

  for (Process* p : {p1.get(), p2.get(), w1.get(), w2.get()}) {
    // A role handles SIGTERM once it has said how to stop it.
    ASSERT_TRUE(p->wait_for_output("stop with SIGTERM", std::chrono::seconds(60))) << p->log_tail();
    // A write to a socket whose server went away (a Redis or PostgreSQL
    // restart) must be an EPIPE the role retries, not a silent SIGPIPE death.
    EXPECT_TRUE(ignores_signal(p->pid(), SIGPIPE)) << "a role must ignore SIGPIPE";
    const int status = p->stop(SIGTERM, std::chrono::seconds(30));
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << p->log_tail();
  }
  // Nothing more happens after a restart of every role, and the ledger balances.
  EXPECT_EQ(stdout_of(report_cmd), expected);
  const std::string balances = stdout_of(std::string(SETTLED_BIN) + " balances --ledger '" + ledger_ + "'");
  EXPECT_NE(balances.find("Trial balance"), std::string::npos) << balances;
  // Every event on Kafka settled exactly once, every batch adds up.
  std::vector<std::string> verify{"verify"};
  for (const auto& a : backends()) verify.push_back(a);
  const CmdRun v = settled(verify);
  EXPECT_EQ(v.code, 0) << v.output;
  EXPECT_NE(v.output.find("clean: no breaks"), std::string::npos) << v.output;
}

TEST(ProductionSettle, SettleOnKafkaRedisAndPostgresPrintsTheEmbeddedReport) {
  auto& pg = testing::PostgresServer::shared();
  const std::string db = "prod_settle_" + std::to_string(::getpid());
  pg.create_database(db);
  testing::KafkaMock kafka;  // its own cluster: topics of its own
  const fs::path f = fs::path(SETTLE_SOURCE_DIR) / "tests/e2e/fixtures/basic";
  const std::string inputs = " --merchants " + (f / "merchants.json").string() + " --events " +
                             (f / "events.ndjson").string() + " --through 2026-03-30";
  const std::string expected = stdout_of(std::string(SETTLED_BIN) + " settle --quiet" + inputs);
  ASSERT_FALSE(expected.empty());
  // The same command on the production backends, named by a config file.
  TempDir dir("settle-prod-config");
  const fs::path config = dir.path() / "settled.toml";
  std::ofstream(config) << "bus = \"" << kafka.url() << "\"\nstore = \""
                        << testing::RedisServer::shared().url() << "?key_prefix=settle-test\"\nledger = \""
                        << pg.url(db) << "\"\nmigrate = true\n";
  EXPECT_EQ(stdout_of(std::string(SETTLED_BIN) + " settle --quiet --config " + config.string() + inputs), expected);
  // Settling the same input again changes nothing.
  EXPECT_EQ(stdout_of(std::string(SETTLED_BIN) + " settle --quiet --config " + config.string() + inputs), expected);

  // settled verify on PostgreSQL: clean, then a tampered payout is named with both figures.
  const CmdRun clean = settled({"verify", "--config", config.string()});
  EXPECT_EQ(clean.code, 0) << clean.output;
  EXPECT_NE(clean.output.find("distinct events: 10 posted"), std::string::npos) << clean.output;
  const std::string psql = fs::exists("/usr/lib/postgresql/15/bin/psql") ? "/usr/lib/postgresql/15/bin/psql" : "psql";
  ASSERT_EQ(std::system((psql + " -q '" + pg.url(db) +
                         "' -c \"UPDATE batches SET payout = payout + 100, net = net + 100 "
                         "WHERE merchant_id = 'm-jpy' AND batch_date = '2026-03-29'\" >/dev/null")
                            .c_str()),
            0);
  const CmdRun broken = settled({"verify", "--config", config.string()});
  EXPECT_EQ(broken.code, 1) << broken.output;
  EXPECT_NE(broken.output.find("batch-rules m-jpy/2026-03-29/JPY: payout is 1280, expected 1180"), std::string::npos)
      << broken.output;
}

}  // namespace
}  // namespace settle
