// Running the `settled` binary from a test: a fixture with a fresh directory
// per test, the command's exit status and both output streams, and small file
// helpers. The test target defines SETTLED_BIN (the binary's path).
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#ifndef SETTLED_BIN
#error "tests using support/cli.h define SETTLED_BIN (target_compile_definitions)"
#endif

namespace settle::testing {

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::filesystem::path write_file(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
  return p;
}

struct CliRun {
  int exit_code = -1;
  std::string out, err;
};

// Runs a shell command line; its stdout and stderr pass through files in
// `scratch`.
inline CliRun run_shell(const std::string& command, const std::filesystem::path& scratch) {
  const std::filesystem::path out = scratch / ".stdout", err = scratch / ".stderr";
  const int status = std::system((command + " >" + out.string() + " 2>" + err.string()).c_str());
  return CliRun{WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
}

// A fixture with a fresh directory named after the test, removed afterwards.
class CliTest : public ::testing::Test {
 public:
  void SetUp() override {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::replace(name.begin(), name.end(), '/', '_');  // parameterized names have a '/'
    dir_ = std::filesystem::temp_directory_path() / ("settle-cli-" + name + "-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // `settled ARGS` (ARGS as on a shell command line).
  CliRun settled(const std::string& args) { return run_shell(std::string(SETTLED_BIN) + " " + args, dir_); }
  CliRun sh(const std::string& command) { return run_shell(command, dir_); }
  // Writes dir()/name and returns its path.
  std::filesystem::path write(const std::string& name, const std::string& text) {
    return write_file(dir_ / name, text);
  }
  const std::filesystem::path& dir() const { return dir_; }

  std::filesystem::path dir_;
};

inline const std::filesystem::path& e2e_fixtures() {
  static const std::filesystem::path p = std::filesystem::path(SETTLE_SOURCE_DIR) / "tests/e2e/fixtures";
  return p;
}

}  // namespace settle::testing
