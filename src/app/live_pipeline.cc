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

// A fixed set of partitions (--owned-partitions, or all of them): the
// operator, not a group, decides who owns what.
class StaticMember final : public bus::GroupMember {
 public:
  StaticMember(bus::Bus& bus, std::string group, std::string topic, std::vector<std::int32_t> partitions)
      : bus_(bus), group_(std::move(group)), topic_(std::move(topic)), partitions_(std::move(partitions)) {}
  Status poll(std::chrono::milliseconds) override { return ok_status(); }
  std::vector<std::int32_t> owned() const override { return partitions_; }
  Status commit(std::int32_t partition, std::int64_t next_offset) override {
    return bus_.commit(group_, topic_, partition, next_offset);
  }
  Status leave() override { return ok_status(); }

 private:
  bus::Bus& bus_;
  std::string group_, topic_;
  std::vector<std::int32_t> partitions_;
};

}  // namespace

LivePipeline::LivePipeline(bus::Bus& bus, ledger::Ledger& ledger, idempotency::Store& store,
                           std::int32_t partitions, LiveOptions options)
    : bus_(bus), ledger_(ledger), store_(store), options_(std::move(options)) {
  if (options_.partitions.empty()) {
    for (std::int32_t p = 0; p < partitions; ++p) all_partitions_.push_back(p);
  } else {
    all_partitions_ = options_.partitions;
  }
}

LivePipeline::~LivePipeline() { (void)stop(); }

