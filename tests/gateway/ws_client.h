// A small WebSocket client (Boost.Beast) for the gateway's stream tests. All
// operations run on the client's own io_context in the calling thread, so a
// pipelined sender (send_all) and reads interleave without threads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace settle::testing {

// The server answered the upgrade with an HTTP status instead of 101.
struct UpgradeRefused : std::runtime_error {
  UpgradeRefused(unsigned s, std::string b)
      : std::runtime_error("upgrade refused: " + std::to_string(s) + " " + b), status(s), body(std::move(b)) {}
  unsigned status;
  std::string body;
};

class WsClient {
 public:
  // Connects to 127.0.0.1:port and upgrades `target` with `Authorization:
  // Bearer key` (none when key is empty). Throws UpgradeRefused, or
  // std::runtime_error when the exchange fails. receive_buffer_bytes > 0 pins
  // the socket's receive buffer (no autotuning): acks then back up sooner.
  // A non-empty `traceparent` is sent on the upgrade request.
  WsClient(int port, const std::string& target, const std::string& key, int receive_buffer_bytes = 0,
           const std::string& traceparent = {});
  ~WsClient();
  WsClient(const WsClient&) = delete;
  WsClient& operator=(const WsClient&) = delete;

  void send(const std::string& text);
  void send_binary(const std::string& bytes);
  void ping();
  // The next message, or nullopt when the server closed the stream (see
  // close_code()). Throws std::runtime_error after timeout_ms.
  std::optional<std::string> read(int timeout_ms = 30000);
  int close_code() const;  // the server's close code (0 when none)
  std::string close_reason() const;
  int pongs() const;

  // Pipelines messages message_for(0..n-1) without waiting for acks. Writes
  // progress only while the client runs (read(), run_until_stalled()).
  void send_all(std::size_t n, std::function<std::string(std::size_t)> message_for);
  // Runs until every message of send_all() is written or none was written
  // for stall_ms; returns how many were written.
  std::size_t run_until_stalled(int stall_ms);
  std::size_t sent() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace settle::testing
