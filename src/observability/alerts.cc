#include "observability/alerts.h"

#include "observability/log.h"
#include "observability/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>

namespace settle::observability {
namespace {

constexpr std::int64_t kMinute = 60'000;
// The longest look-back of a rule: increase(...[1h] offset 15m).
constexpr std::int64_t kKeep = 80 * kMinute;

using Points = std::deque<std::pair<std::int64_t, double>>;
using SeriesMap = std::map<Labels, Points>;

}  // namespace

// What a rule's expression can read: the sampled history.
struct AlertEvaluator::Series {
  const std::map<std::string, SeriesMap>& history;
  std::int64_t now;

  // The series of `name` present at this evaluation, with their value now.
  std::map<Labels, double> current(const std::string& name) const {
    std::map<Labels, double> out;
    auto it = history.find(name);
    if (it == history.end()) return out;
    for (const auto& [labels, points] : it->second) {
      if (!points.empty() && points.back().first == now) out[labels] = points.back().second;
    }
    return out;
  }

  // Each present series' increase over (end - window, end], end = now - offset.
  std::map<Labels, double> increase(const std::string& name, std::int64_t window, std::int64_t offset = 0) const {
    std::map<Labels, double> out;
    auto it = history.find(name);
    if (it == history.end()) return out;
    const std::int64_t end = now - offset, start = end - window;
    for (const auto& [labels, points] : it->second) {
      if (points.empty() || points.back().first != now) continue;
      std::optional<double> previous;
      double rise = 0;
      bool any = false;
      for (const auto& [t, v] : points) {
        if (t > end) break;
        if (t <= start) {
          previous = v;  // the base: the latest sample at or before the window's start
          continue;
        }
        if (previous) rise += v >= *previous ? v - *previous : v;  // a fall is a restart
        previous = v;
        any = true;
      }
      if (any || previous) out[labels] = rise;
    }
    return out;
  }
};

struct AlertEvaluator::Rule {
  std::string name, severity, threshold;
  std::int64_t for_ms = 0;
  // The label sets for which the expression holds, with its value.
  std::function<std::vector<std::pair<Labels, double>>(const Series&)> holds;
  std::function<std::string(const Labels&, double)> summary;
};

namespace {

std::map<Labels, double> sum_by(const std::map<Labels, double>& in, const std::vector<std::string>& keys) {
  std::map<Labels, double> out;
  for (const auto& [labels, v] : in) {
    Labels k;
    for (const auto& key : keys) {
      auto it = labels.find(key);
      k[key] = it == labels.end() ? "" : it->second;
    }
    out[k] += v;
  }
  return out;
}

// sum() of Prometheus: nothing when there is no series.
std::optional<double> total(const std::map<Labels, double>& in) {
  if (in.empty()) return std::nullopt;
  double s = 0;
  for (const auto& [l, v] : in) s += v;
  return s;
}

std::map<Labels, double> only(const std::map<Labels, double>& in, const std::string& key,
                              const std::function<bool(const std::string&)>& keep) {
  std::map<Labels, double> out;
  for (const auto& [labels, v] : in) {
    auto it = labels.find(key);
    if (it != labels.end() && keep(it->second)) out[labels] = v;
  }
  return out;
}

using Holds = std::vector<std::pair<Labels, double>>;

std::vector<std::shared_ptr<AlertEvaluator::Rule>> make_rules() {
  using Rule = AlertEvaluator::Rule;
  using Series = AlertEvaluator::Series;
  std::vector<std::shared_ptr<Rule>> rules;
  auto add = [&](Rule r) { rules.push_back(std::make_shared<Rule>(std::move(r))); };

  add({"SettleConsumerLagHigh", "page", "10000", 5 * kMinute,
       [](const Series& s) {
         Holds h;
         std::map<Labels, double> max;
         for (const auto& [labels, v] : s.current("settle_consumer_lag_records")) {
           Labels k{{"group", labels.count("group") ? labels.at("group") : ""},
                    {"topic", labels.count("topic") ? labels.at("topic") : ""}};
           max[k] = std::max(max.count(k) ? max[k] : v, v);
         }
         for (const auto& [k, v] : max) {
           if (v > 10000) h.push_back({k, v});
         }
         return h;
       },
       [](const Labels& l, double v) { return fmt::format("{} is {} records behind on {}", l.at("group"), v, l.at("topic")); }});

  add({"SettleSettlementTasksFailing", "page", "1", 5 * kMinute,
       [](const Series& s) {
         Holds h;
         for (const auto& [k, inc] : sum_by(s.increase("settle_settlement_tasks_failed_total", 5 * kMinute), {"reason"})) {
           const double per_minute = inc / 300.0 * 60.0;
           if (per_minute > 1) h.push_back({k, per_minute});
         }
         return h;
       },
       [](const Labels& l, double v) { return fmt::format("settlement tasks failing ({}): {:.1f} a minute", l.at("reason"), v); }});

  add({"SettleDeadLetters", "ticket", "0", 0,
       [](const Series& s) {
         Holds h;
         if (auto t = total(s.increase("settle_dead_letters_total", 10 * kMinute)); t && *t > 0) h.push_back({{}, *t});
         return h;
       },
       [](const Labels&, double v) { return fmt::format("{} records dead-lettered in 10 minutes", v); }});

  add({"SettleBatchNotClosed", "page", "0", 5 * kMinute,
       [](const Series& s) {
         Holds h;
         auto waiting = total(only(s.current("settle_consumer_lag_records"), "topic",
                                   [](const std::string& t) { return t == "settlement-tasks"; }));
         auto closed = total(s.increase("settle_batches_closed_total", 10 * kMinute));
         if (waiting && *waiting > 0 && closed && *closed == 0) h.push_back({{}, *waiting});
         return h;
       },
       [](const Labels&, double v) { return fmt::format("{} settlement tasks wait and no batch closed in 10 minutes", v); }});

  add({"SettleIngestionStopped", "page", "0", 5 * kMinute,
       [](const Series& s) {
         Holds h;
         auto recent = total(s.increase("settle_events_accepted_total", 15 * kMinute));
         auto before = total(s.increase("settle_events_accepted_total", 60 * kMinute, 15 * kMinute));
         if (recent && *recent == 0 && before && *before > 0) h.push_back({{}, 0});
         return h;
       },
       [](const Labels&, double) { return std::string("no event accepted for 15 minutes"); }});

  add({"SettleHttpErrorSpike", "page", "0.05", 5 * kMinute,
       [](const Series& s) {
         Holds h;
         const auto all = s.increase("settle_http_requests_total", 5 * kMinute);
         auto errors = total(only(all, "code", [](const std::string& c) { return c.size() == 3 && c[0] == '5'; }));
         auto requests = total(all);
         if (errors && requests && *requests / 300.0 > 0.1 && *errors / *requests > 0.05) {
           h.push_back({{}, *errors / *requests});
         }
         return h;
       },
       [](const Labels&, double v) { return fmt::format("{:.1f}% of HTTP requests fail with 5xx", v * 100); }});

  add({"SettleReconciliationDrift", "ticket", "100000", 0,
       [](const Series& s) {
         Holds h;
         std::map<Labels, double> max;
         for (const auto& [labels, v] : s.current("settle_recon_drift_minor_units")) {
           Labels k{{"currency", labels.count("currency") ? labels.at("currency") : ""}};
           max[k] = std::max(max.count(k) ? max[k] : std::fabs(v), std::fabs(v));
         }
         for (const auto& [k, v] : max) {
           if (v > 100000) h.push_back({k, v});
         }
         return h;
       },
       [](const Labels& l, double v) { return fmt::format("{} drift {} minor units", l.at("currency"), v); }});
  return rules;
}

}  // namespace

AlertEvaluator::AlertEvaluator() : rules_(make_rules()) {}

std::vector<AlertTransition> AlertEvaluator::evaluate(std::int64_t now_ms,
                                                      const std::vector<prometheus::MetricFamily>& families) {
  for (const prometheus::MetricFamily& f : families) {
    if (f.type != prometheus::MetricType::Counter && f.type != prometheus::MetricType::Gauge) continue;
    SeriesMap& series = history_[f.name];
    for (const prometheus::ClientMetric& m : f.metric) {
      Labels labels;
      for (const auto& l : m.label) labels[l.name] = l.value;
      const double v = f.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
      Points& points = series[labels];
      if (!points.empty() && points.back().first == now_ms) {
        points.back().second = v;
      } else {
        points.emplace_back(now_ms, v);
      }
    }
  }
  for (auto& [name, series] : history_) {
    for (auto it = series.begin(); it != series.end();) {
      Points& points = it->second;
      // Keep one sample older than the longest window: the base of an increase.
      while (points.size() > 1 && points[1].first <= now_ms - kKeep) points.pop_front();
      it = points.back().first <= now_ms - kKeep ? series.erase(it) : std::next(it);
    }
  }

  std::vector<AlertTransition> transitions;
  const Series view{history_, now_ms};
  for (const auto& rule : rules_) {
    std::map<Labels, double> holding;
    for (auto& [labels, v] : rule->holds(view)) {
      Labels l = labels;
      l["severity"] = rule->severity;
      holding[l] = v;
    }
    for (const auto& [labels, v] : holding) {
      auto [it, inserted] = active_.try_emplace({rule->name, labels});
      Alert& a = it->second;
      if (inserted) {
        a.name = rule->name;
        a.labels = labels;
        a.state = "pending";
        a.active_since_ms = now_ms;
      }
      a.value = v;
      a.summary = rule->summary(labels, v);
      if (a.state == "pending" && now_ms - a.active_since_ms >= rule->for_ms) {
        a.state = "firing";
        a.fired_at_ms = now_ms;
        transitions.push_back({a, true});
      }
    }
    for (auto it = active_.begin(); it != active_.end();) {
      if (it->first.first == rule->name && !holding.count(it->first.second)) {
        if (it->second.state == "firing") transitions.push_back({it->second, false});
        it = active_.erase(it);
      } else {
        ++it;
      }
    }
  }
  return transitions;
}

std::vector<Alert> AlertEvaluator::active() const {
  std::vector<Alert> out;
  for (const auto& [key, a] : active_) out.push_back(a);
  return out;
}

std::vector<RuleInfo> alert_rule_info() {
  std::vector<RuleInfo> out;
  for (const auto& r : make_rules()) out.push_back({r->name, r->threshold});
  return out;
}

AlertMonitor::AlertMonitor(Metrics& metrics, std::chrono::milliseconds interval)
    : metrics_(metrics), interval_(interval), thread_([this] { run(); }) {}

AlertMonitor::~AlertMonitor() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

std::vector<Alert> AlertMonitor::active() const {
  std::lock_guard lock(mu_);
  return active_;
}

void AlertMonitor::run() {
  const Logger log("alerts");
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    const std::int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
    for (const AlertTransition& t : evaluator_.evaluate(now, metrics_.collect())) {
      std::string labels;
      for (const auto& [k, v] : t.alert.labels) labels += fmt::format("{}{}={}", labels.empty() ? "" : ",", k, v);
      if (t.fired) {
        log.warn("alert {} firing {{{}}}: {}", t.alert.name, labels, t.alert.summary);
      } else {
        log.info("alert {} resolved {{{}}}", t.alert.name, labels);
      }
    }
    auto now_active = evaluator_.active();
    lock.lock();
    active_ = std::move(now_active);
    cv_.wait_for(lock, interval_, [this] { return stopping_; });
  }
}

}  // namespace settle::observability
