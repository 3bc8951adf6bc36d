#include "notify/redis_status_cache.h"

#include <fmt/format.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>
#include <mutex>

#include "common/assert.h"
#include "common/sigpipe_guard.h"

namespace settle::notify {
namespace {

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

std::string_view text(const redisReply* r) { return r && r->str ? std::string_view(r->str, r->len) : std::string_view(); }

std::int64_t to_i64(std::string_view s, std::int64_t fallback) {
  std::int64_t v = fallback;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() ? v : fallback;
}
std::uint64_t to_u64(std::string_view s) {
  std::uint64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

// KEYS: head, hist, batches, merchants. ARGV: epoch, seq, batch, status,
// message, history_max, batches_max, merchant.
constexpr const char* kApply = R"lua(
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '-1')
if epoch == ARGV[1] and tonumber(ARGV[2]) <= seq then return 0 end
if epoch ~= ARGV[1] then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'floor', '-1')
end
redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'seq', ARGV[2])
redis.call('RPUSH', KEYS[2], ARGV[2] .. ' ' .. ARGV[5])
if redis.call('LLEN', KEYS[2]) > tonumber(ARGV[6]) then
  local old = redis.call('LPOP', KEYS[2])
  redis.call('HSET', KEYS[1], 'floor', string.sub(old, 1, string.find(old, ' ') - 1))
end
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
  if redis.call('HLEN', KEYS[3]) > tonumber(ARGV[7]) then
    local keys = redis.call('HKEYS', KEYS[3])
    table.sort(keys)
    redis.call('HDEL', KEYS[3], keys[1])
  end
end
redis.call('SADD', KEYS[4], ARGV[8])
return 1
)lua";

// KEYS: head, hist. Returns {epoch, seq, floor, entries...} in one read.
constexpr const char* kRead = R"lua(
local h = redis.call('HMGET', KEYS[1], 'epoch', 'seq', 'floor')
local out = {h[1] or '0', h[2] or '-1', h[3] or '-1'}
for _, v in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do out[#out + 1] = v end
return out
)lua";

class RedisCache final : public StatusCache {
 public:
  RedisCache(std::string host, int port, int db, std::string password, CacheLimits limits, std::string prefix)
      : host_(std::move(host)), port_(port), db_(db), password_(std::move(password)), limits_(limits),
        prefix_(std::move(prefix)) {}
  ~RedisCache() override {
    if (ctx_) redisFree(ctx_);
  }

  Status connect() {
    std::lock_guard lock(mu_);
    return ensure();
  }

  Result<bool> apply(const CacheEntry& e) override {
    const std::string head = key(e.merchant_id, "head"), hist = key(e.merchant_id, "hist"),
                      batches = key(e.merchant_id, "batches"), all = prefix_ + ":merchants";
    const std::string epoch = std::to_string(e.at.epoch), seq = std::to_string(e.at.seq),
                      hmax = std::to_string(limits_.history_max), bmax = std::to_string(limits_.batches_max);
    SETTLE_ASSIGN_OR_RETURN(Reply r, command({"EVAL", kApply, "4", head, hist, batches, all, epoch, seq, e.batch,
                                              e.status, e.message, hmax, bmax, e.merchant_id}));
    return r->type == REDIS_REPLY_INTEGER && r->integer == 1;
  }

  Result<MerchantState> state(std::string_view merchant_id) override {
    MerchantState s;
    s.merchant_id = std::string(merchant_id);
    SETTLE_ASSIGN_OR_RETURN(Reply h, command({"HMGET", key(merchant_id, "head"), "epoch", "seq"}));
    if (h->type == REDIS_REPLY_ARRAY && h->elements == 2 && h->element[0]->type == REDIS_REPLY_STRING) {
      s.head = {to_u64(text(h->element[0])), to_i64(text(h->element[1]), -1)};
    }
    SETTLE_ASSIGN_OR_RETURN(Reply b, command({"HGETALL", key(merchant_id, "batches")}));
    std::vector<std::pair<std::string, std::string>> kv;
    for (std::size_t i = 0; b->type == REDIS_REPLY_ARRAY && i + 1 < b->elements; i += 2) {
      kv.emplace_back(std::string(text(b->element[i])), std::string(text(b->element[i + 1])));
    }
    std::sort(kv.begin(), kv.end());
    for (auto& [k, v] : kv) s.batches.push_back(std::move(v));
    return s;
  }

