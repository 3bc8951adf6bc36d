#include "gateway/listener.h"

#include <fmt/format.h>

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

namespace settle::gateway {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

Listener::Listener(asio::io_context& ioc) : ioc_(ioc), acceptor_(ioc) {}

Status Listener::listen(std::string_view who, const std::string& host, std::uint16_t port) {
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) return make_error(ErrorCode::kInvalidArgument, fmt::format("{}: '{}' is not an IP address", who, host));
  const tcp::endpoint endpoint(address, port);
  auto failed = [&](std::string_view step) {
    return make_error(ErrorCode::kUnavailable, fmt::format("{}: cannot {} {}:{}: {}", who, step, host, port, ec.message()));
  };
  if (acceptor_.open(endpoint.protocol(), ec); ec) return failed("open a socket for");
  if (acceptor_.set_option(asio::socket_base::reuse_address(true), ec); ec) return failed("configure");
  if (acceptor_.bind(endpoint, ec); ec) return failed("bind");
  if (acceptor_.listen(asio::socket_base::max_listen_connections, ec); ec) return failed("listen on");
  port_ = acceptor_.local_endpoint().port();
  return ok_status();
}

void Listener::accept(OnAccept on_accept) {
  on_accept_ = std::move(on_accept);
  next();
}

void Listener::next() {
  acceptor_.async_accept(asio::make_strand(ioc_), [this](boost::system::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) on_accept_(std::move(socket));
    next();
  });
}

void Listener::close() {
  asio::post(ioc_, [this] {
    boost::system::error_code ec;
    acceptor_.close(ec);
  });
}

}  // namespace settle::gateway
