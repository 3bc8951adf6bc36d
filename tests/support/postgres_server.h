// A throwaway PostgreSQL 15 server for tests and benchmarks: its own cluster
// (initdb in a TempDir), listening on 127.0.0.1 at a free port with its unix
// socket inside the temp dir, so it neither depends on nor collides with a
// cluster the Debian package may run on 5432.
//
// When the test runs as root the cluster is created and run as the
// unprivileged `postgres` account (PostgreSQL refuses to run as root).
// Durability is off (fsync, full_page_writes, synchronous_commit): it is for
// tests. The server is stopped (fast shutdown) and its directory removed at
// process exit; if the test process dies, the postmaster gets SIGKILL (see
// Process) and its backends exit on their own.
//
// The PostgreSQL binaries are looked up in $SETTLE_PG_BINDIR, then
// /usr/lib/postgresql/15/bin, then PATH.
//
// shared() is the process's server. A test that stops and starts a server
// makes its own instance, so that other tests keep theirs.
//
// Thread safety: shared() and create_database() may be called from any thread;
// stop() and start() belong to one thread.
#pragma once

#include <sys/types.h>

#include <memory>
#include <mutex>
#include <string>

namespace settle::testing {

struct PostgresServerOptions {
  // On: a commit is acknowledged once its WAL reached the OS, so stop()
  // (an immediate shutdown) loses no acknowledged transaction. Off (the
  // shared server): faster, and an immediate shutdown may lose the last ones.
  bool synchronous_commit = false;
};

class PostgresServer {
 public:
  // The process's server, started on first use (throws std::runtime_error
  // when it cannot start; the message carries the server's log tail).
  static PostgresServer& shared();

  // A server of its own (throws std::runtime_error, with its log tail, when
  // it cannot start).
  explicit PostgresServer(PostgresServerOptions options);

  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  int port() const;
  // libpq keyword form: "host=127.0.0.1 port=N user=postgres dbname='...'".
  std::string conninfo(const std::string& dbname = "postgres") const;
  // URL form: "postgresql://postgres@127.0.0.1:N/dbname".
  std::string url(const std::string& dbname = "postgres") const;
  // Creates the database unless it exists (idempotent, also across threads).
  // Throws std::runtime_error on failure.
  void create_database(const std::string& name);

  // Immediate shutdown (SIGQUIT: clients cut off, crash recovery at the next
  // start) and wait for it.
  void stop();
  // Starts the same data directory on the same port again; waits until it
  // answers (throws std::runtime_error when it does not).
  void start();
  pid_t pid() const;  // the postmaster, -1 while stopped

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::mutex mutex_;
};

}  // namespace settle::testing
