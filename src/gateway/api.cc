#include "gateway/api.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/container/small_vector.hpp>
#include <charconv>
#include <future>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_set>

#include "gateway/bulk.h"
#include "gateway/signed_url.h"
#include "gateway/stream.h"
#include "gateway/recon_api.h"
#include "model/event_json.h"
#include "model/merchant_json.h"
#include "model/status_update.h"
#include "observability/log.h"
#include "observability/trace.h"
#include "processor/topics.h"
#include "rules/rules.h"

namespace settle::gateway {
namespace {

using nlohmann::ordered_json;

// event_accepted statuses are appended at most once per this: a live feed
// can wait 5 ms, and under load it saves an fsync per group of events
// (every other fsync of the gateway).
constexpr std::chrono::milliseconds kStatusLinger{5};

std::string dump(const ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Response json_response(unsigned status, const ordered_json& j) { return Response{status, dump(j), {}}; }

std::string url_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      unsigned v = 0;
      auto [p, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
      if (ec == std::errc() && p == s.data() + i + 3) {
        out += static_cast<char>(v);
        i += 2;
        continue;
      }
    }
    out += s[i] == '+' ? ' ' : s[i];
  }
  return out;
}

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    const std::size_t j = std::min(path.find('/', i), path.size());
    out.push_back(url_decode(path.substr(i, j - i)));
    i = j;
  }
  return out;
}

std::map<std::string, std::string> parse_query(std::string_view q) {
  std::map<std::string, std::string> out;
  std::size_t i = 0;
  while (i < q.size()) {
    const std::size_t amp = std::min(q.find('&', i), q.size());
    const std::string_view part = q.substr(i, amp - i);
    const std::size_t eq = part.find('=');
    if (!part.empty()) {
      if (eq == std::string_view::npos) {
        out[url_decode(part)] = "";
      } else {
        out[url_decode(part.substr(0, eq))] = url_decode(part.substr(eq + 1));
      }
    }
    i = amp + 1;
  }
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// ASCII case-insensitive equality with `lowercase` (which is lower case):
// HTTP's tokens are ASCII, and std::tolower is a call per character.
bool equals_lowercase(std::string_view s, std::string_view lowercase) {
  return s.size() == lowercase.size() && std::equal(s.begin(), s.end(), lowercase.begin(), [](char a, char l) {
           return (a >= 'A' && a <= 'Z' ? static_cast<char>(a - 'A' + 'a') : a) == l;
         });
}

bool is_json(std::string_view content_type) {
  std::string_view ct = content_type.substr(0, content_type.find(';'));
  const auto b = ct.find_first_not_of(' ');
  if (b == std::string_view::npos) return false;
  ct = ct.substr(b, ct.find_last_not_of(' ') - b + 1);
  return equals_lowercase(ct, "application/json");
}

// Appends the decimal digits of `n`.
template <typename Int>
void append_int(std::string& out, Int n) {
  const fmt::format_int digits(n);
  out.append(digits.data(), digits.size());
}

// The content digest of `bytes` as 32 hex digits, followed by `suffix`.
std::string digest_hex(std::string_view bytes, std::string_view suffix = {}) {
  const model::Digest d = model::digest_of(bytes);
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(32 + suffix.size());
  out.resize(32);
  for (int i = 15; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = kDigits[(d.hi >> (4 * (15 - i))) & 0xf];
    out[static_cast<std::size_t>(16 + i)] = kDigits[(d.lo >> (4 * (15 - i))) & 0xf];
  }
  out += suffix;
  return out;
}

// Splits a JSON array into the text of its elements, without parsing them
// (EventParser does, one at a time). Checks only the structure: brackets,
// strings and commas.
Result<std::vector<std::string_view>> split_array(std::string_view body) {
  std::vector<std::string_view> out;
  std::size_t i = body.find_first_not_of(" \t\r\n");
  auto bad = [](std::size_t at, std::string_view why) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("not valid JSON at byte {}: {}", at, why));
  };
  if (i == std::string_view::npos || body[i] != '[') return bad(0, "expected '['");
  ++i;
  auto skip_ws = [&] {
    while (i < body.size() && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n')) ++i;
  };
  skip_ws();
  if (i < body.size() && body[i] == ']') {
    ++i;
  } else {
    for (;;) {
      skip_ws();
      const std::size_t start = i;
      int depth = 0;
      bool in_string = false;
      for (; i < body.size(); ++i) {
        const char c = body[i];
        if (in_string) {
          if (c == '\\') {
            ++i;
          } else if (c == '"') {
            in_string = false;
          }
          continue;
        }
        if (c == '"') {
          in_string = true;
        } else if (c == '{' || c == '[') {
          ++depth;
        } else if (c == '}' || c == ']') {
          if (depth == 0) break;
          --depth;
        } else if (c == ',' && depth == 0) {
          break;
        }
      }
      if (i >= body.size()) return bad(body.size(), "unterminated array");
      std::size_t end = i;
      while (end > start && (body[end - 1] == ' ' || body[end - 1] == '\t' || body[end - 1] == '\r' ||
                             body[end - 1] == '\n')) {
        --end;
      }
      if (end == start) return bad(i, "empty element");
      out.push_back(body.substr(start, end - start));
      if (body[i] == ']') {
        ++i;
        break;
      }
      if (body[i] != ',') return bad(i, "expected ',' or ']'");
      ++i;
    }
  }
  skip_ws();
  if (i != body.size()) return bad(i, "text after the array");
  return out;
}

bool is_syntax_error(std::string_view message) {
  return message.starts_with("not valid JSON") || message.starts_with("unexpected text");
}

ordered_json balance_json(const ledger::Balance& b) {
  ordered_json j;
  j["account"] = b.account;
  j["currency"] = b.currency;
  j["balance"] = b.balance;
  j["postings"] = b.postings;
  return j;
}

// A closed batch as the report's columns (SETTLEMENT_RULES §7), so the API's
// rows are the report's rows.
ordered_json closed_batch_json(const model::BatchSummary& s) {
  static const std::vector<std::string> columns = [] {
    std::vector<std::string> cols;
    const std::string header = rules::report_header();
    std::size_t i = 0;
    while (i <= header.size()) {
      const std::size_t c = std::min(header.find(',', i), header.size());
      cols.push_back(header.substr(i, c - i));
      i = c + 1;
    }
    return cols;
  }();
  const std::string row = rules::report_row(s);
  ordered_json j;
  j["state"] = "closed";
  std::size_t i = 0;
  for (const std::string& col : columns) {
    const std::size_t c = std::min(row.find(',', i), row.size());
    const std::string cell = row.substr(i, c - i);
    i = c + 1;
    if (col == "merchant_id" || col == "batch_date" || col == "currency" || col == "payout_date") {
      j[col] = cell;
    } else {
      std::int64_t v = 0;
      std::from_chars(cell.data(), cell.data() + cell.size(), v);
      j[col] = v;
    }
  }
  return j;
}

ordered_json open_batch_json(const model::BatchKey& key, const model::ControlTotals& t) {
  using model::EventType;
  ordered_json j;
  j["state"] = "open";
  j["merchant_id"] = key.merchant_id.str();
  j["batch_date"] = format_date(key.batch_date);
  j["currency"] = key.currency;
  const std::pair<const char*, EventType> kinds[] = {{"captures", EventType::kCapture},
                                                     {"refunds", EventType::kRefund},
                                                     {"chargebacks", EventType::kChargeback},
                                                     {"reversals", EventType::kChargebackReversal},
                                                     {"adjustments", EventType::kAdjustment}};
  for (const auto& [name, type] : kinds) {
    j[fmt::format("{}_count", name)] = t.of(type).count;
    j[name] = t.of(type).amount;
  }
  j["fees"] = t.fees();
  return j;
}

// "<prefix>|<merchant>|<event id>". A merchant id has no '|', so the key
// names one (merchant, event id).
std::string merchant_event_key(std::string_view prefix, std::string_view merchant, std::string_view event_id) {
  std::string key;
  key.reserve(prefix.size() + merchant.size() + event_id.size() + 2);
  key.append(prefix).append(1, '|').append(merchant).append(1, '|').append(event_id);
  return key;
}

