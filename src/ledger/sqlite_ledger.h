// The embedded ledger: one SQLite database file in WAL mode, schema in
// schema_sqlite.sql (compiled in). Implements the Ledger port (ledger.h) and
// passes tests/ledger/ledger_contract.h.
//
// Storage: a journal is ONE row of `journals` with its (at most three) legs in
// fixed columns; the `postings` view shows them one row per posting. Account
// balances are maintained in the same transaction as the journals that move
// them. Every call is one transaction.
//
// Dates are stored as 'YYYY-MM-DD', so the ledger refuses (kInvalidArgument)
// journals and batches dated outside the years 0001-9999.
//
// Thread safety: one connection for reads and writes, guarded by a mutex;
// every method may be called from any thread. A second connection only
// checkpoints, on a thread of the ledger's own (SqliteLedgerOptions). Several processes may open the same file (SQLite's
// locking serializes their writes; a writer waits up to 5 s, then kUnavailable).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string_view>

#include "ledger/ledger.h"

namespace settle::ledger {

enum class Synchronous : std::uint8_t {
  // fsync the WAL at every commit: a commit that returned survives power loss.
  kFull,
  // fsync only at checkpoints: a commit survives a crash of the process, but
  // the last commits may be lost if the machine loses power. Faster.
  kNormal,
};

struct SqliteLedgerOptions {
  // The database file; created, with its schema, when absent. Its directory
  // must exist. SQLite keeps "-wal" (about checkpoint_wal_bytes, see below)
  // and "-shm" files beside it.
  std::filesystem::path path;
  Synchronous synchronous = Synchronous::kFull;
  // Page cache of the connection. The journals' unique index is written in
  // random key order; keeping it in cache is what keeps ingest fast.
  std::int64_t cache_kib = 262144;
  // Checkpoints (copies of the WAL into the database): a thread of the ledger
  // runs one, on its own connection and without blocking writes, whenever the
  // WAL has grown by background_checkpoint_bytes; a commit that leaves the
  // WAL longer than checkpoint_wal_bytes runs one itself, after which the WAL
  // is written from its beginning again. 24 and 64 MiB against a single
  // checkpoint per 256 MiB: 6% less time for a 1M-event settle.
  std::int64_t background_checkpoint_bytes = std::int64_t{24} << 20;
  std::int64_t checkpoint_wal_bytes = std::int64_t{64} << 20;
};

class SqliteLedger final : public Ledger {
 public:
  // The schema version this build reads and writes.
  static constexpr std::int64_t kSchemaVersion = 3;

  // Opens (creating if absent) the ledger at options.path. Errors: kIo when the
  // file cannot be opened or created, kCorruption when it is not a database,
  // kFailedPrecondition when it is a database but not a ledger of
  // kSchemaVersion (a ledger of version 1 or 2 is upgraded in place: its
  // checkpoints gain their version column (1), its settling table is filled
  // from its journals (2)), kInvalidArgument for bad options.
  static Result<std::unique_ptr<SqliteLedger>> open(const SqliteLedgerOptions& options);

  // The schema, exactly as in src/ledger/schema_sqlite.sql.
  static std::string_view schema_sql();

  // Checkpoints the ledger's thread has completed (see SqliteLedgerOptions).
  std::uint64_t background_checkpoints() const;

  ~SqliteLedger() override;
  SqliteLedger(const SqliteLedger&) = delete;
  SqliteLedger& operator=(const SqliteLedger&) = delete;

  Result<std::vector<PostOutcome>> post(std::span<const model::Journal> journals,
                                        std::span<const Checkpoint> checkpoints) override;
  // With Synchronous::kFull, the transaction commits without an fsync and
  // the WAL is fsynced after the connection is released (one fsync covers
  // every commit before it), so the next call can insert meanwhile.
  Result<std::vector<PostOutcome>> post_pipelined(std::span<const model::Journal> journals,
                                                  std::span<const Checkpoint> checkpoints,
                                                  const std::function<void()>& committed) override;
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
  // With Synchronous::kFull: committed without an fsync; sync() fsyncs the
  // WAL once for every such commit before it.
  Result<CloseOutcome> close_batch_deferred(const model::BatchSummary& summary,
                                            std::span<const Date> released,
                                            std::span<const model::Journal> journals,
                                            std::uint64_t fencing_token) override;
  Status sync() override;
  Result<std::vector<model::BatchSummary>> closed_batches(const BatchQuery& query) override;
  Result<std::vector<Balance>> balances(std::optional<std::string_view> merchant_id) override;
  Result<std::vector<TrialBalance>> trial_balance() override;
  Result<std::vector<PostingRow>> postings(const PostingQuery& query) override;

 private:
  struct Impl;  // keeps sqlite3.h out of this header
  explicit SqliteLedger(std::unique_ptr<Impl> impl);
  Result<CloseOutcome> close_batch_with(const model::BatchSummary& summary, std::span<const Date> released,
                                        std::span<const model::Journal> journals, std::uint64_t fencing_token,
                                        bool deferred);
  std::unique_ptr<Impl> impl_;
};

}  // namespace settle::ledger
