#include "status_cache_contract.h"

#include <fmt/format.h>

namespace settle::notify {
namespace {

CacheEntry entry(const std::string& merchant, std::uint64_t epoch, std::int64_t seq, const std::string& batch = "") {
  CacheEntry e;
  e.merchant_id = merchant;
  e.at = {epoch, seq};
  e.batch = batch;
  e.status = fmt::format(R"({{"kind":"batch_open","merchant_id":"{}","seq_hint":{}}})", merchant, seq);
  e.message = notify_message(merchant, e.at, e.status);
  return e;
}

std::vector<std::int64_t> seqs(const std::vector<CacheEntry>& v) {
  std::vector<std::int64_t> out;
  for (const auto& e : v) out.push_back(e.at.seq);
  return out;
}

TEST_P(StatusCacheContract, KeepsTheLatestStatePerBatchAndTheHeadPerMerchant) {
  auto cache = GetParam().make({});
  ASSERT_TRUE(*cache->apply(entry("m1", 7, 3, "2026-03-02/USD")));
  ASSERT_TRUE(*cache->apply(entry("m1", 7, 5, "2026-03-03/USD")));
  ASSERT_TRUE(*cache->apply(entry("m1", 7, 9, "2026-03-02/USD")));
  ASSERT_TRUE(*cache->apply(entry("m1", 7, 11)));  // an event message: history only
  ASSERT_TRUE(*cache->apply(entry("m2", 8, 4, "2026-03-02/EUR")));
  auto s = cache->state("m1");
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->head, (StreamPosition{7, 11}));
  ASSERT_EQ(s->batches.size(), 2u);
  EXPECT_EQ(s->batches[0], entry("m1", 7, 9).status);  // 2026-03-02 first, its latest message
  EXPECT_EQ(s->batches[1], entry("m1", 7, 5).status);
  EXPECT_EQ(*cache->merchants(), (std::vector<std::string>{"m1", "m2"}));
  auto unknown = cache->state("nobody");
  ASSERT_TRUE(unknown.ok());
  EXPECT_EQ(unknown->head.seq, -1);
  EXPECT_TRUE(unknown->batches.empty());
}

TEST_P(StatusCacheContract, ApplyingTheSameMessageAgainChangesNothing) {
  auto cache = GetParam().make({});
  ASSERT_TRUE(*cache->apply(entry("m1", 7, 3)));
  ASSERT_TRUE(*cache->apply(entry("m1", 7, 4)));
  EXPECT_FALSE(*cache->apply(entry("m1", 7, 4)));
  EXPECT_FALSE(*cache->apply(entry("m1", 7, 3)));
  auto after = cache->since("m1", {7, 2});
  ASSERT_TRUE(after.ok() && after->has_value());
  EXPECT_EQ(seqs(**after), (std::vector<std::int64_t>{3, 4}));
}

TEST_P(StatusCacheContract, SinceAnswersExactlyTheMessagesAfterThePosition) {
  auto cache = GetParam().make({});
  for (std::int64_t s : {2, 5, 6, 9}) ASSERT_TRUE(*cache->apply(entry("m1", 7, s)));
  auto from5 = cache->since("m1", {7, 5});
  ASSERT_TRUE(from5.ok() && from5->has_value());
  EXPECT_EQ(seqs(**from5), (std::vector<std::int64_t>{6, 9}));
  EXPECT_EQ((**from5)[0].message, entry("m1", 7, 6).message);
  auto at_head = cache->since("m1", {7, 9});
  ASSERT_TRUE(at_head.ok() && at_head->has_value());
  EXPECT_TRUE((*at_head)->empty());
  EXPECT_FALSE(cache->since("m1", {7, 10})->has_value()) << "beyond the head: resync";
  EXPECT_FALSE(cache->since("m1", {6, 5})->has_value()) << "another epoch: resync";
  EXPECT_FALSE(cache->since("nobody", {7, 5})->has_value());
}

TEST_P(StatusCacheContract, HistoryIsBoundedAndAPositionBelowItNeedsAResync) {
  CacheLimits limits;
  limits.history_max = 3;
  auto cache = GetParam().make(limits);
  for (std::int64_t s = 10; s < 16; ++s) ASSERT_TRUE(*cache->apply(entry("m1", 7, s)));
  // 13, 14, 15 are kept; 12 was the last dropped, so a client at 12 misses nothing.
  auto from12 = cache->since("m1", {7, 12});
  ASSERT_TRUE(from12.ok() && from12->has_value());
  EXPECT_EQ(seqs(**from12), (std::vector<std::int64_t>{13, 14, 15}));
  EXPECT_FALSE(cache->since("m1", {7, 11})->has_value()) << "12 was dropped: a client at 11 must resync";
}

TEST_P(StatusCacheContract, BatchesPerMerchantAreBoundedOldestDateFirst) {
  CacheLimits limits;
  limits.batches_max = 2;
  auto cache = GetParam().make(limits);
  ASSERT_TRUE(*cache->apply(entry("m1", 7, 1, "2026-03-01/USD")));
  ASSERT_TRUE(*cache->apply(entry("m1", 7, 2, "2026-03-03/USD")));
  ASSERT_TRUE(*cache->apply(entry("m1", 7, 3, "2026-03-02/USD")));
  auto s = cache->state("m1");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->batches, (std::vector<std::string>{entry("m1", 7, 3).status, entry("m1", 7, 2).status}));
}

TEST_P(StatusCacheContract, ANewEpochStartsTheHistoryAgain) {
  auto cache = GetParam().make({});
  ASSERT_TRUE(*cache->apply(entry("m1", 7, 50)));
  ASSERT_TRUE(*cache->apply(entry("m1", 8, 0))) << "the topic was recreated: offsets start again";
  EXPECT_EQ(cache->state("m1")->head, (StreamPosition{8, 0}));
  EXPECT_FALSE(cache->since("m1", {7, 50})->has_value());
  auto fresh = cache->since("m1", {8, 0});
  ASSERT_TRUE(fresh.ok() && fresh->has_value());
  EXPECT_TRUE((*fresh)->empty());
}

TEST_P(StatusCacheContract, KeepsAMarkPerPartition) {
  auto cache = GetParam().make({});
  EXPECT_FALSE(cache->mark(0)->has_value());
  ASSERT_TRUE(cache->set_mark(0, {7, 12}).ok());
  ASSERT_TRUE(cache->set_mark(3, {9, 4}).ok());
  EXPECT_EQ(**cache->mark(0), (PartitionMark{7, 12}));
  EXPECT_EQ(**cache->mark(3), (PartitionMark{9, 4}));
}

}  // namespace
}  // namespace settle::notify
