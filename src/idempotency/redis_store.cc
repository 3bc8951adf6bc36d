#include "idempotency/redis_store.h"

#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/time.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <random>
#include <utility>
#include <vector>

#include "common/sigpipe_guard.h"

namespace settle::idempotency {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Longer ttls are clamped (as in MemoryStore) so that the server's now + ttl
// cannot overflow.
constexpr milliseconds kTtlMax = std::chrono::hours(24 * 365 * 100);

constexpr std::size_t kMerchantIdMax = 64;

// Compare-and-delete: a value (delete_if_equal) or a lease (unlock).
constexpr std::string_view kDeleteIfEqualScript =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
    "return 0";
// Compare-and-set: a value replaced, with a new expiry, only while it holds
// what the caller expects.
constexpr std::string_view kReplaceIfEqualScript =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) "
    "return 1 end return 0";
// Renews a lease while it still holds the caller's token.
constexpr std::string_view kExtendScript =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) "
    "end return 0";
// Completes a grant: swaps the pending nonce for the fencing token, keeping
// the expiry set when the key was taken.
constexpr std::string_view kGrantScript =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL') "
    "return 1 end return 0";

Status check_ttl(milliseconds ttl, const char* op) {
  if (ttl.count() > 0) return ok_status();
  return make_error(ErrorCode::kInvalidArgument, std::string("idempotency ") + op +
                                                     ": ttl must be positive, got " +
                                                     std::to_string(ttl.count()) + " ms");
}

std::string ttl_text(milliseconds ttl) { return std::to_string(std::min(ttl, kTtlMax).count()); }

timeval to_timeval(milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<decltype(tv.tv_sec)>(ms.count() / 1000);
  tv.tv_usec = static_cast<decltype(tv.tv_usec)>((ms.count() % 1000) * 1000);
  return tv;
}

std::string sha1_hex(std::string_view text) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  const int ok = EVP_Digest(text.data(), text.size(), digest.data(), &length, EVP_sha1(), nullptr);
  SETTLE_ASSERT(ok == 1 && length == 20, "EVP_Digest(SHA-1) failed");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

// A nonce for a pending lease: unique per attempt, across threads and
// processes (128 random bits).
std::string pending_nonce() {
  thread_local std::mt19937_64 random = [] {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device()};
    return std::mt19937_64(seed);
  }();
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "pending:";
  for (int word = 0; word < 2; ++word) {
    std::uint64_t bits = random();
    for (int i = 0; i < 16; ++i) {
      out += kHex[bits & 15];
      bits >>= 4;
    }
  }
  return out;
}

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

std::string_view reply_text(const redisReply& r) {
  return std::string_view(r.str, static_cast<std::size_t>(r.len));
}

// One command's arguments, pointing into strings that outlive the append
// (hiredis copies them into its output buffer).
struct Command {
  static constexpr int kArgsMax = 8;
  std::array<const char*, kArgsMax> argv{};
  std::array<std::size_t, kArgsMax> lengths{};
  int argc = 0;

  // hiredis 0.14 declares argv as const char** though it only reads it.
  const char** argv_for_hiredis() const { return const_cast<const char**>(argv.data()); }

  Command& arg(std::string_view a) {
    SETTLE_ASSERT(argc < kArgsMax, "Command: too many arguments");
    argv[static_cast<std::size_t>(argc)] = a.data();
    lengths[static_cast<std::size_t>(argc)] = a.size();
    ++argc;
    return *this;
  }
};

struct Endpoint {
  std::string host;
  int port = 6379;
  std::string user;
  std::string password;
  int db = 0;
};

bool merchant_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> percent_decode(std::string_view text, std::string_view what) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size()) {
      return make_error(ErrorCode::kInvalidArgument,
                        "redis URL: bad percent escape in the " + std::string(what));
    }
    const int hi = hex_value(text[i + 1]);
    const int lo = hex_value(text[i + 2]);
    if (hi < 0 || lo < 0) {
      return make_error(ErrorCode::kInvalidArgument,
                        "redis URL: bad percent escape in the " + std::string(what));
    }
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

template <typename Int>
Result<Int> parse_number(std::string_view text, std::string_view what, Int min, Int max) {
  Int value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < min || value > max) {
    return make_error(ErrorCode::kInvalidArgument,
                      "redis URL: " + std::string(what) + " must be a number from " +
                          std::to_string(min) + " to " + std::to_string(max) + ", got '" +
                          std::string(text) + "'");
  }
  return value;
}

Result<milliseconds> parse_ms(std::string_view text, std::string_view what) {
  SETTLE_ASSIGN_OR_RETURN(const long long ms,
                          parse_number<long long>(text, what, 1, 24LL * 3600 * 1000));
  return milliseconds(ms);
}

