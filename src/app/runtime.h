// The backends a process runs on, and the one place that picks them.
//
// The embedded default keeps everything in one data directory: the
// file-backed bus (DIR/bus), the SQLite ledger (DIR/ledger.db) and the
// in-process idempotency store. A URL per port selects a production backend
// instead (kafka://, redis://, postgresql://); any mix is allowed, e.g. a
// Kafka bus with the embedded ledger for a trial.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>

#include "bus/bus.h"
#include "bus/file_log_bus.h"
#include "common/result.h"
#include "idempotency/store.h"
#include "ledger/ledger.h"
#include "ledger/sqlite_ledger.h"
#include "reconcile/recon_store.h"

namespace settle::app {

struct RuntimeOptions {
  std::filesystem::path data_dir = "settled-data";
  // Partitions of events, tasks and status, fixed when the directory is
  // created; unset: 8 for a new directory, the existing count otherwise.
  std::optional<std::int32_t> partitions;
  bus::FsyncPolicy bus_fsync = bus::FsyncPolicy::kEveryAppend;
  ledger::Synchronous ledger_sync = ledger::Synchronous::kFull;
  // SQLite page cache: the process's memory is this plus a few tens of MiB,
  // whatever the number of events. Larger keeps more of the ledger's unique
  // index in memory, which speeds up inserts once the ledger outgrows it.
  std::int64_t ledger_cache_kib = 64 * 1024;
  bool create = true;  // false: the directory must already hold a ledger

  // Production backends; empty selects the embedded one in data_dir.
  std::string bus_url;     // kafka://host:port[,host:port][?options]
  std::string store_url;   // redis://host:port[?options]
  // The in-process store's MemoryStoreOptions::max_entries; 0: its default.
  std::size_t memory_store_max_entries = 0;
  std::string ledger_url;  // postgresql://user@host:port/db[?options]
  // PostgreSQL: apply pending migrations on open (default: refuse a database
  // that `settled migrate` has not brought to this build's schema).
  bool migrate = false;
};

struct Runtime {
  // "file", "kafka"; "memory", "redis"; "sqlite", "postgresql".
  std::string bus_kind, store_kind, ledger_kind;
  std::unique_ptr<bus::Bus> bus;
  std::unique_ptr<ledger::Ledger> ledger;
  std::unique_ptr<idempotency::Store> store;
  std::int32_t partitions = 0;

  static Result<Runtime> open(const RuntimeOptions& options);
};

// Only the ledger (for read-only commands such as report and balances): the
// embedded one in options.data_dir (which must exist) or options.ledger_url.
Result<std::unique_ptr<ledger::Ledger>> open_ledger(const RuntimeOptions& options);

// The reconciliation store beside that ledger: its recon_* tables in the
// data directory's ledger.db (which must exist), or in the PostgreSQL
// ledger's database (created by `settled migrate`).
Result<std::unique_ptr<reconcile::ReconStore>> open_recon_store(const RuntimeOptions& options);
// `inner` wrapped so that runs, acknowledgements and resolutions are also
// published on the status topic (reconcile/recon_status.h).
std::shared_ptr<reconcile::ReconStore> with_status_publisher(std::shared_ptr<reconcile::ReconStore> inner,
                                                             ledger::Ledger& ledger, bus::Bus& bus);

}  // namespace settle::app
