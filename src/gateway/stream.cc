#include "gateway/stream.h"

#include <fmt/format.h>

#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/assert.h"
#include "model/event_json.h"

namespace settle::gateway {
namespace {

bool is_syntax_error(std::string_view message) {
  return message.starts_with("not valid JSON") || message.starts_with("unexpected text");
}

// The client's event_id of an event that did not parse as one (to echo it),
// or nullopt when the text has none.
std::optional<std::string> event_id_of(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  auto it = j.find("event_id");
  if (it == j.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

struct Ack {
  std::optional<std::string> event_id;
  enum class Status : std::uint8_t { kPending, kAccepted, kDuplicate, kRejected } status = Status::kPending;
  std::string code;  // rejected only
  std::string field;
  std::string reason;

  void reject(std::string c, std::string f, std::string r) {
    status = Status::kRejected;
    code = std::move(c);
    field = std::move(f);
    reason = std::move(r);
  }
};

void append_ack(std::string& out, std::int64_t seq, const Ack& a) {
  out += "{\"seq\":";
  out += std::to_string(seq);
  out += ",\"event_id\":";
  if (a.event_id) {
    out += '"';
    model::append_json_escaped(out, *a.event_id);
    out += '"';
  } else {
    out += "null";
  }
  switch (a.status) {
    case Ack::Status::kPending: SETTLE_ASSERT(false, "an event left without a verdict"); return;
    case Ack::Status::kAccepted: out += ",\"status\":\"accepted\"}\n"; return;
    case Ack::Status::kDuplicate: out += ",\"status\":\"duplicate\"}\n"; return;
    case Ack::Status::kRejected: break;
  }
  out += ",\"status\":\"rejected\",\"errors\":[{\"code\":\"";
  model::append_json_escaped(out, a.code);
  out += "\",\"field\":\"";
  model::append_json_escaped(out, a.field);
  out += "\",\"reason\":\"";
  model::append_json_escaped(out, a.reason);
  out += "\"}]}\n";
}

}  // namespace

std::vector<std::string_view> split_stream_message(std::string_view message) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < message.size()) {
    const void* nl = std::memchr(message.data() + i, '\n', message.size() - i);
    const std::size_t end = nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - message.data()) : message.size();
    std::string_view line = message.substr(i, end - i);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") != std::string_view::npos) out.push_back(line);
    i = end + 1;
  }
  return out;
}

EventStream::EventStream(Api& api, std::string secret, KeyInfo key, std::string merchant, std::string traceparent)
    : api_(api),
      secret_(std::move(secret)),
      key_(std::move(key)),
      merchant_(std::move(merchant)),
      traceparent_(std::move(traceparent)) {}

Result<std::string> EventStream::process(std::span<const std::string_view> texts) {
  std::vector<Ack> acks(texts.size());
  auto key = api_.keys().authenticate(secret_);
  if (key.ok() && !key->has_value()) {
    return make_error(ErrorCode::kFailedPrecondition, "the API key was revoked");
  }
  const bool admin = key_.scope == Scope::kAdmin;

  thread_local model::EventParser parser;
  std::vector<model::Event> events;
  std::vector<std::size_t> index;  // events[k] is texts[index[k]]
  events.reserve(texts.size());
  index.reserve(texts.size());
  if (!key.ok()) {
    for (std::size_t i = 0; i < texts.size(); ++i) {
      acks[i].event_id = event_id_of(texts[i]);
      acks[i].reject("unavailable", "", key.error().message);
    }
  }
  for (std::size_t i = 0; i < texts.size() && key.ok(); ++i) {
    Ack& a = acks[i];
    auto ev = parser.parse(texts[i]);
    if (!ev.ok()) {
      a.event_id = event_id_of(texts[i]);
      const std::string& m = ev.error().message;
      Detail d = detail_of(m, "");
      a.reject(is_syntax_error(m) ? "malformed_json" : "validation_failed", std::move(d.field), std::move(d.reason));
      continue;
    }
    a.event_id = ev->event_id.str();
    const std::string_view merchant = ev->merchant_id.view();
    if ((!admin && merchant != key_.merchant_id) || (!merchant_.empty() && merchant != merchant_)) {
      a.reject("forbidden", "merchant_id", fmt::format("this stream may not write merchant '{}'", merchant));
      continue;
    }
    if (!api_.has_merchant(merchant)) {
      a.reject("validation_failed", "merchant_id", fmt::format("unknown merchant '{}'", merchant));
      continue;
    }
    events.push_back(std::move(ev).value());
    index.push_back(i);
  }

  // Rate limit, in events: as many of each merchant's events as it has
  // tokens for go on, in order; the rest are rejected.
  if (api_.rate_limiter().enabled() && !events.empty()) {
    std::map<std::string_view, std::int64_t> per_merchant;
    for (const auto& ev : events) ++per_merchant[ev.merchant_id.view()];
    std::map<std::string_view, std::pair<std::int64_t, RateDecision>> allowed;  // how many may go on
    for (const auto& [merchant, n] : per_merchant) {
      RateDecision d = api_.rate_limiter().take(merchant, n);
      std::int64_t ok = n;
      if (!d.allowed) {
        ok = d.remaining;
        if (ok > 0) api_.rate_limiter().take(merchant, ok);
      }
      allowed[merchant] = {ok, d};
    }
    std::vector<model::Event> kept;
    std::vector<std::size_t> kept_index;
    for (std::size_t k = 0; k < events.size(); ++k) {
      auto& [left, d] = allowed[events[k].merchant_id.view()];
      if (left > 0) {
        --left;
        kept.push_back(std::move(events[k]));
        kept_index.push_back(index[k]);
      } else {
        acks[index[k]].reject("rate_limited", "",
                              fmt::format("merchant '{}' is over its rate of {} events/s; retry after {} s",
                                          events[k].merchant_id.view(), d.limit, d.retry_after_s));
      }
    }
    events = std::move(kept);
    index = std::move(kept_index);
  }

  if (!events.empty()) {
    auto verdicts = api_.claim_and_append(events, "stream", traceparent_);
    for (std::size_t k = 0; k < events.size(); ++k) {
      Ack& a = acks[index[k]];
      if (!verdicts.ok()) {
        a.reject("unavailable", "", verdicts.error().message);
        continue;
      }
      switch ((*verdicts)[k]) {
        case Verdict::kAccepted: a.status = Ack::Status::kAccepted; break;
        case Verdict::kDuplicate: a.status = Ack::Status::kDuplicate; break;
        case Verdict::kConflict:
          a.reject("conflict", "event_id", "an event with this id and different content was accepted before");
          break;
      }
    }
  }

  std::string out;
  out.reserve(texts.size() * 64);
  for (const Ack& a : acks) append_ack(out, ++seq_, a);
  return out;
}

}  // namespace settle::gateway