// redis://[[user]:password@]host[:port][/db][?option=value&...]
Result<Endpoint> parse_url(std::string_view url, RedisOptions& options) {
  constexpr std::string_view kScheme = "redis://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    return make_error(ErrorCode::kInvalidArgument,
                      "redis URL '" + std::string(url) +
                          "': expected redis://[[user]:password@]host[:port][/db][?options]" +
                          (url.substr(0, 9) == "rediss://" ? " (TLS is not supported)" : ""));
  }
  std::string_view rest = url.substr(kScheme.size());
  std::string_view query;
  if (const auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  std::string_view path;
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    path = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  Endpoint endpoint;
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const auto colon = userinfo.find(':');
    if (colon == std::string_view::npos) {
      // A lone userinfo is the password (the old AUTH password form).
      SETTLE_ASSIGN_OR_RETURN(endpoint.password, percent_decode(userinfo, "password"));
    } else {
      SETTLE_ASSIGN_OR_RETURN(endpoint.user, percent_decode(userinfo.substr(0, colon), "user"));
      SETTLE_ASSIGN_OR_RETURN(endpoint.password,
                              percent_decode(userinfo.substr(colon + 1), "password"));
    }
  }
  std::string_view port_text;
  if (!rest.empty() && rest.front() == '[') {
    const auto close = rest.find(']');
    if (close == std::string_view::npos) {
      return make_error(ErrorCode::kInvalidArgument,
                        "redis URL '" + std::string(url) + "': unclosed '[' in the host");
    }
    endpoint.host = std::string(rest.substr(1, close - 1));
    const std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        return make_error(ErrorCode::kInvalidArgument,
                          "redis URL '" + std::string(url) + "': junk after the host");
      }
      port_text = after.substr(1);
    }
  } else if (const auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    endpoint.host = std::string(rest.substr(0, colon));
    port_text = rest.substr(colon + 1);
  } else {
    endpoint.host = std::string(rest);
  }
  if (endpoint.host.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "redis URL '" + std::string(url) + "': no host");
  }
  if (!port_text.empty()) {
    SETTLE_ASSIGN_OR_RETURN(endpoint.port, parse_number<int>(port_text, "port", 1, 65535));
  }
  if (!path.empty()) {
    SETTLE_ASSIGN_OR_RETURN(endpoint.db, parse_number<int>(path, "database number", 0, 1 << 20));
  }
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (item.empty()) continue;
    const auto eq = item.find('=');
    const std::string_view name = item.substr(0, eq);
    SETTLE_ASSIGN_OR_RETURN(
        const std::string value,
        percent_decode(eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1),
                       name));
    if (name == "connect_timeout_ms") {
      SETTLE_ASSIGN_OR_RETURN(options.connect_timeout, parse_ms(value, name));
    } else if (name == "command_timeout_ms") {
      SETTLE_ASSIGN_OR_RETURN(options.command_timeout, parse_ms(value, name));
    } else if (name == "backoff_min_ms") {
      SETTLE_ASSIGN_OR_RETURN(options.reconnect_backoff_min, parse_ms(value, name));
    } else if (name == "backoff_max_ms") {
      SETTLE_ASSIGN_OR_RETURN(options.reconnect_backoff_max, parse_ms(value, name));
    } else if (name == "pool_size") {
      SETTLE_ASSIGN_OR_RETURN(options.pool_size, parse_number<std::size_t>(value, name, 1, 1024));
    } else if (name == "pipeline_depth_max") {
      SETTLE_ASSIGN_OR_RETURN(options.pipeline_depth_max,
                              parse_number<std::size_t>(value, name, 1, 1 << 20));
    } else if (name == "key_prefix") {
      options.key_prefix = value;
    } else {
      return make_error(ErrorCode::kInvalidArgument,
                        "redis URL: unknown option '" + std::string(name) +
                            "' (known: connect_timeout_ms, command_timeout_ms, pool_size, "
                            "backoff_min_ms, backoff_max_ms, key_prefix, pipeline_depth_max)");
    }
  }
  return endpoint;
}

Status check_options(const RedisOptions& options) {
  auto bad = [](std::string what) {
    return make_error(ErrorCode::kInvalidArgument, "RedisOptions: " + std::move(what));
  };
  if (options.connect_timeout.count() <= 0) return bad("connect_timeout must be positive");
  if (options.command_timeout.count() <= 0) return bad("command_timeout must be positive");
  if (options.pool_size == 0) return bad("pool_size must be at least 1");
  if (options.pipeline_depth_max == 0) return bad("pipeline_depth_max must be at least 1");
  if (options.reconnect_backoff_min.count() <= 0 ||
      options.reconnect_backoff_max < options.reconnect_backoff_min) {
    return bad("reconnect backoff must satisfy 0 < min <= max");
  }
  if (options.key_prefix.empty()) return bad("key_prefix must not be empty");
  return ok_status();
}

}  // namespace

