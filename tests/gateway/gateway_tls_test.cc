// TLS on the gateway: `settled gateway --tls-cert --tls-key` with a
// self-signed certificate made by the openssl CLI in the test. A verified
// HTTPS client is served (the same HTTP code path, keep-alive included);
// plain HTTP on that port gets a 400 tls_required and the port keeps serving
// TLS; the event stream works over wss and /metrics over HTTPS; half a TLS
// configuration or an unreadable key refuses to start.
// Boost 1.74's Asio with g++ 12 in C++20 needs <utility> before it.
#include <utility>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "gateway_fixture.h"
#include "http_client.h"

namespace settle::testing {
namespace {

namespace fs = std::filesystem;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
namespace websocket = beast::websocket;
using nlohmann::json;

// Sends `count` GETs of `target` over one verified TLS connection (with a
// Bearer key when given).
std::vector<HttpResult> https_get(int port, const std::string& target, const fs::path& ca, int count = 1,
                                  const std::string& key = {}) {
  asio::io_context ioc;
  ssl::context ctx(ssl::context::tls_client);
  ctx.load_verify_file(ca.string());
  ctx.set_verify_mode(ssl::verify_peer);
  beast::ssl_stream<beast::tcp_stream> stream(ioc, ctx);
  stream.set_verify_callback(ssl::host_name_verification("127.0.0.1"));
  beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(10));
  beast::get_lowest_layer(stream).connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                                                                  static_cast<unsigned short>(port)));
  stream.handshake(ssl::stream_base::client);
  std::vector<HttpResult> out;
  beast::flat_buffer buffer;
  for (int i = 0; i < count; ++i) {
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "127.0.0.1");
    if (!key.empty()) req.set(http::field::authorization, "Bearer " + key);
    http::write(stream, req);
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    out.push_back(HttpResult{res.result_int(), res.body(), {}});
  }
  return out;
}

// A WebSocket over verified TLS (wss) on /v1/events/stream with a Bearer key.
class WssClient {
 public:
  WssClient(int port, const fs::path& ca, const std::string& key) : ctx_(ssl::context::tls_client), ws_(ioc_, ctx_) {
    ctx_.load_verify_file(ca.string());
    ctx_.set_verify_mode(ssl::verify_peer);
    ws_.next_layer().set_verify_callback(ssl::host_name_verification("127.0.0.1"));
    beast::get_lowest_layer(ws_).expires_after(std::chrono::seconds(10));
    beast::get_lowest_layer(ws_).connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                                                                 static_cast<unsigned short>(port)));
    ws_.next_layer().handshake(ssl::stream_base::client);
    beast::get_lowest_layer(ws_).expires_never();
    ws_.set_option(websocket::stream_base::decorator(
        [key](websocket::request_type& req) { req.set(http::field::authorization, "Bearer " + key); }));
    ws_.handshake("127.0.0.1", "/v1/events/stream");
  }
  void send(const std::string& text) {
    ws_.text(true);
    ws_.write(asio::buffer(text));
  }
  // The acks of the next message, one JSON object per line.
  std::vector<json> read_acks() {
    beast::flat_buffer buffer;
    ws_.read(buffer);
    std::istringstream in(beast::buffers_to_string(buffer.data()));
    std::vector<json> out;
    for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
    return out;
  }
  void close() { ws_.close(websocket::close_code::normal); }

 private:
  asio::io_context ioc_;
  ssl::context ctx_;
  websocket::stream<beast::ssl_stream<beast::tcp_stream>> ws_;
};

class Tls : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<TempDir>("gateway-tls");
    cert_ = dir_->path() / "cert.pem";
    key_ = dir_->path() / "key.pem";
    ProcessOptions o;
    o.argv = {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
              "-keyout", key_.string(), "-out", cert_.string(), "-days", "2", "-subj", "/CN=127.0.0.1",
              "-addext", "subjectAltName=IP:127.0.0.1"};
    std::string out;
    ASSERT_EQ(run(o, &out), 0) << "openssl (scripts/setup installs it): " << out;
  }

  std::unique_ptr<TempDir> dir_;
  fs::path cert_, key_;
};

