// Boost 1.74's Asio with g++ 12 in C++20 needs <utility> before it.
#include <utility>

#include "notify/server.h"

#include <fmt/format.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <pthread.h>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/assert.h"
#include "common/time.h"
#include "gateway/keys.h"
#include "gateway/listener.h"
#include "notify/dashboard.h"
#include "notify/feed.h"
#include "notify/tokens.h"
#include "processor/topics.h"
#include "settlement/settlement_worker.h"

namespace settle::notify {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

constexpr NotifyRoute kRoutes[] = {
    {"GET", "/v1/stream/status"},
    {"POST", "/v1/stream/tokens"},
    {"GET", "/v1/merchants/{merchant_id}/status"},
    {"GET", "/dashboard"},
    {"GET", "/healthz"},
};

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

struct Target {
  std::string path;
  std::unordered_map<std::string, std::string> query;
};

Target parse_target(std::string_view t) {
  Target out;
  const auto q = t.find('?');
  out.path = std::string(t.substr(0, q));
  if (q == std::string_view::npos) return out;
  std::string_view rest = t.substr(q + 1);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    const auto eq = pair.find('=');
    out.query[percent_decode(pair.substr(0, eq))] = eq == std::string_view::npos ? "" : percent_decode(pair.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    rest.remove_prefix(amp + 1);
  }
  return out;
}

struct Reply {
  unsigned status = 200;
  std::string body;
  std::string content_type = "application/json";
};

Reply error_reply(unsigned status, std::string_view code, std::string_view message) {
  nlohmann::ordered_json j;
  j["error"] = {{"code", code}, {"message", message}};
  return Reply{status, j.dump()};
}

// Who is asking: an admin, or one merchant.
struct Caller {
  bool admin = false;
  std::string merchant_id;
};

class WsSession;

// Subscribers by merchant ("" = every merchant).
class Hub {
 public:
  void add(const std::string& merchant, const std::shared_ptr<WsSession>& s) {
    std::lock_guard lock(mu_);
    subs_[merchant].push_back(s);
  }
  void remove(const std::string& merchant, const WsSession* s) {
    std::lock_guard lock(mu_);
    auto it = subs_.find(merchant);
    if (it == subs_.end()) return;
    auto& v = it->second;
    for (std::size_t i = 0; i < v.size(); ++i) {
      auto p = v[i].lock();
      if (!p || p.get() == s) {
        v[i] = v.back();
        v.pop_back();
        --i;
      }
    }
    if (v.empty()) subs_.erase(it);
  }
  std::vector<std::shared_ptr<WsSession>> subscribers(const std::string& merchant) {
    std::vector<std::shared_ptr<WsSession>> out;
    std::lock_guard lock(mu_);
    for (const std::string* m : {&merchant, &kAll}) {
      auto it = subs_.find(*m);
      if (it == subs_.end()) continue;
      for (auto& w : it->second) {
        if (auto p = w.lock()) out.push_back(std::move(p));
      }
    }
    return out;
  }

