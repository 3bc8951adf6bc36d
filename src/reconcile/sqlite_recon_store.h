// ReconStore on SQLite: its own tables (recon_*) in the data directory's
// ledger.db, created when absent, on its own connection (WAL, as the ledger
// opens it; a writer waits up to 5 s for another). Amounts are INTEGER minor
// units; instants are RFC 3339 UTC text.
#pragma once

#include <filesystem>
#include <memory>

#include "reconcile/recon_store.h"

namespace settle::reconcile {

class SqliteReconStore final : public ReconStore {
 public:
  // kIo when the file cannot be opened; the recon tables are created if absent.
  static Result<std::unique_ptr<SqliteReconStore>> open(const std::filesystem::path& db_path);
  ~SqliteReconStore() override;
  SqliteReconStore(const SqliteReconStore&) = delete;
  SqliteReconStore& operator=(const SqliteReconStore&) = delete;

  Result<RunOutcome> record_run(const RunRecord& run) override;
  Result<std::vector<std::string>> matched_subjects(std::string_view prefix) override;
  Result<std::vector<Discrepancy>> discrepancies(const DiscrepancyQuery& query) override;
  Result<Discrepancy> acknowledge(std::int64_t id, Timestamp at) override;
  Result<Discrepancy> resolve(std::int64_t id, std::string_view comment, Timestamp at) override;
  Result<std::vector<DriftSample>> drift(std::size_t last) override;

 private:
  struct Impl;
  explicit SqliteReconStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace settle::reconcile