struct RedisStore::Impl {
  struct Slot {
    redisContext* ctx = nullptr;
  };

  // A connection borrowed from the pool; returned when it goes away.
  class Conn {
   public:
    Conn(Impl* impl, Slot* slot) : impl_(impl), slot_(slot) {}
    Conn(Conn&& other) noexcept : impl_(other.impl_), slot_(std::exchange(other.slot_, nullptr)) {}
    Conn& operator=(Conn&&) = delete;
    ~Conn() {
      if (slot_ != nullptr) impl_->give_back(slot_);
    }
    redisContext* ctx() const { return slot_->ctx; }
    // After an I/O error or a timeout the connection's state is unknown.
    void drop() {
      if (slot_->ctx != nullptr) redisFree(slot_->ctx);
      slot_->ctx = nullptr;
    }

   private:
    Impl* impl_;
    Slot* slot_;
  };

  Endpoint endpoint;
  RedisOptions options;
  std::shared_ptr<TokenSource> tokens;
  std::string server;  // "redis host:port/db"
  std::string delete_if_equal_sha = sha1_hex(kDeleteIfEqualScript);
  std::string extend_sha = sha1_hex(kExtendScript);
  std::string grant_sha = sha1_hex(kGrantScript);
  std::string replace_if_equal_sha = sha1_hex(kReplaceIfEqualScript);

  std::mutex mu;
  std::condition_variable slot_freed;
  std::vector<std::unique_ptr<Slot>> slots;
  std::vector<Slot*> idle;  // LIFO: the most recently used (and connected) first
  // Reconnect backoff, shared by the pool: one server, one verdict.
  int failures = 0;
  milliseconds backoff{0};
  Clock::time_point retry_at{};
  std::string last_error;

  ~Impl() {
    for (auto& slot : slots) {
      if (slot->ctx != nullptr) redisFree(slot->ctx);
    }
  }

  Error unavailable(const char* op, const std::string& what) const {
    return make_error(ErrorCode::kUnavailable,
                      std::string("RedisStore ") + op + ": " + server + ": " + what);
  }

  void give_back(Slot* slot) {
    {
      std::lock_guard lock(mu);
      idle.push_back(slot);
    }
    slot_freed.notify_one();
  }

  // Whether this caller may try to connect now. After a failure only one
  // caller per backoff period does; the others fail fast.
  Status may_connect(const char* op) {
    std::lock_guard lock(mu);
    if (failures == 0) return ok_status();
    const auto now = Clock::now();
    if (now < retry_at) {
      const auto wait = std::chrono::duration_cast<milliseconds>(retry_at - now);
      return unavailable(op, last_error + " (next connection attempt in " +
                                 std::to_string(std::max<long long>(1, wait.count())) + " ms)");
    }
    retry_at = now + backoff;  // this caller's attempt; others wait for its verdict
    return ok_status();
  }

  Error connect_failed(const char* op, std::string what) {
    std::lock_guard lock(mu);
    ++failures;
    backoff = failures == 1 ? options.reconnect_backoff_min
                            : std::min(backoff * 2, options.reconnect_backoff_max);
    retry_at = Clock::now() + backoff;
    last_error = std::move(what);
    return unavailable(op, last_error);
  }

  void connected() {
    std::lock_guard lock(mu);
    failures = 0;
    backoff = milliseconds(0);
  }

  // Reads one reply per appended command; on an I/O error or timeout drops
  // the connection and says what happened.
  Status read_replies(Conn& conn, const char* op, std::size_t count, std::vector<ReplyPtr>& out) {
    for (std::size_t i = 0; i < count; ++i) {
      void* raw = nullptr;
      if (redisGetReply(conn.ctx(), &raw) != REDIS_OK) {
        std::string what = io_error(conn.ctx());
        conn.drop();
        return unavailable(op, what);
      }
      out.emplace_back(static_cast<redisReply*>(raw));
    }
    return ok_status();
  }

  std::string io_error(redisContext* ctx) const {
    // hiredis reports a socket timeout (SO_RCVTIMEO/SO_SNDTIMEO) as EAGAIN.
    if (ctx->err == REDIS_ERR_IO && std::strcmp(ctx->errstr, std::strerror(EAGAIN)) == 0) {
      return "no reply within command_timeout (" + std::to_string(options.command_timeout.count()) +
             " ms)";
    }
    if (ctx->err == REDIS_ERR_EOF) return "the server closed the connection";
    return ctx->errstr[0] != '\0' ? std::string(ctx->errstr) : std::string("I/O error");
  }

