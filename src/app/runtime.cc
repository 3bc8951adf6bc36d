#include "app/runtime.h"

#include <fmt/format.h>

#include <chrono>
#include <system_error>

#include "bus/kafka_bus.h"
#include "idempotency/memory_store.h"
#include "idempotency/pg_token_source.h"
#include "idempotency/redis_store.h"
#include "ledger/postgres_ledger.h"
#include "processor/topics.h"
#include "reconcile/postgres_recon_store.h"
#include "reconcile/recon_status.h"
#include "reconcile/sqlite_recon_store.h"

namespace settle::app {
namespace {

namespace fs = std::filesystem;

Status unknown_scheme(std::string_view port, std::string_view url, std::string_view expected) {
  return make_error(ErrorCode::kInvalidArgument,
                    fmt::format("{}: '{}' is not a URL this build can open (expected {})", port, url, expected));
}

Status open_bus(const RuntimeOptions& options, Runtime& rt) {
  if (options.bus_url.empty()) {
    bus::FileLogOptions bus_options;
    bus_options.dir = options.data_dir / "bus";
    bus_options.fsync = options.bus_fsync;
    SETTLE_ASSIGN_OR_RETURN(rt.bus, bus::FileLogBus::open(bus_options));
    rt.bus_kind = "file";
    return ok_status();
  }
  if (options.bus_url.rfind("kafka://", 0) == 0) {
    SETTLE_ASSIGN_OR_RETURN(rt.bus, bus::KafkaBus::open(options.bus_url));
    rt.bus_kind = "kafka";
    return ok_status();
  }
  return unknown_scheme("bus", options.bus_url, "kafka://host:port");
}

Status open_ledger(const RuntimeOptions& options, Runtime& rt) {
  if (options.ledger_url.empty()) {
    const fs::path ledger_path = options.data_dir / "ledger.db";
    ledger::SqliteLedgerOptions ledger_options;
    ledger_options.path = ledger_path;
    ledger_options.synchronous = options.ledger_sync;
    ledger_options.cache_kib = options.ledger_cache_kib;
    SETTLE_ASSIGN_OR_RETURN(rt.ledger, ledger::SqliteLedger::open(ledger_options));
    rt.ledger_kind = "sqlite";
    return ok_status();
  }
  if (options.ledger_url.rfind("postgresql://", 0) == 0 || options.ledger_url.rfind("postgres://", 0) == 0) {
    ledger::PostgresLedgerOptions pg;
    pg.migrate = options.migrate;
    SETTLE_ASSIGN_OR_RETURN(rt.ledger, ledger::PostgresLedger::open(options.ledger_url, pg));
    rt.ledger_kind = "postgresql";
    return ok_status();
  }
  return unknown_scheme("ledger", options.ledger_url, "postgresql://user@host:port/db");
}

Status open_store(const RuntimeOptions& options, Runtime& rt) {
  if (options.store_url.empty() || options.store_url == "memory://") {
    // Above every token a previous process of this data directory registered
    // with the ledger (see MemoryStoreOptions::first_token).
    idempotency::MemoryStoreOptions store_options;
    store_options.first_token = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
    if (options.memory_store_max_entries != 0) store_options.max_entries = options.memory_store_max_entries;
    rt.store = std::make_unique<idempotency::MemoryStore>(store_options);
    rt.store_kind = "memory";
    return ok_status();
  }
  if (options.store_url.rfind("redis://", 0) == 0) {
    // Leases' fencing tokens must survive a Redis failover: they come from a
    // PostgreSQL sequence, in the ledger's database.
    if (rt.ledger_kind != "postgresql") {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("store {}: a Redis store takes its fencing tokens from PostgreSQL; set the "
                                    "ledger to a postgresql:// URL too",
                                    options.store_url));
    }
    SETTLE_ASSIGN_OR_RETURN(auto tokens, idempotency::PgTokenSource::open(options.ledger_url));
    SETTLE_ASSIGN_OR_RETURN(rt.store, idempotency::RedisStore::open(options.store_url, {}, tokens));
    rt.store_kind = "redis";
    return ok_status();
  }
  return unknown_scheme("store", options.store_url, "redis://host:port");
}

}  // namespace

