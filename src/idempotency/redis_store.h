// RedisStore: the idempotency port on Redis (>= 7.0) through hiredis, for
// processes on several machines sharing one store. A fast path only: losing
// Redis's data loses no correctness, because the ledger's unique keys are the
// durable guard (docs/operations.md, "Redis").
//
// How each operation maps onto Redis:
// - put_if_absent: SET key value NX PX ttl GET, one atomic command that either
//   stores the value or returns the one already there.
// - put_if_absent_many: the same commands pipelined on one connection (so
//   they run in order), in chunks of pipeline_depth_max with two chunks in
//   flight: the server runs one while the client reads the other's replies.
// - get: GET. delete_if_equal, replace_if_equal, extend, unlock: Lua scripts
//   (compare, then delete, SET or PEXPIRE), sent by EVALSHA with a fallback to
//   EVAL when the server does not know the script (NOSCRIPT, e.g. after a
//   restart or failover). replace_if_equal_many pipelines the script as EVAL
//   with its text, like put_if_absent_many's chunks.
// - try_lock: SET lease "pending:<nonce>" NX PX ttl; then a fencing token from
//   the TokenSource; then a script swaps the nonce for the token (KEEPTTL).
//   The token is drawn while the key is held, so successive grants of a key
//   get increasing tokens, and a grant that ends before another starts has
//   the smaller token. Tokens do not come from Redis (see token_source.h).
//
// Key scheme (Redis Cluster keeps a merchant's keys in one slot):
//   <prefix>:{<merchant>}:v:<key>   the value of a key that names a merchant
//   <prefix>:{<merchant>}:l:<key>   the lease on such a key
//   <prefix>:v:<key>, <prefix>:l:<key>   keys that name no merchant
// A key names a merchant when the text before its first '/', after its last
// ':', is a merchant id (1-64 of [A-Za-z0-9_-]): "batch:m1/2026-11-23/USD"
// and "m1/e-17" belong to m1; "health-check" to none. Values and leases live
// in separate key spaces, like MemoryStore's. Every script touches one key,
// so none can cross slots. RedisStore itself talks to one node (a standalone
// server or a failover-managed primary); it does not follow cluster redirects.
//
// Failures: every call returns within about connect_timeout +
// command_timeout (a pipelined batch: command_timeout per reply read).
// A server that is down, paused or unreachable gives kUnavailable naming the
// server; a connection that failed is dropped and reopened on a later call,
// and after a failed connect further attempts wait for a capped exponential
// backoff, failing fast with kUnavailable meanwhile. A call cut short may or
// may not have taken effect; retrying it is safe for claims (they then
// answer !inserted with their own value) and leases (they expire).
//
// Thread safety: every method may be called from any thread; calls share a
// pool of pool_size connections, one call per connection at a time.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "idempotency/store.h"
#include "idempotency/token_source.h"

namespace settle::idempotency {

struct RedisOptions {
  // TCP connect, and the handshake (AUTH, SELECT, PING) that follows.
  std::chrono::milliseconds connect_timeout{1000};
  // Each write to and each read from the server; a reply not read in time
  // fails the call and drops the connection.
  std::chrono::milliseconds command_timeout{1000};
  // Connections, each serving one call at a time. A call that finds all of
  // them busy waits up to command_timeout for one, then fails kUnavailable.
  std::size_t pool_size = 8;
  // After a failed connect, the next attempt waits this long, doubling up to
  // the max; calls in between fail fast.
  std::chrono::milliseconds reconnect_backoff_min{50};
  std::chrono::milliseconds reconnect_backoff_max{2000};
  // First segment of every Redis key, so several deployments (or tests) can
  // share a server. Braces here would put every key in one cluster slot.
  std::string key_prefix = "settle";
  // Commands per chunk in put_if_absent_many (two chunks are in flight).
  // Deeper pipelines save round trips but hold more bytes in both buffers.
  std::size_t pipeline_depth_max = 512;
};

class RedisStore final : public Store {
 public:
  // url: redis://[[user]:password@]host[:port][/db][?option=value&...], port
  // 6379 and db 0 by default. Options override `options`: connect_timeout_ms,
  // command_timeout_ms, pool_size, backoff_min_ms, backoff_max_ms,
  // key_prefix, pipeline_depth_max. Connects once to check the server (a
  // clear error at start-up rather than at the first claim): kInvalidArgument
  // for a bad URL or option, kUnavailable when the server cannot be reached,
  // kFailedPrecondition when it refuses the credentials or is older than 7.0.
  // `tokens` (required) hands out the leases' fencing tokens.
  static Result<std::unique_ptr<RedisStore>> open(const std::string& url, RedisOptions options,
                                                  std::shared_ptr<TokenSource> tokens);

  ~RedisStore() override;
  RedisStore(const RedisStore&) = delete;
  RedisStore& operator=(const RedisStore&) = delete;

  Result<PutOutcome> put_if_absent(std::string_view key, std::string_view value,
                                   std::chrono::milliseconds ttl) override;
  Result<std::vector<PutOutcome>> put_if_absent_many(std::span<const PutRequest> items,
                                                     std::chrono::milliseconds ttl) override;
  Result<std::optional<std::string>> get(std::string_view key) override;
  Result<bool> delete_if_equal(std::string_view key, std::string_view expected) override;
  Result<bool> replace_if_equal(std::string_view key, std::string_view expected, std::string_view value,
                                std::chrono::milliseconds ttl) override;
  Result<std::vector<bool>> replace_if_equal_many(std::span<const ReplaceRequest> items,
                                                  std::chrono::milliseconds ttl) override;

  Result<std::optional<Lease>> try_lock(std::string_view key,
                                        std::chrono::milliseconds ttl) override;
  Result<bool> extend(const Lease& lease, std::chrono::milliseconds ttl) override;
  Result<bool> unlock(const Lease& lease) override;

  // The key scheme, for tests and operators.
  static std::optional<std::string_view> merchant_of(std::string_view key);
  std::string value_key(std::string_view key) const;
  std::string lease_key(std::string_view key) const;

  // "redis 127.0.0.1:6379/0": where this store points, without credentials.
  const std::string& server() const;

 private:
  struct Impl;
  explicit RedisStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace settle::idempotency
