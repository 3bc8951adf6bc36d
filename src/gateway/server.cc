// Boost 1.74's Asio with g++ 12 in C++20 needs <utility> before it.
#include <utility>

#include "gateway/server.h"

#include "gateway/bulk.h"
#include "gateway/listener.h"
#include "gateway/stream.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <deque>
#include <limits>
#include <memory>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <optional>
#include <thread>
#include <type_traits>
#include <vector>

namespace settle::gateway {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
namespace ssl = asio::ssl;
// Each I/O thread runs an io_context of its own, and a connection lives on
// one of them: its handlers never run concurrently, so it needs no strand,
// and its stream's executor is a concrete type rather than a type-erased one.
// The stream is the socket itself: time-outs are the lane's (IoLane), so
// Beast's basic_stream, a timer and a rate policy around every operation,
// has nothing to add.
using IoExecutor = asio::io_context::executor_type;
using PlainStream = tcp::socket::rebind_executor<IoExecutor>::other;
using TlsStream = beast::ssl_stream<PlainStream>;

constexpr std::uint64_t kNoBodyLimit = std::numeric_limits<std::uint64_t>::max();
// A bulk body is read and handed to the parser in pieces of this size.
constexpr std::size_t kBulkChunkBytes = 256 * 1024;
constexpr std::size_t kBulkReadBytes = 64 * 1024;
// A connection keeps its last response's buffer up to this size.
constexpr std::size_t kKeptResponseBytes = 16 * 1024;

// A connection whose pending read or write has a deadline (see IoLane).
class Expiring {
 public:
  virtual ~Expiring() = default;
  // Called on the connection's I/O thread once its deadline has passed:
  // closes the connection, which fails the pending operation.
  virtual void expire() = 0;

  // The sweep (IoLane) after which the pending operation has run too long;
  // 0 while none is pending (the request is being handled, or nothing is).
  std::uint64_t deadline = 0;
};

// A connection the lane sweeps, allocated apart from its shared_ptr's control
// block: the lane holds a weak_ptr to each until its next pass, and a weak_ptr
// to a make_shared object keeps the whole object's memory (a session and its
// buffers, some 17 KiB) allocated; this way it holds a few bytes.
template <class T, class... Args>
std::shared_ptr<T> make_swept(Args&&... args) {
  return std::shared_ptr<T>(new T(std::forward<Args>(args)...));
}

// An I/O thread as a Lane (api.h): work posted to its io_context. It also
// keeps its connections' time-outs. A Beast stream's expiry would arm a timer
// for each read and each write: a heap insertion under the reactor's lock,
// and, since the operation nearly always ends first, a cancelled wait
// posted back to the thread, for every operation. Instead the lane sweeps
// its connections once a period (a quarter of the request time-out, 10 ms to
// 1 s) and closes those whose deadline has passed: a connection whose
// operation started d ago is closed between d and d + 2 periods, never
// before d.
class IoLane final : public Lane {
 public:
  IoLane(asio::io_context& ioc, std::chrono::milliseconds timeout)
      : ioc_(ioc),
        period_(std::clamp<std::chrono::milliseconds>(timeout / 4, std::chrono::milliseconds(10),
                                                      std::chrono::seconds(1))),
        sweeper_(ioc) {
    schedule();
  }
  void post(std::function<void()> work) override { asio::post(ioc_, std::move(work)); }

  // On this lane's thread: the connection is swept from now on, until it is
  // gone.
  void watch(std::weak_ptr<Expiring> connection) { watched_.push_back(std::move(connection)); }

  // The deadline of an operation that starts now and may take `d`.
  std::uint64_t deadline_after(std::chrono::milliseconds d) const {
    const auto periods = static_cast<std::uint64_t>((d + period_ - std::chrono::milliseconds(1)) / period_);
    return sweeps_ + periods + 1;
  }

 private:
  void schedule() {
    sweeper_.expires_after(period_);
    sweeper_.async_wait([this](beast::error_code ec) {
      if (ec) return;  // the server is stopping
      sweep();
      schedule();
    });
  }

  void sweep() {
    ++sweeps_;
    for (std::size_t i = 0; i < watched_.size();) {
      std::shared_ptr<Expiring> c = watched_[i].lock();
      if (c == nullptr) {  // gone: forget it (order does not matter)
        watched_[i] = std::move(watched_.back());
        watched_.pop_back();
        continue;
      }
      if (c->deadline != 0 && c->deadline <= sweeps_) {
        c->deadline = 0;
        c->expire();
      }
      ++i;
    }
  }