std::string claim_key(std::string_view merchant, std::string_view event_id) {
  return merchant_event_key("ev", merchant, event_id);
}

// An event's claim holds its content's digest; once the bus has the event
// the claim is replaced by the digest with this suffix: only then is a
// repeat a duplicate.
constexpr std::string_view kOnBusSuffix = "|bus";

// The digest a claim's value holds, and whether it says the event is on the bus.
struct ClaimValue {
  std::string_view digest;
  bool on_bus = false;
};

ClaimValue parse_claim_value(std::string_view value) {
  if (value.ends_with(kOnBusSuffix)) return {value.substr(0, value.size() - kOnBusSuffix.size()), true};
  return {value, false};
}

// Versions before the claim carried the on-bus state kept it under a key of
// its own. Read only where a claim alone does not say "on the bus", so that
// events such a version accepted within the claim TTL (24 h) before an
// upgrade still answer duplicate; nothing writes these keys any more.
std::string legacy_on_bus_key(std::string_view merchant, std::string_view event_id) {
  return merchant_event_key("evb", merchant, event_id);
}

}  // namespace

const std::vector<Route>& route_table() {
  static const std::vector<Route> routes = {
      {"GET", "/healthz"},
      {"GET", "/readyz"},
      {"GET", "/metrics"},
      {"GET", "/v1/alerts"},
      {"POST", "/v1/events"},
      {"POST", "/v1/events/bulk"},
      {"GET", "/v1/events/stream"},
      {"POST", "/v1/keys"},
      {"GET", "/v1/keys"},
      {"DELETE", "/v1/keys/{key_id}"},
      {"PUT", "/v1/merchants/{merchant_id}"},
      {"GET", "/v1/merchants/{merchant_id}"},
      {"GET", "/v1/merchants/{merchant_id}/batches"},
      {"GET", "/v1/merchants/{merchant_id}/batches/{batch_date}/{currency}"},
      {"GET", "/v1/merchants/{merchant_id}/balances"},
      {"GET", "/v1/merchants/{merchant_id}/ledger"},
      {"GET", "/v1/merchants/{merchant_id}/events/{event_id}"},
      {"POST", "/v1/uploads"},
      {"GET", "/v1/uploads/{upload_id}"},
      {"PUT", "/v1/uploads/{upload_id}"},
      // Reconciliation (recon_api.h), admin keys only.
      {"POST", "/v1/statements"},
      {"GET", "/v1/discrepancies"},
      {"POST", "/v1/discrepancies/{id}/acknowledge"},
      {"POST", "/v1/discrepancies/{id}/resolve"},
      {"GET", "/v1/drift"},
  };
  return routes;
}

Response error_response(unsigned status, std::string_view code, std::string_view message,
                        const std::vector<Detail>& details) {
  ordered_json e;
  e["code"] = code;
  e["message"] = message;
  if (!details.empty()) {
    ordered_json d = ordered_json::array();
    for (const Detail& x : details) d.push_back({{"field", x.field}, {"reason", x.reason}});
    e["details"] = std::move(d);
  }
  ordered_json j;
  j["error"] = std::move(e);
  return json_response(status, j);
}

Detail detail_of(std::string_view message, std::string_view prefix) {
  constexpr std::string_view kField = "field '";
  if (message.starts_with(kField)) {
    const std::size_t close = message.find("': ", kField.size());
    if (close != std::string_view::npos) {
      return Detail{fmt::format("{}{}", prefix, message.substr(kField.size(), close - kField.size())),
                    std::string(message.substr(close + 3))};
    }
  }
  std::string field(prefix);
  if (!field.empty() && field.back() == '.') field.pop_back();
  return Detail{field, std::string(message)};
}

struct Api::Call {
  const Request& req;
  std::string path;
  std::vector<std::string> segments;
  std::map<std::string, std::string> query;
  KeyInfo key;
  const Route* route = nullptr;
  std::vector<std::string> params;  // values of the route's {placeholders}, in order

  bool admin() const { return key.scope == Scope::kAdmin; }
  bool may_access(std::string_view merchant) const { return admin() || key.merchant_id == merchant; }
};

Api::Api(bus::Bus& bus, ledger::Ledger& ledger, idempotency::Store& store, ApiOptions options,
         std::unique_ptr<KeyRing> keys)
    : bus_(bus), ledger_(ledger), store_(store), options_(options), keys_(std::move(keys)), merchants_(bus),
      limiter_(options.rate_limit),
      status_appender_(bus, processor::kStatusTopic, 16384, {}, kStatusLinger),
      events_appender_(bus, processor::kEventsTopic, 16384, [this](const Status& st) {
        hand_to_lanes();
        publish_accepted(st);
      }) {
  if (options.recon != nullptr) recon_ = std::make_unique<ReconApi>(ledger, *options.recon);
  if (options.metrics != nullptr) {
    status_collector_ = options.metrics->add_collector([this](std::vector<prometheus::MetricFamily>& out) {
      observability::FamilyBuilder f("settle_gateway_status_publish_failures_total",
                                     "Appends of event_accepted statuses to the status topic that failed (the "
                                     "events themselves were on the bus).",
                                     prometheus::MetricType::Counter);
      f.add({}, static_cast<double>(status_publish_failures_.load()));
      out.push_back(f.build());
    });
  }
}

// One event_accepted per merchant of the group (coalesced like the
// processor's event_posted: the first kEventIdsMax ids and the count, and the
// trace of the merchant's last accepted event), in the order the group
// carried them.
void Api::publish_accepted(const Status& appended) {
  if (!appended.ok() || accepted_in_group_.empty()) {
    accepted_in_group_.clear();
    return;
  }
  const std::int64_t at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
  std::vector<model::StatusUpdate> updates;
  std::map<std::string_view, std::size_t> by_merchant;  // -> index in updates
  for (const AcceptedCall& call : accepted_in_group_) {
    for (const auto& [merchant, event_id] : call.events) {
      auto [it, fresh] = by_merchant.emplace(merchant, updates.size());
      if (fresh) {
        model::StatusUpdate u;
        u.kind = model::StatusKind::kEventAccepted;
        u.merchant_id = merchant;
        u.at_ms = at_ms;
        updates.push_back(std::move(u));
      }
      model::StatusUpdate& u = updates[it->second];
      ++u.count;
      if (u.event_ids.size() < model::kEventIdsMax) u.event_ids.push_back(event_id);
      const std::string_view trace_id = std::string_view(call.traceparent).substr(3, 32);
      if (u.trace_id != trace_id) u.trace_id = trace_id;
    }
  }
  std::vector<bus::Record> records;
  records.reserve(updates.size());
  for (const model::StatusUpdate& u : updates) records.push_back(bus::Record{u.merchant_id, model::status_json(u), {}, 0});
  by_merchant.clear();  // its keys view accepted_in_group_
  accepted_in_group_.clear();
  const auto n = static_cast<std::int64_t>(records.size());
  status_appender_.append_async(std::move(records), [this, n](const Status& st) {
    if (st.ok()) {
      statuses_published_ += n;
    } else {
      ++status_publish_failures_;
    }
  });
}

void Api::hand_to_lanes() {
  for (auto& [lane, work] : to_lanes_) {
    if (work.empty()) continue;
    lane->post([work = std::move(work)]() mutable {
      for (auto& w : work) w();
    });
    work.clear();  // moved from: valid, and reused by the next group
  }
}

Api::~Api() = default;

Result<std::unique_ptr<Api>> Api::open(bus::Bus& bus, ledger::Ledger& ledger, idempotency::Store& store,
                                       ApiOptions options) {
  SETTLE_ASSIGN_OR_RETURN(auto keys, KeyRing::open(bus));
  SETTLE_TRY(bus.create_topic({processor::kMerchantsTopic, 1, true}));
  bool generated = false;
  if (options.upload_secret.empty()) {
    SETTLE_ASSIGN_OR_RETURN(options.upload_secret, random_upload_secret());
    generated = true;
  }
  std::unique_ptr<Api> api(new Api(bus, ledger, store, options, std::move(keys)));
  api->upload_secret_generated_ = generated;
  SETTLE_TRY(api->merchants_.refresh());
  return api;
}

