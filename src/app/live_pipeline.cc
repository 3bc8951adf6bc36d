#include "app/live_pipeline.h"

#include <fmt/format.h>
#include <pthread.h>

#include <algorithm>
#include <memory>

#include "observability/log.h"
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
  if (options_.metrics != nullptr) {
    observability::Metrics& m = *options_.metrics;
    options_.processor.observe_posted = [&m](std::int64_t ms) {
      m.accept_to_posted.Observe(static_cast<double>(std::max<std::int64_t>(ms, 0)) / 1000.0);
    };
    options_.worker.observe_closed = [&m](std::int64_t ms) {
      m.batch_close.Observe(static_cast<double>(std::max<std::int64_t>(ms, 0)) / 1000.0);
    };
    collector_ = m.add_collector([this](std::vector<prometheus::MetricFamily>& out) { collect(out); });
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

void LivePipeline::collect(std::vector<prometheus::MetricFamily>& out) {
  using observability::FamilyBuilder;
  using prometheus::MetricType;
  LiveStats s;
  std::map<std::int32_t, std::int64_t> processed, tasks, event_ns;
  {
    std::lock_guard lock(mu_);
    s = stats_;
    processed = processed_offsets_;
    tasks = task_offsets_;
    event_ns = max_event_ns_;
  }
  if (options_.run_processor) {
    out.push_back(FamilyBuilder("settle_processor_records_total",
                                "Event records the processor read, by what became of them.", MetricType::Counter)
                      .add({{"result", "posted"}}, static_cast<double>(s.posted))
                      .add({{"result", "duplicate"}}, static_cast<double>(s.duplicates))
                      .add({{"result", "conflict"}}, static_cast<double>(s.conflicts))
                      .add({{"result", "rejected"}}, static_cast<double>(s.rejected))
                      .build());
    out.push_back(FamilyBuilder("settle_late_events_total",
                                "Posted events whose batch had closed; they settle in a later batch.",
                                MetricType::Counter)
                      .add({}, static_cast<double>(s.late))
                      .build());
    out.push_back(FamilyBuilder("settle_settlement_tasks_emitted_total",
                                "Settlement tasks the processor emitted (one per batch past cut-off plus grace).",
                                MetricType::Counter)
                      .add({}, static_cast<double>(s.tasks_emitted))
                      .build());
    const double now_s = static_cast<double>(wall_now().ns) / 1e9;
    FamilyBuilder watermark("settle_event_time_watermark_lag_seconds",
                            "Wall clock minus the latest event time the processor saw, per partition.",
                            MetricType::Gauge);
    for (const auto& [p, ns] : event_ns) {
      watermark.add({{"partition", std::to_string(p)}}, now_s - static_cast<double>(ns) / 1e9);
    }
    out.push_back(watermark.build());
  }
  if (options_.run_worker) {
    out.push_back(FamilyBuilder("settle_batches_closed_total", "Batches this process's worker closed.",
                                MetricType::Counter)
                      .add({}, static_cast<double>(s.batches_closed))
                      .build());
    FamilyBuilder failed("settle_settlement_tasks_failed_total",
                         "Settlement tasks the worker could not carry out, by reason.", MetricType::Counter);
    for (const char* reason : {"unreadable_task", "later_batch_closed", "out_of_order", "control_totals_mismatch",
                               "rules_refused", "ledger_refused"}) {
      auto it = s.tasks_failed_by_reason.find(reason);
      failed.add({{"reason", reason}}, it == s.tasks_failed_by_reason.end() ? 0.0 : static_cast<double>(it->second));
    }
    out.push_back(failed.build());
  }
  out.push_back(FamilyBuilder("settle_dead_letters_total",
                              "Records sent to the dead-letters topic (unreadable or unprocessable), by this process.",
                              MetricType::Counter)
                    .add({}, static_cast<double>(s.dead_letters))
                    .build());
  // Lag: the log's end minus this process's next offset, per owned partition.
  FamilyBuilder lag("settle_consumer_lag_records",
                    "Records appended but not yet consumed, per consumer group, topic and owned partition.",
                    MetricType::Gauge);
  auto add_lag = [&](const std::string& group, std::string_view topic, const std::map<std::int32_t, std::int64_t>& next) {
    for (const auto& [p, offset] : next) {
      auto end = bus_.end_offset(topic, p);
      if (!end.ok()) continue;  // the bus is down: no figure rather than a wrong one
      lag.add({{"group", group}, {"topic", std::string(topic)}, {"partition", std::to_string(p)}},
              static_cast<double>(std::max<std::int64_t>(*end - offset, 0)));
    }
  };
  add_lag(options_.processor.consumer, processor::kEventsTopic, processed);
  add_lag(options_.worker.group, processor::kTasksTopic, tasks);
  out.push_back(lag.build());
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
        max_event_ns_.clear();
        for (std::int32_t p : owned) processed_offsets_[p] = 0;
        processor_base_ = stats_;
        processor_dead_letters_base_ = processor_dead_letters_;
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
        for (std::int32_t p : owned) {
          processed_offsets_[p] = proc->next_offset(p);
          if (auto ns = proc->max_event_ns(p)) max_event_ns_[p] = *ns;
        }
        const auto& s = proc->stats();
        const LiveStats& b = processor_base_;
        stats_.events = b.events + s.events;
        stats_.posted = b.posted + s.posted;
        stats_.duplicates = b.duplicates + s.duplicates;
        stats_.conflicts = b.conflicts + s.conflicts;
        stats_.rejected = b.rejected + s.rejected;
        processor_dead_letters_ = processor_dead_letters_base_ + s.dead_letters;
        stats_.dead_letters = processor_dead_letters_ + worker_dead_letters_;
        stats_.late = b.late + s.late;
        stats_.tasks_emitted = b.tasks_emitted + s.tasks;
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
    observability::Logger("processor").warn("{}; recovering (attempt {})", status.error().message, attempt);
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
        worker_base_ = stats_;
        worker_dead_letters_base_ = worker_dead_letters_;
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
        const auto& s = worker->stats();
        stats_.batches_closed = worker_base_.batches_closed + s.closed;
        stats_.tasks_failed = worker_base_.tasks_failed + s.failed;
        stats_.tasks_failed_by_reason = worker_base_.tasks_failed_by_reason;
        for (const auto& [reason, n] : s.failed_by_reason) stats_.tasks_failed_by_reason[reason] += n;
        worker_dead_letters_ = worker_dead_letters_base_ + s.dead_letters;
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
    observability::Logger("worker").warn("{}; retrying (attempt {})", status.error().message, attempt);
    std::this_thread::sleep_for(backoff(attempt));
  }
}

}  // namespace settle::app