  asio::io_context& ioc_;
  const std::chrono::milliseconds period_;
  asio::steady_timer sweeper_;
  std::uint64_t sweeps_ = 0;
  std::vector<std::weak_ptr<Expiring>> watched_;
};

struct Shared {
  Api* api = nullptr;
  ServerOptions options;
  asio::thread_pool* handlers = nullptr;
  ssl::context* tls = nullptr;  // set: every connection must speak TLS
  std::atomic<std::size_t> connections{0};
};

// One WebSocket connection on /v1/events/stream (protocol in stream.h).
// Messages are read while fewer than stream_in_flight_max events await their
// acks; the events of every message read while an append runs join the next
// one (one claim_and_append, so one bus append, for all of them). Acks are
// written in order, one message per message received, one line per event.
// At most one read, one append and one write are outstanding at a time; all
// state is touched on the connection's strand only.
// Stream is the HTTP session's stream (PlainStream or TlsStream).
template <class Stream>
class StreamSession : public std::enable_shared_from_this<StreamSession<Stream>> {
  using std::enable_shared_from_this<StreamSession<Stream>>::shared_from_this;

 public:
  StreamSession(Stream&& stream, Shared& shared, std::unique_ptr<EventStream> events)
      : ws_(std::move(stream)), shared_(shared), events_(std::move(events)) {
    shared_.connections.fetch_add(1, std::memory_order_relaxed);
  }
  ~StreamSession() { shared_.connections.fetch_sub(1, std::memory_order_relaxed); }

  void accept(http::request<http::empty_body> req) {
    // The WebSocket keeps its own time-outs (below).
    websocket::stream_base::timeout t{};
    t.handshake_timeout = shared_.options.request_timeout;
    t.idle_timeout = shared_.options.stream_idle_timeout;
    t.keep_alive_pings = true;
    ws_.set_option(t);
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(http::field::server, "settled"); }));
    ws_.read_message_max(shared_.options.stream_message_bytes_max);
    ws_.async_accept(req, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return;
      self->maybe_read();
    });
  }

 private:
  struct Message {
    std::string text;
    std::size_t events = 0;
  };

  void maybe_read() {
    if (reading_ || closing_ || in_flight_ >= shared_.options.stream_in_flight_max) return;
    reading_ = true;
    ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    reading_ = false;
    if (ec) {
      // Closed by the client, too big (Beast has sent 1009), timed out or
      // reset: acks still owed cannot be delivered; what was appended stays.
      closing_ = true;
      return;
    }
    if (!ws_.got_text()) {
      return close_with(websocket::close_code::unknown_data, "binary messages are not accepted; send JSON text");
    }
    Message m{beast::buffers_to_string(buffer_.data()), 0};
    buffer_.consume(buffer_.size());
    m.events = split_stream_message(m.text).size();
    if (m.events > 0) {
      in_flight_ += m.events;
      pending_.push_back(std::move(m));
      maybe_append();
    }
    maybe_read();
  }

  void maybe_append() {
    if (appending_ || pending_.empty() || closing_) return;
    appending_ = true;
    auto batch = std::make_shared<std::vector<Message>>(std::move(pending_));
    pending_.clear();
    asio::post(*shared_.handlers, [self = shared_from_this(), batch] {
      std::vector<std::string_view> texts;
      for (const Message& m : *batch) {
        for (std::string_view t : split_stream_message(m.text)) texts.push_back(t);
      }
      auto acks = self->events_->process(texts);
      asio::post(self->ws_.get_executor(), [self, batch, acks = std::move(acks)]() mutable {
        self->on_appended(*batch, std::move(acks));
      });
    });
  }

  void on_appended(const std::vector<Message>& batch, Result<std::string> acks) {
    appending_ = false;
    if (!acks.ok()) return close_with(websocket::close_code::policy_error, acks.error().message);
    // One ack message per message received: as many lines as it had events.
    std::string_view all = *acks;
    for (const Message& m : batch) {
      std::size_t end = 0;
      for (std::size_t k = 0; k < m.events; ++k) end = all.find('\n', end) + 1;
      out_.push_back(Message{std::string(all.substr(0, end - 1)), m.events});
      all.remove_prefix(end);
    }
    maybe_write();
    maybe_append();
  }

  void maybe_write() {
    if (writing_) return;
    if (out_.empty()) {
      if (close_code_) do_close();
      return;
    }
    writing_ = true;
    ws_.text(true);
    ws_.async_write(asio::buffer(out_.front().text), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->writing_ = false;
      if (ec) {
        self->closing_ = true;
        return;
      }
      self->in_flight_ -= self->out_.front().events;
      self->out_.pop_front();
      self->maybe_write();
      self->maybe_read();
    });
  }

  // Stops reading, lets the acks already decided go out, then closes.
  void close_with(websocket::close_code code, std::string reason) {
    if (close_code_) return;
    closing_ = true;
    close_code_ = code;
    close_reason_ = std::move(reason);
    if (close_reason_.size() > 120) close_reason_.resize(120);  // a close frame's reason is at most 123 bytes
    if (!appending_) maybe_write();
  }

  void do_close() {
    if (closed_) return;
    closed_ = true;
    ws_.async_close(websocket::close_reason(*close_code_, close_reason_),
                    [self = shared_from_this()](beast::error_code) {});
  }

  websocket::stream<Stream> ws_;
  Shared& shared_;
  std::unique_ptr<EventStream> events_;
  beast::flat_buffer buffer_;
  std::vector<Message> pending_;  // read, waiting for the append in progress
  std::deque<Message> out_;       // ack messages to write
  std::size_t in_flight_ = 0;     // events read and not yet acknowledged
  bool reading_ = false;
  bool appending_ = false;
  bool writing_ = false;
  bool closing_ = false;
  bool closed_ = false;
  std::optional<websocket::close_code> close_code_;
  std::string close_reason_;
};

