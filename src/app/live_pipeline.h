// The pipeline running live: the stream processor and the settlement worker
// each on their own thread, over a Runtime's bus, ledger and store, until
// stop(). Batches close when the processor's watermark passes their end
// (ProcessorOptions::grace_ms, idle_ms), their tasks are settled by the
// worker as they arrive. This is what `settled all`, `settled processor` and
// `settled worker` run.
//
// A role that fails (the ledger refuses a chunk, the bus is unreachable for
// longer than its retries) stops its thread and reports the error through
// failure(); the process exits non-zero and a restart recovers from the
// ledger's checkpoints.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bus/bus.h"
#include "bus/group.h"
#include "common/result.h"
#include "idempotency/store.h"
#include "ledger/ledger.h"
#include "observability/metrics.h"
#include "processor/stream_processor.h"
#include "settlement/settlement_worker.h"

namespace settle::app {

// Joins a consumer group for membership only (bus/group.h).
using JoinGroup = std::function<Result<std::unique_ptr<bus::GroupMember>>(
    const std::string& group, const std::string& topic, bus::GroupCallbacks callbacks)>;

struct LiveOptions {
  bool run_processor = true;
  bool run_worker = true;
  // Partitions this process owns; empty: every partition of the topic, or
  // those the consumer group gives it when `join` is set.
  std::vector<std::int32_t> partitions;
  // Several processes share the partitions through consumer groups
  // ("processor.members" on events, "settlement-worker.members" on tasks):
  // on every change of ownership the role finishes what it has in flight for
  // the partitions it gives up and recovers those it gets from the ledger.
  JoinGroup join;
  // How long a role sleeps when it found nothing to do.
  std::chrono::milliseconds idle_sleep{5};
  // How often the processor advances watermarks when input keeps flowing.
  std::chrono::milliseconds advance_every{200};
  // A role whose bus or ledger call fails retries this many times (with
  // backoff up to 2 s) before it gives up and reports the failure.
  int max_retries = 30;
  processor::ProcessorOptions processor;
  settlement::WorkerOptions worker;
  // When set, the pipeline's counters, consumer lag, watermark lag and its
  // accept -> posted and batch-close latencies appear in its scrapes.
  observability::Metrics* metrics = nullptr;
};

// Counts since start(), across the rebuilds of the roles (retries, changes
// of ownership).
struct LiveStats {
  std::int64_t events = 0;          // read by the processor
  std::int64_t posted = 0;
  std::int64_t duplicates = 0;
  std::int64_t conflicts = 0;
  std::int64_t rejected = 0;
  std::int64_t dead_letters = 0;    // by the processor and the worker
  std::int64_t late = 0;
  std::int64_t tasks_emitted = 0;
  std::int64_t batches_closed = 0;  // by the worker
  std::int64_t tasks_failed = 0;
  std::map<std::string, std::int64_t> tasks_failed_by_reason;
};

class LivePipeline {
 public:
  LivePipeline(bus::Bus& bus, ledger::Ledger& ledger, idempotency::Store& store, std::int32_t partitions,
               LiveOptions options);
  ~LivePipeline();
  LivePipeline(const LivePipeline&) = delete;
  LivePipeline& operator=(const LivePipeline&) = delete;

  // Recovers the processor's partitions from their checkpoints and starts
  // the threads.
  Status start();
  // Asks the threads to stop, waits for them (the processor flushes its
  // chunk in flight first) and returns the first failure, if any.
  Status stop();
  // The first failure of a role, once one happened.
  std::optional<Error> failure() const;
  // Waits until a role failed or `timeout` passed; true when one failed.
  bool wait_for_failure(std::chrono::milliseconds timeout);

  LiveStats stats() const;
  // True when every partition's events are processed and every task emitted
  // so far has been handled (for tests and graceful drains).
  Result<bool> idle();

 private:
  void run_processor();
  void run_worker();
  void fail(const Error& error);

  bus::Bus& bus_;
  ledger::Ledger& ledger_;
  idempotency::Store& store_;
  std::vector<std::int32_t> all_partitions_;
  LiveOptions options_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  std::condition_variable failed_cv_;
  std::optional<Error> failure_;
  LiveStats stats_;
  std::int64_t processor_dead_letters_ = 0, worker_dead_letters_ = 0;  // under mu_, since start()
  std::int64_t processor_dead_letters_base_ = 0, worker_dead_letters_base_ = 0;  // earlier instances
  // What the roles' earlier instances counted (stats_ = base + current).
  LiveStats processor_base_, worker_base_;
  // Per owned partition, under mu_: the latest event time (ns), for the
  // watermark lag.
  std::map<std::int32_t, std::int64_t> max_event_ns_;
  std::shared_ptr<void> collector_;  // keeps the metrics collector registered
  void collect(std::vector<prometheus::MetricFamily>& out);
  // Per owned partition, under mu_.
  std::map<std::int32_t, std::int64_t> processed_offsets_;
  std::map<std::int32_t, std::int64_t> task_offsets_;
  // Joins (when options_.join) or hands out the static partitions; reports
  // on `changed` whenever ownership moved.
  Result<std::unique_ptr<bus::GroupMember>> membership(const std::string& group, const std::string& topic,
                                                       bool& changed);
  std::thread processor_thread_;
  std::thread worker_thread_;
};

}  // namespace settle::app
