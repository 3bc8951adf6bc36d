// End-to-end tests of the long-running roles on the embedded backends:
// `settled ingest` feeds the bus, `settled all --drain` processes and settles
// live (batches close by the idle rule), and the report equals the offline
// `settled settle` of the same input. Restarts change nothing.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>
#include <fstream>
#include <sstream>
#include <string>

#include "support/process.h"

namespace settle {
namespace {

namespace fs = std::filesystem;
using testing::ProcessOptions;
using testing::TempDir;

const fs::path kFixtures = fs::path(SETTLE_SOURCE_DIR) / "tests/e2e/fixtures";

struct CmdRun {
  int code = -1;
  std::string output;  // stdout and stderr
};

CmdRun settled(std::vector<std::string> args) {
  args.insert(args.begin(), SETTLED_BIN);
  CmdRun r;
  r.code = testing::run(ProcessOptions{args, {}, {}, {}, {}}, &r.output);
  return r;
}

// The report alone (stdout) of a data directory.
std::string report(const fs::path& dir) {
  TempDir tmp("settle-live-report");
  const fs::path out = tmp.path() / "report.csv";
  const std::string cmd = std::string(SETTLED_BIN) + " report --data-dir " + dir.string() + " >" + out.string();
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::ifstream in(out);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string offline_report(const fs::path& merchants, const fs::path& events) {
  TempDir tmp("settle-live-offline");
  const fs::path out = tmp.path() / "report.csv";
  const std::string cmd = std::string(SETTLED_BIN) + " settle --quiet --merchants " + merchants.string() +
                          " --events " + events.string() + " --through 2100-01-01 >" + out.string();
  EXPECT_EQ(WEXITSTATUS(std::system(cmd.c_str())), 0) << cmd;
  std::ifstream in(out);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int lines(const std::string& text) { return static_cast<int>(std::count(text.begin(), text.end(), '\n')); }

TEST(LiveRoles, AllDrainsTheBusAndItsReportEqualsTheOfflineSettle) {
  TempDir dir("settle-live");
  const fs::path f = kFixtures / "basic";
  const CmdRun ingest = settled({"ingest", "--data-dir", dir.path().string(), "--merchants",
                              (f / "merchants.json").string(), "--events", (f / "events.ndjson").string()});
  ASSERT_EQ(ingest.code, 0) << ingest.output;
  EXPECT_NE(ingest.output.find("11 appended to the bus"), std::string::npos) << ingest.output;

  const CmdRun all = settled({"all", "--data-dir", dir.path().string(), "--idle-ms", "50", "--grace-ms", "0", "--drain"});
  ASSERT_EQ(all.code, 0) << all.output;
  EXPECT_NE(all.output.find("10 posted, 1 duplicates"), std::string::npos) << all.output;

  const std::string live = report(dir.path());
  EXPECT_EQ(live, offline_report(f / "merchants.json", f / "events.ndjson"));
  EXPECT_GT(lines(live), 3);

  // A second run over the same bus and ledger finds nothing to do.
  const CmdRun again = settled({"all", "--data-dir", dir.path().string(), "--idle-ms", "50", "--grace-ms", "0", "--drain"});
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_NE(again.output.find("0 events read, 0 posted"), std::string::npos) << again.output;
  EXPECT_EQ(report(dir.path()), live);
}

TEST(LiveRoles, ReplayReadsEventsAgainWithoutDoubleEffects) {
  TempDir dir("settle-live");
  const fs::path f = kFixtures / "basic";
  ASSERT_EQ(settled({"ingest", "--data-dir", dir.path().string(), "--merchants", (f / "merchants.json").string(),
                     "--events", (f / "events.ndjson").string()})
                .code,
            0);
  const std::vector<std::string> drain{"all", "--data-dir", dir.path().string(), "--idle-ms", "50", "--grace-ms", "0",
                                       "--drain"};
  ASSERT_EQ(settled(drain).code, 0);
  const std::string before = report(dir.path());

  for (const std::string from : {"0", "2000-01-01T00:00:00Z"}) {
    const CmdRun replay = settled({"replay", "--data-dir", dir.path().string(), "--from", from});
    ASSERT_EQ(replay.code, 0) << replay.output;
    EXPECT_NE(replay.output.find("back to 0"), std::string::npos) << replay.output;
    const CmdRun again = settled(drain);
    ASSERT_EQ(again.code, 0) << again.output;
    // Every event is read again and found in the ledger.
    EXPECT_NE(again.output.find("11 events read, 0 posted, 11 duplicates"), std::string::npos) << again.output;
    EXPECT_EQ(report(dir.path()), before);
  }
  // A time after every event replays nothing.
  const CmdRun none = settled({"replay", "--data-dir", dir.path().string(), "--from", "2200-01-01T00:00:00Z"});
  EXPECT_EQ(none.code, 0) << none.output;
  EXPECT_EQ(none.output.find("back to"), std::string::npos) << none.output;
  const CmdRun bad = settled({"replay", "--data-dir", dir.path().string(), "--from", "yesterday"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.output.find("--from 'yesterday': neither an offset nor an RFC 3339 timestamp"), std::string::npos)
      << bad.output;
}

TEST(LiveRoles, SeparateProcessorAndWorkerRunsSettleTheDemoSampleLikeTheOfflineRun) {
  TempDir dir("settle-live");
  TempDir sample("settle-live-sample");
  ASSERT_EQ(settled({"demo", "--data-dir", (sample.path() / "demo").string(), "--events-per-day", "40"}).code, 0);
  const fs::path merchants = sample.path() / "demo" / "merchants.json";
  const fs::path events = sample.path() / "demo" / "events.ndjson";
  ASSERT_EQ(settled({"ingest", "--data-dir", dir.path().string(), "--partitions", "4", "--merchants",
                     merchants.string(), "--events", events.string()})
                .code,
            0);
  // The processor alone emits tasks; the worker alone then settles them.
  const CmdRun proc = settled({"processor", "--data-dir", dir.path().string(), "--idle-ms", "50", "--grace-ms", "0",
                            "--drain"});
  ASSERT_EQ(proc.code, 0) << proc.output;
  EXPECT_NE(proc.output.find("0 batches closed"), std::string::npos) << proc.output;
  const CmdRun work = settled({"worker", "--data-dir", dir.path().string(), "--idle-ms", "50", "--drain"});
  ASSERT_EQ(work.code, 0) << work.output;
  EXPECT_EQ(work.output.find(" 0 batches closed"), std::string::npos) << work.output;
  EXPECT_EQ(report(dir.path()), offline_report(merchants, events));
}

TEST(LiveRoles, ConfigFileAndEnvironmentConfigureARoleAndTheCommandLineWins) {
  TempDir dir("settle-live");
  const fs::path config = dir.path() / "settled.toml";
  std::ofstream(config) << "# settled config\ndata-dir = \"" << (dir.path() / "data").string()
                        << "\"\nidle-ms = 50\ngrace-ms = 0\nowned-partitions = \"0-3,9\"\n";
  // Partition 9 does not exist in a new 8-partition bus: the config was read.
  CmdRun r = settled({"all", "--config", config.string(), "--drain"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("partition 9 does not exist"), std::string::npos) << r.output;
  // The command line overrides the file.
  r = settled({"all", "--config", config.string(), "--owned-partitions", "0-7", "--drain"});
  EXPECT_EQ(r.code, 0) << r.output;
  // A malformed value names the flag and the text.
  r = settled({"all", "--config", config.string(), "--owned-partitions", "2-x", "--drain"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--owned-partitions: 'x' is not a partition number"), std::string::npos) << r.output;
  // The environment overrides the file too.
  ProcessOptions env_run{{SETTLED_BIN, "all", "--config", config.string(), "--drain"},
                         {"SETTLE_FSYNC=sometimes"}, {}, {}, {}};
  std::string out;
  EXPECT_EQ(testing::run(env_run, &out), 2);
  EXPECT_NE(out.find("--fsync must be every-append or none, not 'sometimes'"), std::string::npos) << out;
  // A misspelt key is an error, not silently ignored.
  std::ofstream(config, std::ios::app) << "idle_ms = 5\n";
  r = settled({"all", "--config", config.string(), "--drain"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("unknown key 'idle_ms' for 'settled all'"), std::string::npos) << r.output;
}

TEST(LiveRoles, SigtermStopsARunningRoleCleanly) {
  TempDir dir("settle-live");
  testing::Process p(ProcessOptions{{SETTLED_BIN, "all", "--data-dir", dir.path().string(), "--listen", "127.0.0.1:0"},
                                    {}, {}, dir.path() / "log", {}});
  // Once it says how to stop it (its signals are handled from then on), ask it to.
  ASSERT_TRUE(p.wait_for_output("stop with SIGTERM", std::chrono::seconds(60))) << p.log_tail();
  const int status = p.stop(SIGTERM, std::chrono::seconds(10));
  ASSERT_TRUE(WIFEXITED(status)) << p.log_tail();
  EXPECT_EQ(WEXITSTATUS(status), 0) << p.log_tail();
  EXPECT_NE(p.log_tail().find("stopped;"), std::string::npos) << p.log_tail();
  // `all` hosts the gateway too.
  EXPECT_NE(p.log_tail().find("gateway on http://127.0.0.1:"), std::string::npos) << p.log_tail();
}

}  // namespace
}  // namespace settle
