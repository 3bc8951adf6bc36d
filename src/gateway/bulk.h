// A bulk upload (POST /v1/events/bulk): NDJSON or CSV (a header row;
// `metadata` as a JSON column) fed in pieces of any size and parsed as a
// stream. Memory is bounded by one line (bulk_line_bytes_max) and one batch
// of events (bulk_batch_events), whatever the body's size. Each line is
// validated like POST /v1/events; valid events are claimed and appended to
// the bus a batch at a time: while one batch's append runs (on the bus
// committer, GroupAppender) the next is parsed, and a batch is handed over
// only once the one before is durable, so at most two batches are in memory
// and finish() answers only when every batch is durable. The answer is a summary with the errors by line number (the first
// bulk_errors_max, then a count).
//
// Not thread safe: one upload is fed by one caller at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/api.h"
#include "gateway/keys.h"
#include "model/event.h"
#include "model/event_json.h"

namespace settle::gateway {

class BulkUpload {
 public:
  enum class Format : std::uint8_t { kNdjson, kCsv };
  struct Idempotency {
    bool used = false;
    std::string lock_key;
    std::string resp_key;
    std::optional<std::string> stored;  // an earlier response: compare and replay
  };

  // `traceparent`: the upload's trace context, stamped on the bus record of
  // every event it appends and answered in the response's `traceparent`
  // header (Api::begin_bulk continues the request's or starts one).
  BulkUpload(Api& api, KeyInfo key, Format format, Idempotency idem, std::string traceparent);
  ~BulkUpload();

  // Takes the next piece of the body. An error means the upload cannot go on
  // (the bus or store is unavailable); answer fail() then.
  Status feed(std::string_view bytes);
  // The body ended: processes what is left and returns the summary.
  Response finish();
  // The response for an upload that could not go on (what was accepted
  // before stays accepted).
  Response fail(const Error& error);

  // The body is longer than `limit` bytes: stops, answers 413 (what was
  // accepted before stays accepted).
  Response too_large(std::uint64_t limit);

  // Called once with the upload's final response, from finish(), fail() or
  // too_large(), or from the destructor (a 400 incomplete_body) when the body
  // never ended (the client went away).
  using EndHandler = std::function<void(const BulkUpload&, const Response&)>;
  void on_end(EndHandler handler) { on_end_ = std::move(handler); }

  std::int64_t lines() const { return lines_; }
  std::int64_t accepted() const { return accepted_; }
  std::int64_t duplicates() const { return duplicates_; }
  std::int64_t rejected() const { return rejected_; }
  // The listed errors as JSON array elements (without the brackets).
  const std::string& errors_json() const { return errors_; }
  const std::string& traceparent() const { return traceparent_; }
  std::int64_t errors_omitted() const { return rejected_ - errors_listed_; }

 private:
  Status record(std::string_view text);  // one NDJSON line or CSV record
  Status flush();
  // Waits for the batch whose append runs, if any, and counts its verdicts.
  Status settle_in_flight();
  void reject(std::int64_t line, std::string field, std::string reason);
  Response end(Response r);

  Api& api_;
  KeyInfo key_;
  Format format_;
  std::string traceparent_;
  Idempotency idem_;
  struct Sha;  // streaming SHA-256 of the body (OpenSSL), for Idempotency-Key
  std::unique_ptr<Sha> sha_;

  std::string partial_;          // the current line so far
  bool in_quotes_ = false;       // CSV: inside a quoted field
  bool line_too_long_ = false;
  std::int64_t line_no_ = 0;     // lines started so far (1-based numbering)
  std::int64_t record_line_ = 0; // where the current record started
  std::vector<std::string> columns_;  // CSV header
  model::EventParser parser_;
  std::string known_merchant_;  // the last merchant found in the directory (merchants are never removed)
  std::vector<model::Event> batch_;
  std::vector<std::int64_t> batch_lines_;
  std::size_t batch_bytes_ = 0;
  struct InFlight;  // a batch handed to the bus, shared with its completion
  std::shared_ptr<InFlight> in_flight_;

  std::int64_t lines_ = 0;
  std::int64_t accepted_ = 0;
  std::int64_t duplicates_ = 0;
  std::int64_t rejected_ = 0;
  std::string errors_;  // JSON array elements
  std::int64_t errors_listed_ = 0;
  EndHandler on_end_;
  bool ended_ = false;
};

}  // namespace settle::gateway