  // Appends the commands and reads their replies, all on one connection.
  Status exchange(Conn& conn, const char* op, std::span<const Command> commands,
                  std::vector<ReplyPtr>& replies) {
    SigpipeGuard guard;
    for (const Command& c : commands) {
      if (redisAppendCommandArgv(conn.ctx(), c.argc, c.argv_for_hiredis(), c.lengths.data()) != REDIS_OK) {
        std::string what = io_error(conn.ctx());
        conn.drop();
        return unavailable(op, what);
      }
    }
    return read_replies(conn, op, commands.size(), replies);
  }

  // A connection from the pool, connected and believed alive.
  Result<Conn> checkout(const char* op) {
    Slot* slot = nullptr;
    {
      std::unique_lock lock(mu);
      if (!slot_freed.wait_for(lock, options.command_timeout, [&] { return !idle.empty(); })) {
        return unavailable(op, "all " + std::to_string(options.pool_size) +
                                   " connections stayed busy for command_timeout (" +
                                   std::to_string(options.command_timeout.count()) + " ms)");
      }
      slot = idle.back();
      idle.pop_back();
    }
    Conn conn(this, slot);
    if (conn.ctx() != nullptr && !looks_alive(conn.ctx())) conn.drop();
    if (conn.ctx() == nullptr) SETTLE_TRY(connect(conn, slot, op));
    return conn;
  }

  // An idle connection has nothing to read: if it is readable, the server
  // closed it (a restart, a timeout, CLIENT KILL). Catching that here saves
  // a failed call after every server restart.
  static bool looks_alive(redisContext* ctx) {
    pollfd pfd{ctx->fd, POLLIN, 0};
    return ::poll(&pfd, 1, 0) == 0;
  }

  Status connect(Conn& conn, Slot* slot, const char* op) {
    SETTLE_TRY(may_connect(op));
    SigpipeGuard guard;
    redisContext* ctx =
        redisConnectWithTimeout(endpoint.host.c_str(), endpoint.port, to_timeval(options.connect_timeout));
    if (ctx == nullptr) return connect_failed(op, "cannot connect: out of memory");
    slot->ctx = ctx;
    if (ctx->err != 0) {
      std::string what = std::string("cannot connect: ") + ctx->errstr;
      conn.drop();
      return connect_failed(op, what);
    }
    // The handshake is bounded by connect_timeout, the commands after it by
    // command_timeout.
    redisSetTimeout(ctx, to_timeval(options.connect_timeout));
    redisEnableKeepAlive(ctx);

    std::vector<Command> handshake;
    const std::string db_text = std::to_string(endpoint.db);
    if (!endpoint.password.empty()) {
      Command auth;
      auth.arg("AUTH");
      if (!endpoint.user.empty()) auth.arg(endpoint.user);
      handshake.push_back(auth.arg(endpoint.password));
    }
    if (endpoint.db != 0) handshake.push_back(Command().arg("SELECT").arg(db_text));
    handshake.push_back(Command().arg("PING"));
    std::vector<ReplyPtr> replies;
    for (const Command& c : handshake) {
      redisAppendCommandArgv(ctx, c.argc, c.argv_for_hiredis(), c.lengths.data());
    }
    for (std::size_t i = 0; i < handshake.size(); ++i) {
      void* raw = nullptr;
      if (redisGetReply(ctx, &raw) != REDIS_OK) {
        std::string what = "handshake: " + io_error(ctx);
        if (ctx->err == REDIS_ERR_IO && what.find("no reply within") != std::string::npos) {
          what = "handshake: no reply within connect_timeout (" +
                 std::to_string(options.connect_timeout.count()) + " ms)";
        }
        conn.drop();
        return connect_failed(op, what);
      }
      replies.emplace_back(static_cast<redisReply*>(raw));
    }
    for (const ReplyPtr& r : replies) {
      if (r->type == REDIS_REPLY_ERROR) {
        std::string what(reply_text(*r));
        conn.drop();
        const bool transient = what.rfind("LOADING", 0) == 0 || what.rfind("BUSY", 0) == 0 ||
                               what.rfind("MASTERDOWN", 0) == 0;
        if (transient) return connect_failed(op, "handshake: " + what);
        // Wrong credentials or database: retrying will not help; say so.
        return make_error(ErrorCode::kFailedPrecondition,
                          std::string("RedisStore ") + op + ": " + server + " refused the handshake: " + what);
      }
    }
    redisSetTimeout(ctx, to_timeval(options.command_timeout));
    connected();
    return ok_status();
  }

