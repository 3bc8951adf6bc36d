// ReconStore on PostgreSQL (libpq), in the ledger's database: the recon_*
// tables of migration 0003 (src/ledger/migrations), which `settled migrate`
// creates. Same contract as SqliteReconStore (tests/reconcile/recon_store_test.cc
// runs one suite on both).
//
// One connection, opened like PostgresLedger's (UTC, ISO dates, UTF-8,
// lock_timeout) and reopened on the next call when it broke. record_run() is
// one transaction that takes a transaction-scoped advisory lock first, so runs
// of several processes (the recon role, the gateway, the CLI) are serialized:
// a statement loaded by two of them at once is recorded once, and the
// auto-resolution and "not opened twice" rules see each other's tasks.
// Instants are timestamptz (microseconds: a nanosecond part is rounded).
//
// Thread safety: calls are serialized by a mutex.
#pragma once

#include <memory>
#include <string>

#include "reconcile/recon_store.h"

namespace settle::reconcile {

class PostgresReconStore final : public ReconStore {
 public:
  // `url`: a libpq URI (postgresql://user@host:port/db) or conninfo string.
  // kUnavailable when the server cannot be reached; kFailedPrecondition when
  // the database lacks the recon tables (run `settled migrate`).
  static Result<std::unique_ptr<PostgresReconStore>> open(const std::string& url);
  ~PostgresReconStore() override;
  PostgresReconStore(const PostgresReconStore&) = delete;
  PostgresReconStore& operator=(const PostgresReconStore&) = delete;

  Result<RunOutcome> record_run(const RunRecord& run) override;
  Result<std::vector<std::string>> matched_subjects(std::string_view prefix) override;
  Result<std::vector<Discrepancy>> discrepancies(const DiscrepancyQuery& query) override;
  Result<Discrepancy> acknowledge(std::int64_t id, Timestamp at) override;
  Result<Discrepancy> resolve(std::int64_t id, std::string_view comment, Timestamp at) override;
  Result<std::vector<DriftSample>> drift(std::size_t last) override;

 private:
  struct Impl;
  explicit PostgresReconStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace settle::reconcile
