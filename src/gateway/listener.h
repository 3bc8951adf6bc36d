// The listening socket of the HTTP servers (the gateway's and notify's): binds
// host:port on an io_context and hands each accepted connection, on a strand
// of its own, to a callback until it is closed.
#pragma once

// Boost 1.74's Asio with g++ 12 in C++20 needs <utility> before it.
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace settle::gateway {

class Listener {
 public:
  using OnAccept = std::function<void(boost::asio::ip::tcp::socket)>;

  explicit Listener(boost::asio::io_context& ioc);

  // Binds host:port (port 0: any free one) and listens. Errors name the
  // server (`who`: "gateway", "notify"), the address and the step:
  // kInvalidArgument when host is not an IP address, kUnavailable when the
  // socket cannot be opened, bound or listened on.
  Status listen(std::string_view who, const std::string& host, std::uint16_t port);
  // The port bound by listen().
  std::uint16_t port() const { return port_; }
  // Accepts connections until close(); each goes to on_accept, on a strand
  // of its own, from a thread running the io_context.
  void accept(OnAccept on_accept);
  // Stops accepting; from any thread (it runs on the io_context).
  void close();

 private:
  void next();

  boost::asio::io_context& ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  OnAccept on_accept_;
  std::uint16_t port_ = 0;
};

}  // namespace settle::gateway
