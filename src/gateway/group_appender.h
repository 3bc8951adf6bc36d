// Group commit for the gateway's appends to one topic: concurrent callers'
// records go to the bus in one append (one write and one fsync on the
// embedded log, one produce batch on Kafka) instead of one append each.
// A committer thread owns the bus appends: it takes everything queued so far
// (up to records_max), appends it, hands each caller the result, and takes
// the next group, which queued while that append ran. Callers do not wait
// for it: append_async() queues and returns, and the caller's completion
// runs on the committer thread once the records are durable (or the append
// failed), so the guarantee of Bus::append holds unchanged while handler
// threads go on with other requests. append() is the blocking form.
//
// Thread safety: append() and append_async() may be called from any number
// of threads. Completions run on the committer thread, one at a time, and
// must be short (post the rest elsewhere); they must not call append().
// The `after_group` hook, when given, runs there too, after the completions
// of each group (appended or not): what the completions noted about the
// group can be handled there once per group.
//
// The committer is a batch thread (Linux's SCHED_BATCH: the same share of
// the CPU as any other thread, but waking it does not preempt the running
// one). On an idle core it starts a group at once. When every core is busy,
// as the I/O threads are under load, the caller that queued the first
// record goes on until the next scheduling point, and the records queued
// meanwhile join the same group: fewer, larger appends (fewer fsyncs) and
// fewer context switches exactly when the CPU is short, with no timer and
// no wait on an idle machine.
//
// With a `linger`, the committer starts an append at most once per linger:
// what arrives meanwhile waits and joins the next group. Fewer, larger
// appends (fewer fsyncs) for records whose callers can wait that long; a stop
// or drain() does not wait for it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bus/bus.h"
#include "common/result.h"

namespace settle::gateway {

class GroupAppender {
 public:
  using Done = std::function<void(const Status&)>;
  using AfterGroup = std::function<void(const Status&)>;

  // One bus append carries at most `records_max` records (more when a single
  // caller brings more).
  GroupAppender(bus::Bus& bus, std::string topic, std::size_t records_max = 16384, AfterGroup after_group = {},
                std::chrono::milliseconds linger = std::chrono::milliseconds(0));
  // Appends what is queued (completions run), then stops the committer.
  ~GroupAppender();
  GroupAppender(const GroupAppender&) = delete;
  GroupAppender& operator=(const GroupAppender&) = delete;

  // Queues `records`; `done` runs on the committer thread once they are
  // durable, with the result of the append that carried them.
  void append_async(std::vector<bus::Record> records, Done done);
  // Appends `records` (moved from); returns once they are durable.
  Status append(std::vector<bus::Record>& records);
  // Returns once everything queued before the call has been appended and its
  // completion has run.
  void drain();

 private:
  struct Pending {
    std::vector<bus::Record> records;
    Done done;
  };
  void run();

  bus::Bus& bus_;
  const std::string topic_;
  const std::size_t records_max_;
  const AfterGroup after_group_;
  const std::chrono::milliseconds linger_;
  std::mutex mu_;
  std::condition_variable work_cv_;  // the committer: something queued, or stop
  std::condition_variable idle_cv_;  // drain(): the queue ran empty
  std::deque<Pending> queue_;
  bool busy_ = false;
  bool stop_ = false;
  int draining_ = 0;  // drain() calls waiting: the linger is skipped
  std::thread committer_;
};

}  // namespace settle::gateway
