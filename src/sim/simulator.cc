#include "sim/simulator.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <memory>
#include <optional>
#include <vector>

#include "bus/file_log_bus.h"
#include "idempotency/clock.h"
#include "idempotency/memory_store.h"
#include "ledger/sqlite_ledger.h"
#include "model/event_json.h"
#include "processor/merchant_directory.h"
#include "processor/stream_processor.h"
#include "processor/topics.h"
#include "rules/rules.h"
#include "settlement/settlement_worker.h"
#include "sim/faulty_bus.h"
#include "sim/faulty_ledger.h"
#include "sim/faulty_store.h"
#include "sim/workload.h"
#include "verify/collect.h"

namespace settle::sim {
namespace {

namespace fs = std::filesystem;
using processor::kEventsTopic;
using processor::kTasksTopic;

constexpr std::chrono::milliseconds kLeaseTtl{1000};
// Producer timestamps of the simulated clock start after the workload's days.
const std::int64_t kEpochMs = static_cast<std::int64_t>(date_from_civil(2026, 4, 2).days) * 86'400'000;

class Sim {
 public:
  explicit Sim(const SimOptions& o)
      : o_(o),
        faults_(o.seed, o.faults, o.fault_options),
        fbus_(nullptr, faults_),
        fled_(nullptr, faults_),
        fstore_(nullptr, faults_, clock_) {
    fled_.before_close = [this] { stale_worker(); };
  }

  ~Sim() {
    drop_roles();
    close_backends();
    if (remove_dir_) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
  }

  SimResult run();

 private:
  std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock_.now().time_since_epoch()).count();
  }
  Status open_backends();
  void close_backends() {
    fbus_.reset(nullptr);
    fled_.reset(nullptr);
    fstore_.reset(nullptr);
    store_.reset();
    ledger_.reset();
    bus_.reset();
  }
  void drop_roles() {
    for (auto& w : workers_) collect_failures(w), w.reset();
    proc_.reset();
    directory_.reset();
  }
  void collect_failures(const std::unique_ptr<settlement::SettlementWorker>& w) {
    if (!w) return;
    for (const auto& f : w->failures()) worker_failures_.push_back(f);
  }

  void send();
  void process();
  void close_day();
  void work();
  void stale_worker();
  bool start_processor();
  void crash_processor() {
    proc_.reset();
    ++result_.processor_crashes;
  }
  void crash_worker(int i) {
    collect_failures(workers_[i]);
    workers_[i].reset();
    ++result_.worker_crashes;
  }
  Status crash_process();
  void tear_tail();
  settlement::SettlementWorker& worker(int i);
  Result<bool> done();
  std::string progress();  // what is left to do, for a run that does not finish

  const SimOptions& o_;
  Faults faults_;
  idempotency::ManualClock clock_;
  FaultyBus fbus_;
  FaultyLedger fled_;
  FaultyStore fstore_;
  fs::path dir_;
  bool remove_dir_ = false;
  std::int32_t partitions_ = 1;
  Workload workload_;

  std::unique_ptr<bus::FileLogBus> bus_;
  std::unique_ptr<ledger::SqliteLedger> ledger_;
  std::unique_ptr<idempotency::MemoryStore> store_;
  std::unique_ptr<processor::MerchantDirectory> directory_;
  std::unique_ptr<processor::StreamProcessor> proc_;
  std::array<std::unique_ptr<settlement::SettlementWorker>, 2> workers_;
  int active_worker_ = -1;
  std::int32_t active_partition_ = 0;
  bool nested_ = false;

  std::vector<std::size_t> unacked_;  // events (indices) the generator has still to send
  std::vector<bool> written_;         // on the bus at least once
  std::size_t sealed_ = 0;            // days of workload_.dates closed
  std::vector<std::string> worker_failures_;
  SimResult result_;
};

