// RedisStore against a real redis-server, with fencing tokens from a real
// PostgreSQL sequence: the port's contract suite unchanged (on real time, as
// Redis keeps its own clock), then what only the Redis store promises: the
// key scheme and its hash tags, pipelined batches, scripts surviving a
// SCRIPT FLUSH, URLs and options, connections that die between calls.
// Restarts and paused servers are in redis_store_fault_test.cc.
#include "idempotency/redis_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "idempotency/pg_token_source.h"
#include "redis_test_util.h"
#include "store_contract.h"
#include "support/process.h"
#include "support/postgres_server.h"
#include "support/redis_server.h"

namespace settle::idempotency {
namespace {

using std::chrono::milliseconds;
using testing::RedisServer;

StoreFactory redis_factory() {
  return StoreFactory{"Redis",
                      []() -> std::unique_ptr<Store> {
                        auto store = RedisStore::open(RedisServer::shared().url(), RedisOptions{},
                                                      shared_pg_tokens());
                        if (!store.ok()) {
                          ADD_FAILURE() << store.error().to_string();
                          return nullptr;
                        }
                        return std::move(store).value();
                      },
                      [](milliseconds by) { std::this_thread::sleep_for(by); }};
}

INSTANTIATE_TEST_SUITE_P(Redis, StoreContract, ::testing::Values(redis_factory()),
                         store_factory_name);

class RedisStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<RedisStore> open(RedisOptions options = {}) {
    // Each test its own prefix, so raw key checks see only its keys.
    options.key_prefix = "t-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name());
    auto store = RedisStore::open(RedisServer::shared().url(), options, shared_pg_tokens());
    EXPECT_TRUE(store.ok()) << store.error().to_string();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  RawRedis raw_{RedisServer::shared().port()};
};

TEST(RedisKeyScheme, MerchantIsTheSegmentBeforeTheFirstSlashAfterItsKind) {
  EXPECT_EQ(RedisStore::merchant_of("batch:m1/2026-11-23/USD"), "m1");
  EXPECT_EQ(RedisStore::merchant_of("m-eur/e-17"), "m-eur");
  EXPECT_EQ(RedisStore::merchant_of("api:req:M_2/abc:def/ghi"), "M_2");
  EXPECT_EQ(RedisStore::merchant_of("health-check"), std::nullopt);
  EXPECT_EQ(RedisStore::merchant_of("a:b:c"), std::nullopt);
  EXPECT_EQ(RedisStore::merchant_of("batch:/x"), std::nullopt) << "empty merchant";
  EXPECT_EQ(RedisStore::merchant_of("batch:m.1/x"), std::nullopt) << "not a merchant id";
  EXPECT_EQ(RedisStore::merchant_of(std::string(65, 'm') + "/x"), std::nullopt) << "too long";
  EXPECT_EQ(RedisStore::merchant_of(std::string(64, 'm') + "/x"), std::string(64, 'm'));
}

TEST_F(RedisStoreTest, KeysOfOneMerchantShareAHashTagAndSoAClusterSlot) {
  auto store = open();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->put_if_absent("m1/e-1", "v", milliseconds(10'000))->inserted);
  ASSERT_TRUE(store->put_if_absent("api:m1/req-9", "v", milliseconds(10'000))->inserted);
  ASSERT_TRUE(store->put_if_absent("m2/e-1", "v", milliseconds(10'000))->inserted);
  ASSERT_TRUE(store->put_if_absent("no-merchant", "v", milliseconds(10'000))->inserted);
  const auto lease = store->try_lock("batch:m1/2026-11-23/USD", milliseconds(10'000));
  ASSERT_TRUE(lease.ok() && lease->has_value());

  const std::string p = "t-KeysOfOneMerchantShareAHashTagAndSoAClusterSlot";
  const std::set<std::string> expected = {
      p + ":{m1}:v:m1/e-1", p + ":{m1}:v:api:m1/req-9", p + ":{m2}:v:m2/e-1",
      p + ":v:no-merchant", p + ":{m1}:l:batch:m1/2026-11-23/USD"};
  EXPECT_EQ(raw_.keys(p + ":*"), expected);
  EXPECT_EQ(store->value_key("m1/e-1"), p + ":{m1}:v:m1/e-1");
  EXPECT_EQ(store->lease_key("batch:m1/2026-11-23/USD"), p + ":{m1}:l:batch:m1/2026-11-23/USD");

  // Redis Cluster hashes only the tag: every m1 key lands in m1's slot.
  const int m1 = cluster_slot("m1");
  EXPECT_EQ(cluster_slot(p + ":{m1}:v:m1/e-1"), m1);
  EXPECT_EQ(cluster_slot(p + ":{m1}:v:api:m1/req-9"), m1);
  EXPECT_EQ(cluster_slot(p + ":{m1}:l:batch:m1/2026-11-23/USD"), m1);
  EXPECT_NE(cluster_slot(p + ":{m2}:v:m2/e-1"), m1);
}

TEST_F(RedisStoreTest, ClaimsAreSetWithTheirTtlAndLeasesHoldTheirToken) {
  auto store = open();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->put_if_absent("m1/e-1", "v", milliseconds(5000))->inserted);
  const long long claim_ttl = raw_.integer({"PTTL", store->value_key("m1/e-1")});
  EXPECT_GT(claim_ttl, 4000);
  EXPECT_LE(claim_ttl, 5000);

  const auto lease = store->try_lock("batch:m1/d/USD", milliseconds(7000));
  ASSERT_TRUE(lease.ok() && lease->has_value()) << (lease.ok() ? "held" : lease.error().to_string());
  const std::string lease_key = store->lease_key("batch:m1/d/USD");
  EXPECT_EQ(raw_.string({"GET", lease_key}), std::to_string((*lease)->token));
  const long long lease_ttl = raw_.integer({"PTTL", lease_key});
  EXPECT_GT(lease_ttl, 6000) << "the grant keeps the ttl set when the key was taken";
  EXPECT_LE(lease_ttl, 7000);

  ASSERT_TRUE(*store->extend(**lease, milliseconds(20'000)));
  EXPECT_GT(raw_.integer({"PTTL", lease_key}), 19'000);
  ASSERT_TRUE(*store->unlock(**lease));
  EXPECT_EQ(raw_.integer({"EXISTS", lease_key}), 0);
}

TEST_F(RedisStoreTest, FencingTokensAreTheTokenSourcesPostgresSequence) {
  auto store = open();
  ASSERT_TRUE(store);
  const auto a = store->try_lock("batch:m1/a/USD", milliseconds(10'000));
  ASSERT_TRUE(a.ok() && a->has_value());
  // This process's tests run one at a time and it has its own PostgreSQL, so
  // the sequence's last value is the token just drawn.
  const std::uint64_t last = last_sequence_value();
  EXPECT_EQ((*a)->token, last);

  // A second store (another process, in production) continues the sequence.
  auto other = open();
  const auto b = other->try_lock("batch:m1/b/USD", milliseconds(10'000));
  ASSERT_TRUE(b.ok() && b->has_value());
  EXPECT_GT((*b)->token, (*a)->token);
}

TEST_F(RedisStoreTest, PipelinedBatchSpanningManyRoundTripsKeepsEveryAnswerWithItsItem) {
  RedisOptions options;
  options.pipeline_depth_max = 64;
  auto store = open(options);
  ASSERT_TRUE(store);
  // Every third key exists already, with a value naming it.
  constexpr int kItems = 5000;
  std::vector<std::string> keys, values;
  for (int i = 0; i < kItems; ++i) {
    keys.push_back("m" + std::to_string(i % 7) + "/evt-" + std::to_string(i));
    values.push_back("new-" + std::to_string(i));
    if (i % 3 == 0) {
      ASSERT_TRUE(
          store->put_if_absent(keys.back(), "old-" + std::to_string(i), milliseconds(60'000))->inserted);
    }
  }
  std::vector<PutRequest> batch;
  for (int i = 0; i < kItems; ++i) batch.push_back(PutRequest{keys[i], values[i]});

  const auto before = raw_.info_stat("total_commands_processed");
  auto outcomes = store->put_if_absent_many(batch, milliseconds(60'000));
  ASSERT_TRUE(outcomes.ok()) << outcomes.error().to_string();
  ASSERT_EQ(outcomes->size(), static_cast<std::size_t>(kItems));
  for (int i = 0; i < kItems; ++i) {
    const PutOutcome& o = (*outcomes)[static_cast<std::size_t>(i)];
    if (i % 3 == 0) {
      ASSERT_FALSE(o.inserted) << i;
      ASSERT_EQ(o.existing, "old-" + std::to_string(i));
    } else {
      ASSERT_TRUE(o.inserted) << i;
    }
  }
  // One SET per item, nothing else (no per-item script or round of GETs);
  // the INFO call that reads the counter adds one.
  EXPECT_EQ(raw_.info_stat("total_commands_processed") - before, kItems + 1);
  EXPECT_EQ(*store->get(keys[1]), std::optional<std::string>("new-1"));
  EXPECT_EQ(*store->get(keys[3]), std::optional<std::string>("old-3"));
}

TEST_F(RedisStoreTest, ScriptsStillRunAfterTheServerForgetsThem) {
  auto store = open();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->put_if_absent("m1/k", "v", milliseconds(10'000))->inserted);
  ASSERT_FALSE(*store->delete_if_equal("m1/k", "other"));  // loads the script
  raw_.command({"SCRIPT", "FLUSH"});                         // as after a restart or failover
  EXPECT_TRUE(*store->delete_if_equal("m1/k", "v"));

  raw_.command({"SCRIPT", "FLUSH"});
  const auto lease = store->try_lock("batch:m1/x/USD", milliseconds(10'000));
  ASSERT_TRUE(lease.ok() && lease->has_value());
  raw_.command({"SCRIPT", "FLUSH"});
  EXPECT_TRUE(*store->extend(**lease, milliseconds(10'000)));
  raw_.command({"SCRIPT", "FLUSH"});
  EXPECT_TRUE(*store->unlock(**lease));
}

TEST_F(RedisStoreTest, AConnectionTheServerClosedIsReplacedBeforeTheNextCall) {
  RedisOptions options;
  options.pool_size = 1;
  auto store = open(options);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->put_if_absent("m1/a", "1", milliseconds(10'000))->inserted);
  // Kill every client connection but the checker's own.
  raw_.command({"CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"});
  std::this_thread::sleep_for(milliseconds(50));
  const auto r = store->get("m1/a");
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(*r, std::optional<std::string>("1"));
}

TEST_F(RedisStoreTest, ManyThreadsShareASmallPool) {
  RedisOptions options;
  options.pool_size = 2;
  auto store = open(options);
  ASSERT_TRUE(store);
  constexpr int kThreads = 12;
  constexpr int kClaims = 200;
  std::atomic<int> inserted{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kClaims; ++i) {
        // Threads pair up on keys: each key is claimed by exactly two threads.
        auto r = store->put_if_absent("m1/k-" + std::to_string(t / 2) + "-" + std::to_string(i),
                                      std::to_string(t), milliseconds(60'000));
        if (!r.ok()) {
          failures.fetch_add(1);
        } else if (r->inserted) {
          inserted.fetch_add(1);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(inserted.load(), kThreads / 2 * kClaims);
}

TEST(RedisStoreOpen, UrlOptionsOverrideTheOptionsStruct) {
  auto& redis = RedisServer::shared();
  auto store = RedisStore::open(redis.url() + "/3?key_prefix=from-url&pool_size=2&command_timeout_ms=500",
                                RedisOptions{}, shared_pg_tokens());
  ASSERT_TRUE(store.ok()) << store.error().to_string();
  EXPECT_EQ((*store)->server(), "redis 127.0.0.1:" + std::to_string(redis.port()) + "/3");
  EXPECT_EQ((*store)->value_key("m1/e"), "from-url:{m1}:v:m1/e");
  ASSERT_TRUE((*store)->put_if_absent("m1/e", "v", milliseconds(10'000))->inserted);

  RawRedis db3(redis.port());
  db3.command({"SELECT", "3"});
  EXPECT_EQ(db3.string({"GET", "from-url:{m1}:v:m1/e"}), "v");
}

TEST(RedisStoreOpen, BadUrlsAndOptionsAreInvalidArgumentNamingTheProblem) {
  const auto tokens = shared_pg_tokens();
  const struct {
    std::string url;
    std::string says;
  } cases[] = {
      {"http://127.0.0.1:6379", "expected redis://"},
      {"rediss://127.0.0.1:6379", "TLS"},
      {"redis://127.0.0.1:0", "port"},
      {"redis://127.0.0.1:99999", "port"},
      {"redis://127.0.0.1:6379/x", "database number"},
      {"redis://:6379", "no host"},
      {"redis://127.0.0.1?pool_size=0", "pool_size"},
      {"redis://127.0.0.1?command_timeout_ms=-1", "command_timeout_ms"},
      {"redis://127.0.0.1?colour=blue", "unknown option 'colour'"},
      {"redis://127.0.0.1?key_prefix=", "key_prefix"},
  };
  for (const auto& c : cases) {
    const auto store = RedisStore::open(c.url, RedisOptions{}, tokens);
    ASSERT_FALSE(store.ok()) << c.url;
    EXPECT_EQ(store.error().code, ErrorCode::kInvalidArgument) << c.url;
    EXPECT_NE(store.error().message.find(c.says), std::string::npos)
        << c.url << ": " << store.error().message;
  }
  const auto no_tokens = RedisStore::open(RedisServer::shared().url(), RedisOptions{}, nullptr);
  ASSERT_FALSE(no_tokens.ok());
  EXPECT_EQ(no_tokens.error().code, ErrorCode::kInvalidArgument);
}

TEST(RedisStoreOpen, NothingListeningIsUnavailableAtOnce) {
  const int port = testing::free_port();
  const auto start = std::chrono::steady_clock::now();
  const auto store =
      RedisStore::open("redis://127.0.0.1:" + std::to_string(port), RedisOptions{}, shared_pg_tokens());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(store.error().message.find("127.0.0.1:" + std::to_string(port)), std::string::npos)
      << store.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

TEST(RedisStoreOpen, RefusedCredentialsAreFailedPreconditionWithoutThePassword) {
  // The test server has no such user: AUTH is refused, and retrying will not help.
  const auto refused = RedisStore::open(
      "redis://someone:s3cret-pw@127.0.0.1:" + std::to_string(RedisServer::shared().port()),
      RedisOptions{}, shared_pg_tokens());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kFailedPrecondition) << refused.error().to_string();
  EXPECT_EQ(refused.error().message.find("s3cret"), std::string::npos) << refused.error().message;
}

TEST(PgTokenSource, TokensIncreaseAcrossSourcesSharingTheSequence) {
  auto& pg = testing::PostgresServer::shared();
  pg.create_database("pg_token_source_test");
  PgTokenSourceOptions options;
  options.sequence = "tokens_across_sources";
  auto a = PgTokenSource::open(pg.url("pg_token_source_test"), options);
  auto b = PgTokenSource::open(pg.conninfo("pg_token_source_test"), options);
  ASSERT_TRUE(a.ok()) << a.error().to_string();
  ASSERT_TRUE(b.ok()) << b.error().to_string();
  std::uint64_t last = 0;
  for (int i = 0; i < 50; ++i) {
    auto& source = i % 3 == 0 ? *a : *b;
    const auto token = source->next();
    ASSERT_TRUE(token.ok()) << token.error().to_string();
    EXPECT_GT(*token, last);
    last = *token;
  }
  // A source opened later (a restarted process) continues above.
  a->reset();
  auto c = PgTokenSource::open(pg.url("pg_token_source_test"), options);
  ASSERT_TRUE(c.ok());
  EXPECT_GT(*(*c)->next(), last);
}

TEST(PgTokenSource, BadSequenceNameIsInvalidArgumentAndNoServerIsUnavailable) {
  auto& pg = testing::PostgresServer::shared();
  PgTokenSourceOptions bad;
  bad.sequence = "x; DROP TABLE journals";
  const auto refused = PgTokenSource::open(pg.url(), bad);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument);

  const int port = testing::free_port();
  const auto down = PgTokenSource::open("postgresql://postgres@127.0.0.1:" + std::to_string(port) + "/postgres");
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(down.error().message.find(std::to_string(port)), std::string::npos) << down.error().message;
}

}  // namespace
}  // namespace settle::idempotency
