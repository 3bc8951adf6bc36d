// W3C trace context: the parser and formatter, and an event's trace id going
// from an HTTP request through the bus to its ledger journal.
#include "observability/trace.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include <utility>  // before Asio (Boost 1.74 with g++ 12 in C++20)
#include <atomic>
#include <mutex>
#include <optional>
#include <set>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "http_client.h"
#include "support/kafka_mock.h"
#include "support/process.h"
#include "ws_client.h"

namespace settle {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using testing::Process;
using testing::ProcessOptions;
using testing::TempDir;

constexpr const char* kParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST(TraceContext, ParsesAndFormatsAVersion00Header) {
  auto c = observability::parse_traceparent(kParent);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c.value().trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(c.value().span_id, "00f067aa0ba902b7");
  EXPECT_EQ(c.value().flags, 1);
  EXPECT_EQ(observability::format_traceparent(c.value()), kParent);
}

TEST(TraceContext, RefusesMalformedHeadersSayingWhy) {
  for (const char* bad : {"", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
                          "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                          "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                          "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                          "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                          "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"}) {
    auto c = observability::parse_traceparent(bad);
    EXPECT_FALSE(c.ok()) << bad;
    if (!c.ok()) {
      EXPECT_THAT(c.error().message, HasSubstr("traceparent"));
    }
  }
  // A later version is read by its first four fields.
  EXPECT_TRUE(observability::parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more").ok());
}

TEST(TraceContext, ContinuesAValidTraceWithANewSpanAndStartsOneOtherwise) {
  const std::string child = observability::continue_or_start(kParent);
  EXPECT_THAT(child, StartsWith("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
  EXPECT_NE(child, kParent);
  auto parsed = observability::parse_traceparent(child);
  ASSERT_TRUE(parsed.ok()) << child;
  EXPECT_EQ(parsed->flags, 1) << "the caller's flags carry over";
  EXPECT_EQ(observability::continue_or_start("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").substr(52),
            "-00");
  // A later version continues as version 00 with its first four fields.
  const std::string from_v1 =
      observability::continue_or_start("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more");
  EXPECT_EQ(from_v1.size(), 55u);
  EXPECT_THAT(from_v1, StartsWith("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
  EXPECT_TRUE(observability::parse_traceparent(from_v1).ok()) << from_v1;
  const std::string fresh = observability::continue_or_start("garbage");
  ASSERT_TRUE(observability::parse_traceparent(fresh).ok()) << fresh;
  EXPECT_NE(fresh.substr(3, 32), observability::continue_or_start("").substr(3, 32));
}

TEST(TraceContext, AssignsANewTraceIntoAReusedBuffer) {
  std::string buffer = "previous content that is longer than a traceparent: " + std::string(kParent);
  observability::assign_new_traceparent(buffer);
  auto first = observability::parse_traceparent(buffer);
  ASSERT_TRUE(first.ok()) << buffer;
  EXPECT_EQ(buffer.size(), 55u);
  EXPECT_EQ(first->flags, 1);
  const std::string previous = buffer;
  observability::assign_new_traceparent(buffer);
  ASSERT_TRUE(observability::parse_traceparent(buffer).ok()) << buffer;
  EXPECT_NE(buffer.substr(3, 32), previous.substr(3, 32));
}

// A one-request OTLP/HTTP collector: answers the first POST with 200 and
// keeps what it received.
class OtlpReceiver {
 public:
  struct Request {
    std::string target, content_type, body;
  };
  OtlpReceiver() : acceptor_(ioc_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    thread_ = std::thread([this] { serve(); });
  }
  ~OtlpReceiver() {
    if (!served_.load()) {  // unblock accept()
      boost::system::error_code ec;
      boost::asio::ip::tcp::socket poke(ioc_);
      poke.connect({boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port())}, ec);
    }
    thread_.join();
  }
  int port() const { return acceptor_.local_endpoint().port(); }
  std::optional<Request> received() {
    std::lock_guard lock(mu_);
    return request_;
  }

 private:
  void serve() {
    namespace http = boost::beast::http;
    boost::system::error_code ec;
    boost::asio::ip::tcp::socket socket(ioc_);
    acceptor_.accept(socket, ec);
    served_.store(true);
    if (ec) return;
    boost::beast::flat_buffer buffer;
    http::request<http::string_body> req;
    http::read(socket, buffer, req, ec);
    if (ec) return;
    {
      std::lock_guard lock(mu_);
      const auto target = req.target();
      const auto type = req[http::field::content_type];
      request_ = Request{std::string(target.data(), target.size()), std::string(type.data(), type.size()), req.body()};
    }
    http::response<http::string_body> res{http::status::ok, req.version()};
    res.set(http::field::content_type, "application/json");
    res.body() = "{}";
    res.prepare_payload();
    http::write(socket, res, ec);
  }

  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::atomic<bool> served_{false};
  std::mutex mu_;
  std::optional<Request> request_;
  std::thread thread_;
};

std::string settled_stdout(const std::vector<std::string>& args, const fs::path& dir) {
  const fs::path out = dir / "stdout.txt";
  std::string cmd = SETTLED_BIN;
  for (const auto& a : args) cmd += " '" + a + "'";
  cmd += " >" + out.string() + " 2>" + (dir / "stderr.txt").string();
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::ifstream in(out);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Every line of a JSON log parses and names its time, level and component;
// returns the lines that carry `trace_id`.
std::vector<nlohmann::json> json_log_lines_with_trace(const fs::path& log, const std::string& trace_id) {
  std::vector<nlohmann::json> with;
  std::ifstream in(log);
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line, nullptr, false);
    EXPECT_TRUE(j.is_object()) << "line " << n << " is not JSON: " << line;
    if (!j.is_object()) continue;
    for (const char* field : {"time", "level", "component", "message"}) {
      EXPECT_TRUE(j.contains(field) && j[field].is_string()) << "line " << n << " lacks " << field << ": " << line;
    }
    if (j.value("trace_id", "") == trace_id) with.push_back(j);
  }
  EXPECT_GT(n, 0) << "empty log";
  return with;
}

// A fresh data directory under `dir` with the basic fixture's merchants and
// no events; returns a new key of m-eur.
std::string fixture_data_dir(const fs::path& dir, const fs::path& data) {
  const fs::path empty = dir / "none.ndjson";
  std::ofstream(empty).flush();
  const fs::path fixtures = fs::path(SETTLE_SOURCE_DIR) / "tests/e2e/fixtures/basic";
  settled_stdout({"ingest", "--data-dir", data.string(), "--merchants", (fixtures / "merchants.json").string(),
                  "--events", empty.string()},
                 dir);
  return settled_stdout({"keys", "create", "--merchant", "m-eur", "--data-dir", data.string()}, dir);
}

TEST(TracePropagation, TheTraceOfAnHttpRequestReachesTheEventsLedgerJournalAndTheLog) {
  TempDir dir("settle-trace");
  const fs::path data = dir.path() / "data";
  const std::string key = fixture_data_dir(dir.path(), data);
  ASSERT_FALSE(key.empty());

  const int port = testing::free_port();
  ProcessOptions o;
  o.argv = {SETTLED_BIN, "all", "--data-dir", data.string(), "--listen", "127.0.0.1:" + std::to_string(port),
            "--log-format", "json", "--log-level", "debug", "--idle-ms", "50", "--grace-ms", "0"};
  o.log = dir.path() / "all.log";
  Process all(o);
  ASSERT_TRUE(all.wait_for_output("stop with SIGTERM", std::chrono::seconds(60))) << all.log_tail();

  const auto posted = testing::http_request(
      port, "POST", "/v1/events",
      R"({"event_id":"t1","merchant_id":"m-eur","type":"capture","amount":1000,"currency":"EUR","occurred_at":"2026-03-28T10:00:00Z"})",
      {{"Authorization", "Bearer " + key}, {"Content-Type", "application/json"}, {"traceparent", kParent}});
  ASSERT_EQ(posted.status, 202u) << posted.body;
  // The gateway's span is a child of the caller's: same trace, new span.
  EXPECT_THAT(posted.header("traceparent"), StartsWith("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
  EXPECT_NE(posted.header("traceparent"), kParent);

  // Wait for the processor to post it and the worker to close its batch
  // (the idle rule), then read its journal.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  bool seen = false;
  while (!seen && std::chrono::steady_clock::now() < deadline) {
    const std::string scrape = testing::http_request(port, "GET", "/metrics").body;
    seen = scrape.find("settle_processor_records_total{result=\"posted\"} 1") != std::string::npos &&
           scrape.find("settle_batches_closed_total 1") != std::string::npos;
    if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(seen) << all.log_tail();
  ASSERT_EQ(WEXITSTATUS(all.stop()), 0) << all.log_tail();

  ProcessOptions q;
  q.argv = {"sqlite3", (data / "ledger.db").string(), "SELECT trace_id FROM journals WHERE ref = 't1'"};
  std::string trace;
  ASSERT_EQ(testing::run(q, &trace), 0) << trace;
  EXPECT_EQ(trace, "4bf92f3577b34da6a3ce929d0e0e4736\n");

  // The gateway's access line of that request, in the JSON log, with its
  // trace and the key's merchant.
  const auto traced = json_log_lines_with_trace(o.log, "4bf92f3577b34da6a3ce929d0e0e4736");
  ASSERT_FALSE(traced.empty()) << all.log_tail();
  EXPECT_EQ(traced.front().value("component", ""), "gateway");
  EXPECT_EQ(traced.front().value("merchant_id", ""), "m-eur");
  EXPECT_THAT(traced.front().value("message", ""), HasSubstr("POST /v1/events 202"));

  // settled trace: the event's path with its timestamps, and its spans sent
  // to an OTLP/HTTP collector as JSON, children of the gateway's span.
  OtlpReceiver collector;
  const std::string printed = settled_stdout({"trace", "4bf92f3577b34da6a3ce929d0e0e4736", "--data-dir", data.string(),
                                              "--otlp-endpoint", "http://127.0.0.1:" + std::to_string(collector.port())},
                                             dir.path());
  EXPECT_THAT(printed, HasSubstr("event m-eur/t1"));
  EXPECT_THAT(printed, HasSubstr("accepted"));
  EXPECT_THAT(printed, HasSubstr("ledger journal m-eur/t1: capture, batch 2026-03-28"));
  // The processor's event_posted and batch_open statuses carry the event's trace id.
  EXPECT_THAT(printed, HasSubstr("status              event_posted: 1 event(s) of the chunk, through events offset 1"));
  EXPECT_THAT(printed, HasSubstr("status              batch_open: batch m-eur/2026-03-28/EUR counts 1 event(s)"));
  EXPECT_THAT(printed, HasSubstr("batch_closing"));
  EXPECT_THAT(printed, HasSubstr("batch_closed"));
  const auto request = collector.received();
  ASSERT_TRUE(request.has_value()) << printed;
  EXPECT_EQ(request->target, "/v1/traces");
  EXPECT_THAT(request->content_type, HasSubstr("application/json"));
  const auto otlp = nlohmann::json::parse(request->body, nullptr, false);
  ASSERT_TRUE(otlp.is_object()) << request->body;
  const auto& spans = otlp["resourceSpans"][0]["scopeSpans"][0]["spans"];
  ASSERT_EQ(spans.size(), 3u) << request->body;
  const std::string gateway_span = posted.header("traceparent").substr(36, 16);
  std::set<std::string> names;
  for (const auto& span : spans) {
    EXPECT_EQ(span.value("traceId", ""), "4bf92f3577b34da6a3ce929d0e0e4736");
    EXPECT_EQ(span.value("parentSpanId", ""), gateway_span);
    EXPECT_LE(std::stoll(span.value("startTimeUnixNano", "0")), std::stoll(span.value("endTimeUnixNano", "0")));
    names.insert(span.value("name", ""));
  }
  EXPECT_EQ(names, (std::set<std::string>{"bus.accepted", "batch.wait", "batch.close"}));
}

// `settled all` on a fresh data directory with the basic fixture's merchants
// and a key for m-eur, serving on a free port, logging JSON.
struct TracedPipeline {
  TempDir dir{"settle-trace-paths"};
  fs::path data = dir.path() / "data";
  std::string key;
  int port = testing::free_port();
  ProcessOptions options;
  std::unique_ptr<Process> all;

  TracedPipeline() {
    key = fixture_data_dir(dir.path(), data);
    options.argv = {SETTLED_BIN, "all", "--data-dir", data.string(), "--listen", "127.0.0.1:" + std::to_string(port),
                    "--log-format", "json", "--idle-ms", "50", "--grace-ms", "0"};
    options.log = dir.path() / "all.log";
    all = std::make_unique<Process>(options);
  }
  // Waits until the processor posted `n` events, stops the pipeline and
  // returns each journal's trace id by event id.
  std::map<std::string, std::string> journal_traces_after(int n) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    const std::string want = "settle_processor_records_total{result=\"posted\"} " + std::to_string(n) + "\n";
    bool seen = false;
    while (!seen && std::chrono::steady_clock::now() < deadline) {
      seen = testing::http_request(port, "GET", "/metrics").body.find(want) != std::string::npos;
      if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_TRUE(seen) << all->log_tail();
    EXPECT_EQ(WEXITSTATUS(all->stop()), 0) << all->log_tail();
    ProcessOptions q;
    q.argv = {"sqlite3", "-separator", " ", (data / "ledger.db").string(),
              "SELECT ref, trace_id FROM journals ORDER BY ref"};
    std::string rows;
    EXPECT_EQ(testing::run(q, &rows), 0) << rows;
    std::map<std::string, std::string> traces;
    std::istringstream in(rows);
    for (std::string ref, trace; in >> ref >> trace;) traces[ref] = trace;
    return traces;
  }
};

std::string eur_event(const std::string& id) {
  return R"({"event_id":")" + id +
         R"(","merchant_id":"m-eur","type":"capture","amount":1000,"currency":"EUR","occurred_at":"2026-03-28T10:00:00Z"})";
}

TEST(TracePropagation, EveryEventOfABulkUploadOrPresignedPutCarriesItsRequestsTrace) {
  TracedPipeline p;
  ASSERT_TRUE(p.all->wait_for_output("stop with SIGTERM", std::chrono::seconds(60))) << p.all->log_tail();
  const testing::Headers auth = {{"Authorization", "Bearer " + p.key}};
  // NDJSON with the caller's traceparent: one trace for its every event.
  auto ndjson = testing::http_request(
      p.port, "POST", "/v1/events/bulk", eur_event("b1") + "\n" + eur_event("b2") + "\n" + eur_event("b3") + "\n",
      {auth[0], {"Content-Type", "application/x-ndjson"}, {"traceparent", kParent}});
  ASSERT_EQ(ndjson.status, 202u) << ndjson.body;
  EXPECT_THAT(ndjson.header("traceparent"), StartsWith("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
  // CSV without one: a new trace for the whole request, told in the answer.
  auto csv = testing::http_request(p.port, "POST", "/v1/events/bulk",
                                   "event_id,merchant_id,type,amount,currency,occurred_at\n"
                                   "c1,m-eur,capture,500,EUR,2026-03-28T11:00:00Z\n"
                                   "c2,m-eur,capture,600,EUR,2026-03-28T12:00:00Z\n",
                                   {auth[0], {"Content-Type", "text/csv"}});
  ASSERT_EQ(csv.status, 202u) << csv.body;
  auto csv_trace = observability::parse_traceparent(csv.header("traceparent"));
  ASSERT_TRUE(csv_trace.ok()) << csv.header("traceparent");
  // A pre-signed PUT with the uploader's traceparent.
  auto up = testing::http_request(p.port, "POST", "/v1/uploads", "", auth);
  ASSERT_EQ(up.status, 201u) << up.body;
  const std::string put_parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  auto put = testing::http_request(p.port, "PUT", nlohmann::json::parse(up.body)["url"],
                                   eur_event("u1") + "\n" + eur_event("u2") + "\n",
                                   {{"Content-Type", "application/x-ndjson"}, {"traceparent", put_parent}});
  ASSERT_EQ(put.status, 202u) << put.body;

  const auto traces = p.journal_traces_after(7);
  ASSERT_EQ(traces.size(), 7u);
  for (const char* id : {"b1", "b2", "b3"}) EXPECT_EQ(traces.at(id), "4bf92f3577b34da6a3ce929d0e0e4736") << id;
  for (const char* id : {"c1", "c2"}) EXPECT_EQ(traces.at(id), csv_trace->trace_id) << id;
  EXPECT_NE(csv_trace->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  for (const char* id : {"u1", "u2"}) EXPECT_EQ(traces.at(id), "0af7651916cd43dd8448eb211c80319c") << id;
}

TEST(TracePropagation, EveryEventOfAStreamConnectionCarriesTheConnectionsTrace) {
  TracedPipeline p;
  ASSERT_TRUE(p.all->wait_for_output("stop with SIGTERM", std::chrono::seconds(60))) << p.all->log_tail();
  {
    // The upgrade request's traceparent: every message of the connection.
    testing::WsClient traced(p.port, "/v1/events/stream", p.key, 0, kParent);
    traced.send(eur_event("s1") + "\n" + eur_event("s2"));
    ASSERT_TRUE(traced.read().has_value());
    traced.send(eur_event("s3"));
    ASSERT_TRUE(traced.read().has_value());
  }
  for (const char* id : {"n1", "n2"}) {  // none: a new trace per connection
    testing::WsClient plain(p.port, "/v1/events/stream", p.key);
    plain.send(eur_event(id));
    ASSERT_TRUE(plain.read().has_value());
  }
  const auto traces = p.journal_traces_after(5);
  ASSERT_EQ(traces.size(), 5u);
  for (const char* id : {"s1", "s2", "s3"}) EXPECT_EQ(traces.at(id), "4bf92f3577b34da6a3ce929d0e0e4736") << id;
  for (const char* id : {"n1", "n2"}) {
    EXPECT_TRUE(observability::parse_traceparent("00-" + traces.at(id) + "-00f067aa0ba902b7-01").ok()) << id;
    EXPECT_NE(traces.at(id), "4bf92f3577b34da6a3ce929d0e0e4736") << id;
  }
  EXPECT_NE(traces.at("n1"), traces.at("n2"));
}

// Polls `read` until it returns a text containing `needle`.
std::string poll_until_contains(const std::function<std::string()>& read, const std::string& needle) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::string text = read();
  while (text.find(needle) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    text = read();
  }
  return text;
}

TEST(TracePropagation, OnKafkaTheRecordHeadersReadBackWithKcatTheJournalAndTheStatusCarryTheTrace) {
  testing::KafkaMock& kafka = testing::KafkaMock::shared();
  TempDir dir("settle-trace-kafka");
  const fs::path data = dir.path() / "data";
  const fs::path empty = dir.path() / "none.ndjson";
  std::ofstream(empty).flush();
  const fs::path fixtures = fs::path(SETTLE_SOURCE_DIR) / "tests/e2e/fixtures/basic";
  settled_stdout({"ingest", "--bus", kafka.url(), "--data-dir", data.string(), "--merchants",
                  (fixtures / "merchants.json").string(), "--events", empty.string()},
                 dir.path());
  const std::string key = settled_stdout(
      {"keys", "create", "--merchant", "m-eur", "--bus", kafka.url(), "--data-dir", data.string()}, dir.path());
  ASSERT_FALSE(key.empty());

  // The gateway and the processor as their own processes on Kafka, sharing
  // the data directory's SQLite ledger.
  const int port = testing::free_port();
  ProcessOptions g;
  g.argv = {SETTLED_BIN, "gateway", "--bus", kafka.url(), "--data-dir", data.string(),
            "--listen", "127.0.0.1:" + std::to_string(port), "--log-format", "json", "--log-level", "debug"};
  g.log = dir.path() / "gateway.log";
  Process gateway(g);
  ProcessOptions pr;
  pr.argv = {SETTLED_BIN, "processor", "--bus", kafka.url(), "--data-dir", data.string(), "--log-format", "json",
             "--idle-ms", "50", "--grace-ms", "0"};
  pr.log = dir.path() / "processor.log";
  Process processor(pr);
  ASSERT_TRUE(gateway.wait_for_output("stop with SIGTERM", std::chrono::seconds(60))) << gateway.log_tail();
  ASSERT_TRUE(processor.wait_for_output("stop with SIGTERM", std::chrono::seconds(60))) << processor.log_tail();

  const auto posted = testing::http_request(
      port, "POST", "/v1/events", eur_event("k1"),
      {{"Authorization", "Bearer " + key}, {"Content-Type", "application/json"}, {"traceparent", kParent}});
  ASSERT_EQ(posted.status, 202u) << posted.body;
  const std::string trace = "4bf92f3577b34da6a3ce929d0e0e4736";

  // The events topic's record, read back by kcat: its traceparent header.
  auto kcat = [&](const std::string& topic, const std::string& format) {
    ProcessOptions k;
    k.argv = {"kcat", "-C", "-b", kafka.bootstrap(), "-t", topic, "-o", "beginning", "-e", "-q", "-f", format};
    std::string out;
    EXPECT_EQ(testing::run(k, &out), 0) << out;
    return out;
  };
  const std::string headers = poll_until_contains([&] { return kcat("events", "%h\n"); }, "traceparent=");
  EXPECT_THAT(headers, HasSubstr("traceparent=00-" + trace + "-"));
  EXPECT_THAT(headers, HasSubstr("traceparent=" + posted.header("traceparent")));

  // The processor's ledger journal and its status messages on Kafka.
  const std::string journal = poll_until_contains(
      [&] {
        ProcessOptions q;
        q.argv = {"sqlite3", (data / "ledger.db").string(), "SELECT trace_id FROM journals WHERE ref = 'k1'"};
        std::string out;
        (void)testing::run(q, &out);
        return out;
      },
      trace);
  EXPECT_EQ(journal, trace + "\n");
  const std::string statuses = poll_until_contains([&] { return kcat("status", "%s\n"); }, "\"batch_open\"");
  bool posted_traced = false, open_traced = false;
  std::istringstream lines(statuses);
  for (std::string line; std::getline(lines, line);) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object() || j.value("merchant_id", "") != "m-eur") continue;
    if (j.value("kind", "") == "event_posted") posted_traced = j.value("trace_id", "") == trace;
    if (j.value("kind", "") == "batch_open") open_traced = j.value("trace_id", "") == trace;
  }
  EXPECT_TRUE(posted_traced) << statuses;
  EXPECT_TRUE(open_traced) << statuses;

  // The gateway's access line of the request carries it too.
  ASSERT_EQ(WEXITSTATUS(gateway.stop()), 0) << gateway.log_tail();
  ASSERT_EQ(WEXITSTATUS(processor.stop()), 0) << processor.log_tail();
  const auto access = json_log_lines_with_trace(g.log, trace);
  ASSERT_FALSE(access.empty()) << gateway.log_tail();
  EXPECT_THAT(access.front().value("message", ""), HasSubstr("POST /v1/events 202"));
}

TEST(TraceCommand, SaysWhenNoEventCarriesTheTraceAndRefusesAMalformedId) {
  TempDir dir("settle-trace-none");
  const fs::path data = dir.path() / "data";
  settled_stdout({"keys", "list", "--data-dir", data.string()}, dir.path());  // creates the data directory
  ProcessOptions o;
  o.argv = {SETTLED_BIN, "trace", "4bf92f3577b34da6a3ce929d0e0e4736", "--data-dir", data.string()};
  std::string out;
  EXPECT_EQ(testing::run(o, &out), 1) << out;
  EXPECT_THAT(out, HasSubstr("no event on the bus carries trace 4bf92f3577b34da6a3ce929d0e0e4736"));
  o.argv = {SETTLED_BIN, "trace", "not-a-trace", "--data-dir", data.string()};
  EXPECT_EQ(testing::run(o, &out), 2) << out;
  EXPECT_THAT(out, HasSubstr("expected 32 lowercase hex digits"));
}

TEST(Logging, TheNotifyRoleLogsItsStartAndStopAsJsonLines) {
  TempDir dir("settle-log-notify");
  ProcessOptions o;
  o.argv = {SETTLED_BIN, "notify", "--data-dir", dir.path().string(), "--listen", "127.0.0.1:0", "--log-format", "json"};
  o.log = dir.path() / "notify.log";
  Process notify(o);
  ASSERT_TRUE(notify.wait_for_output("stop with SIGTERM", std::chrono::seconds(60))) << notify.log_tail();
  ASSERT_EQ(WEXITSTATUS(notify.stop()), 0) << notify.log_tail();
  std::vector<std::string> messages;
  std::ifstream in(o.log);
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(j.is_object()) << "not a JSON line: " << line;
    EXPECT_EQ(j.value("component", ""), "notify") << line;
    EXPECT_EQ(j.value("level", ""), "info") << line;
    EXPECT_TRUE(j.contains("time")) << line;
    messages.push_back(j.value("message", ""));
  }
  ASSERT_EQ(messages.size(), 2u) << notify.log_tail();
  EXPECT_THAT(messages[0], HasSubstr("on http://127.0.0.1:"));
  EXPECT_THAT(messages[1], StartsWith("stopped; 0 messages sent"));
}

TEST(Logging, ARoleRefusesAnUnknownLogFormatOrLevel) {
  TempDir dir("settle-log-flags");
  for (const auto& [flag, value] : {std::pair{"--log-format", "xml"}, std::pair{"--log-level", "loud"}}) {
    ProcessOptions o;
    o.argv = {SETTLED_BIN, "worker", "--data-dir", dir.path().string(), flag, value};
    std::string out;
    EXPECT_EQ(testing::run(o, &out), 2) << out;
    EXPECT_THAT(out, HasSubstr(std::string(flag) + " must be")) << out;
  }
}

}  // namespace
}  // namespace settle
