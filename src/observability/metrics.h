// The process's Prometheus metrics (prometheus-cpp core): one registry with
// the families the roles share, plus scrape-time collectors for figures kept
// elsewhere (pipeline counters, consumer lag, drift), rendered in the text
// exposition format by scrape().
//
// Naming follows Prometheus practice: `settle_` prefix, `_total` counters,
// base units (`_seconds`, `_bytes`), no merchant id as a label (cardinality).
// docs/observability.md lists every metric; deploy/prometheus/alerts.yml
// reads them.
//
// Thread safety: every member may be called from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

namespace settle::observability {

// Builds one family of samples at scrape time (for a Collector).
class FamilyBuilder {
 public:
  FamilyBuilder(std::string name, std::string help, prometheus::MetricType type);
  FamilyBuilder& add(const std::vector<std::pair<std::string, std::string>>& labels, double value);
  prometheus::MetricFamily build();  // moves the family out

 private:
  prometheus::MetricFamily family_;
};

// Called at every scrape; appends the families it knows.
using Collector = std::function<void(std::vector<prometheus::MetricFamily>& out)>;

// Latency buckets in seconds, 0.5 ms .. 30 s.
const std::vector<double>& latency_buckets();

class Metrics {
  // First: every family below is registered in it.
  std::shared_ptr<prometheus::Registry> registry_;

 public:
  // `role` names the process in settle_build_info.
  explicit Metrics(std::string_view role);
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  prometheus::Registry& registry() { return *registry_; }

  // HTTP (the gateway): requests by route template, method and status code.
  void observe_http(std::string_view route, std::string_view method, int status, double seconds);

  // Ingestion results (gateway, `settled ingest`).
  prometheus::Counter& events_accepted;
  prometheus::Counter& events_duplicate;
  prometheus::Counter& events_rejected;
  prometheus::Counter& rate_limited;
  prometheus::Counter& idempotency_replays;  // a request answered from its Idempotency-Key

  // Pipeline latencies.
  prometheus::Histogram& accept_to_posted;  // bus append -> ledger commit
  prometheus::Histogram& batch_close;       // settlement task emitted -> batch closed

  // Registers a scrape-time collector; it lives as long as the returned
  // handle (so a component that goes away stops being scraped).
  std::shared_ptr<void> add_collector(Collector collector);

  // Every family now: the registry's, the process's and the collectors'.
  std::vector<prometheus::MetricFamily> collect() const;
  // collect() in the text exposition format, version 0.0.4.
  std::string scrape() const;

 private:
  // The series of one (route, method, status): looked up once, then kept
  // (prometheus-cpp's Family::Add builds a label map, hashes it and takes
  // the family's lock on every call, which showed in a request's cost).
  struct HttpSeries {
    prometheus::Counter* requests;
    prometheus::Histogram* duration;
  };
  struct KeyHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view key) const { return std::hash<std::string_view>{}(key); }
  };
  prometheus::Family<prometheus::Counter>& http_requests_;
  prometheus::Family<prometheus::Histogram>& http_duration_;
  // Tells this instance's entries in a thread's cache of series (see
  // observe_http) from those of an instance that lived at the same address.
  const std::uint64_t instance_;
  std::mutex http_mu_;
  std::unordered_map<std::string, HttpSeries, KeyHash, std::equal_to<>> http_series_;  // under http_mu_
  mutable std::mutex mu_;
  mutable std::vector<std::weak_ptr<Collector>> collectors_;  // under mu_; expired ones pruned at scrape
};

// The conventional process_* metrics: resident memory, open file
// descriptors, start time, CPU seconds (from /proc/self).
void collect_process(std::vector<prometheus::MetricFamily>& out);

}  // namespace settle::observability
