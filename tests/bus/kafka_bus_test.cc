// KafkaBus beyond the port's contract, on librdkafka's mock cluster
// (tools/kafka-mock): the partitioner, positioned reads, the helper's
// cluster, failures when the cluster is gone, and consumer-group membership.
#include "bus/kafka_bus.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <set>
#include <thread>

#include "support/kafka_mock.h"
#include "support/process.h"

namespace settle::bus {
namespace {

using settle::testing::KafkaMock;
using Clock = std::chrono::steady_clock;

std::string unique(std::string_view base) {
  static std::random_device random;
  return std::string(base) + "-" + std::to_string(random() % 1000000000U);
}

std::unique_ptr<KafkaBus> open_bus(const std::string& url) {
  auto bus = KafkaBus::open(url);
  EXPECT_TRUE(bus.ok()) << bus.error().to_string();
  return bus.ok() ? std::move(bus).value() : nullptr;
}

Record record(std::string key, std::string value, std::vector<Header> headers = {}) {
  Record r;
  r.key = std::move(key);
  r.value = std::move(value);
  r.headers = std::move(headers);
  return r;
}

TEST(KafkaBusTest, KeyedRecordsLandOnPartitionForLikeTheEmbeddedBus) {
  auto bus = open_bus(KafkaMock::shared().url("linger_ms=2"));
  ASSERT_TRUE(bus);
  const std::string topic = unique("keyed");
  constexpr std::int32_t kPartitions = 7;
  ASSERT_TRUE(bus->create_topic(TopicConfig{topic, kPartitions, false}).ok());
  std::vector<Record> batch;
  for (int m = 0; m < 500; ++m) batch.push_back(record("merchant_" + std::to_string(m * 7919), "e"));
  auto positions = bus->append(topic, batch);
  ASSERT_TRUE(positions.ok()) << positions.error().to_string();
  std::set<std::int32_t> used;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    // librdkafka's murmur2_random and bus::partition_for agree on every key.
    ASSERT_EQ((*positions)[i].partition, partition_for(batch[i].key, kPartitions)) << batch[i].key;
    used.insert((*positions)[i].partition);
  }
  EXPECT_EQ(used.size(), static_cast<std::size_t>(kPartitions));
}

TEST(KafkaBusTest, TraceparentAndEventIdentityHeadersRoundTrip) {
  auto bus = open_bus(KafkaMock::shared().url("linger_ms=1"));
  ASSERT_TRUE(bus);
  const std::string topic = unique("headers");
  ASSERT_TRUE(bus->create_topic(TopicConfig{topic, 3, false}).ok());
  const std::vector<Header> headers = {
      {"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
      {"event_id", "evt-42"},
      {"merchant_id", "m-7"}};
  auto positions = bus->append(topic, std::vector<Record>{record("m-7", "{}", headers)});
  ASSERT_TRUE(positions.ok()) << positions.error().to_string();
  auto read = bus->read(topic, positions->front().partition, positions->front().offset, 10);
  ASSERT_TRUE(read.ok()) << read.error().to_string();
  ASSERT_EQ(read->size(), 1U);
  EXPECT_EQ(read->front().headers, headers);
  EXPECT_EQ(read->front().header("traceparent"), headers[0].value);
}

TEST(KafkaBusTest, SequentialReadsContinueWithoutSeekingAndOtherOffsetsSeek) {
  auto bus = open_bus(KafkaMock::shared().url("linger_ms=1"));
  ASSERT_TRUE(bus);
  const std::string topic = unique("sequential");
  ASSERT_TRUE(bus->create_topic(TopicConfig{topic, 2, false}).ok());
  std::vector<Record> batch;
  for (int i = 0; i < 300; ++i) batch.push_back(record("k", "v" + std::to_string(i)));
  ASSERT_TRUE(bus->append_to(topic, 1, batch).ok());

  std::int64_t next = 0;
  while (next < 300) {
    auto records = bus->read(topic, 1, next, 25);
    ASSERT_TRUE(records.ok()) << records.error().to_string();
    ASSERT_FALSE(records->empty()) << "at " << next;
    for (const StoredRecord& r : *records) {
      ASSERT_EQ(r.offset, next);
      ASSERT_EQ(r.value, "v" + std::to_string(next));
      ++next;
    }
  }
  EXPECT_EQ(bus->seeks(), 0);
  EXPECT_TRUE(bus->read(topic, 1, 300, 25)->empty());

  auto again = bus->read(topic, 1, 10, 3);
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again->size(), 3U);
  EXPECT_EQ(again->front().value, "v10");
  EXPECT_EQ(bus->seeks(), 1);
}

TEST(KafkaBusTest, MockClusterHasThreeBrokersAndReplicatedPartitions) {
  KafkaMock& mock = KafkaMock::shared();
  auto bus = open_bus(mock.url());
  ASSERT_TRUE(bus);
  const std::string topic = unique("replicated");
  ASSERT_TRUE(bus->create_topic(TopicConfig{topic, 2, false}).ok());
  std::string listing;
  settle::testing::ProcessOptions kcat;
  kcat.argv = {"kcat", "-L", "-b", mock.bootstrap(), "-t", topic, "-m", "10"};
  const int code = settle::testing::run(kcat, &listing);
  ASSERT_EQ(code, 0) << listing;
  EXPECT_THAT(listing, ::testing::HasSubstr("3 brokers"));
  EXPECT_THAT(listing, ::testing::HasSubstr("with 2 partitions"));
  EXPECT_THAT(listing, ::testing::HasSubstr("replicas: 1,2,3"));
}

TEST(KafkaBusTest, BadUrlsAreInvalidArguments) {
  for (const char* url : {"redis://127.0.0.1:1", "kafka://", "kafka://h:1?linger_ms=x",
                          "kafka://h:1?no_such_option=1"}) {
    auto bus = KafkaBus::open(url);
    ASSERT_FALSE(bus.ok()) << url;
    EXPECT_EQ(bus.error().code, ErrorCode::kInvalidArgument) << url;
  }
  auto parsed = KafkaBus::parse_url("kafka://a:1,b:2?linger_ms=7&timeout_ms=1500&mock_admin=c:3");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->first, "a:1,b:2");
  EXPECT_EQ(parsed->second.linger_ms, 7);
  EXPECT_EQ(parsed->second.timeout_ms, 1500);
  EXPECT_EQ(parsed->second.mock_admin, "c:3");
}

