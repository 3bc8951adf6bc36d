// The status cache contract on a real redis-server; each test gets its own
// key prefix on the shared server.
#include <atomic>

#include "notify/redis_status_cache.h"
#include "status_cache_contract.h"
#include "support/redis_server.h"

namespace settle::notify {
namespace {

std::unique_ptr<StatusCache> redis_cache(CacheLimits limits) {
  static std::atomic<int> n{0};
  auto c = open_redis_cache(testing::RedisServer::shared().url(), limits,
                            "test-notify-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
  EXPECT_TRUE(c.ok()) << c.error().message;
  return std::move(c).value();
}

INSTANTIATE_TEST_SUITE_P(Redis, StatusCacheContract, ::testing::Values(CacheFactory{"Redis", redis_cache}),
                         factory_name);

TEST(RedisCache, TwoProcessesSharingItKeepOneCopyOfEachMessage) {
  const auto url = testing::RedisServer::shared().url();
  const std::string prefix = "shared-" + std::to_string(::getpid());
  auto a = open_redis_cache(url, {}, prefix);
  auto b = open_redis_cache(url, {}, prefix);  // another notify process
  ASSERT_TRUE(a.ok() && b.ok());
  const CacheEntry e{"m1", {5, 1}, "2026-03-02/USD", "{\"kind\":\"batch_open\"}", "msg1"};
  ASSERT_TRUE(*(*a)->apply(e));
  EXPECT_FALSE(*(*b)->apply(e)) << "the other process applied it already";
  auto history = (*b)->since("m1", {5, 0});
  ASSERT_TRUE(history.ok() && history->has_value());
  ASSERT_EQ((*history)->size(), 1u);
  EXPECT_EQ((**history)[0].message, "msg1");
  EXPECT_EQ((*b)->state("m1")->batches, (std::vector<std::string>{e.status}));
}

TEST(RedisCache, ABadUrlOrAnUnreachableServerIsAClearError) {
  auto bad = open_redis_cache("http://x", {});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("redis://"), std::string::npos);
  auto down = open_redis_cache("redis://127.0.0.1:1", {});
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.error().code, ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace settle::notify
