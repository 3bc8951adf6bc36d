// The generated workload of the benchmarks: 20 merchants in 5 time zones and
// N events from 2026-03-01 over `span_days` days (30: March 2026), with random
// ids, in time order with jitter.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "model/event_json.h"

namespace settle::bench {

namespace fs = std::filesystem;

// Writes dir/merchants.ndjson and dir/events.ndjson.
inline void write_inputs(const fs::path& dir, std::int64_t events, std::int64_t span_days = 30) {
  constexpr int kMerchants = 20;
  std::ofstream m(dir / "merchants.ndjson");
  const char* zones[] = {"Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC", "Australia/Sydney"};
  for (int i = 0; i < kMerchants; ++i) {
    m << fmt::format(
        R"({{"merchant_id":"m{:02d}","timezone":"{}","cutoff":"{}","fees":{{"capture":{{"bps":{},"fixed":25}},"refund":{{"bps":0,"fixed":10}}}},"reserve_bps":{},"reserve_days":{}}})",
        i, zones[i % 5], i % 2 ? "18:00" : "00:00", 100 + 10 * i, i % 4 == 0 ? 500 : 0, i % 4 == 0 ? 3 : 0)
      << '\n';
  }
  std::ofstream e(dir / "events.ndjson");
  std::mt19937_64 rng(42);
  const char* alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  const std::int64_t start = static_cast<std::int64_t>(date_from_civil(2026, 3, 1).days) * kNsPerDay;
  const std::int64_t span_ms = span_days * 86400 * 1000;
  std::string line;
  for (std::int64_t i = 0; i < events; ++i) {
    model::Event ev;
    ev.merchant_id = MerchantId(fmt::format("m{:02d}", static_cast<int>(rng() % kMerchants)));
    std::string id = "pay_";
    for (int k = 0; k < 16; ++k) id += alphabet[rng() % 62];
    ev.event_id = EventId(std::move(id));
    ev.type = rng() % 10 == 0 ? model::EventType::kRefund : model::EventType::kCapture;
    ev.amount = static_cast<std::int64_t>(100 + rng() % 50000);
    ev.currency = "EUR";
    // Time order with jitter, as a real feed arrives.
    ev.occurred_at = Timestamp{start + (span_ms * i / events + static_cast<std::int64_t>(rng() % 60000)) * 1'000'000};
    line = model::canonical_event_json(ev);
    e << line << '\n';
  }
}

}  // namespace settle::bench