 private:
  static inline const std::string kAll;
  std::mutex mu_;
  std::unordered_map<std::string, std::vector<std::weak_ptr<WsSession>>> subs_;
};

struct Shared {
  NotifyOptions options;
  bus::Bus* bus = nullptr;
  StatusCache* cache = nullptr;
  std::unique_ptr<gateway::KeyRing> keys;
  std::string token_secret;
  asio::thread_pool* handlers = nullptr;
  Hub hub;
  std::atomic<std::size_t> connections{0};
  std::atomic<std::int64_t> slow_closed{0};
  std::atomic<std::int64_t> sent{0};
  std::atomic<bool> caught_up{false};
  std::mutex pipeline_mu;
  PipelineSeen pipeline;  // under pipeline_mu: the feed's copy
};

// /healthz: the feed, and the pipeline's health as far as this process can
// tell from the bus and the status records it read (see docs/operations.md).
std::string health_json(Shared& shared) {
  PipelineSeen seen;
  {
    std::lock_guard lock(shared.pipeline_mu);
    seen = shared.pipeline;
  }
  bus::Bus& bus = *shared.bus;
  auto ends = [&](std::string_view topic, auto&& per_partition) {
    auto n = bus.partition_count(topic);
    for (std::int32_t p = 0; n.ok() && p < *n; ++p) {
      if (auto end = bus.end_offset(topic, p); end.ok()) per_partition(p, *end);
    }
  };
  std::int64_t events = 0, processor_lag = 0, worker_lag = 0, dead_letters = 0;
  ends(processor::kEventsTopic, [&](std::int32_t p, std::int64_t end) {
    events += end;
    auto it = seen.posted_offsets.find(p);
    processor_lag += std::max<std::int64_t>(0, end - (it == seen.posted_offsets.end() ? 0 : it->second));
  });
  ends(processor::kTasksTopic, [&](std::int32_t p, std::int64_t end) {
    auto done = bus.committed(settlement::WorkerOptions{}.group, processor::kTasksTopic, p);
    worker_lag += std::max<std::int64_t>(0, end - (done.ok() ? *done : 0));
  });
  ends(processor::kDeadLettersTopic, [&](std::int32_t, std::int64_t end) { dead_letters += end; });
  return fmt::format(
      "{{\"status\":\"ok\",\"caught_up\":{},\"pipeline\":{{\"events\":{},\"processor_lag\":{},\"worker_lag\":{},"
      "\"failed_tasks\":{},\"dead_letters\":{}}}}}",
      shared.caught_up.load() ? "true" : "false", events, processor_lag, worker_lag, seen.close_failed, dead_letters);
}

using Message = std::shared_ptr<const std::string>;

struct Live {
  std::string merchant;
  StreamPosition at;
  Message text;
};

// One subscriber. Live messages arrive from the feed thread through
// deliver(); every other member is touched on the session's strand only.
class WsSession : public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(beast::tcp_stream&& stream, Shared& shared, std::string merchant,
            std::map<std::string, StreamPosition> since)
      : ws_(std::move(stream)), shared_(shared), merchant_(std::move(merchant)), since_(std::move(since)),
        close_timer_(ws_.get_executor()) {
    shared_.connections.fetch_add(1, std::memory_order_relaxed);
  }
  ~WsSession() { shared_.connections.fetch_sub(1, std::memory_order_relaxed); }