  // A Redis error reply as a Result error. Errors that a retry may cure are
  // kUnavailable; after READONLY or MASTERDOWN the connection is dropped, so
  // the next call reconnects (and finds the new primary behind its address).
  Error reply_error(Conn& conn, const char* op, const redisReply& r) const {
    const std::string what(reply_text(r));
    auto starts = [&](std::string_view prefix) { return what.rfind(prefix, 0) == 0; };
    if (starts("READONLY") || starts("MASTERDOWN")) conn.drop();
    if (starts("LOADING") || starts("BUSY") || starts("READONLY") || starts("MASTERDOWN") ||
        starts("OOM") || starts("TRYAGAIN") || starts("CLUSTERDOWN") || starts("NOREPLICAS") ||
        starts("MISCONF")) {
      return make_error(ErrorCode::kUnavailable,
                        std::string("RedisStore ") + op + ": " + server + ": " + what);
    }
    if (starts("MOVED") || starts("ASK")) {
      return make_error(ErrorCode::kFailedPrecondition,
                        std::string("RedisStore ") + op + ": " + server +
                            " is a cluster node that redirected the call (" + what +
                            "); RedisStore talks to one node");
    }
    return make_error(ErrorCode::kFailedPrecondition,
                      std::string("RedisStore ") + op + ": " + server + ": " + what);
  }

  // Runs a script on one key by EVALSHA; when the server does not have it
  // (NOSCRIPT: restarted, failed over, flushed) sends the source with EVAL,
  // which also caches it. Returns the integer the script returns.
  Result<long long> run_script(const char* op, std::string_view script, const std::string& sha,
                               const std::string& key, std::initializer_list<std::string_view> args) {
    SETTLE_ASSIGN_OR_RETURN(Conn conn, checkout(op));
    for (const bool by_sha : {true, false}) {
      Command c;
      c.arg(by_sha ? "EVALSHA" : "EVAL").arg(by_sha ? std::string_view(sha) : script).arg("1");
      c.arg(key);
      for (std::string_view a : args) c.arg(a);
      std::vector<ReplyPtr> replies;
      SETTLE_TRY(exchange(conn, op, std::span<const Command>(&c, 1), replies));
      const redisReply& r = *replies.front();
      if (r.type == REDIS_REPLY_ERROR && by_sha && reply_text(r).rfind("NOSCRIPT", 0) == 0) continue;
      return script_result(conn, op, r);
    }
    return make_error(ErrorCode::kFailedPrecondition,
                      std::string("RedisStore ") + op + ": " + server + ": EVAL did not run the script");
  }

  // A script's reply: the integer it returned.
  Result<long long> script_result(Conn& conn, const char* op, const redisReply& r) const {
    if (r.type == REDIS_REPLY_ERROR) return reply_error(conn, op, r);
    if (r.type != REDIS_REPLY_INTEGER) {
      return make_error(ErrorCode::kCorruption, std::string("RedisStore ") + op + ": " + server +
                                                    ": script returned reply type " + std::to_string(r.type) +
                                                    ", not an integer");
    }
    return r.integer;
  }

  // One SET NX PX GET reply as a claim's outcome.
  Result<PutOutcome> claim_outcome(Conn& conn, const char* op, const redisReply& r) const {
    if (r.type == REDIS_REPLY_NIL) return PutOutcome{true, {}};
    if (r.type == REDIS_REPLY_STRING) return PutOutcome{false, std::string(reply_text(r))};
    if (r.type == REDIS_REPLY_ERROR) return reply_error(conn, op, r);
    return make_error(ErrorCode::kCorruption, std::string("RedisStore ") + op + ": " + server +
                                                  ": SET NX GET returned reply type " +
                                                  std::to_string(r.type));
  }
};

RedisStore::RedisStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RedisStore::~RedisStore() = default;

const std::string& RedisStore::server() const { return impl_->server; }