// Writes `resp` as an HTTP/1.x response into `out` (replacing what it held,
// keeping its buffer): status line, Server, the response's own headers,
// Content-Type (application/json unless the response names one),
// Content-Length, Connection when it differs from the version's default, and
// the body. Beast's serializer did the same through a chain of buffer views
// and a fields container allocated per response, a tenth of the gateway's
// CPU under single-event load; the headers here come from the API's code,
// never from a client.
void serialize_response(std::string& out, const Response& resp, bool close_after, unsigned version) {
  using namespace std::string_view_literals;
  out.clear();
  const auto reason = http::obsolete_reason(static_cast<http::status>(resp.status));
  out += version == 10 ? "HTTP/1.0 "sv : "HTTP/1.1 "sv;
  {
    const fmt::format_int status(resp.status);
    out.append(status.data(), status.size());
  }
  out += ' ';
  out.append(reason.data(), reason.size());
  out += "\r\nServer: settled\r\n"sv;
  bool typed = false;
  for (const auto& [name, value] : resp.headers) {
    typed = typed || beast::iequals(name, "Content-Type");
    out += name;
    out += ": "sv;
    out += value;
    out += "\r\n"sv;
  }
  if (!typed) out += "Content-Type: application/json\r\n"sv;
  // 1xx, 204 and 304 have no body and no length.
  const bool bodyless = resp.status < 200 || resp.status == 204 || resp.status == 304;
  if (!bodyless) {
    out += "Content-Length: "sv;
    const fmt::format_int length(resp.body.size());
    out.append(length.data(), length.size());
    out += "\r\n"sv;
  }
  if (close_after) {
    out += "Connection: close\r\n"sv;
  } else if (version == 10) {
    out += "Connection: keep-alive\r\n"sv;
  }
  out += "\r\n"sv;
  if (!bodyless) out += resp.body;
}

// How a session starts: serve requests, answer 503 (over the connection
// cap), or answer 400 to plain HTTP on a TLS port.
enum class Opening : std::uint8_t { kServe, kOverCapacity, kPlainOnTlsPort };

// One connection: reads requests one at a time (HTTP/1.1 keep-alive), hands
// each to the handler pool, writes its response, reads the next. The same
// code serves plain TCP and TLS (Stream is PlainStream or TlsStream); a TLS
// session shakes hands first, with the bytes the detector already read.
template <class Stream>
class Session final : public Expiring, public std::enable_shared_from_this<Session<Stream>> {
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