  void accept(http::request<http::string_body> req) {
    beast::get_lowest_layer(ws_).expires_never();
    websocket::stream_base::timeout t{};
    t.handshake_timeout = shared_.options.request_timeout;
    t.idle_timeout = shared_.options.idle_timeout;
    t.keep_alive_pings = true;
    ws_.set_option(t);
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(http::field::server, "settled-notify"); }));
    ws_.read_message_max(4096);
    ws_.async_accept(req, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return;
      self->subscribe();
    });
  }

  // From the feed thread.
  void deliver(const Live& m) {
    asio::post(ws_.get_executor(), [self = shared_from_this(), m] { self->on_live(m); });
  }

 private:
  void subscribe() {
    shared_.hub.add(merchant_, shared_from_this());
    subscribed_ = true;
    priming_ = true;
    read();
    // The history or state comes from the cache (maybe Redis): off the I/O threads.
    asio::post(*shared_.handlers, [self = shared_from_this()] {
      std::vector<Live> first;
      std::unordered_map<std::string, StreamPosition> positions;
      Status st = self->prime(first, positions);
      asio::post(self->ws_.get_executor(), [self, first = std::move(first), positions = std::move(positions),
                                            st = std::move(st)]() mutable {
        if (!st.ok()) return self->close_with(websocket::close_code::try_again_later, st.error().message);
        self->last_ = std::move(positions);
        for (Live& m : first) self->enqueue(std::move(m.text));
        self->priming_ = false;
        auto held = std::move(self->held_);
        self->held_.clear();
        for (const Live& m : held) self->on_live(m);
      });
    });
  }

  // The first messages: the history after `since`, or a resync per merchant.
  Status prime(std::vector<Live>& out, std::unordered_map<std::string, StreamPosition>& positions) {
    std::vector<std::string> merchants;
    if (merchant_.empty()) {
      SETTLE_ASSIGN_OR_RETURN(merchants, shared_.cache->merchants());
    } else {
      merchants.push_back(merchant_);
    }
    for (const std::string& m : merchants) {
      if (auto from = since_.find(m); from != since_.end()) {
        SETTLE_ASSIGN_OR_RETURN(auto history, shared_.cache->since(m, from->second));
        if (history) {
          StreamPosition last = from->second;
          for (CacheEntry& e : *history) {
            last = e.at;
            out.push_back(Live{m, e.at, std::make_shared<const std::string>(std::move(e.message))});
          }
          positions[m] = last;
          continue;
        }
      }
      SETTLE_ASSIGN_OR_RETURN(MerchantState s, shared_.cache->state(m));
      positions[m] = s.head;
      out.push_back(Live{m, s.head, std::make_shared<const std::string>(resync_message(s))});
    }
    return ok_status();
  }

  void on_live(const Live& m) {
    if (closing_) return;
    if (priming_) {
      if (held_.size() >= shared_.options.queue_max) return slow();
      held_.push_back(m);
      return;
    }
    auto it = last_.find(m.merchant);
    if (it != last_.end() && it->second.epoch == m.at.epoch && m.at.seq <= it->second.seq) return;  // sent already
    last_[m.merchant] = m.at;
    enqueue(m.text);
  }

  void enqueue(Message text) {
    if (closing_) return;
    if (out_.size() >= shared_.options.queue_max) return slow();
    out_.push_back(std::move(text));
    write();
  }

  void slow() {
    shared_.slow_closed.fetch_add(1, std::memory_order_relaxed);
    close_with(static_cast<websocket::close_code>(kSlowConsumerCloseCode),
               fmt::format("slow consumer: more than {} messages unsent; reconnect with since=", shared_.options.queue_max));
  }

  void write() {
    if (writing_ || out_.empty() || closing_) return;
    writing_ = true;
    ws_.text(true);
    ws_.async_write(asio::buffer(*out_.front()), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->writing_ = false;
      self->out_.pop_front();  // kept until now: Beast writes from it
      if (ec) return self->finish();
      self->shared_.sent.fetch_add(1, std::memory_order_relaxed);
      self->write();
    });
  }

  // Clients send nothing but control frames; reading keeps pings and the
  // close handshake going.
  void read() {
    ws_.async_read(in_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->in_.consume(self->in_.size());
      if (ec) return self->finish();
      self->read();
    });
  }

  // Drops what is queued except a message being written (Beast reads it
  // until its write completes).
  void drop_queue() {
    out_.erase(out_.begin() + (writing_ && !out_.empty() ? 1 : 0), out_.end());
    held_.clear();
  }

  void close_with(websocket::close_code code, std::string reason) {
    if (closing_) return;
    closing_ = true;
    drop_queue();
    if (reason.size() > 120) reason.resize(120);
    // Beast holds the close frame until a write in progress ends; a client
    // that reads nothing never lets it, so the socket goes after a while.
    ws_.async_close(websocket::close_reason(code, reason), [self = shared_from_this()](beast::error_code) {
      self->close_timer_.cancel();
    });
    close_timer_.expires_after(std::chrono::seconds(5));
    close_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec) return;
      beast::get_lowest_layer(self->ws_).close();
    });
    unsubscribe();
  }

  void finish() {
    closing_ = true;
    drop_queue();
    unsubscribe();
  }

  void unsubscribe() {
    if (!subscribed_) return;
    subscribed_ = false;
    shared_.hub.remove(merchant_, this);
  }

  websocket::stream<beast::tcp_stream> ws_;
  Shared& shared_;
  const std::string merchant_;  // empty: every merchant
  const std::map<std::string, StreamPosition> since_;  // per merchant: resume after it
  asio::steady_timer close_timer_;
  beast::flat_buffer in_;
  std::deque<Message> out_;
  std::vector<Live> held_;  // live messages that arrived while priming
  std::unordered_map<std::string, StreamPosition> last_;  // the last position sent, per merchant
  bool subscribed_ = false;
  bool priming_ = false;
  bool writing_ = false;
  bool closing_ = false;
};