  Result<std::optional<std::vector<CacheEntry>>> since(std::string_view merchant_id, StreamPosition from) override {
    using Out = std::optional<std::vector<CacheEntry>>;
    SETTLE_ASSIGN_OR_RETURN(Reply r, command({"EVAL", kRead, "2", key(merchant_id, "head"), key(merchant_id, "hist")}));
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3) return bad_reply("since");
    const StreamPosition head{to_u64(text(r->element[0])), to_i64(text(r->element[1]), -1)};
    const std::int64_t floor = to_i64(text(r->element[2]), -1);
    if (head.seq < 0 || head.epoch != from.epoch || from.seq < floor || from.seq > head.seq) return Out();
    std::vector<CacheEntry> out;
    for (std::size_t i = 3; i < r->elements; ++i) {
      const std::string_view item = text(r->element[i]);
      const auto sp = item.find(' ');
      if (sp == std::string_view::npos) return bad_reply("since");
      const std::int64_t seq = to_i64(item.substr(0, sp), -1);
      if (seq <= from.seq) continue;
      CacheEntry e;
      e.merchant_id = std::string(merchant_id);
      e.at = {head.epoch, seq};
      e.message = std::string(item.substr(sp + 1));
      out.push_back(std::move(e));
    }
    return Out(std::move(out));
  }

  Result<std::vector<std::string>> merchants() override {
    SETTLE_ASSIGN_OR_RETURN(Reply r, command({"SMEMBERS", prefix_ + ":merchants"}));
    std::vector<std::string> out;
    for (std::size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; ++i) out.emplace_back(text(r->element[i]));
    std::sort(out.begin(), out.end());
    return out;
  }

  Result<std::optional<PartitionMark>> mark(std::int32_t partition) override {
    SETTLE_ASSIGN_OR_RETURN(Reply r, command({"GET", fmt::format("{}:mark:{}", prefix_, partition)}));
    if (r->type != REDIS_REPLY_STRING) return std::optional<PartitionMark>();
    const std::string_view v = text(r.get());
    const auto sp = v.find(' ');
    if (sp == std::string_view::npos) return bad_reply("mark");
    return std::optional<PartitionMark>(PartitionMark{to_u64(v.substr(0, sp)), to_i64(v.substr(sp + 1), 0)});
  }

  Status set_mark(std::int32_t partition, PartitionMark m) override {
    SETTLE_TRY(command({"SET", fmt::format("{}:mark:{}", prefix_, partition),
                        fmt::format("{} {}", m.epoch, m.next_offset)}));
    return ok_status();
  }

 private:
  std::string key(std::string_view merchant, std::string_view what) const {
    return fmt::format("{}:{{{}}}:{}", prefix_, merchant, what);
  }
  Error bad_reply(std::string_view op) const {
    return make_error(ErrorCode::kIo, fmt::format("notify cache {}: unexpected reply from redis {}:{}", op, host_, port_));
  }

  Status ensure() {
    if (ctx_ != nullptr) return ok_status();
    const timeval tv{1, 0};
    ctx_ = redisConnectWithTimeout(host_.c_str(), port_, tv);
    if (ctx_ == nullptr || ctx_->err) {
      std::string why = ctx_ ? ctx_->errstr : "out of memory";
      if (ctx_) redisFree(ctx_);
      ctx_ = nullptr;
      return make_error(ErrorCode::kUnavailable, fmt::format("notify cache: redis {}:{}: {}", host_, port_, why));
    }
    redisSetTimeout(ctx_, tv);
    auto hello = [&](std::vector<std::string> args) -> Status {
      auto r = raw(args);
      if (!r.ok()) return r.error();
      if ((*r)->type == REDIS_REPLY_ERROR) {
        const std::string why(text(r->get()));
        redisFree(ctx_);
        ctx_ = nullptr;
        return make_error(ErrorCode::kFailedPrecondition, fmt::format("notify cache: redis {}:{}: {}", host_, port_, why));
      }
      return ok_status();
    };
    if (!password_.empty()) SETTLE_TRY(hello({"AUTH", password_}));
    if (db_ != 0) SETTLE_TRY(hello({"SELECT", std::to_string(db_)}));
    return ok_status();
  }

  Result<Reply> raw(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    redisReply* r = nullptr;
    {
      SigpipeGuard guard;  // a server that went away is an error here, not the process's end
      r = static_cast<redisReply*>(redisCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), lens.data()));
    }
    if (r == nullptr) {
      std::string why = ctx_->errstr;
      redisFree(ctx_);
      ctx_ = nullptr;
      return make_error(ErrorCode::kUnavailable, fmt::format("notify cache: redis {}:{}: {}", host_, port_, why));
    }
    return Reply(r);
  }

  Result<Reply> command(const std::vector<std::string>& args) {
    std::lock_guard lock(mu_);
    SETTLE_TRY(ensure());
    SETTLE_ASSIGN_OR_RETURN(Reply r, raw(args));
    if (r->type == REDIS_REPLY_ERROR) {
      return make_error(ErrorCode::kIo, fmt::format("notify cache: redis {}:{}: {}: {}", host_, port_, args[0], text(r.get())));
    }
    return r;
  }

  const std::string host_;
  const int port_;
  const int db_;
  const std::string password_;
  const CacheLimits limits_;
  const std::string prefix_;
  std::mutex mu_;
  redisContext* ctx_ = nullptr;
};

}  // namespace

Result<std::unique_ptr<StatusCache>> open_redis_cache(const std::string& url, CacheLimits limits, std::string prefix) {
  constexpr std::string_view kScheme = "redis://";
  auto bad = [&](std::string_view why) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("notify cache URL '{}': {}", url, why));
  };
  if (!std::string_view(url).starts_with(kScheme)) return bad("must start with redis://");
  std::string rest = url.substr(kScheme.size());
  std::string password;
  if (auto at = rest.rfind('@'); at != std::string::npos) {
    password = rest.substr(0, at);
    if (auto colon = password.find(':'); colon != std::string::npos) password = password.substr(colon + 1);
    rest = rest.substr(at + 1);
  }
  int db = 0;
  if (auto slash = rest.find('/'); slash != std::string::npos) {
    const std::string d = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    auto [p, ec] = std::from_chars(d.data(), d.data() + d.size(), db);
    if (!d.empty() && (ec != std::errc() || p != d.data() + d.size())) return bad("the database is not a number");
  }
  int port = 6379;
  std::string host = rest;
  if (auto colon = rest.rfind(':'); colon != std::string::npos) {
    host = rest.substr(0, colon);
    const std::string p = rest.substr(colon + 1);
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
    if (ec != std::errc() || end != p.data() + p.size() || port <= 0 || port > 65535) return bad("bad port");
  }
  if (host.empty()) return bad("no host");
  auto cache = std::make_unique<RedisCache>(host, port, db, password, limits, std::move(prefix));
  SETTLE_TRY(cache->connect());
  return std::unique_ptr<StatusCache>(std::move(cache));
}

}  // namespace settle::notify