 public:
  // `lane` is the I/O thread whose io_context the stream runs on.
  template <class... StreamArgs>
  Session(Shared& shared, IoLane& lane, Opening opening, beast::flat_buffer buffer, StreamArgs&&... args)
      : stream_(std::forward<StreamArgs>(args)...),
        buffer_(std::move(buffer)),
        shared_(shared),
        lane_(lane),
        opening_(opening) {
    shared_.connections.fetch_add(1, std::memory_order_relaxed);
  }
  ~Session() { shared_.connections.fetch_sub(1, std::memory_order_relaxed); }

  void run() { asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] { self->handshake(); }); }

 private:
  using std::enable_shared_from_this<Session<Stream>>::shared_from_this;

  auto& lowest() { return beast::get_lowest_layer(stream_); }

  // The pending operation may take `d` (IoLane sweeps); its completion
  // disarms before anything else, so that a request being handled, with no
  // operation pending, is never cut.
  void arm(std::chrono::milliseconds d) { deadline = lane_.deadline_after(d); }
  void disarm() { deadline = 0; }
  void expire() override { close(); }

  void handshake() {
    lane_.watch(shared_from_this());
    if constexpr (kTls) {
      arm(shared_.options.request_timeout);
      stream_.async_handshake(ssl::stream_base::server, buffer_.data(),
                              [self = shared_from_this()](beast::error_code ec, std::size_t used) {
                                self->disarm();
                                if (ec) return self->close();  // not a TLS client we can talk to
                                self->buffer_.consume(used);
                                self->begin();
                              });
    } else {
      begin();
    }
  }

  void begin() {
    if (opening_ == Opening::kOverCapacity) {
      write(error_response(503, "too_many_connections",
                           fmt::format("the gateway serves at most {} connections at once; retry later",
                                       shared_.options.max_connections)),
            true, 11);
      return;
    }
    if (opening_ == Opening::kPlainOnTlsPort) {
      write(error_response(400, "tls_required", "this port speaks HTTPS (TLS); plain HTTP is not served"), true, 11);
      return;
    }
    read_header();
  }

  void read_header() {
    header_parser_.emplace();
    // Decided per route once the target is known. Not boost::none: Beast
    // 1.74 compares a Content-Length with a disengaged limit as exceeding it.
    header_parser_->body_limit(kNoBodyLimit);
    header_parser_->header_limit(64 * 1024);
    parser_.reset();
    bulk_parser_.reset();
    upload_.reset();
    // The whole request (header and body) must arrive within the time-out.
    arm(shared_.options.request_timeout);
    http::async_read_header(stream_, buffer_, *header_parser_,
                            [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    if (ec) return on_read_error(ec);
    const auto& req = header_parser_->get();
    started_ = std::chrono::steady_clock::now();
    // Beast knows HTTP's methods; any other token is "OTHER", so that a
    // client cannot add metric series by inventing methods.
    method_ = req.method() == http::verb::unknown ? std::string("OTHER") : std::string(req.method_string());
    if (Api::is_streamed(std::string_view(req.method_string().data(), req.method_string().size()),
                         std::string_view(req.target().data(), req.target().size()))) {
      return start_bulk();
    }
    if (websocket::is_upgrade(req) && Api::is_stream_target(std::string_view(req.target().data(), req.target().size()))) {
      return start_stream();
    }
    const auto length = header_parser_->content_length();
    if (length && *length > shared_.options.body_limit_bytes) return on_read_error(http::error::body_limit);
    const bool expects = beast::iequals(req[http::field::expect], "100-continue");
    const unsigned version = req.version();
    parser_.emplace(std::move(*header_parser_));
    parser_->body_limit(shared_.options.body_limit_bytes);
    if (!expects) {
      // A small request's body usually arrived with its header: parse it
      // from the buffer, without another trip through a read operation.
      beast::error_code pec;
      while (!parser_->is_done() && buffer_.size() > 0) {
        const std::size_t used = parser_->put(buffer_.data(), pec);
        buffer_.consume(used);
        if (pec == http::error::need_more) pec = {};
        if (pec) return on_read_error(pec);
        if (used == 0) break;
      }
      if (parser_->is_done()) return on_body({});
    }
    if (expects) {
      continue_.emplace(http::status::continue_, version);
      http::async_write(stream_, *continue_, [self = shared_from_this()](beast::error_code wec, std::size_t) {
        if (wec) return self->close();
        self->read_body();
      });
      return;
    }
    read_body();
  }

  static Request request_of(const http::request_parser<http::empty_body>::value_type& msg) {
    Request req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    req.authorization = std::string(msg[http::field::authorization]);
    req.content_type = std::string(msg[http::field::content_type]);
    if (auto it = msg.find("Idempotency-Key"); it != msg.end()) {
      req.has_idempotency_key = true;
      req.idempotency_key = std::string(it->value());
    }
    if (auto it = msg.find("traceparent"); it != msg.end()) req.traceparent = std::string(it->value());
    if (msg.has_content_length()) {
      const auto cl = msg[http::field::content_length];
      std::uint64_t n = 0;
      auto [p, ec] = std::from_chars(cl.data(), cl.data() + cl.size(), n);
      if (ec == std::errc() && p == cl.data() + cl.size()) req.content_length = n;
    }
    return req;
  }

  // A bulk body is streamed: a chunk is read, fed to the upload on the
  // handler pool (which appends a batch to the bus when one is full), and
  // only then is the next chunk read, so memory stays bounded and a slow bus
  // slows the client down (TCP backpressure).
  void start_bulk() {
    disarm();
    Request req = request_of(header_parser_->get());
    route_ = req.method == "PUT" ? "/v1/uploads/{upload_id}" : "/v1/events/bulk";
    asio::post(*shared_.handlers, [self = shared_from_this(), req = std::move(req)]() mutable {
      Api::BulkStart start = self->shared_.api->begin_bulk(req);
      asio::post(self->stream_.get_executor(), [self, start = std::move(start)]() mutable {
        const unsigned version = self->header_parser_->get().version();
        if (!start.upload) return self->write(std::move(start.response), true, version);
        self->upload_ = std::move(start.upload);
        self->chunk_.resize(kBulkChunkBytes);
        // Beast reads at most the read buffer's free capacity (at least 512
        // bytes): after small headers that is 512 bytes a recv, a system call
        // per half KiB of body. Room for 64 KiB makes each recv take what the
        // socket holds, up to Beast's 64 KiB a read.
        self->buffer_.reserve(kBulkReadBytes);
        const bool expects = beast::iequals(self->header_parser_->get()[http::field::expect], "100-continue");
        self->bulk_version_ = version;
        self->bulk_keep_alive_ = self->header_parser_->get().keep_alive();
        self->bulk_parser_.emplace(std::move(*self->header_parser_));
        self->bulk_parser_->body_limit(start.body_limit);
        self->bulk_limit_ = start.body_limit;
        if (expects) {
          self->continue_.emplace(http::status::continue_, version);
          self->arm(self->shared_.options.request_timeout);
          http::async_write(self->stream_, *self->continue_, [self](beast::error_code wec, std::size_t) {
            self->disarm();
            if (wec) return self->close();
            self->read_bulk_chunk();
          });
          return;
        }
        self->read_bulk_chunk();
      });
    });
  }

  // A WebSocket upgrade: the key is checked on the handler pool; a refusal
  // is an HTTP answer (401, 403), an acceptance hands the socket over.
  void start_stream() {
    disarm();  // the WebSocket keeps its own time-outs
    Request req = request_of(header_parser_->get());
    asio::post(*shared_.handlers, [self = shared_from_this(), req = std::move(req)]() mutable {
      Api::StreamStart start = self->shared_.api->begin_stream(req);
      asio::post(self->stream_.get_executor(), [self, start = std::move(start)]() mutable {
        if (!start.stream) return self->write(std::move(start.response), true, self->header_parser_->get().version());
        std::make_shared<StreamSession<Stream>>(std::move(self->stream_), self->shared_, std::move(start.stream))
            ->accept(self->header_parser_->release());
      });
    });
  }

  void read_bulk_chunk() {
    if (bulk_parser_->is_done()) return finish_bulk();
    auto& body = bulk_parser_->get().body();
    body.data = chunk_.data();
    body.size = chunk_.size();
    arm(shared_.options.request_timeout);
    http::async_read(stream_, buffer_, *bulk_parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->disarm();
      if (ec == http::error::need_buffer) ec = {};
      if (ec == http::error::body_limit) {
        Response r = self->upload_->too_large(self->bulk_limit_);
        return self->write(std::move(r), true, self->bulk_version_);
      }
      if (ec) return self->close();  // the client went away or stalled: what was appended stays
      const std::size_t n = self->chunk_.size() - self->bulk_parser_->get().body().size;
      asio::post(*self->shared_.handlers, [self, n] {
        Status st = self->upload_->feed(std::string_view(self->chunk_.data(), n));
        asio::post(self->stream_.get_executor(), [self, st = std::move(st)]() mutable {
          if (!st.ok()) {
            Response r = self->upload_->fail(st.error());
            return self->write(std::move(r), true, self->bulk_version_);
          }
          self->read_bulk_chunk();
        });
      });
    });
  }

  void finish_bulk() {
    asio::post(*shared_.handlers, [self = shared_from_this()] {
      Response r = self->upload_->finish();
      asio::post(self->stream_.get_executor(), [self, r = std::move(r)]() mutable {
        self->write(std::move(r), !self->bulk_keep_alive_, self->bulk_version_);
      });
    });
  }

  void read_body() {
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_body(ec); });
  }

  void on_read_error(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      return write(error_response(413, "payload_too_large",
                                  fmt::format("the body exceeds {} bytes (use /v1/events/bulk for large uploads)",
                                              shared_.options.body_limit_bytes)),
                   true, 11);
    }
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::eof ||
        ec == asio::error::connection_reset || ec == asio::error::operation_aborted) {
      return close();
    }
    // A request that is not HTTP: say so and close.
    write(error_response(400, "bad_request", fmt::format("malformed HTTP request: {}", ec.message())), true, 11);
  }

  void on_body(beast::error_code ec) {
    disarm();
    if (ec) return on_read_error(ec);
    const bool keep_alive = parser_->keep_alive();
    auto msg = parser_->release();
    Request req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    // One pass over the fields (a lookup by name each was 3% of a small
    // POST's instructions); the first of a repeated field counts, as a
    // lookup would find it.
    bool seen_auth = false;
    bool seen_type = false;
    bool seen_trace = false;
    for (const auto& f : msg) {
      if (f.name() == http::field::authorization) {
        if (!std::exchange(seen_auth, true)) req.authorization = std::string(f.value());
      } else if (f.name() == http::field::content_type) {
        if (!std::exchange(seen_type, true)) req.content_type = std::string(f.value());
      } else if (beast::iequals(f.name_string(), "Idempotency-Key")) {
        if (!std::exchange(req.has_idempotency_key, true)) req.idempotency_key = std::string(f.value());
      } else if (beast::iequals(f.name_string(), "traceparent")) {
        if (!std::exchange(seen_trace, true)) req.traceparent = std::string(f.value());
      }
    }
    req.body = std::move(msg.body());
    parser_.reset();
    const unsigned version = msg.version();
    // A POST /v1/events does not hold a thread while the bus makes its
    // events durable: the bus committer hands the answer back to this
    // connection's I/O thread (its lane), where it is written at once. When
    // nothing before the append waits for I/O the request runs here, on the
    // I/O thread (no handoff); otherwise (ledger, Redis) on the handler pool.
    // Answered on the I/O thread, a response is written there and then;
    // from another thread it is posted to it.
    auto respond = [self = shared_from_this(), keep_alive, version](Response resp) {
      asio::dispatch(self->stream_.get_executor(), [self, resp = std::move(resp), keep_alive, version]() mutable {
        self->write(std::move(resp), !keep_alive, version);
      });
    };
    if (shared_.api->answers_without_waiting(req)) return shared_.api->handle_async(req, std::move(respond), &lane_);
    asio::post(*shared_.handlers, [self = shared_from_this(), req = std::move(req), respond = std::move(respond)]() mutable {
      self->shared_.api->handle_async(req, std::move(respond), &self->lane_);
    });
  }

  void write(Response resp, bool close_after, unsigned version) {
    if (auto* metrics = shared_.options.api.metrics) {
      const char* route = resp.route != nullptr ? resp.route : route_;
      const double seconds =
          method_.empty() ? 0.0 : std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
      metrics->observe_http(route != nullptr ? route : "", method_.empty() ? "OTHER" : method_, static_cast<int>(resp.status), seconds);
      if (resp.status == 429) metrics->rate_limited.Increment();
      for (const auto& [name, value] : resp.headers) {
        if (name == "Idempotent-Replayed") metrics->idempotency_replays.Increment();
      }
      method_.clear();
      route_ = nullptr;
    }
    serialize_response(response_, resp, close_after, version);
    arm(shared_.options.request_timeout);
    asio::async_write(stream_, asio::buffer(response_),
                      [self = shared_from_this(), close_after](beast::error_code ec, std::size_t) {
                        self->disarm();
                        // Keep the buffer of a small response for the next
                        // one; an idle connection holds no large one.
                        if (self->response_.capacity() > kKeptResponseBytes) std::string().swap(self->response_);
                        if (ec) return self->close();
                        if (close_after) return self->linger();
                        self->read_header();
                      });
  }

  // Closes our side but keeps reading (and discarding) for a moment, so a
  // client still sending the body of a refused request (413) reads our
  // answer instead of a reset.
  void linger() {
    beast::error_code ec;
    lowest().shutdown(tcp::socket::shutdown_send, ec);
    arm(std::min<std::chrono::milliseconds>(shared_.options.request_timeout, std::chrono::seconds(2)));
    drain();
  }

  void drain() {
    stream_.async_read_some(asio::buffer(drain_buffer_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->close();
      self->drain();
    });
  }

  void close() {
    beast::error_code ec;
    lowest().shutdown(tcp::socket::shutdown_send, ec);
    lowest().close(ec);
  }

  Stream stream_;
  beast::flat_buffer buffer_;
  Shared& shared_;
  IoLane& lane_;
  Opening opening_;
  std::optional<http::request_parser<http::empty_body>> header_parser_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::request_parser<http::buffer_body>> bulk_parser_;
  // The request in hand, for metrics: when its header arrived, its method
  // (empty for a request that never parsed), the route when the server
  // knows it before the API does (bulk).
  std::chrono::steady_clock::time_point started_;
  std::string method_;
  const char* route_ = nullptr;
  std::unique_ptr<BulkUpload> upload_;
  std::vector<char> chunk_;  // a bulk body's piece in hand (kBulkChunkBytes, allocated for bulk only)
  unsigned bulk_version_ = 11;
  std::uint64_t bulk_limit_ = kNoBodyLimit;
  bool bulk_keep_alive_ = true;
  std::optional<http::response<http::empty_body>> continue_;
  std::string response_;  // the response being written; its buffer is reused
  std::array<char, 16384> drain_buffer_;
};

