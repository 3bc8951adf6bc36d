// Streaming ingestion (the WebSocket at /v1/events/stream), independent of
// the transport: server.cc reads messages and writes acks; this decides them.
//
// A client sends text messages holding one event each or several as NDJSON
// (one event per line; blank lines are skipped). Every event gets one ack,
// in the order sent, numbered by `seq` (1, 2, ... per connection) and echoing
// the client's event_id:
//   {"seq":1,"event_id":"e1","status":"accepted"}
//   {"seq":2,"event_id":"e1","status":"duplicate"}
//   {"seq":3,"event_id":"e2","status":"rejected","errors":[{"code":"validation_failed","field":"amount","reason":"must be > 0 for a capture"}]}
// The validation, merchant scope, rate limit (counted in events) and
// dedup (accepted / duplicate / rejected with `conflict`) are POST
// /v1/events', event by event: one bad event does not reject its neighbours.
// An accepted ack is written only after the bus holds the event durably.
//
// Not thread safe: one stream is processed by one caller at a time.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "gateway/api.h"
#include "gateway/keys.h"

namespace settle::gateway {

// The events of one message: its non-blank lines (a trailing '\r' dropped).
std::vector<std::string_view> split_stream_message(std::string_view message);

class EventStream {
 public:
  // `secret` is the connection's key, checked again on every process() so
  // that revoking it ends the stream; `merchant` (may be empty) binds the
  // stream to one merchant's events. `traceparent`: the connection's trace
  // context, on the bus record of every event it appends.
  EventStream(Api& api, std::string secret, KeyInfo key, std::string merchant, std::string traceparent);

  // Decides the events (texts as split_stream_message() returns them) and
  // returns their acks, one JSON object per line, each ending in '\n', in
  // order. An error (kFailedPrecondition) means the key is no longer valid:
  // close the stream, nothing of this call was accepted. When the bus or
  // store is unavailable the events are acked `rejected` with code
  // `unavailable` (the client may send them again).
  Result<std::string> process(std::span<const std::string_view> events);

  std::int64_t events_seen() const { return seq_; }
  const std::string& traceparent() const { return traceparent_; }

 private:
  Api& api_;
  std::string secret_;
  KeyInfo key_;
  std::string merchant_;
  std::string traceparent_;
  std::int64_t seq_ = 0;
};

}  // namespace settle::gateway
