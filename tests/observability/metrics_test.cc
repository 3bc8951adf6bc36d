// The metrics registry and its /metrics listener: what a scrape shows, and
// that promtool accepts a real scrape.
#include "observability/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <string>

#include "http_client.h"
#include "observability/metrics_server.h"
#include "support/process.h"

namespace settle::observability {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(Metrics, ScrapeShowsBuildInfoWithTheRoleAndTheProcessFigures) {
  Metrics metrics("processor");
  const std::string text = metrics.scrape();
  EXPECT_THAT(text, HasSubstr("settle_build_info{"));
  EXPECT_THAT(text, HasSubstr("role=\"processor\""));
  EXPECT_THAT(text, HasSubstr("process_resident_memory_bytes "));
  EXPECT_THAT(text, HasSubstr("process_open_fds "));
  EXPECT_THAT(text, HasSubstr("process_start_time_seconds "));
}

TEST(Metrics, HttpRequestsAreCountedByRouteTemplateMethodAndCode) {
  Metrics metrics("gateway");
  metrics.observe_http("/v1/merchants/{merchant_id}", "GET", 200, 0.003);
  metrics.observe_http("/v1/merchants/{merchant_id}", "GET", 200, 0.004);
  metrics.observe_http("/v1/events", "POST", 503, 0.2);
  const std::string text = metrics.scrape();
  EXPECT_THAT(text, HasSubstr(R"(settle_http_requests_total{code="200",method="GET",route="/v1/merchants/{merchant_id}"} 2)"));
  EXPECT_THAT(text, HasSubstr(R"(settle_http_requests_total{code="503",method="POST",route="/v1/events"} 1)"));
  // 0.2 s lands in the 0.25 bucket but not the 0.1 one.
  EXPECT_THAT(text, HasSubstr(R"(settle_http_request_duration_seconds_bucket{method="POST",route="/v1/events",le="0.1"} 0)"));
  EXPECT_THAT(text, HasSubstr(R"(settle_http_request_duration_seconds_bucket{method="POST",route="/v1/events",le="0.25"} 1)"));
}

TEST(Metrics, RepeatedHttpSeriesAreKeptPerCodeAndPerMetricsInstance) {
  // observe_http keeps each series after its first use: the counts of other
  // codes, routes and Metrics instances must stay apart, the duration is
  // shared by the codes of one route and method.
  Metrics a("gateway");
  Metrics b("gateway");
  for (int i = 0; i < 3; ++i) a.observe_http("/v1/events", "POST", 202, 0.001);
  a.observe_http("/v1/events", "POST", 429, 0.001);
  a.observe_http("/v1/events/bulk", "POST", 202, 0.001);
  a.observe_http("", "GET", 404, 0.001);
  b.observe_http("/v1/events", "POST", 202, 0.001);
  const std::string text = a.scrape();
  EXPECT_THAT(text, HasSubstr(R"(settle_http_requests_total{code="202",method="POST",route="/v1/events"} 3)"));
  EXPECT_THAT(text, HasSubstr(R"(settle_http_requests_total{code="429",method="POST",route="/v1/events"} 1)"));
  EXPECT_THAT(text, HasSubstr(R"(settle_http_requests_total{code="202",method="POST",route="/v1/events/bulk"} 1)"));
  EXPECT_THAT(text, HasSubstr(R"(settle_http_requests_total{code="404",method="GET",route="unmatched"} 1)"));
  EXPECT_THAT(text, HasSubstr(R"(settle_http_request_duration_seconds_count{method="POST",route="/v1/events"} 4)"));
  EXPECT_THAT(b.scrape(), HasSubstr(R"(settle_http_requests_total{code="202",method="POST",route="/v1/events"} 1)"));
}

TEST(Metrics, AThreadsCachedSeriesNeverCountForAnotherInstanceOrAnotherCode) {
  // A thread keeps the last few series it used. A Metrics made where a
  // destroyed one lived (the allocator hands the same block back) starts
  // from zero; more codes than the cache holds each keep their own count.
  for (int round = 0; round < 3; ++round) {
    auto m = std::make_unique<Metrics>("gateway");
    m->observe_http("/v1/events", "POST", 202, 0.001);
    m->observe_http("/v1/events", "POST", 202, 0.001);
    EXPECT_THAT(m->scrape(), HasSubstr(R"(settle_http_requests_total{code="202",method="POST",route="/v1/events"} 2)"))
        << "round " << round;
  }
  Metrics m("gateway");
  const int codes[] = {200, 201, 202, 400, 401, 403, 404, 409};
  for (int pass = 0; pass < 3; ++pass) {
    for (int code : codes) m.observe_http("/v1/events", "POST", code, 0.001);
  }
  const std::string text = m.scrape();
  for (int code : codes) {
    EXPECT_THAT(text, HasSubstr("settle_http_requests_total{code=\"" + std::to_string(code) +
                                "\",method=\"POST\",route=\"/v1/events\"} 3"));
  }
}

TEST(Metrics, CollectorsAddTheirFamiliesUntilTheirHandleIsDropped) {
  Metrics metrics("processor");
  int calls = 0;
  auto handle = metrics.add_collector([&calls](std::vector<prometheus::MetricFamily>& out) {
    ++calls;
    out.push_back(FamilyBuilder("settle_consumer_lag_records", "Records not yet consumed.",
                                prometheus::MetricType::Gauge)
                      .add({{"group", "processor"}, {"topic", "events"}, {"partition", "3"}}, 42)
                      .build());
  });
  EXPECT_THAT(metrics.scrape(), HasSubstr(R"(settle_consumer_lag_records{group="processor",topic="events",partition="3"} 42)"));
  handle.reset();
  EXPECT_THAT(metrics.scrape(), Not(HasSubstr("settle_consumer_lag_records")));
  EXPECT_EQ(calls, 1);
}

TEST(MetricsServer, ServesTheScrapeThatPromtoolAccepts) {
  Metrics metrics("worker");
  metrics.events_accepted.Increment(3);
  metrics.accept_to_posted.Observe(0.012);
  metrics.observe_http("/v1/events", "POST", 202, 0.001);
  auto server = MetricsServer::start(metrics, "127.0.0.1", 0);
  ASSERT_TRUE(server.ok()) << server.error().message;
  const int port = (*server)->port();

  const auto scrape = testing::http_request(port, "GET", "/metrics");
  ASSERT_EQ(scrape.status, 200u);
  EXPECT_THAT(scrape.header("content-type"), HasSubstr("version=0.0.4"));
  EXPECT_THAT(scrape.body, HasSubstr("settle_events_accepted_total 3"));
  EXPECT_THAT(scrape.body, HasSubstr("settle_accept_to_posted_seconds_count 1"));

  testing::TempDir dir("settle-metrics");
  const auto file = dir.path() / "scrape.txt";
  std::ofstream(file) << scrape.body;
  std::string output;
  testing::ProcessOptions promtool;
  promtool.argv = {"sh", "-c", std::string(PROMTOOL) + " check metrics < " + file.string()};
  const int code = testing::run(promtool, &output);
  EXPECT_EQ(code, 0) << "promtool check metrics:\n" << output;

  EXPECT_EQ(testing::http_request(port, "GET", "/healthz").status, 200u);
  EXPECT_EQ(testing::http_request(port, "GET", "/v1/events").status, 404u);
  EXPECT_EQ(testing::http_request(port, "POST", "/metrics").status, 405u);
}

TEST(MetricsServer, RefusesAnAddressItCannotBind) {
  Metrics metrics("worker");
  auto first = MetricsServer::start(metrics, "127.0.0.1", 0);
  ASSERT_TRUE(first.ok());
  auto second = MetricsServer::start(metrics, "127.0.0.1", (*first)->port());
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second.error().message, HasSubstr("bind 127.0.0.1:"));
}

TEST(ParseListen, AcceptsHostPortAndPortAloneAndRefusesGarbage) {
  auto full = parse_listen("0.0.0.0:9464");
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full.value().first, "0.0.0.0");
  EXPECT_EQ(full.value().second, 9464);
  auto port_only = parse_listen(":9100");
  ASSERT_TRUE(port_only.ok());
  EXPECT_EQ(port_only.value().first, "127.0.0.1");
  EXPECT_FALSE(parse_listen("9100").ok());
  EXPECT_FALSE(parse_listen("host:99999").ok());
  EXPECT_FALSE(parse_listen("host:12x").ok());
}

}  // namespace
}  // namespace settle::observability