Status Sim::open_backends() {
  bus::FileLogOptions bo;
  bo.dir = dir_ / "bus";
  bo.fsync = bus::FsyncPolicy::kNone;
  bo.segment_bytes = 16 << 10;  // several segments per partition, so recovery crosses them
  SETTLE_ASSIGN_OR_RETURN(bus_, bus::FileLogBus::open(bo));
  SETTLE_TRY(bus_->create_topic({processor::kMerchantsTopic, 1, true}));
  for (const char* t : {kEventsTopic, kTasksTopic, processor::kStatusTopic, processor::kDeadLettersTopic}) {
    SETTLE_TRY(bus_->create_topic({t, partitions_, false}));
  }
  ledger::SqliteLedgerOptions lo;
  lo.path = dir_ / "ledger.db";
  lo.synchronous = ledger::Synchronous::kNormal;
  lo.cache_kib = 2048;
  SETTLE_ASSIGN_OR_RETURN(ledger_, ledger::SqliteLedger::open(lo));
  idempotency::MemoryStoreOptions so;
  so.shards = 4;
  so.clock = &clock_;
  // Above every token an earlier incarnation granted (MemoryStoreOptions::first_token).
  so.first_token = 1 + static_cast<std::uint64_t>(
                           std::chrono::duration_cast<std::chrono::microseconds>(clock_.now().time_since_epoch())
                               .count());
  store_ = std::make_unique<idempotency::MemoryStore>(so);
  fbus_.reset(bus_.get());
  fled_.reset(ledger_.get());
  fstore_.reset(store_.get());
  return ok_status();
}

// The whole process dies: every role's memory and the store's leases are
// gone; the bus's and the ledger's files stay.
Status Sim::crash_process() {
  ++result_.process_crashes;
  drop_roles();
  close_backends();
  if (faults_.inject(0.5, "torn write at a log's tail")) tear_tail();
  return open_backends();
}

// Garbage after the last record of an events partition: an append that was
// being written when the power went, never acknowledged. The bus must cut it
// off when it opens; the generator still holds what it was sending.
void Sim::tear_tail() {
  const auto p = static_cast<std::int32_t>(faults_.below(static_cast<std::uint64_t>(partitions_)));
  const fs::path pdir = dir_ / "bus" / kEventsTopic / std::to_string(p);
  std::error_code ec;
  std::optional<fs::path> last;
  for (const auto& entry : fs::directory_iterator(pdir, ec)) {
    if (entry.path().extension() == ".log" && (!last || entry.path() > *last)) last = entry.path();
  }
  if (!last) return;
  std::ofstream out(*last, std::ios::binary | std::ios::app);
  const std::size_t n = 1 + faults_.below(40);
  for (std::size_t i = 0; i < n; ++i) out.put(static_cast<char>(faults_.below(256)));
  ++result_.torn_tails;
}

settlement::SettlementWorker& Sim::worker(int i) {
  if (!workers_[i]) {
    settlement::WorkerOptions wo;
    wo.lease_ttl = kLeaseTtl;
    wo.max_tasks_per_poll = 1 + faults_.below(3);
    workers_[i] = std::make_unique<settlement::SettlementWorker>(fbus_, fled_, fstore_, wo);
  }
  return *workers_[i];
}

bool Sim::start_processor() {
  directory_ = std::make_unique<processor::MerchantDirectory>(fbus_);
  processor::ProcessorOptions po;
  po.chunk_records = 1 + faults_.below(6);
  proc_ = std::make_unique<processor::StreamProcessor>(fbus_, fled_, *directory_, po);
  Status s = directory_->refresh();
  for (std::int32_t p = 0; p < partitions_ && s.ok(); ++p) s = proc_->recover(p);
  if (!s.ok()) {
    crash_processor();
    return false;
  }
  return true;
}

void Sim::send() {
  const std::size_t k = 1 + faults_.below(std::min<std::size_t>(4, unacked_.size()));
  std::vector<std::size_t> batch;
  for (std::size_t i = 0; i < k; ++i) {
    const std::size_t at = faults_.below(unacked_.size());
    batch.push_back(unacked_[at]);
    unacked_[at] = unacked_.back();
    unacked_.pop_back();
  }
  std::vector<bus::Record> records;
  for (std::size_t idx : batch) {
    const model::Event& e = workload_.events[idx];
    records.push_back(bus::Record{e.merchant_id.str(), model::canonical_event_json(e),
                                  {bus::Header{processor::kEventIdHeader, e.event_id.str()}}, kEpochMs + now_ms()});
  }
  ++result_.sends;
  auto r = fbus_.append(kEventsTopic, records);
  if (r.ok() || fbus_.last_append_written()) {
    for (std::size_t idx : batch) written_[idx] = true;
  }
  for (std::size_t idx : batch) {
    // Not acknowledged: sent again later. Acknowledged: now and then sent
    // again anyway, as a client that lost the answer would.
    if (!r.ok() || faults_.coin(0.1)) unacked_.push_back(idx);
  }
}

