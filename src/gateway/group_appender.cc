#include "gateway/group_appender.h"

#include <pthread.h>
#include <sched.h>

#include <future>
#include <iterator>

namespace settle::gateway {

GroupAppender::GroupAppender(bus::Bus& bus, std::string topic, std::size_t records_max, AfterGroup after_group,
                             std::chrono::milliseconds linger)
    : bus_(bus),
      topic_(std::move(topic)),
      records_max_(records_max),
      after_group_(std::move(after_group)),
      linger_(linger),
      committer_([this] { run(); }) {}

GroupAppender::~GroupAppender() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  committer_.join();
}

void GroupAppender::append_async(std::vector<bus::Record> records, Done done) {
  if (records.empty()) {
    done(ok_status());
    return;
  }
  bool first = false;
  {
    std::lock_guard lock(mu_);
    first = queue_.empty();
    queue_.push_back(Pending{std::move(records), std::move(done)});
  }
  // The committer waits for work only while the queue is empty; with a
  // queue it is appending or lingering, and it takes the queue when that
  // ends. Waking it for every caller would cost a context switch each while
  // it lingers, for nothing.
  if (first) work_cv_.notify_one();
}

Status GroupAppender::append(std::vector<bus::Record>& records) {
  std::promise<Status> result;
  auto future = result.get_future();
  append_async(std::move(records), [&result](const Status& st) { result.set_value(st); });
  records.clear();
  return future.get();
}

void GroupAppender::drain() {
  std::unique_lock lock(mu_);
  ++draining_;
  work_cv_.notify_all();  // a lingering committer appends at once
  idle_cv_.wait(lock, [this] { return queue_.empty() && !busy_; });
  --draining_;
}

namespace {

// See the class comment ("a batch thread"). Best effort: where the policy
// does not exist or cannot be set, the committer runs as a normal thread.
void become_batch_thread() {
#ifdef SCHED_BATCH
  sched_param param{};
  param.sched_priority = 0;
  (void)pthread_setschedparam(pthread_self(), SCHED_BATCH, &param);
#endif
}

}  // namespace

void GroupAppender::run() {
  become_batch_thread();
  std::unique_lock lock(mu_);
  auto last_start = std::chrono::steady_clock::now() - linger_;
  for (;;) {
    work_cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, nothing left
    if (linger_.count() > 0) {
      work_cv_.wait_until(lock, last_start + linger_, [this] { return stop_ || draining_ > 0; });
      last_start = std::chrono::steady_clock::now();
    }
    // Take the queue (up to records_max_ records) as one group.
    std::vector<Pending> group;
    std::size_t n = 0;
    while (!queue_.empty()) {
      const std::size_t size = queue_.front().records.size();
      if (!group.empty() && n + size > records_max_) break;
      n += size;
      group.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    busy_ = true;
    lock.unlock();

    Status st = ok_status();
    if (group.size() == 1) {
      auto appended = bus_.append(topic_, group[0].records);
      if (!appended.ok()) st = appended.error();
    } else {
      std::vector<bus::Record> all;
      all.reserve(n);
      for (Pending& p : group) std::move(p.records.begin(), p.records.end(), std::back_inserter(all));
      auto appended = bus_.append(topic_, all);
      if (!appended.ok()) st = appended.error();
    }
    for (Pending& p : group) p.done(st);
    if (after_group_) after_group_(st);

    lock.lock();
    busy_ = false;
    if (queue_.empty()) idle_cv_.notify_all();
  }
}

}  // namespace settle::gateway