// On a TLS port: reads the first bytes to tell a TLS ClientHello from plain
// HTTP, then hands the connection (and those bytes) to the right session.
class TlsDetector final : public Expiring, public std::enable_shared_from_this<TlsDetector> {
 public:
  TlsDetector(Shared& shared, IoLane& lane, Opening opening, PlainStream&& socket)
      : stream_(std::move(socket)), shared_(shared), lane_(lane), opening_(opening) {}

  void run() { asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->detect(); }); }

  void expire() override { close(); }

 private:
  void close() {
    beast::error_code ec;
    stream_.close(ec);
  }

  void detect() {
    lane_.watch(shared_from_this());
    deadline = lane_.deadline_after(shared_.options.request_timeout);
    beast::async_detect_ssl(stream_, buffer_, [self = shared_from_this()](beast::error_code ec, bool tls) {
      self->deadline = 0;
      if (ec) return self->close();
      if (tls) {
        make_swept<Session<TlsStream>>(self->shared_, self->lane_, self->opening_, std::move(self->buffer_),
                                       std::move(self->stream_), *self->shared_.tls)
            ->run();
      } else {
        make_swept<Session<PlainStream>>(self->shared_, self->lane_, Opening::kPlainOnTlsPort,
                                         std::move(self->buffer_), std::move(self->stream_))
            ->run();
      }
    });
  }

  PlainStream stream_;
  beast::flat_buffer buffer_;
  Shared& shared_;
  IoLane& lane_;
  Opening opening_;
};

}  // namespace

