#include <utility>  // before Asio (Boost 1.74 with g++ 12 in C++20)

#include "observability/otlp_export.h"

#include <fmt/format.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace settle::observability {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

Status post_otlp_json(std::string_view endpoint, const std::string& body, std::chrono::milliseconds timeout) {
  constexpr std::string_view kScheme = "http://";
  if (endpoint.substr(0, kScheme.size()) != kScheme) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("--otlp-endpoint '{}': expected http://host:port[/path]", endpoint));
  }
  const std::string_view rest = endpoint.substr(kScheme.size());
  const std::size_t slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  std::string path = slash == std::string_view::npos ? std::string("/v1/traces") : std::string(rest.substr(slash));
  const std::size_t colon = authority.rfind(':');
  if (authority.empty() || colon == 0) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("--otlp-endpoint '{}': no host", endpoint));
  }
  const std::string host(authority.substr(0, colon));
  const std::string port(colon == std::string_view::npos ? "80" : authority.substr(colon + 1));
  try {
    asio::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.expires_after(timeout);
    tcp::resolver resolver(ioc);
    stream.connect(resolver.resolve(host, port));
    http::request<http::string_body> req(http::verb::post, path, 11);
    req.set(http::field::host, std::string(authority));
    req.set(http::field::content_type, "application/json");
    req.set(http::field::user_agent, "settled");
    req.body() = body;
    req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    if (res.result_int() < 200 || res.result_int() >= 300) {
      return make_error(ErrorCode::kUnavailable, fmt::format("OTLP collector {} answered {}: {}", endpoint,
                                                             res.result_int(), res.body().substr(0, 200)));
    }
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kUnavailable, fmt::format("OTLP collector {}: {}", endpoint, e.what()));
  }
  return ok_status();
}

}  // namespace settle::observability
