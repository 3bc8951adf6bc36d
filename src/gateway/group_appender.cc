#include "gateway/group_appender.h"

#include <iterator>

namespace settle::gateway {

Status GroupAppender::append(std::vector<bus::Record>& records) {
  if (records.empty()) return ok_status();
  Waiter self{&records};
  std::unique_lock lock(mu_);
  queue_.push_back(&self);
  while (!self.done) {
    if (appending_) {
      cv_.wait(lock);
      continue;
    }
    // Lead: take the queue (up to records_max_), append it, hand out the result.
    appending_ = true;
    std::vector<Waiter*> batch;
    std::size_t n = 0;
    std::size_t taken = 0;
    for (; taken < queue_.size(); ++taken) {
      const std::size_t size = queue_[taken]->records->size();
      if (taken > 0 && n + size > records_max_) break;
      n += size;
    }
    batch.assign(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(taken));
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(taken));
    lock.unlock();

    Status st = ok_status();
    if (batch.size() == 1) {
      auto appended = bus_.append(topic_, *batch[0]->records);
      if (!appended.ok()) st = appended.error();
    } else {
      std::vector<bus::Record> all;
      all.reserve(n);
      for (Waiter* w : batch) std::move(w->records->begin(), w->records->end(), std::back_inserter(all));
      auto appended = bus_.append(topic_, all);
      if (!appended.ok()) st = appended.error();
    }

    lock.lock();
    for (Waiter* w : batch) {
      w->result = st;
      w->done = true;
    }
    appending_ = false;
    cv_.notify_all();
  }
  return self.result;
}

}  // namespace settle::gateway
