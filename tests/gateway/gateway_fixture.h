// What the gateway's end-to-end tests start from: a data directory where
// `settled settle` has settled the basic fixture, keys from `settled keys
// create`, and the real `settled gateway` process on a free loopback port.
// The test target defines SETTLED_BIN (the binary's path).
#pragma once

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/process.h"

#ifndef SETTLED_BIN
#error "tests using gateway_fixture.h define SETTLED_BIN (target_compile_definitions)"
#endif

namespace settle::testing {

// tests/e2e/fixtures/basic: merchants m-eur and m-jpy and their events.
inline const std::filesystem::path& basic_fixture() {
  static const std::filesystem::path p = std::filesystem::path(SETTLE_SOURCE_DIR) / "tests/e2e/fixtures/basic";
  return p;
}

inline std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// Runs `settled ARGS` and returns its stdout (stderr is dropped); a non-zero
// exit fails the test. `scratch` holds the output file.
inline std::string settled_stdout(const std::vector<std::string>& args, const std::filesystem::path& scratch) {
  const std::filesystem::path out = scratch / "stdout.txt";
  std::string cmd = std::string(SETTLED_BIN);
  for (const auto& a : args) cmd += " '" + a + "'";
  cmd += " > '" + out.string() + "' 2>/dev/null";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::ifstream in(out);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A new key from `settled keys create`: for `merchant`, or an admin key when
// `merchant` is empty.
inline std::string create_key(const std::filesystem::path& data, const std::filesystem::path& scratch,
                              const std::string& merchant = {}) {
  std::vector<std::string> args = {"keys", "create"};
  if (merchant.empty()) {
    args.push_back("--admin");
  } else {
    args.insert(args.end(), {"--merchant", merchant});
  }
  args.insert(args.end(), {"--data-dir", data.string()});
  return trim(settled_stdout(args, scratch));
}

// Settles the basic fixture's events through 2026-03-29 into `data`; throws
// with the command's output when it fails.
inline void settle_basic_fixture(const std::filesystem::path& data) {
  ProcessOptions o;
  o.argv = {SETTLED_BIN, "settle", "--merchants", (basic_fixture() / "merchants.json").string(), "--events",
            (basic_fixture() / "events.ndjson").string(), "--through", "2026-03-29", "--data-dir", data.string(),
            "--quiet"};
  std::string out;
  if (run(o, &out) != 0) throw std::runtime_error("settled settle failed: " + out);
}

// A temporary directory with the basic fixture settled in `path` (dir/data),
// an admin key and a key for each fixture merchant.
struct SettledData {
  explicit SettledData(std::string_view name) : dir(name), path(dir.path() / "data") {
    settle_basic_fixture(path);
    admin = create_key(path, dir.path());
    eur = create_key(path, dir.path(), "m-eur");
    jpy = create_key(path, dir.path(), "m-jpy");
  }
  TempDir dir;
  std::filesystem::path path;
  std::string admin, eur, jpy;
};

// `settled gateway --data-dir DATA --listen 127.0.0.1:<free port> EXTRA...`,
// ready once it logs that it serves; its log is beside the data directory
// (gateway-<port>.log). Stopped when destroyed.
class GatewayProcess {
 public:
  explicit GatewayProcess(const std::filesystem::path& data, const std::vector<std::string>& extra = {})
      : port_(free_port()) {
    ProcessOptions o;
    o.argv = {SETTLED_BIN, "gateway", "--data-dir", data.string(), "--listen", fmt::format("127.0.0.1:{}", port_)};
    o.argv.insert(o.argv.end(), extra.begin(), extra.end());
    o.log = data.parent_path() / fmt::format("gateway-{}.log", port_);
    proc_.emplace(o);
    if (!proc_->wait_for_output("stop with SIGTERM", std::chrono::seconds(30))) {
      throw std::runtime_error("the gateway did not start: " + proc_->log_tail());
    }
  }
  int port() const { return port_; }
  pid_t pid() const { return proc_->pid(); }
  bool running() { return proc_->running(); }
  std::string log_tail() const { return proc_->log_tail(); }
  void stop() { proc_->stop(); }

 private:
  int port_;
  std::optional<Process> proc_;
};

}  // namespace settle::testing
