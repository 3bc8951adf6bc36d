#include "observability/metrics.h"

#include <dirent.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include <fmt/format.h>
#include <prometheus/text_serializer.h>

#include "common/assert.h"

#ifndef SETTLE_VERSION
#define SETTLE_VERSION "dev"
#endif

namespace settle::observability {

FamilyBuilder::FamilyBuilder(std::string name, std::string help, prometheus::MetricType type) {
  family_.name = std::move(name);
  family_.help = std::move(help);
  family_.type = type;
}

FamilyBuilder& FamilyBuilder::add(const std::vector<std::pair<std::string, std::string>>& labels,
                                  double value) {
  prometheus::ClientMetric metric;
  for (const auto& [name, label_value] : labels) metric.label.push_back({name, label_value});
  switch (family_.type) {
    case prometheus::MetricType::Counter: metric.counter.value = value; break;
    case prometheus::MetricType::Gauge: metric.gauge.value = value; break;
    default: SETTLE_ASSERT(false, "FamilyBuilder builds counters and gauges only");
  }
  family_.metric.push_back(std::move(metric));
  return *this;
}

prometheus::MetricFamily FamilyBuilder::build() { return std::move(family_); }

const std::vector<double>& latency_buckets() {
  static const std::vector<double> buckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                              0.1,    0.25,  0.5,    1,     2.5,  5,     10, 30};
  return buckets;
}

namespace {

prometheus::Family<prometheus::Counter>& counter_family(prometheus::Registry& r, const std::string& name,
                                                        const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r);
}

}  // namespace

Metrics::Metrics(std::string_view role)
    : registry_(std::make_shared<prometheus::Registry>()),
      events_accepted(counter_family(*registry_, "settle_events_accepted_total",
                                     "Events accepted onto the bus (gateway and ingest).")
                          .Add({})),
      events_duplicate(counter_family(*registry_, "settle_events_duplicate_total",
                                      "Events answered duplicate at ingestion (same id, same content).")
                           .Add({})),
      events_rejected(counter_family(*registry_, "settle_events_rejected_total",
                                     "Events rejected at ingestion (validation, conflict, scope).")
                          .Add({})),
      rate_limited(counter_family(*registry_, "settle_rate_limited_total",
                                  "Requests refused with 429 by the per-merchant token bucket.")
                       .Add({})),
      idempotency_replays(counter_family(*registry_, "settle_idempotency_replays_total",
                                         "Requests answered from a stored Idempotency-Key response.")
                              .Add({})),
      accept_to_posted(prometheus::BuildHistogram()
                           .Name("settle_accept_to_posted_seconds")
                           .Help("From the event's append to the bus to its journal's ledger commit.")
                           .Register(*registry_)
                           .Add({}, latency_buckets())),
      batch_close(prometheus::BuildHistogram()
                      .Name("settle_batch_close_seconds")
                      .Help("From a settlement task's emission to its batch's close in the ledger.")
                      .Register(*registry_)
                      .Add({}, latency_buckets())),
      http_requests_(counter_family(*registry_, "settle_http_requests_total",
                                    "HTTP requests by route template, method and status code.")),
      http_duration_(prometheus::BuildHistogram()
                         .Name("settle_http_request_duration_seconds")
                         .Help("HTTP request duration by route template and method.")
                         .Register(*registry_)),
      instance_([] {
        static std::atomic<std::uint64_t> instances{0};
        return instances.fetch_add(1, std::memory_order_relaxed) + 1;  // 0: an empty cache entry
      }()) {
  prometheus::BuildGauge()
      .Name("settle_build_info")
      .Help("Always 1; the labels say which build and role this process runs.")
      .Register(*registry_)
      .Add({{"version", SETTLE_VERSION}, {"role", std::string(role)}})
      .Set(1);
}

