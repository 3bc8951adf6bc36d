// Boost 1.74's Asio with g++ 12 in C++20 needs <utility> before it.
#include <utility>

#include "ws_client.h"

#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>

namespace settle::testing {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace asio = boost::asio;

struct WsClient::Impl {
  asio::io_context ioc;
  websocket::stream<beast::tcp_stream> ws{ioc};
  beast::flat_buffer buffer;
  int pongs = 0;
  int close_code = 0;
  std::string close_reason;
  // send_all()
  std::function<std::string(std::size_t)> message_for;
  std::size_t to_send = 0;
  std::size_t started = 0;
  std::size_t sent = 0;
  std::string current;
  beast::error_code write_error;

  void write_next() {
    if (started >= to_send) return;
    current = message_for(started++);
    ws.async_write(asio::buffer(current), [this](beast::error_code ec, std::size_t) {
      if (ec) {
        write_error = ec;
        return;
      }
      ++sent;
      write_next();
    });
  }
};

WsClient::WsClient(int port, const std::string& target, const std::string& key, int receive_buffer_bytes,
                   const std::string& traceparent)
    : impl_(std::make_unique<Impl>()) {
  auto& ws = impl_->ws;
  if (receive_buffer_bytes > 0) {
    auto& socket = beast::get_lowest_layer(ws).socket();
    socket.open(asio::ip::tcp::v4());
    socket.set_option(asio::socket_base::receive_buffer_size(receive_buffer_bytes));
  }
  beast::get_lowest_layer(ws).connect(
      asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
  ws.set_option(websocket::stream_base::decorator([key, traceparent](websocket::request_type& req) {
    if (!key.empty()) req.set(http::field::authorization, "Bearer " + key);
    if (!traceparent.empty()) req.set("traceparent", traceparent);
  }));
  ws.control_callback([this](websocket::frame_type kind, beast::string_view) {
    if (kind == websocket::frame_type::pong) ++impl_->pongs;
  });
  ws.read_message_max(64 << 20);
  // The asynchronous handshake (unlike 1.74's synchronous one) keeps the
  // response of a declined upgrade.
  websocket::response_type res;
  beast::error_code ec;
  bool done = false;
  ws.async_handshake(res, "127.0.0.1", target, [&](beast::error_code e) {
    ec = e;
    done = true;
  });
  impl_->ioc.run_for(std::chrono::seconds(30));
  impl_->ioc.restart();
  if (!done) throw std::runtime_error("websocket handshake: no answer");
  if (ec == websocket::error::upgrade_declined) throw UpgradeRefused(res.result_int(), res.body());
  if (ec) throw std::runtime_error("websocket handshake: " + ec.message());
}

WsClient::~WsClient() {
  beast::error_code ec;
  beast::get_lowest_layer(impl_->ws).socket().close(ec);
}

void WsClient::send(const std::string& text) {
  impl_->ws.text(true);
  impl_->ws.write(asio::buffer(text));
}

void WsClient::send_binary(const std::string& bytes) {
  impl_->ws.binary(true);
  impl_->ws.write(asio::buffer(bytes));
  impl_->ws.text(true);
}

void WsClient::ping() { impl_->ws.ping({}); }

std::optional<std::string> WsClient::read(int timeout_ms) {
  Impl& d = *impl_;
  bool done = false;
  beast::error_code rec;
  d.ws.async_read(d.buffer, [&](beast::error_code ec, std::size_t) {
    done = true;
    rec = ec;
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!done && std::chrono::steady_clock::now() < deadline) {
    if (d.ioc.stopped()) d.ioc.restart();
    d.ioc.run_one_until(deadline);
  }
  if (!done) {
    beast::error_code ignored;
    beast::get_lowest_layer(d.ws).socket().close(ignored);
    while (!done) {
      if (d.ioc.stopped()) d.ioc.restart();
      d.ioc.run_one();
    }
    throw std::runtime_error("no message within " + std::to_string(timeout_ms) + " ms");
  }
  if (rec == websocket::error::closed) {
    d.close_code = static_cast<int>(d.ws.reason().code);
    d.close_reason = std::string(d.ws.reason().reason.c_str());
    return std::nullopt;
  }
  if (rec) throw std::runtime_error("websocket read: " + rec.message());
  std::string out = beast::buffers_to_string(d.buffer.data());
  d.buffer.consume(d.buffer.size());
  return out;
}

int WsClient::close_code() const { return impl_->close_code; }
std::string WsClient::close_reason() const { return impl_->close_reason; }
int WsClient::pongs() const { return impl_->pongs; }
std::size_t WsClient::sent() const { return impl_->sent; }

void WsClient::send_all(std::size_t n, std::function<std::string(std::size_t)> message_for) {
  Impl& d = *impl_;
  d.ws.text(true);
  d.message_for = std::move(message_for);
  d.to_send = n;
  d.started = 0;
  d.sent = 0;
  d.write_next();
}

std::size_t WsClient::run_until_stalled(int stall_ms) {
  Impl& d = *impl_;
  for (;;) {
    const std::size_t before = d.sent;
    if (d.ioc.stopped()) d.ioc.restart();
    d.ioc.run_for(std::chrono::milliseconds(stall_ms));
    if (d.write_error) throw std::runtime_error("websocket write: " + d.write_error.message());
    if (d.sent == d.to_send || d.sent == before) return d.sent;
  }
}

}  // namespace settle::testing
