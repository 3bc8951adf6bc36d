// The notify role's server (Boost.Beast over Asio): pushes status messages to
// WebSocket clients as the feed reads them, and answers the cached state.
//
//   GET  /v1/stream/status[?merchant_id=m1][&since=EPOCH:SEQ][&token=T]  WebSocket
//        (every merchant: since=EPOCH:MERCHANT:SEQ,EPOCH:MERCHANT:SEQ,...)
//   POST /v1/stream/tokens                  a short-lived token for a browser
//   GET  /v1/merchants/{id}/status          the cached state of a merchant
//   GET  /dashboard                         the live dashboard (dashboard.h)
//   GET  /healthz
//
// Authentication: `Authorization: Bearer <key>` (gateway/keys.h) or, on the
// WebSocket only, `token=` from POST /v1/stream/tokens. A merchant key (or
// token) sees only its merchant; an admin one any merchant, or every merchant
// when merchant_id is absent.
//
// Protocol (server to client, one JSON object per text message):
//   {"type":"resync","merchant_id":"m1","epoch":E,"seq":S,"batches":[...]}
//       the merchant's state; the messages that follow come after (E, S).
//       Sent on connect, and instead of history when `since` cannot be
//       served (another epoch, older than the history).
//   {"type":"status","epoch":E,"seq":S,"merchant_id":"m1","status":{...}}
//       one status update; per merchant, (E, S) increases within an epoch.
// With since=E:S (one merchant) the server sends exactly the messages after
// it from the history, then live ones, with no gap and no duplicate. An
// all-merchants stream resumes per merchant: since=E:M:S,... names each
// merchant's last (epoch, seq); each named merchant resumes (or gets its
// resync), every merchant not named gets its resync.
// Pings every idle_timeout/2; a client silent for idle_timeout is dropped.
// A client whose unsent messages exceed queue_max is closed with code 4008
// ("slow consumer"): it should reconnect with since= its last (epoch, seq).
//
// start() binds and returns; stop() closes everything and joins the threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "bus/bus.h"
#include "common/result.h"
#include "notify/status_cache.h"

namespace settle::notify {

inline constexpr std::uint16_t kSlowConsumerCloseCode = 4008;

struct NotifyOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8081;  // 0: any free port
  int io_threads = 2;
  int handler_threads = 2;    // cache reads (Redis) and key checks
  std::size_t queue_max = 1024;         // unsent messages per client
  std::size_t max_connections = 20'000;
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(60);
  std::chrono::milliseconds request_timeout = std::chrono::seconds(30);
  // The kernel send buffer of each client socket (0: the system's). Small
  // values bound memory per client and find slow clients sooner.
  int socket_send_buffer_bytes = 0;
  std::string token_secret;              // HMAC key of stream tokens; empty: random per process
  std::int64_t token_ttl_max_s = 3600;
  std::chrono::milliseconds poll_interval = std::chrono::milliseconds(10);
};

// "METHOD /path" of every HTTP route (the openapi test checks them).
struct NotifyRoute {
  const char* method;
  const char* path;
};
std::span<const NotifyRoute> notify_route_table();

class NotifyServer {
 public:
  NotifyServer(bus::Bus& bus, StatusCache& cache, NotifyOptions options);
  ~NotifyServer();
  NotifyServer(const NotifyServer&) = delete;
  NotifyServer& operator=(const NotifyServer&) = delete;

  Status start();
  void stop();
  std::uint16_t port() const;
  // A failure of the feed (the bus or the cache), or ok.
  Status failure() const;

  std::size_t clients() const;
  std::int64_t slow_closed() const;
  std::int64_t messages_sent() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace settle::notify