Result<std::unique_ptr<RedisStore>> RedisStore::open(const std::string& url, RedisOptions options,
                                                     std::shared_ptr<TokenSource> tokens) {
  if (tokens == nullptr) {
    return make_error(ErrorCode::kInvalidArgument,
                      "RedisStore::open: a TokenSource is required (fencing tokens must come from "
                      "a durable source, e.g. PgTokenSource)");
  }
  SETTLE_ASSIGN_OR_RETURN(Endpoint endpoint, parse_url(url, options));
  SETTLE_TRY(check_options(options));

  auto impl = std::make_unique<Impl>();
  impl->server = "redis " + (endpoint.host.find(':') != std::string::npos ? "[" + endpoint.host + "]"
                                                                          : endpoint.host) +
                 ":" + std::to_string(endpoint.port) + "/" + std::to_string(endpoint.db);
  impl->endpoint = std::move(endpoint);
  impl->options = std::move(options);
  impl->tokens = std::move(tokens);
  for (std::size_t i = 0; i < impl->options.pool_size; ++i) {
    impl->slots.push_back(std::make_unique<Impl::Slot>());
    impl->idle.push_back(impl->slots.back().get());
  }

  // SET ... NX ... GET needs Redis 7.0.
  {
    const char* op = "open";
    SETTLE_ASSIGN_OR_RETURN(Impl::Conn conn, impl->checkout(op));
    Command info;
    info.arg("INFO").arg("server");
    std::vector<ReplyPtr> replies;
    SETTLE_TRY(impl->exchange(conn, op, std::span<const Command>(&info, 1), replies));
    const redisReply& r = *replies.front();
    if (r.type == REDIS_REPLY_ERROR) return impl->reply_error(conn, op, r);
    const std::string_view text =
        r.type == REDIS_REPLY_STRING || r.type == REDIS_REPLY_STATUS ? reply_text(r) : "";
    constexpr std::string_view kField = "redis_version:";
    const auto at = text.find(kField);
    int major = 0;
    std::string version = "unknown";
    if (at != std::string_view::npos) {
      const std::string_view v = text.substr(at + kField.size());
      version = std::string(v.substr(0, v.find_first_of("\r\n")));
      std::from_chars(version.data(), version.data() + version.size(), major);
    }
    if (major < 7) {
      return make_error(ErrorCode::kFailedPrecondition,
                        "RedisStore: " + impl->server + " runs Redis " + version +
                            "; 7.0 or later is needed (SET with NX and GET)");
    }
  }
  return std::unique_ptr<RedisStore>(new RedisStore(std::move(impl)));
}

std::optional<std::string_view> RedisStore::merchant_of(std::string_view key) {
  const auto slash = key.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  std::string_view head = key.substr(0, slash);
  if (const auto colon = head.rfind(':'); colon != std::string_view::npos) {
    head = head.substr(colon + 1);
  }
  if (head.empty() || head.size() > kMerchantIdMax) return std::nullopt;
  if (!std::all_of(head.begin(), head.end(), merchant_char)) return std::nullopt;
  return head;
}

namespace {

void append_scoped_key(std::string& out, const std::string& prefix, std::string_view space,
                       std::string_view key) {
  const auto merchant = RedisStore::merchant_of(key);
  out.reserve(out.size() + prefix.size() + key.size() + (merchant ? merchant->size() + 3 : 0) + 4);
  out += prefix;
  if (merchant) {
    out += ":{";
    out += *merchant;
    out += '}';
  }
  out += ':';
  out += space;
  out += ':';
  out += key;
}

// RESP: a bulk string, "$<length>\r\n<bytes>\r\n".
void append_bulk(std::string& out, std::string_view bytes) {
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof digits, bytes.size()).ptr;
  out += '$';
  out.append(digits, end);
  out += "\r\n";
  out += bytes;
  out += "\r\n";
}

std::string scoped_key(const std::string& prefix, std::string_view space, std::string_view key) {
  std::string out;
  append_scoped_key(out, prefix, space, key);
  return out;
}

}  // namespace

std::string RedisStore::value_key(std::string_view key) const {
  return scoped_key(impl_->options.key_prefix, "v", key);
}

std::string RedisStore::lease_key(std::string_view key) const {
  return scoped_key(impl_->options.key_prefix, "l", key);
}

Result<PutOutcome> RedisStore::put_if_absent(std::string_view key, std::string_view value,
                                             milliseconds ttl) {
  const char* op = "put_if_absent";
  SETTLE_TRY(check_ttl(ttl, op));
  const std::string k = value_key(key);
  const std::string px = ttl_text(ttl);
  SETTLE_ASSIGN_OR_RETURN(Impl::Conn conn, impl_->checkout(op));
  Command c;
  c.arg("SET").arg(k).arg(value).arg("NX").arg("PX").arg(px).arg("GET");
  std::vector<ReplyPtr> replies;
  SETTLE_TRY(impl_->exchange(conn, op, std::span<const Command>(&c, 1), replies));
  return impl_->claim_outcome(conn, op, *replies.front());
}

