// The HTTP gateway's server: Boost.Beast over Asio, with a configurable
// number of I/O threads, a time-out on every request (a slow client cannot
// hold a thread or a connection), a cap on concurrent connections, and a
// request body limit (413). Requests are handled on a separate pool of
// handler threads, since they block on the bus (fsync) and the ledger; the
// I/O threads only read and write sockets. Beast stays out of this header.
//
// start() binds and returns; stop() closes the listener and every connection
// and joins the threads. The bus, ledger and store must outlive the server.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "bus/bus.h"
#include "common/result.h"
#include "gateway/api.h"
#include "idempotency/store.h"
#include "ledger/ledger.h"

namespace settle::gateway {

struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;  // 0: any free port (see Server::port())
  // Threads that run Asio's event loop (socket reads and writes). Each runs
  // an io_context of its own; connections are spread over them in turn.
  int io_threads = 2;
  // Threads that run request handlers (bus appends, ledger queries). More lets
  // more single-event requests wait on their fsync at once.
  int handler_threads = 8;
  // A request must arrive completely (headers and body) within this, and a
  // response be written within it; an idle keep-alive connection is closed
  // after it.
  std::chrono::milliseconds request_timeout = std::chrono::seconds(30);
  // Connections beyond this are answered 503 and closed.
  std::size_t max_connections = 1024;
  // Larger request bodies get 413.
  std::size_t body_limit_bytes = std::size_t{1} << 20;
  // WebSocket /v1/events/stream (stream.h). A larger message closes the
  // stream with 1009.
  std::size_t stream_message_bytes_max = std::size_t{1} << 20;
  // Events read from a connection and not yet acknowledged: beyond this the
  // server stops reading the socket until acks are written (the bus is
  // behind, or the client does not read its acks), so TCP pushes back. A
  // connection holds at most this plus one message's events.
  std::size_t stream_in_flight_max = 4096;
  // An idle stream is pinged at half of this and closed when nothing (not
  // even a pong) arrived within it.
  std::chrono::milliseconds stream_idle_timeout = std::chrono::seconds(60);
  // TLS (both or neither): a PEM certificate chain and its private key. With
  // them every connection must speak TLS 1.2 or later; plain HTTP gets a 400
  // tls_required and is closed.
  std::string tls_cert_file;
  std::string tls_key_file;
  ApiOptions api;
};

class Server {
 public:
  Server(bus::Bus& bus, ledger::Ledger& ledger, idempotency::Store& store, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Opens the API (keys, merchants), binds and starts serving.
  Status start();
  void stop();
  // The bound port (after start()).
  std::uint16_t port() const;
  Api& api();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace settle::gateway
