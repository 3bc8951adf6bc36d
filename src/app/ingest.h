// Ingestion of a recorded events file: each line validated (SETTLEMENT_RULES
// §2, known merchant) and the valid ones appended to the bus's events topic
// in batches, each with a `source` header "FILE:LINE". Used by `settled
// settle` (on its own thread, while the pipeline consumes) and by `settled
// ingest`.
#pragma once

#include <atomic>
#include <cstdint>
#include <ostream>
#include <span>
#include <string>
#include <unordered_set>
#include <vector>

#include "app/offline_settle.h"
#include "bus/bus.h"
#include "common/result.h"

namespace settle::app {

class Ingestor {
 public:
  Ingestor(bus::Bus& bus, const std::unordered_set<std::string>& merchant_ids, const SettleOptions& options,
           std::ostream& diagnostics)
      : bus_(bus), merchant_ids_(merchant_ids), options_(options), diagnostics_(diagnostics) {}

  // Reads the whole file; rejected lines go to diagnostics as FILE:LINE: why.
  // An error only when the file cannot be read or the bus refuses an append
  // (then every batch appended before stays appended).
  Status run();

  // Asks run() to return early (the pipeline failed; the rest is not needed).
  void stop() { stop_.store(true, std::memory_order_relaxed); }
  std::int64_t lines() const { return lines_; }
  std::int64_t accepted() const { return accepted_; }
  std::int64_t invalid() const { return invalid_; }
  double fraction() const;

 private:
  void reject(const std::string& source, std::int64_t line_no, const std::string& why);
  Status flush(std::span<const bus::Record> pending);

  bus::Bus& bus_;
  const std::unordered_set<std::string>& merchant_ids_;
  const SettleOptions& options_;
  std::ostream& diagnostics_;
  std::int64_t lines_ = 0;
  std::int64_t accepted_ = 0;
  std::int64_t invalid_ = 0;
  std::int64_t total_bytes_ = 0;
  std::atomic<std::int64_t> bytes_read_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace settle::app