// Authenticates a request: Bearer key, or (WebSocket only) a token.
Result<Caller> authenticate(Shared& shared, std::string_view authorization, const std::string* token) {
  if (token != nullptr && !token->empty()) {
    SETTLE_ASSIGN_OR_RETURN(TokenClaims c, check_token(shared.token_secret, *token, now_ms()));
    return Caller{c.admin, c.merchant_id};
  }
  constexpr std::string_view kBearer = "Bearer ";
  const std::string_view scheme = authorization.substr(0, std::min(authorization.size(), kBearer.size()));
  if (authorization.size() <= kBearer.size() ||
      !beast::iequals(beast::string_view(scheme.data(), scheme.size()), beast::string_view(kBearer.data(), kBearer.size()))) {
    return make_error(ErrorCode::kFailedPrecondition, "missing Authorization: Bearer <key> (or token=)");
  }
  SETTLE_ASSIGN_OR_RETURN(auto key, shared.keys->authenticate(authorization.substr(kBearer.size())));
  if (!key) return make_error(ErrorCode::kFailedPrecondition, "unknown or revoked key");
  return Caller{key->scope == gateway::Scope::kAdmin, key->scope == gateway::Scope::kAdmin ? "" : key->merchant_id};
}

Reply auth_error(const Error& e) {
  if (e.code == ErrorCode::kUnavailable || e.code == ErrorCode::kIo) return error_reply(503, "unavailable", e.message);
  return error_reply(401, "unauthorized", e.message);
}

// Which merchant a caller may watch: `wanted` (empty: every merchant).
Result<std::string> scope_for(const Caller& c, const std::string& wanted) {
  if (c.admin) {
    if (!c.merchant_id.empty() && wanted != c.merchant_id) {
      return make_error(ErrorCode::kInvalidArgument, fmt::format("this token is for merchant '{}' only", c.merchant_id));
    }
    return wanted;
  }
  if (wanted.empty()) return c.merchant_id;
  if (wanted != c.merchant_id) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("a merchant key may not watch merchant '{}'", wanted));
  }
  return wanted;
}

Reply handle(Shared& shared, const std::string& method, const Target& t, std::string_view authorization,
             const std::string& body) {
  if (t.path == "/healthz" && method == "GET") {
    return Reply{200, health_json(shared)};
  }
  if (t.path == "/dashboard" && method == "GET") return Reply{200, std::string(dashboard_html()), "text/html; charset=utf-8"};
  if (t.path == "/v1/stream/tokens" && method == "POST") {
    auto caller = authenticate(shared, authorization, nullptr);
    if (!caller.ok()) return auth_error(caller.error());
    nlohmann::json j = body.empty() ? nlohmann::json::object() : nlohmann::json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return error_reply(400, "malformed_json", "the body must be a JSON object");
    std::string merchant;
    std::int64_t ttl = 300;
    try {
      merchant = j.value("merchant_id", std::string());
      ttl = j.value("ttl_s", std::int64_t{300});
    } catch (const nlohmann::json::exception&) {
      return error_reply(400, "validation_failed", "merchant_id must be a string and ttl_s an integer");
    }
    if (ttl <= 0 || ttl > shared.options.token_ttl_max_s) {
      return error_reply(400, "validation_failed", fmt::format("ttl_s must be 1..{}", shared.options.token_ttl_max_s));
    }
    auto scope = scope_for(*caller, merchant);
    if (!scope.ok()) return error_reply(403, "forbidden", scope.error().message);
    TokenClaims c{caller->admin, *scope, now_ms() + ttl * 1000};
    nlohmann::ordered_json out;
    out["token"] = issue_token(shared.token_secret, c);
    out["merchant_id"] = c.merchant_id.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(c.merchant_id);
    out["expires_at"] = format_rfc3339(Timestamp{c.expires_ms * 1'000'000});
    return Reply{201, out.dump()};
  }
  constexpr std::string_view kMerchants = "/v1/merchants/", kStatus = "/status";
  if (method == "GET" && std::string_view(t.path).starts_with(kMerchants) && std::string_view(t.path).ends_with(kStatus) &&
      t.path.size() > kMerchants.size() + kStatus.size()) {
    const std::string id = t.path.substr(kMerchants.size(), t.path.size() - kMerchants.size() - kStatus.size());
    if (id.find('/') != std::string::npos) return error_reply(404, "not_found", "no such route");
    auto caller = authenticate(shared, authorization, nullptr);
    if (!caller.ok()) return auth_error(caller.error());
    auto scope = scope_for(*caller, id);
    if (!scope.ok()) return error_reply(403, "forbidden", scope.error().message);
    auto state = shared.cache->state(id);
    if (!state.ok()) return error_reply(503, "unavailable", state.error().message);
    return Reply{200, state_json(*state)};
  }
  for (const NotifyRoute& r : kRoutes) {
    if (t.path == r.path) return error_reply(405, "method_not_allowed", fmt::format("{} {} is not served", method, t.path));
  }
  return error_reply(404, "not_found", fmt::format("no route {} {}", method, t.path));
}

