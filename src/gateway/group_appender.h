// Group commit for the gateway's appends to one topic: concurrent callers'
// records go to the bus in one append (one write and one fsync on the
// embedded log, one produce batch on Kafka) instead of one append each.
// The first caller to find no append running appends everything queued so
// far and wakes the others; callers arriving meanwhile queue for the next
// append. Each caller returns only once its records are durable, with the
// result of the append that carried them, so the guarantee of Bus::append
// holds unchanged.
//
// Thread safety: append() may be called from any number of threads.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <string>
#include <vector>

#include "bus/bus.h"
#include "common/result.h"

namespace settle::gateway {

class GroupAppender {
 public:
  // One bus append carries at most `records_max` records (more when a single
  // caller brings more).
  GroupAppender(bus::Bus& bus, std::string topic, std::size_t records_max = 16384)
      : bus_(bus), topic_(std::move(topic)), records_max_(records_max) {}

  // Appends `records` (moved from); returns once they are durable.
  Status append(std::vector<bus::Record>& records);

 private:
  struct Waiter {
    std::vector<bus::Record>* records;
    Status result = ok_status();
    bool done = false;
  };

  bus::Bus& bus_;
  const std::string topic_;
  const std::size_t records_max_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Waiter*> queue_;
  bool appending_ = false;
};

}  // namespace settle::gateway
