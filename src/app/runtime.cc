#include "app/embedded_runtime.h"

#include <fmt/format.h>

#include <system_error>

#include "idempotency/memory_store.h"
#include "processor/topics.h"

namespace settle::app {

Result<EmbeddedRuntime> EmbeddedRuntime::open(const RuntimeOptions& options) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path ledger_path = options.data_dir / "ledger.db";
  if (!options.create && !fs::exists(ledger_path, ec)) {
    return make_error(ErrorCode::kNotFound,
                      fmt::format("{}: no ledger here (run 'settled settle --data-dir {}' first)",
                                  options.data_dir.string(), options.data_dir.string()));
  }
  fs::create_directories(options.data_dir, ec);
  if (ec) {
    return make_error(ErrorCode::kIo, fmt::format("cannot create data directory {}: {}",
                                                  options.data_dir.string(), ec.message()));
  }
  EmbeddedRuntime rt;
  bus::FileLogOptions bus_options;
  bus_options.dir = options.data_dir / "bus";
  bus_options.fsync = options.bus_fsync;
  SETTLE_ASSIGN_OR_RETURN(rt.bus, bus::FileLogBus::open(bus_options));

  ledger::SqliteLedgerOptions ledger_options;
  ledger_options.path = ledger_path;
  ledger_options.synchronous = options.ledger_sync;
  ledger_options.cache_kib = options.ledger_cache_kib;
  SETTLE_ASSIGN_OR_RETURN(rt.ledger, ledger::SqliteLedger::open(ledger_options));

  rt.store = std::make_unique<idempotency::MemoryStore>(idempotency::MemoryStoreOptions{});

  auto existing = rt.bus->partition_count(processor::kEventsTopic);
  if (existing.ok() && options.partitions && *options.partitions != *existing) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("{} was created with {} partitions, not {}; use a new --data-dir to "
                                  "change the partition count",
                                  options.data_dir.string(), *existing, *options.partitions));
  }
  rt.partitions = existing.ok() ? *existing : options.partitions.value_or(8);
  if (rt.partitions < 1 || rt.partitions > 1024) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("--partitions must be 1-1024, not {}", rt.partitions));
  }
  SETTLE_TRY(rt.bus->create_topic({processor::kMerchantsTopic, 1, true}));
  for (const char* topic : {processor::kEventsTopic, processor::kTasksTopic, processor::kStatusTopic}) {
    SETTLE_TRY(rt.bus->create_topic({topic, rt.partitions, false}));
  }
  return rt;
}

}  // namespace settle::app