Status LivePipeline::start() {
  SETTLE_ASSIGN_OR_RETURN(std::int32_t count, bus_.partition_count(processor::kEventsTopic));
  for (std::int32_t p : all_partitions_) {
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
  std::map<std::int32_t, std::int64_t> processed, tasks;
  {
    std::lock_guard lock(mu_);
    processed = processed_offsets_;
    tasks = task_offsets_;
  }
  // A role that owns nothing yet (a group still assigning) is not idle.
  if ((options_.run_processor && processed.empty()) || (options_.run_worker && tasks.empty())) return false;
  for (const auto& [p, next] : processed) {
    SETTLE_ASSIGN_OR_RETURN(std::int64_t end, bus_.end_offset(processor::kEventsTopic, p));
    if (next < end) return false;
  }
  for (const auto& [p, next] : tasks) {
    SETTLE_ASSIGN_OR_RETURN(std::int64_t end, bus_.end_offset(processor::kTasksTopic, p));
    if (next < end) return false;
  }
  return true;
}

Result<std::unique_ptr<bus::GroupMember>> LivePipeline::membership(const std::string& group,
                                                                    const std::string& topic, bool& changed) {
  changed = true;
  if (!options_.join) {
    return std::unique_ptr<bus::GroupMember>(std::make_unique<StaticMember>(bus_, group, topic, all_partitions_));
  }
  bus::GroupCallbacks callbacks;
  callbacks.assigned = [&changed](std::span<const std::int32_t>) { changed = true; };
  // Every chunk is committed with its checkpoint before poll() returns (the
  // live processor is not pipelined) and the worker commits per poll, so
  // nothing is in flight when a partition goes.
  callbacks.revoked = [&changed](std::span<const std::int32_t>, bool) { changed = true; };
  return options_.join(group + ".members", topic, std::move(callbacks));
}

// The processor keeps state ahead of the ledger between a chunk's read and
// its commit; after any failure the only safe way on is a fresh processor
// recovered from the ledger's checkpoints, so each retry builds one. So does
// every change of the partitions it owns.
void LivePipeline::run_processor() {
  pthread_setname_np(pthread_self(), "processor");
  int attempt = 0;
  while (!stopping_.load()) {
    bool changed = true;
    Status status = ok_status();
    std::unique_ptr<bus::GroupMember> member;
    if (auto m = membership("processor", processor::kEventsTopic, changed); m.ok()) {
      member = std::move(*m);
    } else {
      status = m.error();
    }
    std::unique_ptr<processor::MerchantDirectory> directory;
    std::unique_ptr<processor::StreamProcessor> proc;
    std::vector<std::int32_t> owned;
    auto last_advance = std::chrono::steady_clock::now() - options_.advance_every;
    while (status.ok() && !stopping_.load()) {
      status = member->poll(std::chrono::milliseconds(0));
      if (!status.ok()) break;
      if (changed) {
        changed = false;
        if (proc) status = proc->flush();
        proc.reset();
        owned = member->owned();
        directory = std::make_unique<processor::MerchantDirectory>(bus_);
        proc = std::make_unique<processor::StreamProcessor>(bus_, ledger_, *directory, options_.processor);
        if (status.ok()) status = directory->refresh();
        for (std::int32_t p : owned) {
          if (!status.ok()) break;
          status = proc->recover(p);
        }
        std::lock_guard lock(mu_);
        processed_offsets_.clear();
        for (std::int32_t p : owned) processed_offsets_[p] = 0;
      }
      if (!status.ok()) break;
      std::size_t progressed = 0;
      for (std::int32_t p : owned) {
        auto n = proc->poll(p);
        if (!n.ok()) {
          status = n.error();
          break;
        }
        progressed += *n;
      }
      if (!status.ok()) break;
      const auto now = std::chrono::steady_clock::now();
      if (progressed == 0 || now - last_advance >= options_.advance_every) {
        status = proc->flush();
        for (std::size_t i = 0; i < owned.size() && status.ok(); ++i) status = proc->advance(owned[i], wall_now());
        last_advance = now;
      }
      if (!status.ok()) break;
      attempt = 0;
      {
        std::lock_guard lock(mu_);
        for (std::int32_t p : owned) processed_offsets_[p] = proc->next_offset(p);
        const auto& s = proc->stats();
        stats_.events = s.events;
        stats_.posted = s.posted;
        stats_.duplicates = s.duplicates;
        stats_.conflicts = s.conflicts;
        stats_.rejected = s.rejected;
        processor_dead_letters_ = s.dead_letters;
        stats_.dead_letters = processor_dead_letters_ + worker_dead_letters_;
        stats_.late = s.late;
        stats_.tasks_emitted = s.tasks;
      }
      if (progressed == 0) std::this_thread::sleep_for(options_.idle_sleep);
    }
    if (status.ok() && proc) status = proc->flush();
    if (member) (void)member->leave();
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
  int attempt = 0;
  while (!stopping_.load()) {
    bool changed = true;
    Status status = ok_status();
    std::unique_ptr<bus::GroupMember> member;
    if (auto m = membership(options_.worker.group, processor::kTasksTopic, changed); m.ok()) {
      member = std::move(*m);
    } else {
      status = m.error();
    }
    // Rebuilt when ownership changes: its cached offsets of a partition
    // another worker advanced meanwhile would be stale.
    std::unique_ptr<settlement::SettlementWorker> worker;
    std::vector<std::int32_t> owned;
    while (status.ok() && !stopping_.load()) {
      status = member->poll(std::chrono::milliseconds(0));
      if (!status.ok()) break;
      if (changed) {
        changed = false;
        owned = member->owned();
        worker = std::make_unique<settlement::SettlementWorker>(bus_, ledger_, store_, options_.worker);
        std::lock_guard lock(mu_);
        task_offsets_.clear();
        for (std::int32_t p : owned) task_offsets_[p] = 0;
      }
      std::size_t handled = 0;
      for (std::int32_t p : owned) {
        auto n = worker->poll(p);
        if (!n.ok()) {
          status = n.error();
          break;
        }
        handled += *n;
      }
      if (!status.ok()) break;
      attempt = 0;
      {
        std::lock_guard lock(mu_);
        for (std::int32_t p : owned) task_offsets_[p] = worker->next_offset(p);
        stats_.batches_closed = worker->stats().closed;
        stats_.tasks_failed = worker->stats().failed;
        worker_dead_letters_ = worker->stats().dead_letters;
        stats_.dead_letters = processor_dead_letters_ + worker_dead_letters_;
      }
      if (handled == 0) std::this_thread::sleep_for(options_.idle_sleep);
    }
    if (member) (void)member->leave();
    if (status.ok()) return;
    if (++attempt > options_.max_retries) {
      fail(make_error(status.error().code, "worker: " + status.error().message));
      return;
    }
    std::fprintf(stderr, "settled: worker: %s; retrying (attempt %d)\n", status.error().message.c_str(), attempt);
    std::this_thread::sleep_for(backoff(attempt));
  }
}

}  // namespace settle::app