Status Api::ready() {
  SETTLE_TRY(bus_.partition_count(processor::kEventsTopic));
  SETTLE_TRY(ledger_.checkpoint("processor", 0));
  return ok_status();
}

bool Api::has_merchant(std::string_view merchant_id) {
  std::lock_guard lock(merchants_mu_);
  return merchants_.find(merchant_id) != nullptr;
}

std::optional<model::Merchant> Api::find_merchant(std::string_view merchant_id) {
  std::lock_guard lock(merchants_mu_);
  const model::Merchant* m = merchants_.find(merchant_id);
  if (m == nullptr) return std::nullopt;
  return *m;
}

namespace {

// The access log: every request at debug, a 5xx at warn; under the request's
// trace (the one its response carries, else the caller's).
void log_access(std::string_view method, std::string_view request_traceparent, const Response& r,
                std::string_view merchant) {
  const auto level = r.status >= 500 ? observability::LogLevel::kWarn : observability::LogLevel::kDebug;
  static const observability::Logger log("gateway");
  if (!log.enabled(level)) return;
  std::string trace;
  for (const auto& [name, value] : r.headers) {
    if (name == "traceparent") trace = observability::trace_id_of(value);
  }
  if (trace.empty()) trace = observability::trace_id_of(request_traceparent);
  observability::LogScope scope(trace, merchant);
  log.log(level, "{} {} {}", method, r.route != nullptr ? r.route : "unmatched", r.status);
}

const char* events_route() {
  static const char* const route = [] {
    for (const Route& r : route_table()) {
      if (std::string_view(r.method) == "POST" && std::string_view(r.path) == "/v1/events") return r.path;
    }
    SETTLE_ASSERT(false, "POST /v1/events is in route_table()");
    return "/v1/events";
  }();
  return route;
}

bool is_plain_event_post(const Request& request) {
  return request.method == "POST" && !request.has_idempotency_key &&
         std::string_view(request.target).substr(0, request.target.find('?')) == "/v1/events";
}

}  // namespace

bool Api::answers_without_waiting(const Request& request) const {
  return is_plain_event_post(request) && store_.in_process();
}

void Api::handle_async(const Request& request, Respond respond, Lane* lane) {
  if (!is_plain_event_post(request)) return respond(handle(request));
  Call call{request, {}, {}, {}, {}, nullptr, {}};
  call.path = "/v1/events";
  if (auto denied = authenticate(call)) {
    denied->route = events_route();
    log_access(request.method, request.traceparent, *denied, {});
    return respond(std::move(*denied));
  }
  // The callback may outlive `request` (it runs once the events are durable,
  // on `lane` or the bus committer's thread): it keeps what the access log
  // needs.
  post_events_async(
      call,
      [respond = std::move(respond), method = request.method, merchant = call.key.merchant_id,
       traceparent = request.traceparent](Response r) {
        r.route = events_route();
        log_access(method, traceparent, r, merchant);
        respond(std::move(r));
      },
      lane);
}

Response Api::handle(const Request& request) {
  const char* route = nullptr;
  std::string merchant;  // the authenticated key's ("" for admin keys or none)
  Response r = route_and_handle(request, route, merchant);
  r.route = route;
  log_access(request.method, request.traceparent, r, merchant);
  return r;
}

