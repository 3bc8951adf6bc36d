#include "status_cache_contract.h"

namespace settle::notify {
namespace {

INSTANTIATE_TEST_SUITE_P(Memory, StatusCacheContract,
                         ::testing::Values(CacheFactory{"Memory", [](CacheLimits l) { return make_memory_cache(l); }}),
                         factory_name);

TEST(MemoryCache, DropsTheLeastRecentlyUpdatedMerchantBeyondTheLimit) {
  CacheLimits limits;
  limits.merchants_max = 2;
  auto cache = make_memory_cache(limits);
  auto e = [](std::string m, std::int64_t seq) {
    return CacheEntry{m, {1, seq}, "", "{}", notify_message(m, {1, seq}, "{}")};
  };
  ASSERT_TRUE(cache->apply(e("a", 1)).ok());
  ASSERT_TRUE(cache->apply(e("b", 2)).ok());
  ASSERT_TRUE(cache->apply(e("a", 3)).ok());
  ASSERT_TRUE(cache->apply(e("c", 4)).ok());
  EXPECT_EQ(*cache->merchants(), (std::vector<std::string>{"a", "c"}));
}

TEST(StreamPositionText, ParsesEpochColonSeqAndSaysWhatIsWrong) {
  EXPECT_EQ(*parse_position("12:34"), (StreamPosition{12, 34}));
  auto bad = parse_position("12-34");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("EPOCH:SEQ"), std::string::npos);
  EXPECT_FALSE(parse_position("x:1").ok());
  EXPECT_FALSE(parse_position("1:-1").ok());
}

}  // namespace
}  // namespace settle::notify
