// PgTokenSource: fencing tokens from a PostgreSQL sequence, so they survive a
// restart or failover of Redis (and of this process): see token_source.h.
//
// open() connects, makes sure the sequence exists (CREATE SEQUENCE IF NOT
// EXISTS, safe when several processes race to create it) and next() returns
// nextval(). The sequence has CACHE 1: with a per-session cache, two sessions
// would hand out interleaved ranges and a later call could return a smaller
// value than an earlier one in another process. The session runs with
// synchronous_commit = on, so a value is flushed to the WAL before it is
// handed out and a crash of PostgreSQL cannot hand it out again. Across a
// failover the standby must be synchronous for the same guarantee.
//
// One connection, used by one caller at a time: leases are taken per batch,
// not per event, so a few thousand tokens a second is plenty. A lost
// connection is reopened on the next call; after a failed attempt further
// attempts wait for a capped exponential backoff and fail fast meanwhile.
// Thread safety: next() may be called from any thread.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "idempotency/token_source.h"

struct pg_conn;

namespace settle::idempotency {

struct PgTokenSourceOptions {
  // An unquoted lower-case SQL identifier, optionally schema-qualified.
  std::string sequence = "settle_fencing_tokens";
  // libpq counts connect timeouts in whole seconds, at least 2; rounded up.
  std::chrono::milliseconds connect_timeout{5000};
  // How long nextval() may take before the call fails with kUnavailable.
  std::chrono::milliseconds query_timeout{5000};
  // Reconnect backoff after a failed connect: doubles from min up to max.
  std::chrono::milliseconds reconnect_backoff_min{100};
  std::chrono::milliseconds reconnect_backoff_max{5000};
};

class PgTokenSource final : public TokenSource {
 public:
  // conninfo: a postgresql:// URL or a libpq keyword string. Fails with
  // kUnavailable when the server cannot be reached, kInvalidArgument for a
  // bad sequence name, kFailedPrecondition when the sequence cannot be made.
  static Result<std::shared_ptr<PgTokenSource>> open(std::string conninfo,
                                                     PgTokenSourceOptions options = {});

  ~PgTokenSource() override;
  PgTokenSource(const PgTokenSource&) = delete;
  PgTokenSource& operator=(const PgTokenSource&) = delete;

  Result<std::uint64_t> next() override;

 private:
  PgTokenSource(std::string conninfo, PgTokenSourceOptions options);

  // Both called with mu_ held.
  Status ensure_connected();
  void drop_connection();

  const std::string conninfo_;
  const PgTokenSourceOptions options_;
  std::mutex mu_;
  pg_conn* conn_ = nullptr;
  bool sequence_ready_ = false;
  std::chrono::milliseconds backoff_{0};
  std::chrono::steady_clock::time_point retry_at_{};
  std::string last_error_;
};

}  // namespace settle::idempotency