// One HTTP connection; hands a WebSocket upgrade to a WsSession.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, Shared& shared) : stream_(std::move(socket)), shared_(shared) {}
  void run() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read(); });
  }

 private:
  void read() {
    parser_.emplace();
    parser_->body_limit(64 * 1024);
    stream_.expires_after(shared_.options.request_timeout);
    http::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->close();
      self->on_request();
    });
  }

  void on_request() {
    auto& req = parser_->get();
    Target t = parse_target(std::string_view(req.target().data(), req.target().size()));
    const std::string method(req.method_string());
    const std::string authorization(req[http::field::authorization]);
    if (websocket::is_upgrade(req) && t.path == "/v1/stream/status") return upgrade(std::move(t), authorization);
    asio::post(*shared_.handlers, [self = shared_from_this(), t = std::move(t), method, authorization,
                                   body = std::move(req.body())] {
      Reply r = handle(self->shared_, method, t, authorization, body);
      asio::post(self->stream_.get_executor(), [self, r = std::move(r)]() mutable { self->write(std::move(r)); });
    });
  }

  void upgrade(Target t, std::string authorization) {
    asio::post(*shared_.handlers, [self = shared_from_this(), t = std::move(t), authorization] {
      std::optional<Reply> refused;
      std::string merchant;
      std::map<std::string, StreamPosition> since;
      auto tok = t.query.find("token");
      auto caller = authenticate(self->shared_, authorization, tok == t.query.end() ? nullptr : &tok->second);
      if (!caller.ok()) {
        refused = auth_error(caller.error());
      } else {
        auto m = t.query.find("merchant_id");
        auto scope = scope_for(*caller, m == t.query.end() ? "" : m->second);
        if (!scope.ok()) {
          refused = error_reply(403, "forbidden", scope.error().message);
        } else {
          merchant = *scope;
          if (auto s = t.query.find("since"); s != t.query.end()) {
            // One merchant: E:S. Every merchant: E:MERCHANT:S per merchant.
            if (!merchant.empty()) {
              auto p = parse_position(s->second);
              if (!p.ok()) {
                refused = error_reply(400, "validation_failed", p.error().message);
              } else {
                since[merchant] = *p;
              }
            } else {
              auto ps = parse_positions(s->second);
              if (!ps.ok()) {
                refused = error_reply(400, "validation_failed", ps.error().message);
              } else {
                since = std::move(*ps);
              }
            }
          }
        }
      }
      asio::post(self->stream_.get_executor(), [self, refused = std::move(refused), merchant,
                                                since = std::move(since)]() mutable {
        if (refused) return self->write(std::move(*refused), true);
        if (self->shared_.connections.load() >= self->shared_.options.max_connections) {
          return self->write(error_reply(503, "too_many_connections", "notify is at its connection limit"), true);
        }
        if (self->shared_.options.socket_send_buffer_bytes > 0) {
          beast::error_code ec;
          self->stream_.socket().set_option(asio::socket_base::send_buffer_size(self->shared_.options.socket_send_buffer_bytes), ec);
        }
        std::make_shared<WsSession>(std::move(self->stream_), self->shared_, merchant, std::move(since))
            ->accept(self->parser_->release());
      });
    });
  }

  void write(Reply r, bool close_after = false) {
    auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(r.status), 11);
    res->set(http::field::server, "settled-notify");
    res->set(http::field::content_type, r.content_type);
    if (r.status == 401) res->set(http::field::www_authenticate, "Bearer");
    res->body() = std::move(r.body);
    res->keep_alive(!close_after && parser_->get().keep_alive());
    res->prepare_payload();
    http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
      if (ec || !res->keep_alive()) return self->close();
      self->read();
    });
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.close();
  }

  beast::tcp_stream stream_;
  Shared& shared_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
};

}  // namespace