Result<std::unique_ptr<ledger::Ledger>> open_ledger(const RuntimeOptions& options) {
  if (options.ledger_url.empty()) {
    std::error_code ec;
    if (!fs::exists(options.data_dir / "ledger.db", ec)) {
      return make_error(ErrorCode::kNotFound,
                        fmt::format("{}: no ledger here (run 'settled settle --data-dir {}' first)",
                                    options.data_dir.string(), options.data_dir.string()));
    }
  }
  Runtime rt;
  SETTLE_TRY(open_ledger(options, rt));
  return std::move(rt.ledger);
}

Result<std::unique_ptr<reconcile::ReconStore>> open_recon_store(const RuntimeOptions& options) {
  if (options.ledger_url.empty()) {
    const fs::path db = options.data_dir / "ledger.db";
    std::error_code ec;
    if (!fs::exists(db, ec)) {
      return make_error(ErrorCode::kNotFound,
                        fmt::format("{}: no ledger here (run 'settled settle --data-dir {}' first)",
                                    options.data_dir.string(), options.data_dir.string()));
    }
    SETTLE_ASSIGN_OR_RETURN(auto store, reconcile::SqliteReconStore::open(db));
    return std::unique_ptr<reconcile::ReconStore>(std::move(store));
  }
  if (options.ledger_url.rfind("postgresql://", 0) == 0 || options.ledger_url.rfind("postgres://", 0) == 0) {
    SETTLE_ASSIGN_OR_RETURN(auto store, reconcile::PostgresReconStore::open(options.ledger_url));
    return std::unique_ptr<reconcile::ReconStore>(std::move(store));
  }
  return unknown_scheme("ledger", options.ledger_url, "postgresql://user@host:port/db").error();
}

std::shared_ptr<reconcile::ReconStore> with_status_publisher(std::shared_ptr<reconcile::ReconStore> inner,
                                                             ledger::Ledger& ledger, bus::Bus& bus) {
  struct Holder {
    std::shared_ptr<reconcile::ReconStore> inner;
    reconcile::ReconStatusPublisher publisher;
  };
  reconcile::ReconStore& store = *inner;
  std::shared_ptr<Holder> h(new Holder{std::move(inner), {store, ledger, bus, processor::kStatusTopic}});
  return std::shared_ptr<reconcile::ReconStore>(h, &h->publisher);
}

Result<Runtime> Runtime::open(const RuntimeOptions& options) {
  const bool embedded_files = options.bus_url.empty() || options.ledger_url.empty();
  if (embedded_files) {
    std::error_code ec;
    if (options.ledger_url.empty() && !options.create && !fs::exists(options.data_dir / "ledger.db", ec)) {
      return make_error(ErrorCode::kNotFound,
                        fmt::format("{}: no ledger here (run 'settled settle --data-dir {}' first)",
                                    options.data_dir.string(), options.data_dir.string()));
    }
    fs::create_directories(options.data_dir, ec);
    if (ec) {
      return make_error(ErrorCode::kIo, fmt::format("cannot create data directory {}: {}",
                                                    options.data_dir.string(), ec.message()));
    }
  }
  Runtime rt;
  SETTLE_TRY(open_bus(options, rt));
  SETTLE_TRY(open_ledger(options, rt));
  SETTLE_TRY(open_store(options, rt));

  auto existing = rt.bus->partition_count(processor::kEventsTopic);
  if (existing.ok() && options.partitions && *options.partitions != *existing) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("the bus's events topic has {} partitions, not {}; use a new --data-dir "
                                  "(or new topics) to change the partition count",
                                  *existing, *options.partitions));
  }
  rt.partitions = existing.ok() ? *existing : options.partitions.value_or(8);
  if (rt.partitions < 1 || rt.partitions > 1024) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("--partitions must be 1-1024, not {}", rt.partitions));
  }
  SETTLE_TRY(rt.bus->create_topic({processor::kMerchantsTopic, 1, true}));
  for (const char* topic : {processor::kEventsTopic, processor::kTasksTopic, processor::kStatusTopic,
                            processor::kDeadLettersTopic}) {
    SETTLE_TRY(rt.bus->create_topic({topic, rt.partitions, false}));
  }
  return rt;
}

}  // namespace settle::app