namespace {

// Runs n commands pipelined on one connection, in order: `format(i, out)`
// appends item i's command (RESP) to out, `take(conn, reply)` handles the
// next reply.
// Commands go in chunks of `depth`, formatted into one string (hiredis would
// otherwise allocate and printf each command, which costs more client CPU
// than the server spends running it), with two chunks in flight: reading one
// chunk's replies first sends the next chunk, so the server works on it
// while this thread parses and builds. One connection for the whole batch: a
// key repeated across chunks must see its earlier item, which one
// connection's order guarantees.
template <typename Impl, typename Format, typename Take>
Status run_pipelined(Impl& impl, const char* op, std::size_t n, Format format, Take take) {
  if (n == 0) return ok_status();
  const std::size_t depth = impl.options.pipeline_depth_max;
  SETTLE_ASSIGN_OR_RETURN(typename Impl::Conn conn, impl.checkout(op));
  SigpipeGuard guard;
  std::string chunk;
  auto append = [&](std::size_t from) -> Status {
    chunk.clear();
    for (std::size_t i = from; i < std::min(n, from + depth); ++i) format(i, chunk);
    if (redisAppendFormattedCommand(conn.ctx(), chunk.data(), chunk.size()) != REDIS_OK) {
      std::string what = impl.io_error(conn.ctx());
      conn.drop();
      return impl.unavailable(op, what);
    }
    return ok_status();
  };
  SETTLE_TRY(append(0));
  std::size_t appended = std::min(n, depth);
  for (std::size_t read = 0; read < n;) {
    if (appended < n) {
      SETTLE_TRY(append(appended));
      appended = std::min(n, appended + depth);
    }
    for (const std::size_t end = std::min(n, read + depth); read < end; ++read) {
      void* raw = nullptr;
      if (redisGetReply(conn.ctx(), &raw) != REDIS_OK) {
        std::string what = impl.io_error(conn.ctx());
        conn.drop();
        return impl.unavailable(op, what);
      }
      const ReplyPtr reply(static_cast<redisReply*>(raw));
      Status took = take(conn, *reply);
      if (!took.ok()) {
        conn.drop();  // replies of later items are still on their way
        return took;
      }
    }
  }
  return ok_status();
}

}  // namespace

Result<std::vector<PutOutcome>> RedisStore::put_if_absent_many(std::span<const PutRequest> items,
                                                               milliseconds ttl) {
  const char* op = "put_if_absent_many";
  SETTLE_TRY(check_ttl(ttl, op));
  std::vector<PutOutcome> outcomes;
  outcomes.reserve(items.size());
  const std::string px = ttl_text(ttl);
  std::string key;
  SETTLE_TRY(run_pipelined(
      *impl_, op, items.size(),
      [&](std::size_t i, std::string& out) {
        key.clear();
        append_scoped_key(key, impl_->options.key_prefix, "v", items[i].key);
        out += "*7\r\n$3\r\nSET\r\n";
        append_bulk(out, key);
        append_bulk(out, items[i].value);
        out += "$2\r\nNX\r\n$2\r\nPX\r\n";
        append_bulk(out, px);
        out += "$3\r\nGET\r\n";
      },
      [&](Impl::Conn& conn, const redisReply& reply) -> Status {
        SETTLE_ASSIGN_OR_RETURN(PutOutcome outcome, impl_->claim_outcome(conn, op, reply));
        outcomes.push_back(std::move(outcome));
        return ok_status();
      }));
  return outcomes;
}

Result<bool> RedisStore::replace_if_equal(std::string_view key, std::string_view expected, std::string_view value,
                                          milliseconds ttl) {
  const char* op = "replace_if_equal";
  SETTLE_TRY(check_ttl(ttl, op));
  SETTLE_ASSIGN_OR_RETURN(const long long replaced,
                          impl_->run_script(op, kReplaceIfEqualScript, impl_->replace_if_equal_sha, value_key(key),
                                            {expected, value, ttl_text(ttl)}));
  return replaced == 1;
}

Result<std::vector<bool>> RedisStore::replace_if_equal_many(std::span<const ReplaceRequest> items,
                                                            milliseconds ttl) {
  const char* op = "replace_if_equal_many";
  SETTLE_TRY(check_ttl(ttl, op));
  std::vector<bool> replaced;
  replaced.reserve(items.size());
  const std::string px = ttl_text(ttl);
  // Pipelined as EVAL with the script's text: an EVALSHA that meets NOSCRIPT
  // part-way through a pipeline would need its own retry.
  std::string key;
  SETTLE_TRY(run_pipelined(
      *impl_, op, items.size(),
      [&](std::size_t i, std::string& out) {
        key.clear();
        append_scoped_key(key, impl_->options.key_prefix, "v", items[i].key);
        out += "*7\r\n$4\r\nEVAL\r\n";
        append_bulk(out, kReplaceIfEqualScript);
        out += "$1\r\n1\r\n";
        append_bulk(out, key);
        append_bulk(out, items[i].expected);
        append_bulk(out, items[i].value);
        append_bulk(out, px);
      },
      [&](Impl::Conn& conn, const redisReply& reply) -> Status {
        SETTLE_ASSIGN_OR_RETURN(long long r, impl_->script_result(conn, op, reply));
        replaced.push_back(r == 1);
        return ok_status();
      }));
  return replaced;
}

