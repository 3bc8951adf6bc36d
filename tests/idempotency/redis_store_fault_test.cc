// RedisStore when Redis misbehaves: a restart that loses every key, a server
// that stops answering (SIGSTOP), a server that is gone, a token source that
// fails. Each test runs its own redis-server so that it can break it.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "idempotency/redis_store.h"
#include "redis_test_util.h"
#include "support/redis_server.h"

namespace settle::idempotency {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using testing::RedisServer;

constexpr milliseconds kTtl{60'000};

std::unique_ptr<RedisStore> open_store(const RedisServer& server, RedisOptions options,
                                       std::shared_ptr<TokenSource> tokens = shared_pg_tokens()) {
  auto store = RedisStore::open(server.url(), std::move(options), std::move(tokens));
  EXPECT_TRUE(store.ok()) << store.error().to_string();
  return store.ok() ? std::move(store).value() : nullptr;
}

// Retries `call` until it succeeds or `limit` passes; returns the time it took.
template <typename Call>
milliseconds until_ok(Call call, milliseconds limit) {
  const auto start = steady_clock::now();
  while (steady_clock::now() - start < limit) {
    if (call().ok()) break;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return std::chrono::duration_cast<milliseconds>(steady_clock::now() - start);
}

template <typename T>
void expect_unavailable(const Result<T>& r, const std::string& says) {
  ASSERT_FALSE(r.ok()) << "expected kUnavailable (" << says << ")";
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable) << r.error().to_string();
  EXPECT_NE(r.error().message.find(says), std::string::npos) << r.error().message;
}

TEST(RedisStoreFaults, RestartLosesTheKeysTheStoreReconnectsAndTokensStillIncrease) {
  RedisServer server;
  RedisOptions options;
  options.reconnect_backoff_min = milliseconds(20);
  options.reconnect_backoff_max = milliseconds(200);
  auto store = open_store(server, options);
  ASSERT_TRUE(store);

  ASSERT_TRUE(store->put_if_absent("m1/e-1", "claimed", kTtl)->inserted);
  const auto before = store->try_lock("batch:m1/2026-11-23/USD", kTtl);
  ASSERT_TRUE(before.ok() && before->has_value());

  server.stop();
  const auto start = steady_clock::now();
  expect_unavailable(store->get("m1/e-1"), "cannot connect");
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(3)) << "a refused connect fails at once";

  server.start();
  const milliseconds took = until_ok([&] { return store->get("m1/e-1"); }, milliseconds(5000));
  EXPECT_LT(took, milliseconds(5000)) << "the store did not reconnect";

  // Redis lost everything (no persistence)...
  EXPECT_EQ(*store->get("m1/e-1"), std::nullopt);
  EXPECT_TRUE(store->put_if_absent("m1/e-1", "claimed again", kTtl)->inserted);
  // ...including the lease, which is granted again, with a greater token:
  // tokens come from PostgreSQL, which did not restart.
  const auto after = store->try_lock("batch:m1/2026-11-23/USD", kTtl);
  ASSERT_TRUE(after.ok()) << after.error().to_string();
  ASSERT_TRUE(after->has_value());
  EXPECT_GT((*after)->token, (*before)->token);
  // The stale holder can neither extend nor release the new grant.
  EXPECT_FALSE(*store->extend(**before, kTtl));
  EXPECT_FALSE(*store->unlock(**before));
  EXPECT_TRUE(*store->unlock(**after));
}

TEST(RedisStoreFaults, APausedServerTimesOutInsteadOfHanging) {
  RedisServer server;
  RedisOptions options;
  options.connect_timeout = milliseconds(300);
  options.command_timeout = milliseconds(300);
  options.reconnect_backoff_min = milliseconds(50);
  options.reconnect_backoff_max = milliseconds(100);
  auto store = open_store(server, options);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->put_if_absent("m1/kept", "v", kTtl)->inserted);

  server.pause();
  auto timed = [](auto call) {
    const auto start = steady_clock::now();
    auto r = call();
    return std::make_pair(std::move(r), steady_clock::now() - start);
  };
  // The pooled connection: its reply never comes.
  auto [claim, claim_took] = timed([&] { return store->put_if_absent("m1/e-1", "v", kTtl); });
  expect_unavailable(claim, "no reply within command_timeout (300 ms)");
  EXPECT_GE(claim_took, milliseconds(250));
  EXPECT_LT(claim_took, milliseconds(3000));