Response Api::route_and_handle(const Request& request, const char*& route, std::string& merchant) {
  Call call{request, {}, {}, {}, {}, nullptr, {}};
  const std::size_t q = request.target.find('?');
  call.path = request.target.substr(0, q);
  if (q != std::string::npos) call.query = parse_query(std::string_view(request.target).substr(q + 1));
  call.segments = split_path(call.path);

  // Route: the first template whose segments match; a path that matches
  // with another method is 405.
  bool path_matched = false;
  std::string allow;
  for (const Route& r : route_table()) {
    const auto tmpl = split_path(r.path);
    if (tmpl.size() != call.segments.size()) continue;
    std::vector<std::string> params;
    bool match = true;
    for (std::size_t i = 0; i < tmpl.size() && match; ++i) {
      if (tmpl[i].front() == '{') {
        params.push_back(call.segments[i]);
      } else if (tmpl[i] != call.segments[i]) {
        match = false;
      }
    }
    if (!match) continue;
    path_matched = true;
    if (request.method == r.method) {
      call.route = &r;
      call.params = std::move(params);
      break;
    }
    if (!allow.empty()) allow += ", ";
    allow += r.method;
  }
  if (call.route == nullptr) {
    if (path_matched) {
      Response r = error_response(405, "method_not_allowed",
                                  fmt::format("{} is not allowed on {}", request.method, call.path));
      r.headers.emplace_back("Allow", allow);
      return r;
    }
    return error_response(404, "not_found", fmt::format("no route {} {}", request.method, call.path));
  }
  route = call.route->path;
  const std::string_view path(call.route->path);
  if (path == "/healthz") return json_response(200, ordered_json{{"status", "ok"}});
  if (path == "/metrics") {
    if (options_.metrics == nullptr) return error_response(404, "not_found", "this process keeps no metrics");
    Response r;
    r.body = options_.metrics->scrape();
    r.headers.emplace_back("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    return r;
  }
  if (path == "/v1/events/bulk" || (path == "/v1/uploads/{upload_id}" && request.method == "PUT")) {
    // The server streams these bodies through begin_bulk(); a body that
    // arrives whole is fed the same way.
    BulkStart start = begin_bulk(request);
    if (!start.upload) return start.response;
    if (request.body.size() > start.body_limit) return start.upload->too_large(start.body_limit);
    if (auto st = start.upload->feed(request.body); !st.ok()) return start.upload->fail(st.error());
    return start.upload->finish();
  }
  if (path == "/readyz") return readyz();

  if (auto denied = authenticate(call)) return *denied;

  merchant = call.key.merchant_id;
  if (request.method == "POST" && request.has_idempotency_key) return with_idempotency(call);
  return dispatch(call);
}

std::optional<Response> Api::authenticate(Call& call) {
  constexpr std::string_view kBearer = "Bearer ";
  std::string_view auth = call.req.authorization;
  auto unauthorized = [](std::string_view why) {
    Response r = error_response(401, "unauthorized", why);
    r.headers.emplace_back("WWW-Authenticate", "Bearer");
    return r;
  };
  if (auth.empty()) return unauthorized("missing Authorization: Bearer <key>");
  if (auth.size() <= kBearer.size() || !equals_lowercase(auth.substr(0, kBearer.size()), "bearer ")) {
    return unauthorized("the Authorization header must be 'Bearer <key>'");
  }
  auto key = keys_->authenticate(auth.substr(kBearer.size()));
  if (!key.ok()) return error_response(503, "unavailable", key.error().message);
  if (!key->has_value()) return unauthorized("unknown or revoked API key");
  call.key = std::move(**key);
  return std::nullopt;
}

bool Api::is_bulk_target(std::string_view target) {
  return target.substr(0, target.find('?')) == "/v1/events/bulk";
}

bool Api::is_streamed(std::string_view method, std::string_view target) {
  const std::string_view path = target.substr(0, target.find('?'));
  return path == "/v1/events/bulk" ||
         (method == "PUT" && path.starts_with("/v1/uploads/") && path.find('/', 12) == std::string_view::npos);
}

bool Api::is_stream_target(std::string_view target) {
  return target.substr(0, target.find('?')) == "/v1/events/stream";
}

Api::StreamStart Api::begin_stream(const Request& request) {
  Call call{request, {}, {}, {}, {}, nullptr, {}};
  call.path = "/v1/events/stream";
  if (const std::size_t q = request.target.find('?'); q != std::string::npos) {
    call.query = parse_query(std::string_view(request.target).substr(q + 1));
  }
  if (auto denied = authenticate(call)) return {nullptr, std::move(*denied)};
  std::string merchant;
  if (auto it = call.query.find("merchant_id"); it != call.query.end()) {
    merchant = it->second;
    if (auto st = model::validate_merchant_id(merchant); !st.ok()) {
      return {nullptr, error_response(422, "validation_failed", "bad merchant_id in the query",
                                      {detail_of(st.error().message, "")})};
    }
    if (!call.may_access(merchant)) {
      return {nullptr, error_response(403, "forbidden", fmt::format("this key may not write merchant '{}'", merchant))};
    }
  }
  constexpr std::string_view kBearer = "Bearer ";
  std::string secret = request.authorization.substr(kBearer.size());
  // One trace per connection: the upgrade request's (a child span), or new.
  return {std::make_unique<EventStream>(*this, std::move(secret), call.key, std::move(merchant),
                                        observability::continue_or_start(request.traceparent)),
          Response{}};
}

Api::BulkStart Api::begin_bulk(const Request& request) {
  if (request.method == "PUT" && is_streamed(request.method, request.target)) return begin_upload(request);
  Call call{request, {}, {}, {}, {}, nullptr, {}};
  call.path = "/v1/events/bulk";
  if (request.method != "POST") {
    Response r = error_response(405, "method_not_allowed", fmt::format("{} is not allowed on {}", request.method, call.path));
    r.headers.emplace_back("Allow", "POST");
    return {nullptr, std::move(r)};
  }
  if (auto denied = authenticate(call)) return {nullptr, std::move(*denied)};
  const std::string ct = lower(request.content_type.substr(0, request.content_type.find(';')));
  BulkUpload::Format format;
  if (ct.find("application/x-ndjson") != std::string::npos || ct.find("application/jsonl") != std::string::npos) {
    format = BulkUpload::Format::kNdjson;
  } else if (ct.find("text/csv") != std::string::npos) {
    format = BulkUpload::Format::kCsv;
  } else {
    return {nullptr, error_response(415, "unsupported_media_type",
                                    "POST /v1/events/bulk takes application/x-ndjson or text/csv")};
  }
  BulkUpload::Idempotency idem;
  if (request.has_idempotency_key) {
    const std::string& key = request.idempotency_key;
    if (key.empty() || key.size() > 255 ||
        !std::all_of(key.begin(), key.end(), [](char c) { return c >= 0x21 && c <= 0x7E; })) {
      return {nullptr, error_response(400, "invalid_idempotency_key",
                                      "Idempotency-Key must be 1-255 printable ASCII characters without spaces")};
    }
    const std::string principal = call.admin() ? std::string("admin") : "m:" + call.key.merchant_id;
    idem.lock_key = fmt::format("idem-lock|{}|{}", principal, key);
    idem.resp_key = fmt::format("idem-resp|{}|{}", principal, key);
    auto stored = store_.get(idem.resp_key);
    if (!stored.ok()) return {nullptr, error_response(503, "unavailable", stored.error().message)};
    if (stored->has_value()) {
      idem.stored = **stored;  // read the body only to compare it; replay
    } else {
      auto claim = store_.put_if_absent(idem.lock_key, "bulk", options_.idempotency_ttl);
      if (!claim.ok()) return {nullptr, error_response(503, "unavailable", claim.error().message)};
      if (!claim->inserted) {
        return {nullptr, error_response(409, "idempotency_key_in_flight",
                                        "a request with this Idempotency-Key is still being processed; retry later")};
      }
    }
    idem.used = true;
  }
  // Every event of the upload carries the caller's trace (a child span of
  // it), or one new trace for the whole upload.
  return {std::make_unique<BulkUpload>(*this, call.key, format, std::move(idem),
                                       observability::continue_or_start(request.traceparent)),
          Response{}};
}

Response Api::readyz() {
  auto st = ready();
  if (!st.ok()) return error_response(503, "unavailable", st.error().message);
  return json_response(200, ordered_json{{"status", "ready"}});
}

Response Api::dispatch(Call& call) {
  const std::string_view path(call.route->path);
  const std::string_view method(call.route->method);
  const auto& p = call.params;
  if (path == "/v1/events") return post_events(call);
  if (path == "/v1/uploads") return post_upload(call.req, call.key);
  if (path == "/v1/uploads/{upload_id}") return get_upload(call.key, p[0]);
  if (path == "/v1/events/stream") {
    // The server upgrades a WebSocket request before it gets here.
    Response r = error_response(426, "upgrade_required",
                                "GET /v1/events/stream is a WebSocket: send Connection: Upgrade, Upgrade: websocket");
    r.headers.emplace_back("Upgrade", "websocket");
    return r;
  }
  if (is_recon_route(path)) {
    if (!call.admin()) return error_response(403, "forbidden", "reconciliation needs an admin key");
    if (!recon_) return error_response(503, "unavailable", "reconciliation is not configured on this gateway");
    return recon_->handle(call.req, path, p, call.query);
  }

  if (path == "/v1/alerts") return get_alerts(call);
  if (path == "/v1/keys") return method == "POST" ? post_key(call) : list_keys(call);
  if (path == "/v1/keys/{key_id}") return revoke_key(call, p[0]);
  if (path == "/v1/merchants/{merchant_id}") {
    return method == "PUT" ? put_merchant(call, p[0]) : get_merchant(call, p[0]);
  }
  // Every other route reads one merchant's data.
  if (!call.may_access(p[0])) {
    return error_response(403, "forbidden", fmt::format("this key may not read merchant '{}'", p[0]));
  }
  if (path == "/v1/merchants/{merchant_id}/batches") return get_batches(call, p[0]);
  if (path == "/v1/merchants/{merchant_id}/batches/{batch_date}/{currency}") {
    return get_batch(call, p[0], p[1], p[2]);
  }
  if (path == "/v1/merchants/{merchant_id}/balances") return get_balances(call, p[0]);
  if (path == "/v1/merchants/{merchant_id}/ledger") return get_ledger(call, p[0]);
  if (path == "/v1/merchants/{merchant_id}/events/{event_id}") return get_event(call, p[0], p[1]);
  SETTLE_ASSERT(false, "a route in route_table() has no handler");
  return error_response(500, "internal", "no handler");
}

std::string encode_stored_response(const StoredResponse& r) {
  return fmt::format("v2\n{}\n{}\n{}\n{}", r.digest, r.status, r.traceparent, r.body);
}

std::optional<StoredResponse> decode_stored_response(std::string_view stored) {
  // Format 1 begins with the digest (hex), never with "v2\n".
  const bool v2 = stored.substr(0, 3) == "v2\n";
  if (v2) stored.remove_prefix(3);
  auto line = [&stored]() -> std::optional<std::string_view> {
    const std::size_t end = stored.find('\n');
    if (end == std::string_view::npos) return std::nullopt;
    const std::string_view l = stored.substr(0, end);
    stored.remove_prefix(end + 1);
    return l;
  };
  const auto digest = line();
  const auto status = line();
  const auto traceparent = v2 ? line() : std::optional<std::string_view>(std::string_view{});
  if (!digest || !status || !traceparent) return std::nullopt;
  StoredResponse r{std::string(*digest), 0, std::string(*traceparent), std::string(stored)};
  const auto [end, ec] = std::from_chars(status->data(), status->data() + status->size(), r.status);
  if (ec != std::errc() || end != status->data() + status->size() || r.status < 100 || r.status > 599) {
    return std::nullopt;
  }
  return r;
}

// Stripe-style idempotency keys. Two store entries per key: a lock claimed
// with put_if_absent (value: the digest of method, path and body) and, once
// the request is answered, the response (digest, status, body). The lock is
// never released after a response was stored, so a key cannot be claimed
// twice within its ttl; it is released when the request failed with a 5xx,
// so that the client can retry.
Response Api::with_idempotency(Call& call) {
  const std::string& key = call.req.idempotency_key;
  if (key.empty() || key.size() > 255 ||
      !std::all_of(key.begin(), key.end(), [](char c) { return c >= 0x21 && c <= 0x7E; })) {
    return error_response(400, "invalid_idempotency_key",
                          "Idempotency-Key must be 1-255 printable ASCII characters without spaces");
  }
  const std::string principal = call.admin() ? std::string("admin") : "m:" + call.key.merchant_id;
  const std::string lock_key = fmt::format("idem-lock|{}|{}", principal, key);
  const std::string resp_key = fmt::format("idem-resp|{}|{}", principal, key);
  const std::string digest =
      digest_hex(fmt::format("{} {}\n{}", call.req.method, call.path, call.req.body));

  auto replay = [&](const std::string& stored) -> std::optional<Response> {
    std::optional<StoredResponse> first = decode_stored_response(stored);
    if (!first) return std::nullopt;
    if (first->digest != digest) {
      return error_response(422, "idempotency_key_reused",
                            "this Idempotency-Key was used with a different request body or path");
    }
    Response r;
    r.status = first->status;
    r.body = std::move(first->body);
    // The trace the first request's events travelled under.
    if (!first->traceparent.empty()) r.headers.emplace_back("traceparent", std::move(first->traceparent));
    r.headers.emplace_back("Idempotent-Replayed", "true");
    return r;
  };

  auto stored = store_.get(resp_key);
  if (!stored.ok()) return error_response(503, "unavailable", stored.error().message);
  if (stored->has_value()) {
    if (auto r = replay(**stored)) return *r;
  }
  auto claim = store_.put_if_absent(lock_key, digest, options_.idempotency_ttl);
  if (!claim.ok()) return error_response(503, "unavailable", claim.error().message);
  if (!claim->inserted) {
    if (claim->existing != digest) {
      return error_response(422, "idempotency_key_reused",
                            "this Idempotency-Key was used with a different request body or path");
    }
    stored = store_.get(resp_key);  // it may have finished in between
    if (stored.ok() && stored->has_value()) {
      if (auto r = replay(**stored)) return *r;
    }
    return error_response(409, "idempotency_key_in_flight",
                          "a request with this Idempotency-Key is still being processed; retry later");
  }
  Response r = dispatch(call);
  if (r.status >= 500) {
    (void)store_.delete_if_equal(lock_key, digest);
    return r;
  }
  StoredResponse keep{digest, r.status, {}, r.body};
  for (const auto& [name, value] : r.headers) {
    if (name == "traceparent") keep.traceparent = value;
  }
  auto put = store_.put_if_absent(resp_key, encode_stored_response(keep), options_.idempotency_ttl);
  (void)put;  // the response stands even if it could not be remembered
  return r;
}

Response Api::post_events(Call& call) {
  std::promise<Response> answer;
  auto future = answer.get_future();
  post_events_async(call, [&answer](Response r) { answer.set_value(std::move(r)); }, nullptr);
  return future.get();
}

void Api::post_events_async(Call& call, Respond respond, Lane* lane) {
  if (!is_json(call.req.content_type)) {
    return respond(error_response(415, "unsupported_media_type",
                                  "POST /v1/events takes application/json (use /v1/events/bulk for NDJSON or CSV)"));
  }
  const std::string_view body = call.req.body;
  const std::size_t first = body.find_first_not_of(" \t\r\n");
  // Most requests carry one event: their vectors below live on the stack.
  boost::container::small_vector<std::string_view, 1> elements;
  bool array = false;
  if (first != std::string_view::npos && body[first] == '[') {
    array = true;
    auto split = split_array(body);
    if (!split.ok()) return respond(error_response(400, "malformed_json", split.error().message));
    elements.assign(split->begin(), split->end());
    if (elements.empty()) return respond(error_response(422, "validation_failed", "the array holds no events"));
    if (elements.size() > options_.max_events_per_request) {
      return respond(error_response(422, "validation_failed",
                                    fmt::format("{} events in one request; at most {} (use /v1/events/bulk for more)",
                                                elements.size(), options_.max_events_per_request)));
    }
  } else if (first != std::string_view::npos && body[first] == '{') {
    elements.push_back(body);
  } else {
    return respond(error_response(400, "malformed_json", "the body must be a JSON object or an array of objects"));
  }

  thread_local model::EventParser parser;
  std::vector<model::Event> events;
  events.reserve(elements.size());
  std::vector<Detail> invalid;
  std::vector<Detail> syntax;
  std::vector<Detail> forbidden;
  for (std::size_t i = 0; i < elements.size(); ++i) {
    const std::string prefix = array ? fmt::format("[{}].", i) : std::string();
    auto ev = parser.parse(elements[i]);
    if (!ev.ok()) {
      (is_syntax_error(ev.error().message) ? syntax : invalid).push_back(detail_of(ev.error().message, prefix));
      continue;
    }
    if (!call.may_access(ev->merchant_id.view())) {
      forbidden.push_back(Detail{prefix + "merchant_id",
                                 fmt::format("this key may not write merchant '{}'", ev->merchant_id.str())});
      continue;
    }
    if (!has_merchant(ev->merchant_id.view())) {
      invalid.push_back(Detail{prefix + "merchant_id", fmt::format("unknown merchant '{}'", ev->merchant_id.str())});
      continue;
    }
    events.push_back(std::move(ev).value());
  }
  if (!syntax.empty()) return respond(error_response(400, "malformed_json", "the body is not valid JSON", syntax));
  if (!forbidden.empty()) {
    return respond(error_response(403, "forbidden", "events of another merchant; nothing was accepted", forbidden));
  }
  if (!invalid.empty()) {
    return respond(error_response(422, "validation_failed",
                                  fmt::format("{} of {} events failed validation; nothing was accepted", invalid.size(),
                                              elements.size()),
                                  invalid));
  }

  if (limiter_.enabled()) {
    std::map<std::string, std::int64_t> per_merchant;
    for (const auto& ev : events) ++per_merchant[ev.merchant_id.str()];
    for (const auto& [merchant, n] : per_merchant) {
      const RateDecision d = limiter_.take(merchant, n);
      if (!d.allowed) {
        Response r = error_response(
            429, "rate_limited",
            fmt::format("merchant '{}' may send {} events now; this request has {}", merchant, d.remaining, n));
        r.headers.emplace_back("Retry-After", std::to_string(d.retry_after_s));
        r.headers.emplace_back("RateLimit-Limit", std::to_string(d.limit));
        r.headers.emplace_back("RateLimit-Remaining", std::to_string(d.remaining));
        r.headers.emplace_back("RateLimit-Reset", std::to_string(d.reset_s));
        return respond(std::move(r));
      }
    }
  }
  // The events carry the caller's trace (a child span of it), or a new one;
  // the response says which, so a client can find its events' path.
  std::string traceparent = observability::continue_or_start(call.req.traceparent);
  std::vector<std::string> ids;
  ids.reserve(events.size());
  for (const auto& ev : events) ids.push_back(ev.event_id.str());
  claim_and_append_async(
      events, "api", traceparent,
      [ids = std::move(ids), array, traceparent, respond = std::move(respond)](Result<std::vector<Verdict>> decided) mutable {
        if (!decided.ok()) return respond(error_response(503, "unavailable", decided.error().message));
        const std::vector<Verdict>& verdicts = *decided;
        using namespace std::string_view_literals;
        std::string out;
        out.reserve(64 + ids.size() * 64);
        std::int64_t accepted = 0;
        std::int64_t duplicates = 0;
        std::int64_t rejected = 0;
        out += "{\"results\":["sv;
        for (std::size_t i = 0; i < ids.size(); ++i) {
          if (i) out += ',';
          out += "{\"index\":"sv;
          append_int(out, i);
          out += ",\"event_id\":\""sv;
          model::append_json_escaped(out, ids[i]);
          out += "\",\"status\":"sv;
          switch (verdicts[i]) {
            case Verdict::kAccepted:
              ++accepted;
              out += "\"accepted\"}"sv;
              break;
            case Verdict::kDuplicate:
              ++duplicates;
              out += "\"duplicate\"}"sv;
              break;
            case Verdict::kConflict:
              ++rejected;
              out += "\"rejected\",\"errors\":[{\"code\":\"conflict\",\"field\":\""sv;
              out += array ? fmt::format("[{}].event_id", i) : std::string("event_id");
              out += "\",\"reason\":\"an event with this id and different content was accepted before\"}]}"sv;
              break;
          }
        }
        out += "],\"accepted\":"sv;
        append_int(out, accepted);
        out += ",\"duplicates\":"sv;
        append_int(out, duplicates);
        out += ",\"rejected\":"sv;
        append_int(out, rejected);
        out += '}';
        Response r{202, std::move(out), {}};
        r.headers.emplace_back("traceparent", std::move(traceparent));
        respond(std::move(r));
      },
      lane);
}

// Two phases per event: a claim (put_if_absent, value the content's digest)
// before the bus append, and an on-bus mark after it, which replaces the
// claim's value by the digest with kOnBusSuffix (replace_if_equal: one entry
// per event in the store). A claim of other content is a conflict. A claim of
// the same content is a duplicate only once marked on the bus: a gateway
// killed between its claim and its mark (its append in flight, or its mark
// still queued for the request's I/O thread) leaves a bare claim, and a
// retry, or a copy sent meanwhile, is appended again rather than
// acknowledged as a duplicate of an event the bus may never get; the ledger's
// identity settles a second copy once. Claims of a failed append are
// released.
Result<std::vector<Verdict>> Api::claim_and_append(const std::vector<model::Event>& events, std::string_view source,
                                                   std::string_view traceparent) {
  std::promise<Result<std::vector<Verdict>>> answer;
  auto future = answer.get_future();
  claim_and_append_async(events, source, traceparent,
                         [&answer](Result<std::vector<Verdict>> r) { answer.set_value(std::move(r)); });
  return future.get();
}

namespace {

// One event of a claim_and_append call: its canonical JSON (the record's
// value), its claim key, and its content digest followed by kOnBusSuffix
// (the claim's value is the digest in front, the mark's the whole).
struct ClaimItem {
  std::string canon;
  std::string key;
  std::string marked;
  bool made = false;      // this call stored the claim (released if the append fails)
  bool appended = false;  // its record is in this call's append

  std::string_view digest() const {
    return std::string_view(marked).substr(0, marked.size() - kOnBusSuffix.size());
  }
};

}  // namespace

void Api::claim_and_append_async(const std::vector<model::Event>& events, std::string_view source,
                                 std::string_view traceparent, Decided done, Lane* lane) {
  std::string trace = traceparent.empty() ? observability::continue_or_start({}) : std::string(traceparent);
  SETTLE_ASSERT(trace.size() == 55, "claim_and_append takes a traceparent from continue_or_start() (or none)");
  std::vector<Verdict> verdicts(events.size(), Verdict::kAccepted);
  // One event a call, most often: these vectors live on the stack then.
  boost::container::small_vector<ClaimItem, 1> items(events.size());
  boost::container::small_vector<idempotency::PutRequest, 1> puts(events.size());
  for (std::size_t i = 0; i < events.size(); ++i) {
    ClaimItem& item = items[i];
    item.canon = model::canonical_event_json(events[i]);
    item.marked = digest_hex(item.canon, kOnBusSuffix);
    item.key = claim_key(events[i].merchant_id.view(), events[i].event_id.view());
    puts[i] = idempotency::PutRequest{item.key, item.digest()};
  }
  // One call for the batch: the Redis store pipelines it.
  auto outcomes = store_.put_if_absent_many(std::span(puts.data(), puts.size()), options_.event_claim_ttl);
  if (!outcomes.ok()) {
    // Some claims may be stored: release every one of this content (an
    // identical event claimed concurrently loses its claim too; the
    // ledger's unique identity still settles it once).
    for (const ClaimItem& item : items) (void)store_.delete_if_equal(item.key, item.digest());
    return done(outcomes.error());
  }
  std::vector<bus::Record> records;
  std::vector<std::pair<std::string, std::string>> accepted;  // (merchant, event id) of each record
  std::unordered_set<std::string_view> in_call;  // keys appended by this call
  records.reserve(events.size());
  accepted.reserve(events.size());
  for (std::size_t i = 0; i < events.size(); ++i) {
    ClaimItem& item = items[i];
    const idempotency::PutOutcome& put = (*outcomes)[i];
    if (!put.inserted) {
      const ClaimValue existing = parse_claim_value(put.existing);
      if (existing.digest != item.digest()) {
        verdicts[i] = Verdict::kConflict;
        continue;
      }
      // On the bus already, or twice in one call (appended once).
      if (existing.on_bus || (events.size() > 1 && in_call.contains(item.key))) {
        verdicts[i] = Verdict::kDuplicate;
        continue;
      }
      auto legacy = store_.get(legacy_on_bus_key(events[i].merchant_id.view(), events[i].event_id.view()));
      if (!legacy.ok()) {
        for (const ClaimItem& c : items) {
          if (c.made) (void)store_.delete_if_equal(c.key, c.digest());
        }
        return done(legacy.error());
      }
      if (legacy->has_value()) {
        verdicts[i] = Verdict::kDuplicate;
        continue;
      }
    } else {
      item.made = true;
    }
    if (events.size() > 1) in_call.insert(item.key);
    item.appended = true;
    accepted.emplace_back(events[i].merchant_id.str(), events[i].event_id.str());
    bus::Record& record = records.emplace_back();
    record.key = events[i].merchant_id.str();
    record.value = std::move(item.canon);
    record.headers.reserve(2);
    record.headers.push_back(bus::Header{processor::kSourceHeader, std::string(source)});
    record.headers.push_back(bus::Header{processor::kTraceparentHeader, trace});
  }
  if (records.empty()) {
    count_verdicts(verdicts);
    return done(std::move(verdicts));
  }
  // The records' claims, marked once the append succeeds; those this call
  // made are released should it fail.
  // (A std::vector: it is moved into two callbacks, where a small_vector
  // would move each item's strings.)
  std::vector<ClaimItem> claims;
  claims.reserve(records.size());
  for (ClaimItem& item : items) {
    if (item.appended) claims.push_back(std::move(item));
  }
  // Concurrent requests' records share one bus append (group commit); this
  // thread goes on meanwhile.
  events_appender_.append_async(
      std::move(records), [this, verdicts = std::move(verdicts), claims = std::move(claims),
                           accepted = std::move(accepted), trace = std::move(trace), done = std::move(done),
                           lane](const Status& status) mutable {
        // For the group's event_accepted (publish_accepted(), after the
        // group's completions).
        if (status.ok()) accepted_in_group_.push_back(AcceptedCall{std::move(trace), std::move(accepted)});
        // The rest runs on the lane, after this group's completions (see
        // hand_to_lanes()), or here without one: the claims were made on
        // the lane's thread, and their marks find the same memory there.
        auto finish = [this, status, verdicts = std::move(verdicts), claims = std::move(claims),
                       done = std::move(done)]() mutable {
          if (!status.ok()) {
            for (const ClaimItem& c : claims) {
              if (c.made) (void)store_.delete_if_equal(c.key, c.digest());
            }
            return done(make_error(status.error().code,
                                   fmt::format("the bus did not take the events: {}", status.error().message)));
          }
          // A lost mark costs a second copy on the bus if the event is sent
          // again, never a lost event: its failure is not the request's.
          boost::container::small_vector<idempotency::ReplaceRequest, 1> marks(claims.size());
          for (std::size_t r = 0; r < claims.size(); ++r) marks[r] = {claims[r].key, claims[r].digest(), claims[r].marked};
          (void)store_.replace_if_equal_many(std::span(marks.data(), marks.size()), options_.event_claim_ttl);
          count_verdicts(verdicts);
          done(std::move(verdicts));
        };
        if (lane == nullptr) return finish();
        auto it = std::find_if(to_lanes_.begin(), to_lanes_.end(), [lane](const auto& l) { return l.first == lane; });
        if (it == to_lanes_.end()) it = to_lanes_.insert(to_lanes_.end(), {lane, {}});
        it->second.push_back(std::move(finish));
      });
}

void Api::count_verdicts(const std::vector<Verdict>& verdicts) {
  if (options_.metrics == nullptr) return;
  for (Verdict v : verdicts) {
    switch (v) {
      case Verdict::kAccepted: options_.metrics->events_accepted.Increment(); break;
      case Verdict::kDuplicate: options_.metrics->events_duplicate.Increment(); break;
      case Verdict::kConflict: options_.metrics->events_rejected.Increment(); break;
    }
  }
}

Response Api::post_key(Call& call) {
  if (!call.admin()) return error_response(403, "forbidden", "only an admin key may create keys");
  if (!is_json(call.req.content_type)) return error_response(415, "unsupported_media_type", "expected application/json");
  auto j = nlohmann::json::parse(call.req.body, nullptr, false);
  if (j.is_discarded()) return error_response(400, "malformed_json", "the body is not valid JSON");
  if (!j.is_object()) return error_response(422, "validation_failed", "the body must be a JSON object");
  std::vector<Detail> details;
  for (const auto& [k, v] : j.items()) {
    if (k != "scope" && k != "merchant_id") details.push_back({k, "is not a known field"});
  }
  const auto scope_it = j.find("scope");
  std::string scope;
  if (scope_it == j.end() || !scope_it->is_string()) {
    details.push_back({"scope", "is required: 'merchant' or 'admin'"});
  } else {
    scope = scope_it->get<std::string>();
    if (scope != "merchant" && scope != "admin") details.push_back({"scope", "must be 'merchant' or 'admin'"});
  }
  std::string merchant;
  const auto m_it = j.find("merchant_id");
  if (scope == "merchant") {
    if (m_it == j.end() || !m_it->is_string()) {
      details.push_back({"merchant_id", "is required for a merchant key"});
    } else {
      merchant = m_it->get<std::string>();
      if (auto st = model::validate_merchant_id(merchant); !st.ok()) details.push_back(detail_of(st.error().message, ""));
    }
  } else if (scope == "admin" && m_it != j.end()) {
    details.push_back({"merchant_id", "must be absent for an admin key"});
  }
  if (!details.empty()) return error_response(422, "validation_failed", "the key request is invalid", details);
  auto created = keys_->create(scope == "admin" ? Scope::kAdmin : Scope::kMerchant, merchant);
  if (!created.ok()) return error_response(503, "unavailable", created.error().message);
  ordered_json out;
  out["key"] = created->secret;
  out["key_id"] = created->info.key_id;
  out["scope"] = std::string(scope_name(created->info.scope));
  if (!merchant.empty()) out["merchant_id"] = merchant;
  out["created_at"] = created->info.created_at;
  return json_response(201, out);
}

Response Api::get_alerts(Call& call) {
  if (!call.admin()) return error_response(403, "forbidden", "alerts need an admin key");
  if (options_.alerts == nullptr) return error_response(404, "not_found", "this process evaluates no alerts");
  ordered_json arr = ordered_json::array();
  for (const observability::Alert& a : options_.alerts->active()) {
    ordered_json labels = ordered_json::object();
    for (const auto& [k, v] : a.labels) labels[k] = v;
    ordered_json e;
    e["name"] = a.name;
    e["state"] = a.state;
    e["labels"] = std::move(labels);
    e["summary"] = a.summary;
    e["value"] = a.value;
    e["active_since"] = format_rfc3339(Timestamp{a.active_since_ms * 1'000'000});
    if (a.fired_at_ms != 0) e["fired_at"] = format_rfc3339(Timestamp{a.fired_at_ms * 1'000'000});
    e["runbook"] = "docs/observability.md#" + lower(a.name);
    arr.push_back(std::move(e));
  }
  return json_response(200, ordered_json{{"alerts", std::move(arr)}});
}

Response Api::list_keys(Call& call) {
  if (!call.admin()) return error_response(403, "forbidden", "only an admin key may list keys");
  auto keys = keys_->list();
  if (!keys.ok()) return error_response(503, "unavailable", keys.error().message);
  ordered_json arr = ordered_json::array();
  for (const KeyInfo& k : *keys) {
    ordered_json e;
    e["key_id"] = k.key_id;
    e["scope"] = std::string(scope_name(k.scope));
    if (k.scope == Scope::kMerchant) e["merchant_id"] = k.merchant_id;
    e["created_at"] = k.created_at;
    e["revoked"] = k.revoked;
    arr.push_back(std::move(e));
  }
  return json_response(200, ordered_json{{"keys", std::move(arr)}});
}

Response Api::revoke_key(Call& call, std::string_view key_id) {
  if (!call.admin()) return error_response(403, "forbidden", "only an admin key may revoke keys");
  auto k = keys_->revoke(key_id);
  if (!k.ok()) {
    if (k.error().code == ErrorCode::kNotFound) return error_response(404, "not_found", k.error().message);
    return error_response(503, "unavailable", k.error().message);
  }
  return json_response(200, ordered_json{{"key_id", k->key_id}, {"revoked", true}});
}

Response Api::put_merchant(Call& call, std::string_view merchant_id) {
  if (!call.admin()) return error_response(403, "forbidden", "only an admin key may configure merchants");
  if (!is_json(call.req.content_type)) return error_response(415, "unsupported_media_type", "expected application/json");
  if (auto st = model::validate_merchant_id(merchant_id); !st.ok()) {
    return error_response(422, "validation_failed", "bad merchant id in the path", {detail_of(st.error().message, "")});
  }
  auto j = nlohmann::json::parse(call.req.body, nullptr, false);
  if (j.is_discarded()) return error_response(400, "malformed_json", "the body is not valid JSON");
  auto m = model::parse_merchant_json(call.req.body);
  if (!m.ok()) {
    return error_response(422, "validation_failed", "the merchant is invalid", {detail_of(m.error().message, "")});
  }
  if (m->id.view() != merchant_id) {
    return error_response(422, "validation_failed", "the body's merchant_id differs from the path",
                          {Detail{"merchant_id", fmt::format("must be '{}' (the path's id)", merchant_id)}});
  }
  const bool existed = find_merchant(merchant_id).has_value();
  const model::Merchant merchant = *m;
  auto st = processor::MerchantDirectory::publish(bus_, std::span(&merchant, 1));
  if (!st.ok()) return error_response(503, "unavailable", st.error().message);
  {
    std::lock_guard lock(merchants_mu_);
    auto r = merchants_.refresh();
    if (!r.ok()) return error_response(503, "unavailable", r.error().message);
  }
  return Response{existed ? 200u : 201u, model::merchant_json(merchant), {}};
}

Response Api::get_merchant(Call& call, std::string_view merchant_id) {
  if (!call.may_access(merchant_id)) {
    return error_response(403, "forbidden", fmt::format("this key may not read merchant '{}'", merchant_id));
  }
  auto m = find_merchant(merchant_id);
  if (!m) return error_response(404, "not_found", fmt::format("no merchant '{}'", merchant_id));
  return Response{200, model::merchant_json(*m), {}};
}

namespace {

Result<std::optional<Date>> date_param(const std::map<std::string, std::string>& q, const std::string& name,
                                       std::vector<Detail>& details) {
  auto it = q.find(name);
  if (it == q.end() || it->second.empty()) return std::optional<Date>{};
  auto d = parse_date(it->second);
  if (!d.ok()) {
    details.push_back({name, d.error().message});
    return std::optional<Date>{};
  }
  return std::optional<Date>(*d);
}

}  // namespace

Result<std::vector<std::string>> Api::open_batch_rows(std::string_view merchant_id, std::optional<Date> from,
                                                      std::optional<Date> to) {
  // The merchant's currencies are those of its payable accounts; a batch is
  // open when events settle in it after the latest closed batch.
  SETTLE_ASSIGN_OR_RETURN(auto balances, ledger_.balances(merchant_id));
  std::set<std::string> currencies;
  for (const auto& b : balances) currencies.insert(b.currency);
  std::vector<std::string> rows;
  const std::string payable = fmt::format("merchant:{}:payable", merchant_id);
  for (const std::string& cur : currencies) {
    SETTLE_ASSIGN_OR_RETURN(auto history, ledger_.batch_history(merchant_id, cur));
    ledger::PostingQuery q;
    q.merchant_id = std::string(merchant_id);
    q.account = payable;
    q.settle_from = history.last_closed ? std::optional<Date>(history.last_closed->plus_days(1)) : std::nullopt;
    if (from && (!q.settle_from || *from > *q.settle_from)) q.settle_from = from;
    q.settle_to = to;
    q.limit = options_.event_lookup_rows_max;
    SETTLE_ASSIGN_OR_RETURN(auto postings, ledger_.postings(q));
    std::set<Date> dates;
    for (const auto& p : postings) {
      if (p.currency == cur && !p.ref.starts_with("\xC2\xA7")) dates.insert(p.settle_date);
    }
    for (Date d : dates) {
      model::BatchKey key{MerchantId(std::string(merchant_id)), d, cur};
      SETTLE_ASSIGN_OR_RETURN(auto totals, ledger_.settling_totals(key));
      rows.push_back(dump(open_batch_json(key, totals)));
    }
  }
  return rows;
}

Response Api::get_batches(Call& call, std::string_view merchant_id) {
  std::vector<Detail> details;
  auto from = date_param(call.query, "from", details);
  auto to = date_param(call.query, "to", details);
  if (!details.empty()) return error_response(422, "validation_failed", "bad query parameters", details);
  ledger::BatchQuery q;
  q.merchant_id = std::string(merchant_id);
  q.from = *from;
  q.to = *to;
  auto closed = ledger_.closed_batches(q);
  if (!closed.ok()) return error_response(503, "unavailable", closed.error().message);
  auto open = open_batch_rows(merchant_id, *from, *to);
  if (!open.ok()) return error_response(503, "unavailable", open.error().message);
  std::string out = "{\"batches\":[";
  bool first = true;
  for (const auto& b : *closed) {
    if (!first) out += ',';
    first = false;
    out += dump(closed_batch_json(b));
  }
  for (const auto& row : *open) {
    if (!first) out += ',';
    first = false;
    out += row;
  }
  out += "]}";
  return Response{200, std::move(out), {}};
}

Response Api::get_batch(Call&, std::string_view merchant_id, std::string_view date_text,
                        std::string_view currency) {
  auto date = parse_date(date_text);
  if (!date.ok()) {
    return error_response(422, "validation_failed", "bad batch date", {Detail{"batch_date", date.error().message}});
  }
  if (auto c = find_currency(currency); !c.ok()) {
    return error_response(422, "validation_failed", "bad currency", {Detail{"currency", c.error().message}});
  }
  ledger::BatchQuery q;
  q.merchant_id = std::string(merchant_id);
  q.from = *date;
  q.to = *date;
  auto closed = ledger_.closed_batches(q);
  if (!closed.ok()) return error_response(503, "unavailable", closed.error().message);
  for (const auto& b : *closed) {
    if (b.key.currency == currency) return json_response(200, closed_batch_json(b));
  }
  model::BatchKey key{MerchantId(std::string(merchant_id)), *date, std::string(currency)};
  auto totals = ledger_.settling_totals(key);
  if (!totals.ok()) return error_response(503, "unavailable", totals.error().message);
  if (totals->event_count() == 0) {
    return error_response(404, "not_found", fmt::format("no batch {}", key.to_string()));
  }
  return json_response(200, open_batch_json(key, *totals));
}

Response Api::get_balances(Call&, std::string_view merchant_id) {
  auto balances = ledger_.balances(merchant_id);
  if (!balances.ok()) return error_response(503, "unavailable", balances.error().message);
  ordered_json arr = ordered_json::array();
  for (const auto& b : *balances) arr.push_back(balance_json(b));
  return json_response(200, ordered_json{{"merchant_id", merchant_id}, {"balances", std::move(arr)}});
}

// Cursor pagination over the merchant's postings in ledger order (journals
// are only ever appended, so a position in that order stays valid). The
// cursor is opaque to clients: "p" and the number of rows already returned.
Response Api::get_ledger(Call& call, std::string_view merchant_id) {
  std::vector<Detail> details;
  auto from = date_param(call.query, "from", details);
  auto to = date_param(call.query, "to", details);
  std::size_t limit = 100;
  std::size_t offset = 0;
  if (auto it = call.query.find("limit"); it != call.query.end()) {
    auto [p, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), limit);
    if (ec != std::errc() || p != it->second.data() + it->second.size() || limit == 0 ||
        limit > options_.ledger_page_max) {
      details.push_back({"limit", fmt::format("must be an integer 1-{}", options_.ledger_page_max)});
    }
  }
  if (auto it = call.query.find("cursor"); it != call.query.end() && !it->second.empty()) {
    const std::string& c = it->second;
    auto [p, ec] = c.size() > 1 && c[0] == 'p' ? std::from_chars(c.data() + 1, c.data() + c.size(), offset)
                                                 : std::from_chars_result{c.data(), std::errc::invalid_argument};
    if (ec != std::errc() || p != c.data() + c.size()) details.push_back({"cursor", "is not a cursor this API issued"});
  }
  if (!details.empty()) return error_response(422, "validation_failed", "bad query parameters", details);
  ledger::PostingQuery q;
  q.merchant_id = std::string(merchant_id);
  if (auto it = call.query.find("account"); it != call.query.end() && !it->second.empty()) q.account = it->second;
  q.settle_from = *from;
  q.settle_to = *to;
  q.limit = offset + limit + 1;
  auto rows = ledger_.postings(q);
  if (!rows.ok()) return error_response(503, "unavailable", rows.error().message);
  ordered_json arr = ordered_json::array();
  for (std::size_t i = offset; i < rows->size() && i < offset + limit; ++i) {
    const auto& r = (*rows)[i];
    ordered_json e;
    e["ref"] = r.ref;
    e["kind"] = r.kind;
    e["account"] = r.account;
    e["currency"] = r.currency;
    e["amount"] = r.amount;
    e["batch_date"] = format_date(r.batch_date);
    e["settle_date"] = format_date(r.settle_date);
    e["late"] = r.late;
    arr.push_back(std::move(e));
  }
  ordered_json out;
  out["merchant_id"] = merchant_id;
  out["postings"] = std::move(arr);
  out["next_cursor"] = rows->size() > offset + limit ? ordered_json(fmt::format("p{}", offset + limit)) : ordered_json();
  return json_response(200, out);
}