void Metrics::observe_http(std::string_view route, std::string_view method, int status, double seconds) {
  if (route.empty()) route = "unmatched";
  // The key of a series, built without allocating once the buffer has grown.
  thread_local std::string key;
  key.assign(route).append(1, ' ').append(method).append(1, ' ');
  fmt::format_to(std::back_inserter(key), "{}", status);
  // Each thread keeps the few series it used last: an I/O thread answers
  // one route, method and status nearly always, and the map's lock, shared
  // by every I/O thread, moved its cache line between cores on each request.
  struct Cached {
    std::uint64_t instance = 0;
    std::string key;
    HttpSeries series{};
  };
  thread_local std::array<Cached, 4> cache;
  thread_local std::size_t replace_next = 0;
  for (const Cached& c : cache) {
    if (c.instance == instance_ && c.key == key) {
      c.series.requests->Increment();
      c.series.duration->Observe(seconds);
      return;
    }
  }
  HttpSeries series{};
  {
    std::lock_guard lock(http_mu_);
    if (auto it = http_series_.find(std::string_view(key)); it != http_series_.end()) {
      series = it->second;
    } else {
      const std::string r(route);
      const std::string m(method);
      series.requests = &http_requests_.Add({{"route", r}, {"method", m}, {"code", std::to_string(status)}});
      series.duration = &http_duration_.Add({{"route", r}, {"method", m}}, latency_buckets());
      http_series_.emplace(key, series);
    }
  }
  Cached& slot = cache[replace_next++ % cache.size()];
  slot.instance = instance_;
  slot.key = key;
  slot.series = series;
  series.requests->Increment();
  series.duration->Observe(seconds);
}

std::shared_ptr<void> Metrics::add_collector(Collector collector) {
  auto owned = std::make_shared<Collector>(std::move(collector));
  std::lock_guard lock(mu_);
  collectors_.push_back(owned);
  return owned;
}

std::string Metrics::scrape() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, collect());
  return out.str();
}

std::vector<prometheus::MetricFamily> Metrics::collect() const {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  collect_process(families);
  std::vector<std::shared_ptr<Collector>> live;
  {
    std::lock_guard lock(mu_);
    std::erase_if(collectors_, [](const std::weak_ptr<Collector>& c) { return c.expired(); });
    for (const auto& weak : collectors_) {
      if (auto c = weak.lock()) live.push_back(std::move(c));
    }
  }
  for (const auto& c : live) (*c)(families);
  return families;
}

void collect_process(std::vector<prometheus::MetricFamily>& out) {
  const long page = sysconf(_SC_PAGESIZE);
  const long ticks = sysconf(_SC_CLK_TCK);
  long rss_pages = 0;
  if (std::ifstream statm("/proc/self/statm"); statm) {
    long size = 0;
    statm >> size >> rss_pages;
  }
  out.push_back(FamilyBuilder("process_resident_memory_bytes", "Resident memory size in bytes.",
                              prometheus::MetricType::Gauge)
                    .add({}, static_cast<double>(rss_pages) * static_cast<double>(page))
                    .build());
  // /proc/self/stat: utime and stime are fields 14 and 15, starttime 22
  // (clock ticks since boot); the command name (field 2) may hold spaces, so
  // parse after its closing parenthesis.
  std::string stat;
  if (std::ifstream in("/proc/self/stat"); in) std::getline(in, stat);
  const auto close = stat.rfind(')');
  if (close != std::string::npos) {
    std::istringstream fields(stat.substr(close + 2));
    std::vector<std::string> f;
    for (std::string s; fields >> s;) f.push_back(s);
    // f[0] is field 3 (state), so field n is f[n - 3].
    if (f.size() > 19 && ticks > 0) {
      const double cpu = (std::stod(f[11]) + std::stod(f[12])) / static_cast<double>(ticks);
      out.push_back(FamilyBuilder("process_cpu_seconds_total", "User and system CPU time spent in seconds.",
                                  prometheus::MetricType::Counter)
                        .add({}, cpu)
                        .build());
      double boot = 0;
      if (std::ifstream s("/proc/stat"); s) {
        for (std::string line; std::getline(s, line);) {
          if (line.rfind("btime ", 0) == 0) boot = std::stod(line.substr(6));
        }
      }
      if (boot > 0) {
        out.push_back(FamilyBuilder("process_start_time_seconds",
                                    "Start time of the process since the Unix epoch in seconds.",
                                    prometheus::MetricType::Gauge)
                          .add({}, boot + std::stod(f[19]) / static_cast<double>(ticks))
                          .build());
      }
    }
  }
  double fds = 0;
  if (DIR* dir = opendir("/proc/self/fd"); dir != nullptr) {
    while (const dirent* e = readdir(dir)) {
      if (e->d_name[0] != '.') ++fds;
    }
    closedir(dir);
  }
  out.push_back(FamilyBuilder("process_open_fds", "Number of open file descriptors.",
                              prometheus::MetricType::Gauge)
                    .add({}, fds - 1)  // the directory stream itself
                    .build());
}

}  // namespace settle::observability
