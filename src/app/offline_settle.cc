#include "app/offline_settle.h"

#include <fmt/format.h>
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <ostream>
#include <thread>
#include <unordered_set>

#include "app/ingest.h"
#include "model/event_json.h"
#include "model/status_update.h"
#include "processor/merchant_directory.h"
#include "processor/stream_processor.h"
#include "processor/topics.h"
#include "rules/rules.h"
#include "settlement/settlement_worker.h"

namespace settle::app {
namespace {

using Clock = std::chrono::steady_clock;

// The ingest thread's nice value (see settle_file()).
constexpr int kIngestNice = 10;

void draw_progress(double fraction, std::int64_t processed) {
  const int width = 30;
  const int filled = static_cast<int>(fraction * width);
  std::fprintf(stderr, "\r[%.*s%*s] %3d%%  %lld events processed", filled, "##############################",
               width - filled, "", static_cast<int>(fraction * 100), static_cast<long long>(processed));
  std::fflush(stderr);
}

}  // namespace

Result<SettleStats> settle_file(Runtime& rt, const std::vector<model::Merchant>& merchants,
                                const SettleOptions& options, std::ostream& diagnostics) {
  const auto started = Clock::now();
  SETTLE_TRY(processor::MerchantDirectory::publish(*rt.bus, merchants));
  processor::MerchantDirectory directory(*rt.bus);
  SETTLE_TRY(directory.refresh());

  std::unordered_set<std::string> ids;
  for (const auto& m : merchants) ids.insert(m.id.str());

  // Where this run's status updates begin, to report its conflicts afterwards.
  std::vector<std::int64_t> status_from(static_cast<std::size_t>(rt.partitions));
  for (std::int32_t p = 0; p < rt.partitions; ++p) {
    SETTLE_ASSIGN_OR_RETURN(status_from[static_cast<std::size_t>(p)], rt.bus->end_offset(processor::kStatusTopic, p));
  }

  processor::ProcessorOptions processor_options;
  processor_options.pipelined = true;
  const std::size_t chunk_records = processor_options.chunk_records;
  processor::StreamProcessor proc(*rt.bus, *rt.ledger, directory, processor_options);
  settlement::SettlementWorker worker(*rt.bus, *rt.ledger, *rt.store, settlement::WorkerOptions{});
  for (std::int32_t p = 0; p < rt.partitions; ++p) SETTLE_TRY(proc.recover(p));

  Ingestor ingestor(*rt.bus, ids, options, diagnostics);
  std::atomic<bool> ingest_done{false};
  Status ingest_status = ok_status();
  std::thread ingest_thread([&] {
    pthread_setname_np(pthread_self(), "ingest");
    // The ledger writer is the run's critical path, and while ingestion runs
    // three busy threads share the cores. Ingestion only has to stay ahead
    // of the processor, so it yields the CPU to the other two: a higher nice
    // value for this thread alone (Linux schedules threads on their own;
    // raising it needs no privilege). Best effort: nothing else depends on it.
    (void)setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), kIngestNice);
    ingest_status = ingestor.run();
    ingest_done.store(true, std::memory_order_release);
  });
  struct Join {
    std::thread& t;
    Ingestor& ingestor;
    ~Join() {
      if (!t.joinable()) return;
      ingestor.stop();
      t.join();
    }
  } join{ingest_thread, ingestor};

  // Consume while ingestion runs; after it ends, drain every partition.
  auto last_draw = Clock::now();
  Status pipeline_status = ok_status();
  for (;;) {
    const bool done = ingest_done.load(std::memory_order_acquire);
    std::size_t progressed = 0;
    for (std::int32_t p = 0; p < rt.partitions; ++p) {
      // While ingestion runs, take a partition once it has an eighth of a
      // chunk ahead, whether or not the ledger is busy: poll() reads and
      // enriches the chunk while the ledger writes the one before, so the
      // ledger (the run's critical path) goes from one chunk to the next
      // without waiting, from the first seconds on. Chunks then grow by
      // themselves, as ingestion outpaces the ledger, up to chunk_records.
      // (Waiting for full chunks while the ledger was busy left it idle for
      // most of the first second: 2-3% more time for 1M events.)
      if (!done) {
        auto end = rt.bus->end_offset(processor::kEventsTopic, p);
        if (!end.ok()) {
          pipeline_status = end.error();
          break;
        }
        const std::int64_t ahead = *end - proc.next_offset(p);
        if (ahead < static_cast<std::int64_t>(chunk_records / 8)) continue;
      }
      auto n = proc.poll(p);
      if (!n.ok()) {
        pipeline_status = n.error();
        break;
      }
      progressed += *n;
    }
    if (!pipeline_status.ok()) break;
    if (options.progress && Clock::now() - last_draw > std::chrono::milliseconds(100)) {
      draw_progress(ingestor.fraction(), proc.stats().events);
      last_draw = Clock::now();
    }
    if (progressed == 0) {
      if (done) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  if (!pipeline_status.ok()) ingestor.stop();
  ingest_thread.join();
  if (options.progress) {
    draw_progress(1.0, proc.stats().events);
    std::fputc('\n', stderr);
  }
  SETTLE_TRY(ingest_status);
  SETTLE_TRY(pipeline_status);

  for (std::int32_t p = 0; p < rt.partitions; ++p) SETTLE_TRY(proc.close_through(p, options.through));
  // Settle every task; a task leased elsewhere would be retried, but in one
  // process nothing else holds a lease.
  for (;;) {
    std::size_t handled = 0;
    for (std::int32_t p = 0; p < rt.partitions; ++p) {
      SETTLE_ASSIGN_OR_RETURN(std::size_t n, worker.poll(p));
      handled += n;
    }
    if (handled == 0) break;
  }
  for (std::int32_t p = 0; p < rt.partitions; ++p) {
    SETTLE_ASSIGN_OR_RETURN(std::int64_t end, rt.bus->end_offset(processor::kTasksTopic, p));
    if (worker.next_offset(p) != end) {
      return make_error(ErrorCode::kUnavailable,
                        fmt::format("settlement tasks of partition {} are still pending", p));
    }
  }

  // Per-event outcomes the processor found (conflicts, rejections), with the
  // line they came from.
  for (std::int32_t p = 0; p < rt.partitions; ++p) {
    for (std::int64_t from = status_from[static_cast<std::size_t>(p)];;) {
      SETTLE_ASSIGN_OR_RETURN(auto recs, rt.bus->read(processor::kStatusTopic, p, from, 4096));
      if (recs.empty()) break;
      from = recs.back().offset + 1;
      for (const auto& rec : recs) {
        auto u = model::parse_status_json(rec.value);
        if (!u.ok()) continue;
        const std::string where = u->source.empty() ? "(bus)" : u->source;
        if (u->kind == model::StatusKind::kEventConflict || u->kind == model::StatusKind::kEventRejected) {
          diagnostics << where << ": event '" << u->event_id << "' of merchant '" << u->merchant_id
                      << "': " << (u->kind == model::StatusKind::kEventConflict ? "conflict: " : "") << u->reason
                      << '\n';
        }
      }
    }
  }
  for (const auto& failure : worker.failures()) diagnostics << "settlement failed: " << failure << '\n';

  SettleStats stats;
  stats.lines = ingestor.lines();
  stats.accepted = ingestor.accepted();
  stats.invalid = ingestor.invalid();
  stats.posted = proc.stats().posted;
  stats.duplicates = proc.stats().duplicates;
  stats.conflicts = proc.stats().conflicts;
  stats.rejected = proc.stats().rejected;
  stats.dead_letters = proc.stats().dead_letters + worker.stats().dead_letters;
  stats.late = proc.stats().late;
  stats.batches_closed = worker.stats().closed;
  stats.tasks_failed = worker.stats().failed;
  stats.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  return stats;
}

Result<std::string> report_csv(ledger::Ledger& ledger) {
  SETTLE_ASSIGN_OR_RETURN(auto batches, ledger.closed_batches(ledger::BatchQuery{}));
  std::string out = rules::report_header();
  out += '\n';
  for (const auto& b : batches) {
    out += rules::report_row(b);
    out += '\n';
  }
  return out;
}

}  // namespace settle::app