void Sim::process() {
  if (!proc_) {
    start_processor();
    return;
  }
  const auto p = static_cast<std::int32_t>(faults_.below(static_cast<std::uint64_t>(partitions_)));
  if (!proc_->poll(p).ok()) crash_processor();
}

// Closes the next day once every event of it and before is on the bus and
// the processor has read everything: nothing after is late (the offline rule).
void Sim::close_day() {
  if (!proc_ || sealed_ >= workload_.dates.size()) return;
  const Date day = workload_.dates[sealed_];
  for (std::size_t i = 0; i < workload_.events.size(); ++i) {
    if (workload_.batch_dates[i] != Date{} && workload_.batch_dates[i] <= day && !written_[i]) return;
  }
  for (std::int32_t p = 0; p < partitions_; ++p) {
    auto end = bus_->end_offset(kEventsTopic, p);
    if (!end.ok() || proc_->next_offset(p) != *end) return;
  }
  for (std::int32_t p = 0; p < partitions_; ++p) {
    if (!proc_->close_through(p, day).ok()) {
      crash_processor();
      return;
    }
  }
  ++sealed_;
}

void Sim::work() {
  const int i = static_cast<int>(faults_.below(2));
  settlement::SettlementWorker& w = worker(i);
  active_worker_ = i;
  active_partition_ = static_cast<std::int32_t>(faults_.below(static_cast<std::uint64_t>(partitions_)));
  const bool ok = w.poll(active_partition_).ok();
  active_worker_ = -1;
  if (!ok) crash_worker(i);
}

// Called before a worker's close reaches the ledger: the closer sleeps past
// its lease, the other worker takes the batch (a higher fencing token) and
// closes it; then the sleeper wakes up and tries its close with its old token.
void Sim::stale_worker() {
  if (nested_ || active_worker_ < 0) return;
  if (!faults_.inject(faults_.options().stale_worker, "stale worker")) return;
  nested_ = true;
  ++result_.stale_workers;
  clock_.advance(kLeaseTtl + std::chrono::milliseconds(1));
  const int other = 1 - active_worker_;
  for (int i = 0; i < 3; ++i) {
    if (!worker(other).poll(active_partition_).ok()) {
      crash_worker(other);
      break;
    }
  }
  nested_ = false;
}

Result<bool> Sim::done() {
  if (!unacked_.empty() || !proc_ || sealed_ < workload_.dates.size()) return false;
  for (std::int32_t p = 0; p < partitions_; ++p) {
    SETTLE_ASSIGN_OR_RETURN(const std::int64_t end, bus_->end_offset(kEventsTopic, p));
    if (proc_->next_offset(p) != end) return false;
    SETTLE_ASSIGN_OR_RETURN(const std::int64_t tasks_end, bus_->end_offset(kTasksTopic, p));
    SETTLE_ASSIGN_OR_RETURN(const std::int64_t committed,
                            bus_->committed(settlement::WorkerOptions{}.group, kTasksTopic, p));
    if (committed != tasks_end) return false;
  }
  return true;
}

std::string Sim::progress() {
  std::string out = fmt::format("{} events to send, {} of {} days closed, processor {}", unacked_.size(), sealed_,
                                workload_.dates.size(), proc_ ? "up" : "down");
  for (std::int32_t p = 0; p < partitions_; ++p) {
    auto end = bus_->end_offset(kEventsTopic, p);
    auto tasks_end = bus_->end_offset(kTasksTopic, p);
    auto committed = bus_->committed(settlement::WorkerOptions{}.group, kTasksTopic, p);
    out += fmt::format("; partition {}: events {}/{}, tasks {}/{}", p, proc_ ? proc_->next_offset(p) : -1,
                       end.ok() ? *end : -1, committed.ok() ? *committed : -1, tasks_end.ok() ? *tasks_end : -1);
  }
  if (!worker_failures_.empty()) out += "; first task failure: " + worker_failures_.front();
  return out;
}

