// A throwaway redis-server for tests and benchmarks, listening on 127.0.0.1 at
// a free port with its working directory in a TempDir. No persistence unless
// asked for: a stopped and restarted server comes back empty, which is what a
// test of "Redis lost its data" wants.
//
// shared() is the process's server, started on first use and stopped at exit.
// A test that stops, restarts or pauses a server makes its own instance so
// that other tests keep theirs.
//
// The server is a Process: killed when the test process dies, so a failing
// test leaves no server behind.
//
// Thread safety: shared() may be called from any thread; the control methods
// (stop, start, pause, resume) belong to one thread.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

namespace settle::testing {

struct RedisServerOptions {
  // appendonly with fsync on every write, so a restart keeps the keys.
  bool persistent = false;
  // maxmemory in bytes; 0 leaves it unlimited.
  std::size_t maxmemory_bytes = 0;
};

class RedisServer {
 public:
  static RedisServer& shared();

  // Starts a server of its own (throws std::runtime_error, with the server's
  // log tail, when it cannot start).
  explicit RedisServer(RedisServerOptions options = {});
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  int port() const;
  std::string url() const;  // "redis://127.0.0.1:PORT"
  pid_t pid() const;        // -1 while stopped

  // Kills the server (SIGKILL: no chance to save anything) and waits for it.
  void stop();
  // Starts it again on the same port and directory; waits until it answers PING.
  void start();
  // SIGSTOP / SIGCONT: a server that accepts connections and answers nothing.
  void pause();
  void resume();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace settle::testing
