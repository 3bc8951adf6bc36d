// The in-process alert rules: the same alerts as deploy/prometheus/alerts.yml
// with the same thresholds, and their pending -> firing -> resolved life on
// sampled metrics.
#include "observability/alerts.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "observability/metrics.h"

namespace settle::observability {
namespace {

constexpr std::int64_t kMinute = 60'000;

std::vector<prometheus::MetricFamily> gauge(const std::string& name, const std::vector<std::pair<std::string, std::string>>& labels,
                                            double value) {
  return {FamilyBuilder(name, "test", prometheus::MetricType::Gauge).add(labels, value).build()};
}

std::vector<prometheus::MetricFamily> counter(const std::string& name, double value) {
  return {FamilyBuilder(name, "test", prometheus::MetricType::Counter).add({}, value).build()};
}

TEST(AlertRules, EveryInProcessRuleIsInAlertsYmlWithTheSameThreshold) {
  std::ifstream in(std::filesystem::path(SETTLE_SOURCE_DIR) / "deploy/prometheus/alerts.yml");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string yml = ss.str();
  const auto rules = alert_rule_info();
  EXPECT_EQ(rules.size(), 7u);
  std::size_t in_file = 0;
  for (std::size_t at = yml.find("- alert: "); at != std::string::npos; at = yml.find("- alert: ", at + 1)) ++in_file;
  EXPECT_EQ(in_file, rules.size()) << "alerts.yml and the evaluator list different rules";
  for (const RuleInfo& r : rules) {
    const auto at = yml.find("- alert: " + r.name + "\n");
    ASSERT_NE(at, std::string::npos) << r.name << " is not in alerts.yml";
    const auto expr = yml.find("expr:", at);
    const auto end = yml.find("- alert: ", at + 1);
    const std::string block = yml.substr(expr, end == std::string::npos ? std::string::npos : end - expr);
    EXPECT_NE(block.find("> " + r.threshold), std::string::npos) << r.name << ": threshold " << r.threshold;
  }
}

TEST(AlertEvaluator, LagAboveTheThresholdIsPendingThenFiresAfterFiveMinutesAndResolves) {
  AlertEvaluator e;
  const std::vector<std::pair<std::string, std::string>> labels = {
      {"group", "processor"}, {"topic", "events"}, {"partition", "0"}};
  for (int minute = 0; minute < 5; ++minute) {
    EXPECT_TRUE(e.evaluate(minute * kMinute, gauge("settle_consumer_lag_records", labels, 20000)).empty()) << minute;
  }
  ASSERT_EQ(e.active().size(), 1u);
  EXPECT_EQ(e.active()[0].state, "pending");
  auto fired = e.evaluate(5 * kMinute, gauge("settle_consumer_lag_records", labels, 20000));
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_TRUE(fired[0].fired);
  EXPECT_EQ(fired[0].alert.name, "SettleConsumerLagHigh");
  EXPECT_EQ(fired[0].alert.labels.at("group"), "processor");
  EXPECT_EQ(fired[0].alert.labels.at("severity"), "page");
  EXPECT_EQ(fired[0].alert.summary, "processor is 20000 records behind on events");
  auto resolved = e.evaluate(6 * kMinute, gauge("settle_consumer_lag_records", labels, 10));
  ASSERT_EQ(resolved.size(), 1u);
  EXPECT_FALSE(resolved[0].fired);
  EXPECT_TRUE(e.active().empty());
}

TEST(AlertEvaluator, LagThatRecoversBeforeFiveMinutesNeverFires) {
  AlertEvaluator e;
  const std::vector<std::pair<std::string, std::string>> labels = {{"group", "processor"}, {"topic", "events"}};
  e.evaluate(0, gauge("settle_consumer_lag_records", labels, 50000));
  e.evaluate(4 * kMinute, gauge("settle_consumer_lag_records", labels, 0));
  EXPECT_TRUE(e.evaluate(6 * kMinute, gauge("settle_consumer_lag_records", labels, 50000)).empty());
  EXPECT_EQ(e.active()[0].active_since_ms, 6 * kMinute);
}

TEST(AlertEvaluator, ADeadLetterFiresAtOnceAndResolvesTenMinutesLaterCountingAcrossARestart) {
  AlertEvaluator e;
  EXPECT_TRUE(e.evaluate(0, counter("settle_dead_letters_total", 5)).empty());
  EXPECT_TRUE(e.evaluate(kMinute, counter("settle_dead_letters_total", 5)).empty());
  // The process restarted: the counter fell to 1, which is one new dead letter.
  auto fired = e.evaluate(2 * kMinute, counter("settle_dead_letters_total", 1));
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].alert.name, "SettleDeadLetters");
  EXPECT_EQ(fired[0].alert.value, 1.0);
  EXPECT_TRUE(e.evaluate(11 * kMinute, counter("settle_dead_letters_total", 1)).empty());
  auto resolved = e.evaluate(13 * kMinute, counter("settle_dead_letters_total", 1));
  ASSERT_EQ(resolved.size(), 1u);
  EXPECT_FALSE(resolved[0].fired);
}

TEST(AlertEvaluator, DriftAboveAThousandInACurrencyFiresOnlyForThatCurrency) {
  AlertEvaluator e;
  std::vector<prometheus::MetricFamily> f = {
      FamilyBuilder("settle_recon_drift_minor_units", "test", prometheus::MetricType::Gauge)
          .add({{"currency", "EUR"}}, 150000)
          .add({{"currency", "USD"}}, 99999)
          .build()};
  auto fired = e.evaluate(0, f);
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].alert.labels.at("currency"), "EUR");
  EXPECT_EQ(fired[0].alert.summary, "EUR drift 150000 minor units");
}

}  // namespace
}  // namespace settle::observability
