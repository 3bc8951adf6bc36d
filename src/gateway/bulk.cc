#include "gateway/bulk.h"

#include "gateway/csv_events.h"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>

namespace settle::gateway {

struct BulkUpload::Sha {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  Sha() { EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr); }
  ~Sha() { EVP_MD_CTX_free(ctx); }
  void update(std::string_view b) { EVP_DigestUpdate(ctx, b.data(), b.size()); }
  std::string hex() {
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx, d, &n);
    std::string out;
    for (unsigned int i = 0; i < n; ++i) out += fmt::format("{:02x}", d[i]);
    return out;
  }
};

struct BulkUpload::InFlight {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Result<std::vector<Verdict>>> result;  // set once the append ended
  std::vector<std::int64_t> lines;                     // the batch's line numbers
};

BulkUpload::BulkUpload(Api& api, KeyInfo key, Format format, Idempotency idem, std::string traceparent)
    : api_(api), key_(std::move(key)), format_(format), traceparent_(std::move(traceparent)), idem_(std::move(idem)) {
  if (idem_.used) sha_ = std::make_unique<Sha>();
  batch_.reserve(api_.options().bulk_batch_events);
}

BulkUpload::~BulkUpload() {
  (void)settle_in_flight();  // its events count as accepted before
  if (on_end_ && !ended_) {
    (void)end(error_response(400, "incomplete_body",
                             fmt::format("the connection closed before the body ended; {} events accepted before",
                                         accepted_)));
  }
}

Response BulkUpload::end(Response r) {
  if (!traceparent_.empty()) r.headers.emplace_back("traceparent", traceparent_);
  if (on_end_ && !ended_) {
    ended_ = true;
    on_end_(*this, r);
  }
  return r;
}

Response BulkUpload::too_large(std::uint64_t limit) {
  (void)settle_in_flight();
  if (idem_.used && !idem_.stored) (void)api_.store().delete_if_equal(idem_.lock_key, "bulk");
  return end(error_response(413, "payload_too_large",
                            fmt::format("the body exceeds this upload's {} bytes; {} events accepted before", limit,
                                        accepted_)));
}

Status BulkUpload::feed(std::string_view bytes) {
  if (sha_) sha_->update(bytes);
  if (idem_.stored) return ok_status();  // a replay: the body is only compared
  const std::size_t max = api_.options().bulk_line_bytes_max;
  std::size_t i = 0;
  while (i < bytes.size()) {
    if (partial_.empty() && !line_too_long_ && !in_quotes_) record_line_ = line_no_ + 1;
    // Find the end of the record: a newline outside quotes.
    std::size_t end = std::string_view::npos;
    if (format_ == Format::kNdjson) {
      const void* nl = std::memchr(bytes.data() + i, '\n', bytes.size() - i);
      if (nl) end = static_cast<std::size_t>(static_cast<const char*>(nl) - bytes.data());
    } else {
      for (std::size_t j = i; j < bytes.size(); ++j) {
        if (bytes[j] == '"') in_quotes_ = !in_quotes_;
        if (bytes[j] == '\n') {
          ++line_no_;  // a line inside a quoted field still counts
          if (!in_quotes_) {
            end = j;
            --line_no_;
            break;
          }
        }
      }
    }
    const std::size_t stop = end == std::string_view::npos ? bytes.size() : end;
    if (end != std::string_view::npos && partial_.empty() && !line_too_long_) {
      // The whole line is in this piece: parse it in place, without a copy.
      ++line_no_;
      if (stop - i > max) {
        ++lines_;
        reject(record_line_, "", fmt::format("longer than {} bytes", max));
      } else {
        SETTLE_TRY(record(bytes.substr(i, stop - i)));
      }
      i = end + 1;
      continue;
    }
    if (!line_too_long_) {
      if (partial_.size() + (stop - i) > max) {
        line_too_long_ = true;
        partial_.clear();
        partial_.shrink_to_fit();
      } else {
        partial_.append(bytes.data() + i, stop - i);
      }
    }
    if (end == std::string_view::npos) break;
    ++line_no_;
    if (line_too_long_) {
      ++lines_;
      reject(record_line_, "", fmt::format("longer than {} bytes", max));
      line_too_long_ = false;
    } else {
      SETTLE_TRY(record(partial_));
    }
    partial_.clear();
    i = end + 1;
  }
  return ok_status();
}

void BulkUpload::reject(std::int64_t line, std::string field, std::string reason) {
  ++rejected_;
  if (errors_listed_ >= static_cast<std::int64_t>(api_.options().bulk_errors_max)) return;
  if (errors_listed_ > 0) errors_ += ',';
  ++errors_listed_;
  errors_ += fmt::format("{{\"line\":{},\"field\":\"", line);
  model::append_json_escaped(errors_, field);
  errors_ += "\",\"reason\":\"";
  model::append_json_escaped(errors_, reason);
  errors_ += "\"}";
}

