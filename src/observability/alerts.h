// The alert rules of deploy/prometheus/alerts.yml, evaluated in the process
// (the embedded default has no Prometheus): a small evaluator for exactly
// the expressions used there, over the process's own metrics sampled at
// each evaluation. A unit test checks that every rule here is in the file
// with the same threshold.
//
// Semantics follow Prometheus closely enough for these rules: a counter's
// increase over a window is the sum of its rises between the samples in the
// window (a fall is a restart: the new value counts as the rise); rate is
// that increase over the window's seconds; an expression true for `for` in a
// row fires (pending before), and resolves at the first evaluation where it
// is false.
//
// Thread safety: AlertEvaluator is not thread safe (one evaluating thread);
// AlertBoard may be read from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <condition_variable>
#include <thread>
#include <string>
#include <vector>

#include <prometheus/metric_family.h>

namespace settle::observability {

using Labels = std::map<std::string, std::string>;

struct Alert {
  std::string name;      // "SettleConsumerLagHigh"
  Labels labels;         // the rule's grouping labels, and severity
  std::string summary;
  std::string state;     // "pending" or "firing"
  std::int64_t active_since_ms = 0;  // when the expression became true
  std::int64_t fired_at_ms = 0;      // when it fired (0 while pending)
  double value = 0;
};

struct AlertTransition {
  Alert alert;
  bool fired = false;  // false: resolved
};

class AlertEvaluator {
 public:
  AlertEvaluator();
  // Samples `families` at `now_ms`, evaluates every rule and returns what
  // fired or resolved at this evaluation.
  std::vector<AlertTransition> evaluate(std::int64_t now_ms, const std::vector<prometheus::MetricFamily>& families);
  // Pending and firing alerts, by name then labels.
  std::vector<Alert> active() const;

  struct Series;
  struct Rule;

 private:
  std::map<std::string, std::map<Labels, std::deque<std::pair<std::int64_t, double>>>> history_;
  std::vector<std::shared_ptr<Rule>> rules_;
  std::map<std::pair<std::string, Labels>, Alert> active_;
};

// The rules' names and thresholds, for the test against alerts.yml.
struct RuleInfo {
  std::string name;
  std::string threshold;  // as written in the expression, e.g. "10000"
};
std::vector<RuleInfo> alert_rule_info();

class Metrics;

// Evaluates the rules on `metrics` every `interval` on its own thread, logs
// each alert that fires (warn) or resolves (info) under the "alerts"
// component, and keeps what is active for GET /v1/alerts.
class AlertMonitor {
 public:
  AlertMonitor(Metrics& metrics, std::chrono::milliseconds interval);
  ~AlertMonitor();  // stops and joins
  AlertMonitor(const AlertMonitor&) = delete;
  AlertMonitor& operator=(const AlertMonitor&) = delete;

  std::vector<Alert> active() const;

 private:
  void run();
  Metrics& metrics_;
  std::chrono::milliseconds interval_;
  AlertEvaluator evaluator_;  // the monitor's thread only
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;     // under mu_
  std::vector<Alert> active_;  // under mu_
  std::thread thread_;
};

}  // namespace settle::observability