Result<std::optional<std::string>> RedisStore::get(std::string_view key) {
  const char* op = "get";
  const std::string k = value_key(key);
  SETTLE_ASSIGN_OR_RETURN(Impl::Conn conn, impl_->checkout(op));
  Command c;
  c.arg("GET").arg(k);
  std::vector<ReplyPtr> replies;
  SETTLE_TRY(impl_->exchange(conn, op, std::span<const Command>(&c, 1), replies));
  const redisReply& r = *replies.front();
  if (r.type == REDIS_REPLY_NIL) return std::optional<std::string>();
  if (r.type == REDIS_REPLY_STRING) return std::optional<std::string>(std::string(reply_text(r)));
  if (r.type == REDIS_REPLY_ERROR) return impl_->reply_error(conn, op, r);
  return make_error(ErrorCode::kCorruption, "RedisStore get: " + impl_->server +
                                                ": GET returned reply type " + std::to_string(r.type));
}

Result<bool> RedisStore::delete_if_equal(std::string_view key, std::string_view expected) {
  SETTLE_ASSIGN_OR_RETURN(const long long deleted,
                          impl_->run_script("delete_if_equal", kDeleteIfEqualScript,
                                            impl_->delete_if_equal_sha, value_key(key), {expected}));
  return deleted == 1;
}

Result<std::optional<Lease>> RedisStore::try_lock(std::string_view key, milliseconds ttl) {
  const char* op = "try_lock";
  SETTLE_TRY(check_ttl(ttl, op));
  const std::string k = lease_key(key);
  const std::string nonce = pending_nonce();
  {
    const std::string px = ttl_text(ttl);
    SETTLE_ASSIGN_OR_RETURN(Impl::Conn conn, impl_->checkout(op));
    Command c;
    c.arg("SET").arg(k).arg(nonce).arg("NX").arg("PX").arg(px);
    std::vector<ReplyPtr> replies;
    SETTLE_TRY(impl_->exchange(conn, op, std::span<const Command>(&c, 1), replies));
    const redisReply& r = *replies.front();
    if (r.type == REDIS_REPLY_NIL) return std::optional<Lease>();  // held by someone else
    if (r.type == REDIS_REPLY_ERROR) return impl_->reply_error(conn, op, r);
    if (r.type != REDIS_REPLY_STATUS) {
      return make_error(ErrorCode::kCorruption, "RedisStore try_lock: " + impl_->server +
                                                    ": SET NX returned reply type " +
                                                    std::to_string(r.type));
    }
  }
  // The key is ours (pending); the connection went back to the pool while the
  // token is drawn, which may take a round trip to PostgreSQL.
  auto token = impl_->tokens->next();
  if (!token.ok()) {
    // Free the key now rather than after its ttl; if this fails too, it expires.
    (void)impl_->run_script(op, kDeleteIfEqualScript, impl_->delete_if_equal_sha, k, {nonce});
    return make_error(token.error().code,
                      "RedisStore try_lock " + std::string(key) + ": " + token.error().message);
  }
  const std::string token_text = std::to_string(*token);
  SETTLE_ASSIGN_OR_RETURN(const long long granted,
                          impl_->run_script(op, kGrantScript, impl_->grant_sha, k, {nonce, token_text}));
  if (granted != 1) {
    return make_error(ErrorCode::kUnavailable,
                      "RedisStore try_lock " + std::string(key) + ": the key lapsed (ttl " +
                          std::to_string(ttl.count()) +
                          " ms) while its fencing token was drawn; use a longer ttl");
  }
  return std::optional<Lease>(Lease{std::string(key), *token});
}

Result<bool> RedisStore::extend(const Lease& lease, milliseconds ttl) {
  const char* op = "extend";
  SETTLE_TRY(check_ttl(ttl, op));
  SETTLE_ASSIGN_OR_RETURN(const long long extended,
                          impl_->run_script(op, kExtendScript, impl_->extend_sha,
                                            lease_key(lease.key), {std::to_string(lease.token), ttl_text(ttl)}));
  return extended == 1;
}

Result<bool> RedisStore::unlock(const Lease& lease) {
  SETTLE_ASSIGN_OR_RETURN(const long long deleted,
                          impl_->run_script("unlock", kDeleteIfEqualScript,
                                            impl_->delete_if_equal_sha, lease_key(lease.key),
                                            {std::to_string(lease.token)}));
  return deleted == 1;
}

}  // namespace settle::idempotency
