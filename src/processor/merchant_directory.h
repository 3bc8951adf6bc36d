// The merchants' settlement configuration, read from the compacted
// `merchants` topic (latest value per merchant id). Not thread safe: each
// consumer keeps its own.
#pragma once

#include <chrono>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "bus/bus.h"
#include "common/result.h"
#include "model/merchant.h"

namespace settle::processor {

class MerchantDirectory {
 public:
  explicit MerchantDirectory(bus::Bus& bus) : bus_(bus) {}

  // Reloads every merchant from the topic.
  Status refresh();
  // The merchant's configuration, or nullptr when unknown. A miss triggers a
  // refresh at most once per `miss_refresh_interval`, so a merchant published
  // after start-up is found without reloading on every unknown id.
  const model::Merchant* find(std::string_view merchant_id);
  std::size_t size() const { return merchants_.size(); }

  // Appends to the topic the merchants whose configuration differs from what
  // it holds (so re-running a job does not grow the topic).
  static Status publish(bus::Bus& bus, std::span<const model::Merchant> merchants);

 private:
  bus::Bus& bus_;
  std::unordered_map<std::string, model::Merchant> merchants_;
  std::chrono::steady_clock::time_point last_refresh_{};
  static constexpr std::chrono::seconds kMissRefreshInterval{1};
};

}  // namespace settle::processor