std::span<const NotifyRoute> notify_route_table() { return kRoutes; }

struct NotifyServer::Impl {
  Shared shared;
  asio::io_context ioc;
  std::optional<asio::thread_pool> handlers;
  gateway::Listener listener{ioc};
  std::vector<std::thread> threads;
  std::thread feed_thread;
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  Status failure = ok_status();
  bool running = false;

  explicit Impl(NotifyOptions o) : ioc(std::max(1, o.io_threads)) { shared.options = std::move(o); }

  void run_feed() {
    pthread_setname_np(pthread_self(), "notify-feed");
    Feed feed(*shared.bus, *shared.cache, [this](const CacheEntry& e) {
      auto subs = shared.hub.subscribers(e.merchant_id);
      if (subs.empty()) return;
      const Live m{e.merchant_id, e.at, std::make_shared<const std::string>(e.message)};
      for (auto& s : subs) s->deliver(m);
    });
    std::unique_lock lock(mu);
    while (!stopping) {
      lock.unlock();
      auto n = feed.poll();
      if (feed.caught_up()) shared.caught_up.store(true);
      if (n.ok() && *n > 0) {
        std::lock_guard plock(shared.pipeline_mu);
        shared.pipeline = feed.pipeline();
      }
      lock.lock();
      if (!n.ok()) {
        failure = n.error();
        return;
      }
      if (*n == 0) cv.wait_for(lock, shared.options.poll_interval, [this] { return stopping; });
    }
  }
};

NotifyServer::NotifyServer(bus::Bus& bus, StatusCache& cache, NotifyOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {
  impl_->shared.bus = &bus;
  impl_->shared.cache = &cache;
}

NotifyServer::~NotifyServer() { stop(); }

Status NotifyServer::start() {
  Impl& d = *impl_;
  SETTLE_ASSERT(!d.running, "NotifyServer::start() twice");
  SETTLE_ASSIGN_OR_RETURN(d.shared.keys, gateway::KeyRing::open(*d.shared.bus));
  d.shared.token_secret = d.shared.options.token_secret.empty() ? random_token_secret() : d.shared.options.token_secret;
  SETTLE_TRY(d.listener.listen("notify", d.shared.options.host, d.shared.options.port));
  d.handlers.emplace(static_cast<std::size_t>(std::max(1, d.shared.options.handler_threads)));
  d.shared.handlers = &*d.handlers;
  d.listener.accept([&d](tcp::socket socket) { std::make_shared<Session>(std::move(socket), d.shared)->run(); });
  for (int i = 0; i < std::max(1, d.shared.options.io_threads); ++i) d.threads.emplace_back([&d] { d.ioc.run(); });
  d.feed_thread = std::thread([&d] { d.run_feed(); });
  d.running = true;
  return ok_status();
}

void NotifyServer::stop() {
  Impl& d = *impl_;
  if (!d.running) return;
  d.running = false;
  {
    std::lock_guard lock(d.mu);
    d.stopping = true;
  }
  d.cv.notify_all();
  d.feed_thread.join();
  d.listener.close();
  d.handlers->join();
  d.ioc.stop();
  for (auto& t : d.threads) t.join();
  d.threads.clear();
}

std::uint16_t NotifyServer::port() const { return impl_->listener.port(); }

Status NotifyServer::failure() const {
  std::lock_guard lock(impl_->mu);
  return impl_->failure;
}

std::size_t NotifyServer::clients() const { return impl_->shared.connections.load(); }
std::int64_t NotifyServer::slow_closed() const { return impl_->shared.slow_closed.load(); }
std::int64_t NotifyServer::messages_sent() const { return impl_->shared.sent.load(); }

}  // namespace settle::notify
