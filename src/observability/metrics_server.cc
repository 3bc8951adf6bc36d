#include "observability/metrics_server.h"

#include <charconv>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace settle::observability {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct MetricsServer::Impl {
  explicit Impl(Metrics& m) : metrics(m), acceptor(ioc) {}
  Metrics& metrics;
  asio::io_context ioc;
  tcp::acceptor acceptor;
  std::uint16_t port = 0;
  std::thread thread;

  void accept() {
    acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec) return;  // closed: stopping
      serve(std::move(socket));
      accept();
    });
  }

  // One request per connection, with a deadline so a silent client cannot
  // hold the only thread.
  void serve(tcp::socket socket) {
    auto stream = std::make_shared<beast::tcp_stream>(std::move(socket));
    auto buffer = std::make_shared<beast::flat_buffer>();
    auto request = std::make_shared<http::request<http::empty_body>>();
    stream->expires_after(std::chrono::seconds(10));
    http::async_read(*stream, *buffer, *request,
                     [this, stream, buffer, request](beast::error_code ec, std::size_t) {
                       if (ec) return;
                       auto response = std::make_shared<http::response<http::string_body>>();
                       response->version(request->version());
                       response->keep_alive(false);
                       const auto raw = request->target();
                       const std::string_view target(raw.data(), raw.size());
                       const auto path = target.substr(0, target.find('?'));
                       if (request->method() != http::verb::get) {
                         response->result(http::status::method_not_allowed);
                         response->set(http::field::allow, "GET");
                       } else if (path == "/metrics") {
                         response->result(http::status::ok);
                         response->set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
                         response->body() = metrics.scrape();
                       } else if (path == "/healthz") {
                         response->result(http::status::ok);
                         response->set(http::field::content_type, "text/plain");
                         response->body() = "ok\n";
                       } else {
                         response->result(http::status::not_found);
                         response->set(http::field::content_type, "text/plain");
                         response->body() = "only /metrics and /healthz here\n";
                       }
                       response->prepare_payload();
                       http::async_write(*stream, *response,
                                         [stream, response](beast::error_code, std::size_t) {
                                           beast::error_code ignored;
                                           stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
                                         });
                     });
  }
};

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

MetricsServer::~MetricsServer() {
  asio::post(impl_->ioc, [impl = impl_.get()] {
    beast::error_code ignored;
    impl->acceptor.close(ignored);
  });
  impl_->ioc.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

std::uint16_t MetricsServer::port() const { return impl_->port; }

Result<std::unique_ptr<MetricsServer>> MetricsServer::start(Metrics& metrics, const std::string& host,
                                                            std::uint16_t port) {
  auto impl = std::make_unique<Impl>(metrics);
  beast::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) return make_error(ErrorCode::kInvalidArgument, "metrics listen address '" + host + "': " + ec.message());
  const tcp::endpoint endpoint(address, port);
  const auto where = host + ":" + std::to_string(port);
  if (impl->acceptor.open(endpoint.protocol(), ec); ec) return make_error(ErrorCode::kIo, "metrics: open " + where + ": " + ec.message());
  if (impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec); ec) {
    return make_error(ErrorCode::kIo, "metrics: configure " + where + ": " + ec.message());
  }
  if (impl->acceptor.bind(endpoint, ec); ec) return make_error(ErrorCode::kIo, "metrics: bind " + where + ": " + ec.message());
  if (impl->acceptor.listen(asio::socket_base::max_listen_connections, ec); ec) {
    return make_error(ErrorCode::kIo, "metrics: listen on " + where + ": " + ec.message());
  }
  impl->port = impl->acceptor.local_endpoint().port();
  impl->accept();
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->ioc.run(); });
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(impl)));
}

Result<std::pair<std::string, std::uint16_t>> parse_listen(const std::string& address) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) {
    return make_error(ErrorCode::kInvalidArgument,
                      "metrics listen address '" + address + "': expected HOST:PORT or :PORT");
  }
  std::string host = address.substr(0, colon);
  if (host.empty()) host = "127.0.0.1";
  unsigned port = 0;
  const char* first = address.data() + colon + 1;
  const char* last = address.data() + address.size();
  const auto [ptr, ec] = std::from_chars(first, last, port);
  if (ec != std::errc() || ptr != last || first == last || port > 65535) {
    return make_error(ErrorCode::kInvalidArgument,
                      "metrics listen address '" + address + "': the port must be a number 0-65535");
  }
  return std::pair{host, static_cast<std::uint16_t>(port)};
}

}  // namespace settle::observability
