// The production ledger: PostgreSQL 15 through libpq. Implements the Ledger
// port (ledger.h) and passes tests/ledger/ledger_contract.h.
//
// Schema: versioned migrations (src/ledger/migrations, compiled in; see
// migrate()). Journals are one row each, legs in fixed columns, partitioned
// by day of settle_date and then by hash of merchant_id; identities live in
// the unpartitioned journal_keys table, which keeps (merchant_id, ref) unique
// across every partition, archived ones included.
//
// Posting, per chunk of a call: the identities of its journals (the first of
// each identity, in key order) are COPYed into a temporary staging table;
// one statement inserts them into journal_keys (INSERT ... ON CONFLICT DO
// NOTHING RETURNING) and returns the stored digest of each one that was not
// new: equal digest kDuplicate, different kConflict; then the new journals
// go into `journals` by COPY (its multi-row insert path). Three round trips
// a chunk. The checkpoints, then the account balances (one statement, in
// account-name order, so concurrent posts cannot deadlock on them) end the
// transaction.
//
// Partitions: posting to a settle_date without a partition creates it (and
// its hash partitions) on demand, in its own short transaction before the
// posting transaction; `settled partitions ensure` creates them ahead of
// time so that ingest never waits for DDL. Posting to an archived day is
// refused (kFailedPrecondition) until it is restored.
//
// Closing: close_batch() serializes closes of one merchant and currency with
// a transaction-scoped advisory lock, locks the batch's fence row and checks
// the fencing token inside the closing transaction.
//
// Thread safety: every method may be called from any thread. A pool of up to
// `pool_size` connections serves the calls; a call that finds all of them
// busy waits up to `acquire_timeout_ms`, then fails kUnavailable.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ledger/ledger.h"

namespace settle::ledger {

struct PostgresLedgerOptions {
  // Connections opened at most (lazily, as calls need them).
  std::size_t pool_size = 4;
  // How long a call waits for a free connection before kUnavailable.
  std::chrono::milliseconds acquire_timeout{30'000};
  // Apply pending migrations on open (as `settled migrate` does). Off by
  // default: production runs `settled migrate` as a deployment step, and open()
  // refuses a database that is behind this build.
  bool migrate = false;
  // Journals per COPY and per insert statement of a post() call.
  std::size_t chunk_rows = 20'000;
};

// What `settled migrate` reports.
struct MigrationReport {
  std::vector<std::int32_t> applied;  // versions applied by this call
  std::int32_t version = 0;           // the database's version afterwards
};

// One archived day, as `settled partitions archive` reports it.
struct ArchivedDay {
  Date day;
  std::string table;            // ledger_archive.<table>
  std::filesystem::path file;   // the COPY export
  std::int64_t rows = 0;
};

class PostgresLedger final : public Ledger {
 public:
  // The highest migration version this build knows.
  static std::int32_t schema_version();

  // Opens a pool on `url` (a libpq connection URI, postgresql://user@host:port/db,
  // or a keyword/value conninfo string). Connects once to check the schema.
  // Errors: kUnavailable when the server cannot be reached, kFailedPrecondition
  // when the database is not migrated to schema_version() (and options.migrate
  // is off) or is newer than this build, kInvalidArgument for bad options.
  static Result<std::unique_ptr<PostgresLedger>> open(const std::string& url,
                                                      const PostgresLedgerOptions& options = {});

  // Applies the migrations the database lacks, in version order, each in its
  // own transaction, recording them in schema_migrations. Idempotent and safe
  // to run from several processes at once (a session advisory lock serializes
  // them). Refuses (kFailedPrecondition) a database with a migration this build
  // does not know, or whose applied migration's text differs from this build's.
  static Result<MigrationReport> migrate(const std::string& url);

  ~PostgresLedger() override;
  PostgresLedger(const PostgresLedger&) = delete;
  PostgresLedger& operator=(const PostgresLedger&) = delete;

  Result<std::vector<PostOutcome>> post(std::span<const model::Journal> journals,
                                        std::span<const Checkpoint> checkpoints) override;
  Result<std::optional<Checkpoint>> checkpoint(std::string_view consumer,
                                               std::int32_t partition) override;
  Result<model::ControlTotals> settling_totals(const model::BatchKey& key) override;
  Result<BatchHistory> batch_history(std::string_view merchant_id,
                                     std::string_view currency) override;
  Status register_fence(const model::BatchKey& key, std::uint64_t token) override;
  Result<CloseOutcome> close_batch(const model::BatchSummary& summary,
                                   std::span<const Date> released,
                                   std::span<const model::Journal> journals,
                                   std::uint64_t fencing_token) override;
  Result<std::vector<model::BatchSummary>> closed_batches(const BatchQuery& query) override;
  Result<std::vector<Balance>> balances(std::optional<std::string_view> merchant_id) override;
  // Live partitions plus the totals recorded when days were archived, so an
  // archive changes no trial balance.
  Result<std::vector<TrialBalance>> trial_balance() override;
  // Postings of the live (not archived) partitions.
  Result<std::vector<PostingRow>> postings(const PostingQuery& query) override;

  // A fencing token from the PostgreSQL sequence `settle_fencing_tokens` (the
  // one the Redis store's PgTokenSource draws from too): durable and
  // strictly increasing across processes and server restarts (a sequence never
  // hands out a value twice), so a lock service may use it for its leases.
  Result<std::uint64_t> next_fencing_token();

  // Cumulative wall time of post() and close_batch() by phase, for
  // benchmarks and diagnostics (commit_ms counts every transaction's COMMIT).
  struct PostStats {
    double stage_ms = 0;     // COPY of the identities into the staging table
    double keys_ms = 0;      // INSERT ... ON CONFLICT into journal_keys, verdicts
    double journals_ms = 0;  // COPY of the new journals into `journals`
    double accounts_ms = 0;  // the balances' upsert
    double commit_ms = 0;
  };
  PostStats post_stats() const;

  // --- partition upkeep (settled partitions ...) ---------------------------

  // Creates the day partitions of [from, to] that do not exist (archived days
  // are skipped). Returns the days created.
  Result<std::vector<Date>> ensure_partitions(Date from, Date to);
  // The live day partitions, ascending.
  Result<std::vector<Date>> partition_days();
  // Archives every live day partition before `before`: exports its rows with
  // COPY to <dir>/journals_pYYYYMMDD.copy (COPY text format, the journals
  // columns in table order), records its per-currency totals, detaches it and
  // moves it (with its hash partitions) into the schema ledger_archive, where
  // it stays queryable. `dir` must exist. Each day is its own transaction.
  Result<std::vector<ArchivedDay>> archive_partitions(Date before,
                                                      const std::filesystem::path& dir);
  // Brings an archived day back: re-attaches ledger_archive's table when it is
  // still there, else recreates the partition and loads the export `file`
  // (empty: the file recorded at archive time).
  Status restore_partition(Date day, const std::filesystem::path& file = {});

 private:
  struct Impl;
  explicit PostgresLedger(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace settle::ledger
