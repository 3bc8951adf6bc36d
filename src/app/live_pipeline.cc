#include "app/live_pipeline.h"

#include <fmt/format.h>
#include <pthread.h>

#include <algorithm>
#include <memory>

#include "processor/merchant_directory.h"
#include "processor/topics.h"

namespace settle::app {
namespace {

Timestamp wall_now() {
  return Timestamp{std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count()};
}

std::chrono::milliseconds backoff(int attempt) {
  return std::chrono::milliseconds(std::min(2000, 50 << std::min(attempt, 6)));
}

}  // namespace

LivePipeline::LivePipeline(bus::Bus& bus, ledger::Ledger& ledger, idempotency::Store& store,
                           std::int32_t partitions, LiveOptions options)
    : bus_(bus), ledger_(ledger), store_(store), options_(std::move(options)) {
  if (options_.partitions.empty()) {
    for (std::int32_t p = 0; p < partitions; ++p) partitions_.push_back(p);
  } else {
    partitions_ = options_.partitions;
  }
  processed_offsets_.assign(partitions_.size(), 0);
  task_offsets_.assign(partitions_.size(), 0);
}

LivePipeline::~LivePipeline() { (void)stop(); }

Status LivePipeline::start() {
  for (std::int32_t p : partitions_) {
    SETTLE_ASSIGN_OR_RETURN(std::int32_t count, bus_.partition_count(processor::kEventsTopic));
    if (p < 0 || p >= count) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("partition {} does not exist (the events topic has {})", p, count));
    }
  }
  if (options_.run_processor) processor_thread_ = std::thread([this] { run_processor(); });
  if (options_.run_worker) worker_thread_ = std::thread([this] { run_worker(); });
  return ok_status();
}

Status LivePipeline::stop() {
  stopping_.store(true);
  if (processor_thread_.joinable()) processor_thread_.join();
  if (worker_thread_.joinable()) worker_thread_.join();
  std::lock_guard lock(mu_);
  if (failure_) return *failure_;
  return ok_status();
}

std::optional<Error> LivePipeline::failure() const {
  std::lock_guard lock(mu_);
  return failure_;
}

bool LivePipeline::wait_for_failure(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return failed_cv_.wait_for(lock, timeout, [this] { return failure_.has_value(); });
}

void LivePipeline::fail(const Error& error) {
  std::lock_guard lock(mu_);
  if (!failure_) failure_ = error;
  failed_cv_.notify_all();
}

LiveStats LivePipeline::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

Result<bool> LivePipeline::idle() {
  std::vector<std::int64_t> processed, tasks;
  {
    std::lock_guard lock(mu_);
    processed = processed_offsets_;
    tasks = task_offsets_;
  }
  for (std::size_t i = 0; i < partitions_.size(); ++i) {
    if (options_.run_processor) {
      SETTLE_ASSIGN_OR_RETURN(std::int64_t end, bus_.end_offset(processor::kEventsTopic, partitions_[i]));
      if (processed[i] < end) return false;
    }
    if (options_.run_worker) {
      SETTLE_ASSIGN_OR_RETURN(std::int64_t end, bus_.end_offset(processor::kTasksTopic, partitions_[i]));
      if (tasks[i] < end) return false;
    }
  }
  return true;
}

// The processor keeps state ahead of the ledger between a chunk's read and
// its commit; after any failure the only safe way on is a fresh processor
// recovered from the ledger's checkpoints, so each retry builds one.
void LivePipeline::run_processor() {
  pthread_setname_np(pthread_self(), "processor");
  int attempt = 0;
  while (!stopping_.load()) {
    processor::MerchantDirectory directory(bus_);
    processor::StreamProcessor proc(bus_, ledger_, directory, options_.processor);
    Status status = directory.refresh();
    for (std::int32_t p : partitions_) {
      if (!status.ok()) break;
      status = proc.recover(p);
    }
    auto last_advance = std::chrono::steady_clock::now() - options_.advance_every;
    while (status.ok() && !stopping_.load()) {
      std::size_t progressed = 0;
      for (std::size_t i = 0; i < partitions_.size() && status.ok(); ++i) {
        auto n = proc.poll(partitions_[i]);
        if (!n.ok()) {
          status = n.error();
          break;
        }
        progressed += *n;
      }
      if (!status.ok()) break;
      const auto now = std::chrono::steady_clock::now();
      if (progressed == 0 || now - last_advance >= options_.advance_every) {
        status = proc.flush();
        for (std::size_t i = 0; i < partitions_.size() && status.ok(); ++i) {
          status = proc.advance(partitions_[i], wall_now());
        }
        last_advance = now;
      }
      if (!status.ok()) break;
      attempt = 0;
      {
        std::lock_guard lock(mu_);
        for (std::size_t i = 0; i < partitions_.size(); ++i) processed_offsets_[i] = proc.next_offset(partitions_[i]);
        const auto& s = proc.stats();
        stats_.events = s.events;
        stats_.posted = s.posted;
        stats_.duplicates = s.duplicates;
        stats_.conflicts = s.conflicts;
        stats_.rejected = s.rejected;
        stats_.late = s.late;
        stats_.tasks_emitted = s.tasks;
      }
      if (progressed == 0) std::this_thread::sleep_for(options_.idle_sleep);
    }
    if (status.ok()) status = proc.flush();
    if (status.ok()) return;
    if (++attempt > options_.max_retries) {
      fail(make_error(status.error().code, "processor: " + status.error().message));
      return;
    }
    std::fprintf(stderr, "settled: processor: %s; recovering (attempt %d)\n", status.error().message.c_str(),
                 attempt);
    std::this_thread::sleep_for(backoff(attempt));
  }
}

void LivePipeline::run_worker() {
  pthread_setname_np(pthread_self(), "worker");
  settlement::SettlementWorker worker(bus_, ledger_, store_, options_.worker);
  int attempt = 0;
  while (!stopping_.load()) {
    std::size_t handled = 0;
    Status status = ok_status();
    for (std::size_t i = 0; i < partitions_.size(); ++i) {
      auto n = worker.poll(partitions_[i]);
      if (!n.ok()) {
        status = n.error();
        break;
      }
      handled += *n;
    }
    if (!status.ok()) {
      if (++attempt > options_.max_retries) {
        fail(make_error(status.error().code, "worker: " + status.error().message));
        return;
      }
      std::fprintf(stderr, "settled: worker: %s; retrying (attempt %d)\n", status.error().message.c_str(), attempt);
      std::this_thread::sleep_for(backoff(attempt));
      continue;
    }
    attempt = 0;
    {
      std::lock_guard lock(mu_);
      for (std::size_t i = 0; i < partitions_.size(); ++i) task_offsets_[i] = worker.next_offset(partitions_[i]);
      stats_.batches_closed = worker.stats().closed;
      stats_.tasks_failed = worker.stats().failed;
    }
    if (handled == 0) std::this_thread::sleep_for(options_.idle_sleep);
  }
}

}  // namespace settle::app
