// The embedded backends of one data directory: the file-backed bus
// (DIR/bus), the SQLite ledger (DIR/ledger.db) and the in-process idempotency
// store. This is where the embedded default picks its implementations.
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
};

struct EmbeddedRuntime {
  std::unique_ptr<bus::Bus> bus;
  std::unique_ptr<ledger::Ledger> ledger;
  std::unique_ptr<idempotency::Store> store;
  std::int32_t partitions = 0;

  static Result<EmbeddedRuntime> open(const RuntimeOptions& options);
};

}  // namespace settle::app