struct Server::Impl {
  bus::Bus& bus;
  ledger::Ledger& ledger;
  idempotency::Store& store;
  Shared shared;
  std::unique_ptr<Api> api;
  std::optional<ssl::context> tls;
  // One per I/O thread; the listener accepts on the first, and connections
  // are spread over all of them in turn.
  std::vector<std::unique_ptr<asio::io_context>> iocs;
  std::vector<std::unique_ptr<IoLane>> lanes;  // one per io_context, same order
  // Keep each io_context's run() going while it has no connection yet.
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> keep_running;
  std::size_t next_ioc = 0;  // touched by the listener's handler only
  std::optional<asio::thread_pool> handlers;
  std::optional<Listener> listener;
  std::vector<std::thread> threads;
  bool running = false;

  Impl(bus::Bus& b, ledger::Ledger& l, idempotency::Store& s, ServerOptions o)
      : bus(b), ledger(l), store(s) {
    shared.options = std::move(o);
    for (int i = 0; i < std::max(1, shared.options.io_threads); ++i) {
      iocs.push_back(std::make_unique<asio::io_context>(1));  // 1: run by one thread
      lanes.push_back(std::make_unique<IoLane>(*iocs.back(), shared.options.request_timeout));
      keep_running.push_back(asio::make_work_guard(*iocs.back()));
    }
    listener.emplace(*iocs.front());
  }