TEST_F(Tls, HttpsIsServedAndPlainHttpOnTheSamePortIsRefusedCleanly) {
  GatewayProcess gw(dir_->path() / "data", {"--tls-cert", cert_.string(), "--tls-key", key_.string()});
  const int port = gw.port();
  EXPECT_NE(gw.log_tail().find(fmt::format("https://127.0.0.1:{}", port)), std::string::npos) << gw.log_tail();

  auto answers = https_get(port, "/healthz", cert_, 2);  // keep-alive: two requests, one connection
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[0].status, 200u) << answers[0].body;
  EXPECT_EQ(json::parse(answers[1].body)["status"], "ok");
  auto unauthorized = https_get(port, "/v1/keys", cert_);
  EXPECT_EQ(unauthorized[0].status, 401u) << unauthorized[0].body;

  auto plain = http_request(port, "GET", "/healthz");
  EXPECT_EQ(plain.status, 400u) << plain.body;
  EXPECT_EQ(json::parse(plain.body)["error"]["code"], "tls_required") << plain.body;
  RawConnection raw(port);
  raw.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  auto [reply, closed] = raw.read_until_close(5000);
  EXPECT_TRUE(closed) << "the plain connection is closed after the answer";
  EXPECT_EQ(reply.find("200 OK"), std::string::npos) << reply;

  EXPECT_EQ(https_get(port, "/healthz", cert_)[0].status, 200u) << "TLS still served after plain attempts";
  EXPECT_TRUE(gw.running());
}

TEST_F(Tls, EventsStreamOverWssAcksAfterTheBusAndMetricsAreServedOverHttps) {
  const fs::path data = dir_->path() / "data";
  settle_basic_fixture(data);
  const std::string key = create_key(data, dir_->path(), "m-eur");
  ASSERT_FALSE(key.empty());
  GatewayProcess gw(data, {"--tls-cert", cert_.string(), "--tls-key", key_.string()});
  const int port = gw.port();

  const std::string ev =
      R"({"event_id":"wss-1","merchant_id":"m-eur","type":"capture","amount":500,"currency":"EUR","occurred_at":"2026-03-30T10:00:00Z"})";
  {
    WssClient ws(port, cert_, key);
    ws.send(ev);
    auto acks = ws.read_acks();
    ASSERT_EQ(acks.size(), 1u);
    EXPECT_EQ(acks[0], json::parse(R"({"seq":1,"event_id":"wss-1","status":"accepted"})"));
    // The same event again, and a bad one, in one NDJSON message: two acks in order.
    ws.send(ev + "\n" + R"({"event_id":"wss-2","merchant_id":"m-eur","type":"capture","amount":0,"currency":"EUR","occurred_at":"2026-03-30T10:00:00Z"})");
    acks = ws.read_acks();
    ASSERT_EQ(acks.size(), 2u);
    EXPECT_EQ(acks[0]["status"], "duplicate");
    EXPECT_EQ(acks[1]["status"], "rejected");
    ws.close();
  }
  // Accepted means on the bus: the API finds the event.
  auto found = https_get(port, "/v1/merchants/m-eur/events/wss-1", cert_, 1, key);
  ASSERT_EQ(found[0].status, 200u) << found[0].body;
  EXPECT_EQ(json::parse(found[0].body)["accepted"], true);

  auto metrics = https_get(port, "/metrics", cert_);
  ASSERT_EQ(metrics[0].status, 200u) << metrics[0].body;
  EXPECT_NE(metrics[0].body.find("settle_events_accepted_total 1"), std::string::npos) << metrics[0].body;
  EXPECT_NE(metrics[0].body.find("settle_events_duplicate_total 1"), std::string::npos) << metrics[0].body;
}

TEST_F(Tls, HalfATlsConfigurationOrABadKeyRefusesToStart) {
  ProcessOptions o;
  o.argv = {SETTLED_BIN, "gateway", "--data-dir", (dir_->path() / "data").string(), "--listen", "127.0.0.1:0",
            "--tls-cert", cert_.string()};
  std::string out;
  EXPECT_NE(run(o, &out), 0);
  EXPECT_NE(out.find("--tls-key"), std::string::npos) << out;
  o.argv.insert(o.argv.end(), {"--tls-key", (dir_->path() / "missing.pem").string()});
  out.clear();
  EXPECT_NE(run(o, &out), 0);
  EXPECT_NE(out.find("missing.pem"), std::string::npos) << out;
}

}  // namespace
}  // namespace settle::testing