TEST(KafkaBusTest, NoBrokerIsUnavailableWithinTheTimeout) {
  const int port = settle::testing::free_port();  // nothing listens there
  const auto start = Clock::now();
  auto bus = KafkaBus::open("kafka://127.0.0.1:" + std::to_string(port) + "?timeout_ms=1500");
  ASSERT_FALSE(bus.ok());
  EXPECT_EQ(bus.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(bus.error().message, ::testing::HasSubstr(std::to_string(port)));
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(10));
}

TEST(KafkaBusTest, ClusterGoneMidRunMakesCallsUnavailableNotHang) {
  KafkaMock mock;  // a cluster of its own, to stop
  auto bus = open_bus(mock.url("timeout_ms=2000&linger_ms=1"));
  ASSERT_TRUE(bus);
  const std::string topic = unique("doomed");
  ASSERT_TRUE(bus->create_topic(TopicConfig{topic, 2, false}).ok());
  ASSERT_TRUE(bus->append(topic, std::vector<Record>{record("k", "v")}).ok());
  ASSERT_TRUE(bus->commit("g", topic, 0, 1).ok());
  mock.stop();

  const auto start = Clock::now();
  auto appended = bus->append(topic, std::vector<Record>{record("k", "v2")});
  ASSERT_FALSE(appended.ok());
  EXPECT_EQ(appended.error().code, ErrorCode::kUnavailable) << appended.error().to_string();
  auto end = bus->end_offset(topic, 0);
  ASSERT_FALSE(end.ok());
  EXPECT_EQ(end.error().code, ErrorCode::kUnavailable) << end.error().to_string();
  auto read = bus->read(topic, 1, 0, 10);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().code, ErrorCode::kUnavailable) << read.error().to_string();
  auto committed = bus->committed("g", topic, 0);
  ASSERT_FALSE(committed.ok());
  EXPECT_EQ(committed.error().code, ErrorCode::kUnavailable) << committed.error().to_string();
  // Each call is bounded by timeout_ms (2 s) plus librdkafka's slack.
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(20));
}