Response Api::get_event(Call&, std::string_view merchant_id, std::string_view event_id) {
  auto claim = store_.get(claim_key(merchant_id, event_id));
  if (!claim.ok()) return error_response(503, "unavailable", claim.error().message);
  bool on_bus = claim->has_value() && parse_claim_value(**claim).on_bus;  // accepted: on the bus
  if (!on_bus) {
    auto legacy = store_.get(legacy_on_bus_key(merchant_id, event_id));
    if (!legacy.ok()) return error_response(503, "unavailable", legacy.error().message);
    on_bus = legacy->has_value();
  }
  ledger::PostingQuery q;
  q.merchant_id = std::string(merchant_id);
  q.limit = options_.event_lookup_rows_max;
  auto rows = ledger_.postings(q);
  if (!rows.ok()) return error_response(503, "unavailable", rows.error().message);
  ordered_json legs = ordered_json::array();
  const ledger::PostingRow* first = nullptr;
  for (const auto& r : *rows) {
    if (r.ref != event_id) continue;
    if (first == nullptr) first = &r;
    legs.push_back({{"account", r.account}, {"amount", r.amount}});
  }
  if (first == nullptr && !on_bus) {
    return error_response(404, "not_found", fmt::format("no event '{}' of merchant '{}'", event_id, merchant_id));
  }
  ordered_json out;
  out["merchant_id"] = merchant_id;
  out["event_id"] = event_id;
  out["accepted"] = true;
  out["posted"] = first != nullptr;
  if (first != nullptr) {
    out["kind"] = first->kind;
    out["currency"] = first->currency;
    out["batch_date"] = format_date(first->batch_date);
    out["settle_date"] = format_date(first->settle_date);
    out["late"] = first->late;
    out["legs"] = std::move(legs);
    ledger::BatchQuery bq;
    bq.merchant_id = std::string(merchant_id);
    bq.from = first->settle_date;
    bq.to = first->settle_date;
    auto closed = ledger_.closed_batches(bq);
    if (!closed.ok()) return error_response(503, "unavailable", closed.error().message);
    bool settled = false;
    for (const auto& b : *closed) settled = settled || b.key.currency == first->currency;
    out["settled"] = settled;
    out["batch"] = {{"batch_date", format_date(first->settle_date)}, {"currency", first->currency},
                    {"state", settled ? "closed" : "open"}};
  } else {
    out["settled"] = false;
  }
  return json_response(200, out);
}

}  // namespace settle::gateway
