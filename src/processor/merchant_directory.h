// The merchants' settlement configuration, read from the compacted
// `merchants` topic (latest value per merchant id). Not thread safe: each
// consumer keeps its own.
#pragma once

#include <chrono>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "bus/bus.h"
#include "common/result.h"
#include "model/merchant.h"

namespace settle::processor {

class MerchantDirectory {
 public:
  explicit MerchantDirectory(bus::Bus& bus) : bus_(bus) {}

  // Reloads every merchant from the topic.
  Status refresh();
  // The merchant's configuration, or nullptr when unknown. The first miss
  // after input_read() (and otherwise a miss at most once per
  // kMissRefreshInterval) looks at the topic again, reloading it only if it
  // grew, so an unknown id does not reload it on every event.
  const model::Merchant* find(std::string_view merchant_id);
  // The caller has read new input (a chunk of events). A merchant published
  // before any of that input was appended is on the topic by now, so the next
  // miss must look there before calling the merchant unknown: an event
  // accepted right after its merchant was created is never dead-lettered for
  // a stale directory.
  void input_read() { look_on_miss_ = true; }
  std::size_t size() const { return merchants_.size(); }

  // Appends to the topic the merchants whose configuration differs from what
  // it holds (so re-running a job does not grow the topic).
  static Status publish(bus::Bus& bus, std::span<const model::Merchant> merchants);

 private:
  bus::Bus& bus_;
  std::unordered_map<std::string, model::Merchant> merchants_;
  // Reloads if the topic's end offsets moved since the last load.
  Status refresh_if_grown();
  Result<std::vector<std::int64_t>> end_offsets();

  std::chrono::steady_clock::time_point last_refresh_{};
  std::vector<std::int64_t> loaded_ends_;  // the topic's end offsets at the last load
  bool look_on_miss_ = false;
  static constexpr std::chrono::seconds kMissRefreshInterval{1};
};

}  // namespace settle::processor
