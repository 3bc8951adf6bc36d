#include "app/offline_settle.h"

#include <fmt/format.h>
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <ostream>
#include <thread>
#include <unordered_set>

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

// Reads the events file, validates each line and appends the valid ones to
// the bus in batches. Runs on its own thread while the pipeline consumes.
class Ingestor {
 public:
  Ingestor(bus::Bus& bus, const std::unordered_set<std::string>& merchant_ids, const SettleOptions& options,
           std::ostream& diagnostics)
      : bus_(bus), merchant_ids_(merchant_ids), options_(options), diagnostics_(diagnostics) {}

  Status run() {
    std::ifstream in(options_.events_file, std::ios::binary);
    if (!in) {
      return make_error(ErrorCode::kNotFound,
                        fmt::format("cannot open events file {}", options_.events_file.string()));
    }
    const std::string source = options_.events_file.string();
    in.seekg(0, std::ios::end);
    total_bytes_ = static_cast<std::int64_t>(in.tellg());
    in.seekg(0);
    model::EventParser parser;
    std::vector<bus::Record> pending;
    pending.reserve(options_.ingest_batch_records);
    std::string line;
    std::int64_t line_no = 0;
    while (!stop_.load(std::memory_order_relaxed) && std::getline(in, line)) {
      ++line_no;
      bytes_read_.fetch_add(static_cast<std::int64_t>(line.size()) + 1, std::memory_order_relaxed);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.find_first_not_of(" \t") == std::string::npos) continue;
      ++lines_;
      auto ev = parser.parse(line);
      if (!ev.ok()) {
        reject(source, line_no, ev.error().message);
        continue;
      }
      if (!merchant_ids_.count(ev->merchant_id.str())) {
        reject(source, line_no, fmt::format("field 'merchant_id': unknown merchant '{}'", ev->merchant_id.str()));
        continue;
      }
      pending.push_back(bus::Record{ev->merchant_id.str(), model::canonical_event_json(*ev),
                                    {bus::Header{processor::kSourceHeader, fmt::format("{}:{}", source, line_no)}},
                                    0});
      if (pending.size() >= options_.ingest_batch_records) SETTLE_TRY(flush(pending));
    }
    if (in.bad()) return make_error(ErrorCode::kIo, fmt::format("error reading {}", source));
    return flush(pending);
  }

  // Asks run() to return early (the pipeline failed; the rest is not needed).
  void stop() { stop_.store(true, std::memory_order_relaxed); }
  std::int64_t lines() const { return lines_; }
  std::int64_t accepted() const { return accepted_; }
  std::int64_t invalid() const { return invalid_; }
  double fraction() const {
    return total_bytes_ > 0 ? static_cast<double>(bytes_read_.load(std::memory_order_relaxed)) / static_cast<double>(total_bytes_)
                            : 1.0;
  }

 private:
  void reject(const std::string& source, std::int64_t line_no, const std::string& why) {
    ++invalid_;
    diagnostics_ << source << ':' << line_no << ": " << why << '\n';
  }

  Status flush(std::vector<bus::Record>& pending) {
    if (pending.empty()) return ok_status();
    SETTLE_TRY(bus_.append(processor::kEventsTopic, pending));
    accepted_ += static_cast<std::int64_t>(pending.size());
    pending.clear();
    return ok_status();
  }

  bus::Bus& bus_;
  const std::unordered_set<std::string>& merchant_ids_;
  const SettleOptions& options_;
  std::ostream& diagnostics_;
  std::int64_t lines_ = 0;
  std::int64_t accepted_ = 0;
  std::int64_t invalid_ = 0;
  std::int64_t total_bytes_ = 0;
  std::atomic<std::int64_t> bytes_read_{0};
  std::atomic<bool> stop_{false};
};

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
      // While ingestion runs, wait for full chunks: each chunk is one ledger
      // transaction (one fsync), so small ones would cost more than they save.
      if (!done) {
        auto end = rt.bus->end_offset(processor::kEventsTopic, p);
        if (!end.ok()) {
          pipeline_status = end.error();
          break;
        }
        if (*end - proc.next_offset(p) < static_cast<std::int64_t>(chunk_records)) continue;
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