  // A new connection: the kernel still accepts it, the handshake gets no answer.
  std::this_thread::sleep_for(milliseconds(120));  // past the backoff
  auto [lock, lock_took] = timed([&] { return store->try_lock("batch:m1/d/USD", kTtl); });
  expect_unavailable(lock, "handshake: no reply within connect_timeout (300 ms)");
  EXPECT_LT(lock_took, milliseconds(3000));

  std::this_thread::sleep_for(milliseconds(120));
  const std::vector<PutRequest> batch = {{"m1/a", "1"}, {"m1/b", "2"}};
  auto [many, many_took] = timed([&] { return store->put_if_absent_many(batch, kTtl); });
  ASSERT_FALSE(many.ok());
  EXPECT_EQ(many.error().code, ErrorCode::kUnavailable);
  EXPECT_LT(many_took, milliseconds(3000));

  server.resume();
  const milliseconds took = until_ok([&] { return store->get("m1/kept"); }, milliseconds(5000));
  EXPECT_LT(took, milliseconds(5000)) << "the store did not recover";
  EXPECT_EQ(*store->get("m1/kept"), std::optional<std::string>("v"));
}

TEST(RedisStoreFaults, WhileBackingOffCallsFailFastSayingWhenTheNextAttemptIs) {
  RedisServer server;
  RedisOptions options;
  options.reconnect_backoff_min = milliseconds(10'000);
  options.reconnect_backoff_max = milliseconds(20'000);
  auto store = open_store(server, options);
  ASSERT_TRUE(store);
  server.stop();

  expect_unavailable(store->get("m1/x"), "Connection refused");
  const auto start = steady_clock::now();
  const auto second = store->put_if_absent("m1/x", "v", kTtl);
  EXPECT_LT(steady_clock::now() - start, milliseconds(2000)) << "no connect attempt, no wait";
  expect_unavailable(second, "next connection attempt in");
  EXPECT_NE(second.error().message.find("Connection refused"), std::string::npos)
      << "says why: " << second.error().message;
}

TEST(RedisStoreFaults, AServerKilledMidBatchFailsTheBatchAndTheProcessLivesOn) {
  RedisServer server;
  RedisOptions options;
  // One huge chunk: the first write of megabytes is still going on when the
  // server dies, so it meets the reset socket (EPIPE, SIGPIPE).
  options.pipeline_depth_max = 1'000'000;
  auto store = open_store(server, options);
  ASSERT_TRUE(store);
  // Large enough to take far longer than the 100 ms before the kill.
  constexpr int kItems = 150'000;
  std::vector<std::string> keys;
  for (int i = 0; i < kItems; ++i) keys.push_back("m" + std::to_string(i % 16) + "/evt-" + std::to_string(i));
  std::vector<PutRequest> batch;
  for (const auto& k : keys) batch.push_back(PutRequest{k, "v"});

  std::thread killer([&] {
    std::this_thread::sleep_for(milliseconds(100));
    server.stop();
  });
  // Writing to a connection the server reset raises SIGPIPE, whose default
  // action would end this test process here.
  const auto r = store->put_if_absent_many(batch, kTtl);
  killer.join();
  ASSERT_FALSE(r.ok()) << "the batch finished before the kill; make it larger";
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable) << r.error().to_string();

  server.start();
  EXPECT_LT(until_ok([&] { return store->get("m1/evt-1"); }, milliseconds(5000)), milliseconds(5000));
}

// A token source that fails when told to: PostgreSQL being unreachable,
// without stopping the shared test server.
class FlakyTokens final : public TokenSource {
 public:
  Result<std::uint64_t> next() override {
    if (fail) return make_error(ErrorCode::kUnavailable, "token database unreachable");
    return shared_pg_tokens()->next();
  }
  std::atomic<bool> fail{false};
};

TEST(RedisStoreFaults, ATokenSourceFailureFailsTheGrantAndFreesTheKeyAtOnce) {
  RedisServer server;
  auto tokens = std::make_shared<FlakyTokens>();
  auto store = open_store(server, RedisOptions{}, tokens);
  ASSERT_TRUE(store);

  tokens->fail = true;
  const auto refused = store->try_lock("batch:m1/d/USD", kTtl);
  expect_unavailable(refused, "token database unreachable");

  tokens->fail = false;
  const auto granted = store->try_lock("batch:m1/d/USD", kTtl);
  ASSERT_TRUE(granted.ok()) << granted.error().to_string();
  EXPECT_TRUE(granted->has_value()) << "the failed attempt left its pending key behind";
}

}  // namespace
}  // namespace settle::idempotency