  void serve(tcp::socket accepted) {
    const bool over = shared.connections.load(std::memory_order_relaxed) >= shared.options.max_connections;
    const Opening opening = over ? Opening::kOverCapacity : Opening::kServe;
    // Move the connection to the next I/O thread's io_context.
    const std::size_t at = next_ioc++ % iocs.size();
    asio::io_context& ioc = *iocs[at];
    IoLane& lane = *lanes[at];
    beast::error_code ec;
    const auto protocol = accepted.local_endpoint(ec).protocol();
    if (ec) return;  // already gone
    const auto handle = accepted.release(ec);
    if (ec) return;
    PlainStream socket(ioc, protocol, handle);
    if (shared.tls != nullptr) {
      make_swept<TlsDetector>(shared, lane, opening, std::move(socket))->run();
    } else {
      make_swept<Session<PlainStream>>(shared, lane, opening, beast::flat_buffer{}, std::move(socket))->run();
    }
  }
};

Server::Server(bus::Bus& bus, ledger::Ledger& ledger, idempotency::Store& store, ServerOptions options)
    : impl_(std::make_unique<Impl>(bus, ledger, store, std::move(options))) {}

Server::~Server() { stop(); }

Status Server::start() {
  Impl& d = *impl_;
  SETTLE_ASSERT(!d.running, "Server::start() twice");
  if (d.shared.options.tls_cert_file.empty() != d.shared.options.tls_key_file.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "gateway: TLS needs both --tls-cert and --tls-key");
  }
  if (!d.shared.options.tls_cert_file.empty()) {
    d.tls.emplace(ssl::context::tls_server);
    d.tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                       ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
    beast::error_code tls_ec;
    if (d.tls->use_certificate_chain_file(d.shared.options.tls_cert_file, tls_ec); tls_ec) {
      return make_error(ErrorCode::kInvalidArgument, fmt::format("gateway: --tls-cert '{}': {}",
                                                                 d.shared.options.tls_cert_file, tls_ec.message()));
    }
    if (d.tls->use_private_key_file(d.shared.options.tls_key_file, ssl::context::pem, tls_ec); tls_ec) {
      return make_error(ErrorCode::kInvalidArgument, fmt::format("gateway: --tls-key '{}': {}",
                                                                 d.shared.options.tls_key_file, tls_ec.message()));
    }
    d.shared.tls = &*d.tls;
  }
  SETTLE_ASSIGN_OR_RETURN(d.api, Api::open(d.bus, d.ledger, d.store, d.shared.options.api));
  d.shared.api = d.api.get();
  SETTLE_TRY(d.listener->listen("gateway", d.shared.options.host, d.shared.options.port));
  d.handlers.emplace(static_cast<std::size_t>(std::max(1, d.shared.options.handler_threads)));
  d.shared.handlers = &*d.handlers;
  d.listener->accept([&d](tcp::socket socket) { d.serve(std::move(socket)); });
  for (auto& ioc : d.iocs) {
    d.threads.emplace_back([&ioc = *ioc] { ioc.run(); });
  }
  d.running = true;
  return ok_status();
}

void Server::stop() {
  Impl& d = *impl_;
  if (!d.running) return;
  d.running = false;
  d.listener->close();
  // Let handlers finish what they started and the appends they queued
  // complete (their answers are posted to the loop), then stop the loop;
  // connections close when the io_context goes away.
  d.handlers->join();
  d.api->drain_appends();
  for (auto& ioc : d.iocs) ioc->stop();
  for (auto& t : d.threads) t.join();
  d.threads.clear();
}

std::uint16_t Server::port() const { return impl_->listener->port(); }

Api& Server::api() {
  SETTLE_ASSERT(impl_->api != nullptr, "Server::api() before start()");
  return *impl_->api;
}

}  // namespace settle::gateway