// Two members of one group on a 6-partition topic: they split the partitions;
// when one leaves, its revoke callback runs first and the other gets them all.
TEST(KafkaGroupTest, TwoMembersSplitPartitionsAndTheSurvivorTakesOver) {
  KafkaMock& mock = KafkaMock::shared();
  const std::string params = "session_timeout_ms=4000&heartbeat_ms=500";
  auto bus = open_bus(mock.url(params));
  ASSERT_TRUE(bus);
  const std::string topic = unique("roles");
  const std::string group = unique("processors");
  constexpr std::int32_t kPartitions = 6;
  ASSERT_TRUE(bus->create_topic(TopicConfig{topic, kPartitions, false}).ok());

  struct Log {
    std::set<std::int32_t> owned;  // as the callbacks tell it
    std::vector<std::int32_t> revoked;
  };
  Log log_a, log_b;
  auto callbacks = [](Log& log) {
    return GroupCallbacks{
        [&log](std::span<const std::int32_t> ps) { log.owned.insert(ps.begin(), ps.end()); },
        [&log](std::span<const std::int32_t> ps, bool) {
          for (std::int32_t p : ps) {
            log.owned.erase(p);
            log.revoked.push_back(p);
          }
        }};
  };
  auto a = bus->join_group(group, topic, callbacks(log_a));
  ASSERT_TRUE(a.ok()) << a.error().to_string();
  auto owned_all = [&](GroupMember& m, std::size_t n) { return m.owned().size() == n; };

  const auto deadline = Clock::now() + std::chrono::seconds(40);
  while (!owned_all(**a, kPartitions) && Clock::now() < deadline) {
    ASSERT_TRUE((*a)->poll(std::chrono::milliseconds(100)).ok());
  }
  ASSERT_EQ((*a)->owned().size(), static_cast<std::size_t>(kPartitions));
  EXPECT_EQ(log_a.owned.size(), static_cast<std::size_t>(kPartitions));

  // The owner commits through its membership.
  ASSERT_TRUE((*a)->commit(3, 42).ok());
  EXPECT_EQ(bus->committed(group, topic, 3).value(), 42);

  auto b = bus->join_group(group, topic, callbacks(log_b));
  ASSERT_TRUE(b.ok()) << b.error().to_string();
  auto split = [&] {
    const auto oa = (*a)->owned();
    const auto ob = (*b)->owned();
    std::set<std::int32_t> all(oa.begin(), oa.end());
    all.insert(ob.begin(), ob.end());
    return !oa.empty() && !ob.empty() && oa.size() + ob.size() == kPartitions &&
           all.size() == kPartitions;
  };
  while (!split() && Clock::now() < deadline) {
    ASSERT_TRUE((*a)->poll(std::chrono::milliseconds(50)).ok());
    ASSERT_TRUE((*b)->poll(std::chrono::milliseconds(50)).ok());
  }
  ASSERT_TRUE(split()) << "a owns " << ::testing::PrintToString((*a)->owned()) << ", b owns "
                       << ::testing::PrintToString((*b)->owned());
  // a was told to give up every partition b got before b had it (the
  // eager assignor revokes all six and assigns anew: a's revoke covered
  // everything it owned).
  const auto ob = (*b)->owned();
  const std::set<std::int32_t> revoked(log_a.revoked.begin(), log_a.revoked.end());
  for (std::int32_t p : ob) EXPECT_TRUE(revoked.count(p) == 1) << "b got " << p << " without a's revoke";
  EXPECT_EQ(revoked.size(), static_cast<std::size_t>(kPartitions));
  const auto oa = (*a)->owned();
  EXPECT_EQ(log_a.owned, std::set<std::int32_t>(oa.begin(), oa.end()));
  // A partition that is not ours cannot be committed.
  EXPECT_EQ((*a)->commit(ob.front(), 1).error().code, ErrorCode::kFailedPrecondition);

  ASSERT_TRUE((*b)->leave().ok());
  EXPECT_TRUE((*b)->owned().empty());
  EXPECT_TRUE(log_b.owned.empty()) << "b's revoke callback ran for everything it owned";
  while (!owned_all(**a, kPartitions) && Clock::now() < deadline) {
    ASSERT_TRUE((*a)->poll(std::chrono::milliseconds(100)).ok());
  }
  EXPECT_EQ((*a)->owned().size(), static_cast<std::size_t>(kPartitions));
  EXPECT_EQ(log_a.owned.size(), static_cast<std::size_t>(kPartitions));
}

}  // namespace
}  // namespace settle::bus