Status BulkUpload::record(std::string_view text) {
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  if (text.find_first_not_of(" \t") == std::string_view::npos) return ok_status();
  const std::int64_t line = record_line_;
  std::string json;
  std::string_view event_text = text;
  bool has_metadata = false;
  if (format_ == Format::kCsv) {
    if (columns_.empty()) {
      auto columns = csv_header(text);
      if (!columns.ok()) {
        return make_error(ErrorCode::kInvalidArgument, fmt::format("line {}: {}", line, columns.error().message));
      }
      columns_ = std::move(columns).value();
      return ok_status();
    }
    ++lines_;
    const auto cells = split_csv(text);
    if (cells.size() != columns_.size()) {
      reject(line, "", fmt::format("has {} fields, the header has {}", cells.size(), columns_.size()));
      return ok_status();
    }
    json = csv_event_json(columns_, cells, has_metadata);
    event_text = json;
  } else {
    ++lines_;
  }
  auto ev = parser_.parse(event_text);
  if (!ev.ok()) {
    const std::string& m = ev.error().message;
    if (has_metadata && (m.starts_with("not valid JSON") || m.starts_with("unexpected text"))) {
      reject(line, "metadata", "must be a JSON object of strings");
    } else {
      Detail d = detail_of(m, "");
      reject(line, std::move(d.field), std::move(d.reason));
    }
    return ok_status();
  }
  if (key_.scope != Scope::kAdmin && ev->merchant_id.str() != key_.merchant_id) {
    reject(line, "merchant_id", fmt::format("this key may not write merchant '{}'", ev->merchant_id.str()));
    return ok_status();
  }
  if (ev->merchant_id.view() != known_merchant_ && !api_.has_merchant(ev->merchant_id.view())) {
    reject(line, "merchant_id", fmt::format("unknown merchant '{}'", ev->merchant_id.str()));
    return ok_status();
  }
  if (ev->merchant_id.view() != known_merchant_) known_merchant_ = ev->merchant_id.str();
  batch_.push_back(std::move(ev).value());
  batch_lines_.push_back(line);
  batch_bytes_ += text.size();
  if (batch_.size() >= api_.options().bulk_batch_events || batch_bytes_ >= api_.options().bulk_batch_bytes) {
    return flush();
  }
  return ok_status();
}

Status BulkUpload::flush() {
  if (batch_.empty()) return ok_status();
  if (api_.rate_limiter().enabled()) {
    std::map<std::string_view, std::int64_t> per_merchant;
    for (const auto& ev : batch_) ++per_merchant[ev.merchant_id.view()];
    for (const auto& [merchant, n] : per_merchant) api_.rate_limiter().charge(merchant, n);
  }
  // The batch before must be durable first: verdicts count in order, and at
  // most two batches are held.
  SETTLE_TRY(settle_in_flight());
  auto flight = std::make_shared<InFlight>();
  flight->lines = std::move(batch_lines_);
  in_flight_ = flight;
  api_.claim_and_append_async(batch_, "bulk", traceparent_, [flight](Result<std::vector<Verdict>> decided) {
    std::lock_guard lock(flight->mu);
    flight->result.emplace(std::move(decided));
    flight->cv.notify_all();
  });
  batch_.clear();
  batch_lines_.clear();
  batch_bytes_ = 0;
  return ok_status();
}

Status BulkUpload::settle_in_flight() {
  if (!in_flight_) return ok_status();
  const std::shared_ptr<InFlight> flight = std::move(in_flight_);
  in_flight_.reset();
  std::unique_lock lock(flight->mu);
  flight->cv.wait(lock, [&] { return flight->result.has_value(); });
  if (!flight->result->ok()) return flight->result->error();
  const std::vector<Verdict>& verdicts = **flight->result;
  for (std::size_t i = 0; i < verdicts.size(); ++i) {
    switch (verdicts[i]) {
      case Verdict::kAccepted: ++accepted_; break;
      case Verdict::kDuplicate: ++duplicates_; break;
      case Verdict::kConflict:
        reject(flight->lines[i], "event_id", "conflict: an event with this id and different content was accepted before");
        break;
    }
  }
  return ok_status();
}

Response BulkUpload::fail(const Error& error) {
  (void)settle_in_flight();  // the batch appending before the failure counts as accepted
  if (idem_.used && !idem_.stored) (void)api_.store().delete_if_equal(idem_.lock_key, "bulk");
  const unsigned status = error.code == ErrorCode::kInvalidArgument ? 422 : 503;
  Response r = error_response(status, status == 422 ? "validation_failed" : "unavailable",
                              fmt::format("{}; {} events accepted before this", error.message, accepted_));
  return end(std::move(r));
}

Response BulkUpload::finish() {
  if (!idem_.stored) {
    if (in_quotes_) {
      ++lines_;
      reject(record_line_, "", "a quoted field is not closed");
    } else if (line_too_long_) {
      ++lines_;
      reject(record_line_, "", fmt::format("longer than {} bytes", api_.options().bulk_line_bytes_max));
    } else if (!partial_.empty()) {
      if (auto st = record(partial_); !st.ok()) return fail(st.error());
    }
    if (auto st = flush(); !st.ok()) return fail(st.error());
    if (auto st = settle_in_flight(); !st.ok()) return fail(st.error());
  }
  const std::string digest = sha_ ? sha_->hex() : std::string();
  if (idem_.stored) {
    const std::string& s = *idem_.stored;
    const std::size_t a = s.find('\n');
    const std::size_t b = s.find('\n', a + 1);
    if (a == std::string::npos || b == std::string::npos || s.compare(0, a, digest) != 0) {
      return error_response(422, "idempotency_key_reused",
                            "this Idempotency-Key was used with a different request body or path");
    }
    Response r{static_cast<unsigned>(std::stoul(s.substr(a + 1, b - a - 1))), s.substr(b + 1), {}};
    r.headers.emplace_back("Idempotent-Replayed", "true");
    return r;
  }
  const std::int64_t omitted = rejected_ - errors_listed_;
  Response r{202,
             fmt::format("{{\"lines\":{},\"accepted\":{},\"duplicates\":{},\"rejected\":{},\"errors\":[{}],"
                         "\"errors_omitted\":{}}}",
                         lines_, accepted_, duplicates_, rejected_, errors_, omitted),
             {}};
  if (idem_.used) {
    (void)api_.store().put_if_absent(idem_.resp_key, fmt::format("{}\n{}\n{}", digest, r.status, r.body),
                                     api_.options().idempotency_ttl);
  }
  return end(std::move(r));
}

}  // namespace settle::gateway