SimResult Sim::run() {
  auto fail = [&](std::string why) {
    result_.ok = false;
    result_.failure = std::move(why);
    return result_;
  };
  dir_ = o_.dir;
  if (dir_.empty()) {
    // tmpfs when there is one: the bus and the ledger fsync, which a run needs
    // to be fast, not durable.
    std::error_code shm_ec;
    const fs::path base = fs::is_directory("/dev/shm", shm_ec) && ::access("/dev/shm", W_OK) == 0
                              ? fs::path("/dev/shm")
                              : fs::temp_directory_path();
    dir_ = base / fmt::format("settle-sim-{}-{}", ::getpid(), o_.seed);
    remove_dir_ = true;
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
  fs::create_directories(dir_, ec);
  if (ec) return fail(fmt::format("cannot create {}: {}", dir_.string(), ec.message()));

  workload_ = make_workload(faults_, o_.events);
  result_.expected = reference_report(workload_);
  result_.events = static_cast<std::int64_t>(workload_.events.size());
  partitions_ = 1 + static_cast<std::int32_t>(faults_.below(4));
  result_.partitions = partitions_;
  written_.assign(workload_.events.size(), false);
  for (std::size_t i = 0; i < workload_.events.size(); ++i) unacked_.push_back(i);

  if (Status s = open_backends(); !s.ok()) return fail("open: " + s.error().to_string());
  if (Status s = processor::MerchantDirectory::publish(*bus_, workload_.merchants); !s.ok()) {
    return fail("publish merchants: " + s.error().to_string());
  }

  const auto started = std::chrono::steady_clock::now();
  for (;; ++result_.steps) {
    if (result_.steps >= o_.max_steps) {
      return fail(fmt::format("not finished after {} steps: {}", result_.steps, progress()));
    }
    if ((result_.steps & 63) == 0 && std::chrono::steady_clock::now() - started > o_.max_wall) {
      return fail(fmt::format("not finished after {} s ({} steps): {}",
                              std::chrono::duration_cast<std::chrono::seconds>(o_.max_wall).count(), result_.steps,
                              progress()));
    }
    clock_.advance(std::chrono::milliseconds(1 + faults_.below(50)));
    const std::uint64_t r = faults_.below(100);
    if (r < 30) {
      if (!unacked_.empty()) send();
    } else if (r < 60) {
      process();
    } else if (r < 68) {
      close_day();
    } else if (r < 94) {
      work();
    } else if (r < 97) {
      if (proc_ && faults_.inject(0.5, "processor crash")) crash_processor();
    } else if (r < 99) {
      const int i = static_cast<int>(faults_.below(2));
      if (workers_[i] && faults_.inject(0.5, "worker crash")) crash_worker(i);
    } else if (faults_.inject(0.3, "process crash")) {
      if (Status s = crash_process(); !s.ok()) return fail("reopen after a crash: " + s.error().to_string());
    }
    auto finished = done();
    if (!finished.ok()) return fail("checking progress: " + finished.error().to_string());
    if (*finished) break;
  }

  auto closed = ledger_->closed_batches(ledger::BatchQuery{});
  if (!closed.ok()) return fail("report: " + closed.error().to_string());
  result_.report = rules::report_header() + "\n";
  for (const auto& b : *closed) result_.report += rules::report_row(b) + "\n";
  auto input = verify::collect(*bus_, *ledger_);
  if (!input.ok()) return fail("verify: " + input.error().to_string());
  result_.findings = verify::check(*input);
  result_.faults = faults_.counts();
  for (auto& w : workers_) collect_failures(w), w.reset();

  if (result_.report != result_.expected) return fail("the report differs from the rules' report of the workload");
  if (!result_.findings.clean()) {
    return fail("verify: " + verify::format_break(result_.findings.breaks.front()));
  }
  if (!worker_failures_.empty()) return fail("a settlement task failed: " + worker_failures_.front());
  result_.ok = true;
  return result_;
}

}  // namespace

SimResult simulate(const SimOptions& options) { return Sim(options).run(); }

std::string replay_command(const SimOptions& options) {
  return fmt::format("settled simulate --seed {} --events {}{}", options.seed, options.events,
                     options.faults ? "" : " --no-faults");
}

}  // namespace settle::sim
