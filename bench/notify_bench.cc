// Notify: time from a status record appended to the bus (a batch closing) to
// its WebSocket message at each of 1,000 subscribers, p50/p99; and the
// messages/s one notify process sustains to them. In process: the embedded
// bus, the in-process cache, the gateway tests' Beast client on 4 threads.
//
//   notify_bench [--clients 1000] [--closes 200] [--burst 200]
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <mutex>
#include <thread>
#include <vector>

#include "bus/file_log_bus.h"
#include "gateway/keys.h"
#include "model/status_update.h"
#include "notify/server.h"
#include "processor/topics.h"
#include "ws_client.h"

using namespace settle;

namespace {

std::int64_t mono_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

bus::Record closed(std::int64_t i) {
  model::StatusUpdate u;
  u.kind = model::StatusKind::kBatchClosed;
  u.merchant_id = "m1";
  u.batch = model::BatchKey{MerchantId("m1"), date_from_civil(2026, 3, 1 + static_cast<int>(i % 28)), "USD"};
  u.payout = 9900 + i;
  u.payout_date = date_from_civil(2026, 3, 3);
  u.reason = fmt::format("t={}", mono_ns());
  return bus::Record{"m1", model::status_json(u), {}, 0};
}

}  // namespace

int main(int argc, char** argv) {
  int clients = 1000, closes = 200, burst = 2000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--clients")) clients = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--closes")) closes = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--burst")) burst = std::atoi(argv[i + 1]);
  }
  const auto dir = std::filesystem::temp_directory_path() / fmt::format("notify-bench-{}", ::getpid());
  bus::FileLogOptions bo;
  bo.dir = dir;
  bo.fsync = bus::FsyncPolicy::kNone;
  auto b = bus::FileLogBus::open(bo);
  if (!b.ok()) return 1;
  auto& bus = **b;
  (void)bus.create_topic({processor::kStatusTopic, 8, false});
  auto keys = gateway::KeyRing::open(bus);
  const std::string key = (*keys)->create(gateway::Scope::kMerchant, "m1")->secret;
  auto cache = notify::make_memory_cache();
  notify::NotifyOptions o;
  o.port = 0;
  o.poll_interval = std::chrono::milliseconds(1);
  o.queue_max = 1 << 16;
  notify::NotifyServer server(bus, *cache, o);
  if (!server.start().ok()) return 1;

  constexpr int kThreads = 4;
  std::vector<std::vector<std::unique_ptr<testing::WsClient>>> groups(kThreads);
  for (int i = 0; i < clients; ++i) {
    groups[i % kThreads].push_back(std::make_unique<testing::WsClient>(server.port(), "/v1/stream/status?merchant_id=m1", key));
  }
  for (auto& g : groups) {
    for (auto& c : g) (void)c->read();  // resync
  }

  // Latency: one close at a time; every client reads it.
  std::vector<std::int64_t> lat;
  lat.reserve(static_cast<std::size_t>(clients) * closes);
  std::mutex mu;
  for (int k = 0; k < closes; ++k) {
    std::vector<bus::Record> one{closed(k)};
    (void)bus.append(processor::kStatusTopic, one);
    std::vector<std::thread> ts;
    for (auto& g : groups) {
      ts.emplace_back([&g, &lat, &mu] {
        std::vector<std::int64_t> mine;
        for (auto& c : g) {
          auto m = c->read();
          const std::int64_t now = mono_ns();
          auto j = nlohmann::json::parse(*m);
          const std::string r = j["status"]["reason"];
          mine.push_back(now - std::stoll(r.substr(2)));
        }
        std::lock_guard lock(mu);
        lat.insert(lat.end(), mine.begin(), mine.end());
      });
    }
    for (auto& t : ts) t.join();
  }
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) {
    return static_cast<double>(lat[static_cast<std::size_t>(p * static_cast<double>(lat.size() - 1))]) / 1e6;
  };
  fmt::print("batch close -> WebSocket message, {} subscribers, {} closes: p50 {:.2f} ms, p99 {:.2f} ms, max {:.2f} ms\n",
             clients, closes, pct(0.5), pct(0.99), pct(1.0));

  // Throughput: a burst of updates, every client reads them all.
  const std::int64_t sent_before = server.messages_sent();
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<bus::Record> many;
  for (int k = 0; k < burst; ++k) many.push_back(closed(k));
  (void)bus.append(processor::kStatusTopic, many);
  std::vector<std::thread> ts;
  for (auto& g : groups) {
    ts.emplace_back([&g, burst] {
      for (auto& c : g) {
        for (int k = 0; k < burst; ++k) (void)c->read();
      }
    });
  }
  for (auto& t : ts) t.join();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::int64_t delivered = server.messages_sent() - sent_before;
  fmt::print("burst of {} updates to {} subscribers: {} messages in {:.2f} s = {:.0f} messages/s ({:.0f} updates/s fanned out)\n",
             burst, clients, delivered, s, static_cast<double>(delivered) / s, burst / s);
  groups.clear();
  server.stop();
  std::filesystem::remove_all(dir);
  return 0;
}
