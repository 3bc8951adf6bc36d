// Test support for integration tests that run real servers (PostgreSQL,
// redis-server, the Kafka mock cluster) or the settled binary as child
// processes on 127.0.0.1.
//
// A Process is killed when the Process object goes away, and (through
// PR_SET_PDEATHSIG) when the test process dies, so a failing or crashing test
// never leaves a server behind.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace settle::testing {

// A TCP port on 127.0.0.1 that was free a moment ago.
int free_port();

// True once something accepts TCP connections on 127.0.0.1:port.
bool wait_for_port(int port, std::chrono::milliseconds timeout);

// The directory of the test run's temporary files (TMPDIR or /tmp).
std::filesystem::path temp_root();

// A fresh, uniquely named directory, removed with its contents on destruction.
class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "settle-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // Gives the directory to `user` (by name) so a server that drops root can
  // write there. No-op when not running as root.
  void give_to(const std::string& user) const;

 private:
  std::filesystem::path path_;
};

struct ProcessOptions {
  std::vector<std::string> argv;       // argv[0] is the program (PATH is searched)
  std::vector<std::string> env;        // extra NAME=VALUE entries
  std::optional<std::string> run_as;   // user name to switch to when running as root
  std::filesystem::path log;           // stdout+stderr go here (appended); empty: inherit
  std::filesystem::path cwd;           // empty: inherit
};

class Process {
 public:
  // Starts the process; throws std::runtime_error when it cannot.
  explicit Process(ProcessOptions options);
  ~Process();  // stop() if still running
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;

  pid_t pid() const { return pid_; }
  bool running();
  // The wait status (as waitpid gives it) once running() or wait() saw the
  // process exit; nullopt before.
  std::optional<int> exit_status() const { return status_; }
  // "exit code N" or "killed by signal N (SIGNAME)", for failure messages.
  static std::string describe_status(int status);
  // Sends `signal`, waits up to `grace`, then SIGKILL. Returns the wait status
  // (as waitpid gives it), or -1 when it was not running.
  int stop(int signal = 15, std::chrono::milliseconds grace = std::chrono::seconds(10));
  // Waits for the process to exit on its own; nullopt on timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  // Waits until its log contains `needle` (e.g. a server's "ready" line);
  // false when the process exits first or `timeout` passes.
  bool wait_for_output(std::string_view needle, std::chrono::milliseconds timeout);
  // The last `bytes` of its log file, for failure messages.
  std::string log_tail(std::size_t bytes = 4000) const;

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::filesystem::path log_;
};

// Runs a command to completion (same options); returns its exit code (or 128 +
// signal), with its combined output in `output` when given.
int run(const ProcessOptions& options, std::string* output = nullptr);

}  // namespace settle::testing
