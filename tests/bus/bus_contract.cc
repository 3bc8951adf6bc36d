#include "bus_contract.h"

#include <gmock/gmock.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <random>
#include <set>
#include <thread>

namespace settle::bus::testing {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

namespace {

std::int64_t wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::vector<std::int64_t> offsets_of(const std::vector<StoredRecord>& records) {
  std::vector<std::int64_t> offsets;
  for (const StoredRecord& r : records) offsets.push_back(r.offset);
  return offsets;
}

std::vector<std::int64_t> offsets_of(const std::vector<Position>& positions) {
  std::vector<std::int64_t> offsets;
  for (const Position& p : positions) offsets.push_back(p.offset);
  return offsets;
}

}  // namespace

Record make_record(std::string key, std::string value, std::vector<Header> headers,
                   std::int64_t timestamp_ms) {
  Record r;
  r.key = std::move(key);
  r.value = std::move(value);
  r.headers = std::move(headers);
  r.timestamp_ms = timestamp_ms;
  return r;
}

void BusContractTest::SetUp() {
  scratch_.emplace();
  std::random_device random;
  suffix_ = std::to_string(random() % 1000000000U);
  bus_ = GetParam().make(scratch_->path());
  if (!bus_) GTEST_SKIP() << GetParam().name << " is not available here";
}

void BusContractTest::TearDown() {
  bus_.reset();
  scratch_.reset();
}

void BusContractTest::reopen() {
  bus_.reset();
  bus_ = GetParam().make(scratch_->path());
  ASSERT_TRUE(bus_) << "the factory could not reopen " << GetParam().name;
}

std::string BusContractTest::name(std::string_view base) const {
  return std::string(base) + "-" + suffix_;
}

std::string BusContractTest::make_topic(std::string_view base, std::int32_t partitions,
                                        bool compacted) {
  std::string topic = name(base);
  Status created = bus_->create_topic(TopicConfig{topic, partitions, compacted});
  EXPECT_TRUE(created.ok()) << created.error().to_string();
  return topic;
}

std::vector<StoredRecord> BusContractTest::read_all(std::string_view topic,
                                                    std::int32_t partition, std::size_t batch) {
  std::vector<StoredRecord> all;
  std::int64_t from = 0;
  for (;;) {
    auto records = bus_->read(topic, partition, from, batch);
    EXPECT_TRUE(records.ok()) << records.error().to_string();
    if (!records.ok() || records->empty()) break;
    from = records->back().offset + 1;
    for (StoredRecord& r : *records) all.push_back(std::move(r));
  }
  return all;
}

TEST_P(BusContractTest, OffsetsStartAtZeroAndAreContiguousPerPartition) {
  const std::string topic = make_topic("orders", 3);
  ASSERT_EQ(bus().end_offset(topic, 0).value(), 0);

  std::vector<Record> batch;
  for (int i = 0; i < 5; ++i) batch.push_back(make_record("", "a" + std::to_string(i)));
  auto first = bus().append_to(topic, 0, batch);
  ASSERT_TRUE(first.ok()) << first.error().to_string();
  EXPECT_THAT(offsets_of(*first), ElementsAre(0, 1, 2, 3, 4));
  for (const Position& p : *first) EXPECT_EQ(p.partition, 0);

  auto second = bus().append_to(topic, 0, std::vector<Record>{make_record("", "b0"),
                                                              make_record("", "b1")});
  ASSERT_TRUE(second.ok());
  EXPECT_THAT(offsets_of(*second), ElementsAre(5, 6));

  // Another partition counts from 0 on its own.
  auto other = bus().append_to(topic, 2, std::vector<Record>{make_record("", "c0")});
  ASSERT_TRUE(other.ok());
  EXPECT_THAT(offsets_of(*other), ElementsAre(0));
  EXPECT_EQ(other->front().partition, 2);

  EXPECT_EQ(bus().end_offset(topic, 0).value(), 7);
  EXPECT_EQ(bus().end_offset(topic, 1).value(), 0);
  EXPECT_EQ(bus().end_offset(topic, 2).value(), 1);
  EXPECT_THAT(offsets_of(read_all(topic, 0)), ElementsAre(0, 1, 2, 3, 4, 5, 6));
}

TEST_P(BusContractTest, AppendOfNothingReturnsNothing) {
  const std::string topic = make_topic("orders", 2);
  auto keyed = bus().append(topic, std::span<const Record>());
  ASSERT_TRUE(keyed.ok());
  EXPECT_THAT(*keyed, IsEmpty());
  auto direct = bus().append_to(topic, 1, std::span<const Record>());
  ASSERT_TRUE(direct.ok());
  EXPECT_THAT(*direct, IsEmpty());
  EXPECT_EQ(bus().end_offset(topic, 1).value(), 0);
}

TEST_P(BusContractTest, SameKeyAlwaysGoesToPartitionFor) {
  constexpr std::int32_t kPartitions = 5;
  const std::string topic = make_topic("payments", kPartitions);
  std::vector<Record> batch;
  for (int round = 0; round < 3; ++round) {
    for (int m = 0; m < 20; ++m) {
      batch.push_back(make_record("merchant-" + std::to_string(m), std::to_string(round)));
    }
  }
  auto positions = bus().append(topic, batch);
  ASSERT_TRUE(positions.ok()) << positions.error().to_string();
  ASSERT_EQ(positions->size(), batch.size());

  std::map<std::int32_t, std::vector<std::int64_t>> offsets_by_partition;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    EXPECT_EQ((*positions)[i].partition, partition_for(batch[i].key, kPartitions))
        << batch[i].key;
    offsets_by_partition[(*positions)[i].partition].push_back((*positions)[i].offset);
  }
  // Within a partition, the call's records keep their order and get
  // consecutive offsets.
  for (const auto& [partition, offsets] : offsets_by_partition) {
    for (std::size_t i = 0; i < offsets.size(); ++i) {
      EXPECT_EQ(offsets[i], static_cast<std::int64_t>(i)) << "partition " << partition;
    }
  }
  // And each record is where its position says.
  for (std::size_t i = 0; i < batch.size(); ++i) {
    auto read = bus().read(topic, (*positions)[i].partition, (*positions)[i].offset, 1);
    ASSERT_TRUE(read.ok());
    ASSERT_EQ(read->size(), 1U);
    EXPECT_EQ(read->front().key, batch[i].key);
    EXPECT_EQ(read->front().value, batch[i].value);
  }
}

TEST_P(BusContractTest, RecordsComeBackWithKeyValueHeadersAndTimestamp) {
  const std::string topic = make_topic("events", 1);
  const std::int64_t before = wall_clock_ms();
  std::vector<Record> batch = {
      make_record("m-1", "{\"amount\":100}",
                  {{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
                   {"kind", "capture"},
                   {"kind", "second-kind"}},
                  1717200000123),
      make_record(std::string("bin\0key", 7), std::string("\0\x01\xff value", 9), {}, 42),
      make_record("m-2", "stamped by the bus", {{"empty", ""}}),
      make_record("m-3", ""),  // an empty value is a value on a plain topic
  };
  auto positions = bus().append_to(topic, 0, batch);
  ASSERT_TRUE(positions.ok()) << positions.error().to_string();
  const std::int64_t after = wall_clock_ms();

  auto records = bus().read(topic, 0, 0, 100);
  ASSERT_TRUE(records.ok()) << records.error().to_string();
  ASSERT_EQ(records->size(), batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const StoredRecord& r = (*records)[i];
    EXPECT_EQ(r.partition, 0);
    EXPECT_EQ(r.offset, static_cast<std::int64_t>(i));
    EXPECT_EQ(r.key, batch[i].key);
    EXPECT_EQ(r.value, batch[i].value);
    EXPECT_EQ(r.headers, batch[i].headers);
  }
  EXPECT_EQ((*records)[0].timestamp_ms, 1717200000123);
  EXPECT_EQ((*records)[1].timestamp_ms, 42);
  // timestamp_ms == 0 asks the bus to stamp the record (a broker's clock may
  // differ a little from ours).
  EXPECT_GE((*records)[2].timestamp_ms, before - 60'000);
  EXPECT_LE((*records)[2].timestamp_ms, after + 60'000);
  EXPECT_EQ((*records)[0].header("kind"), "capture");
  EXPECT_EQ((*records)[0].header("missing"), "");
}

TEST_P(BusContractTest, ReadIntoReplacesEveryRecordOfTheBufferItIsGiven) {
  const std::string topic = make_topic("reuse", 2);
  const std::vector<Record> first = {
      make_record("a", std::string(300, 'x'), {{"traceparent", "t0"}, {"source", "s0"}, {"extra", "e0"}}, 7),
      make_record("b", "short", {{"source", "s1"}}, 8),
      make_record("c", "third", {{"source", "s2"}, {"extra", "e2"}}, 9),
  };
  const std::vector<Record> second = {
      make_record("d", "v", {}, 11),
      make_record("e", std::string(40, 'y'), {{"source", "s4"}}, 12),
  };
  ASSERT_TRUE(bus().append_to(topic, 0, first).ok());
  ASSERT_TRUE(bus().append_to(topic, 1, second).ok());
  const auto expect_records = [](const ReadBuffer& got, std::int32_t partition,
                                 const std::vector<Record>& want) {
    ASSERT_EQ(got.size(), want.size());
    ASSERT_EQ(got.records().size(), want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
      const StoredRecord& r = got.records()[i];
      EXPECT_EQ(r.partition, partition);
      EXPECT_EQ(r.offset, static_cast<std::int64_t>(i));
      EXPECT_EQ(r.key, want[i].key);
      EXPECT_EQ(r.value, want[i].value);
      EXPECT_EQ(r.headers, want[i].headers);
      EXPECT_EQ(r.timestamp_ms, want[i].timestamp_ms);
    }
  };

  ReadBuffer records;
  Status read = bus().read_into(topic, 0, 0, 100, records);
  ASSERT_TRUE(read.ok()) << read.error().to_string();
  expect_records(records, 0, first);

  // Fewer records, with fewer headers, from another partition: nothing of
  // the records the buffer held before may show through.
  read = bus().read_into(topic, 1, 0, 100, records);
  ASSERT_TRUE(read.ok()) << read.error().to_string();
  expect_records(records, 1, second);

  // More again: the storage kept past the shorter read is written over whole.
  read = bus().read_into(topic, 0, 0, 100, records);
  ASSERT_TRUE(read.ok()) << read.error().to_string();
  expect_records(records, 0, first);

  // From the end: no records. From an unknown topic: an error, and no records.
  read = bus().read_into(topic, 1, 2, 100, records);
  ASSERT_TRUE(read.ok()) << read.error().to_string();
  EXPECT_TRUE(records.empty());
  EXPECT_THAT(records.records(), IsEmpty());
  ASSERT_TRUE(bus().read_into(topic, 0, 0, 100, records).ok());
  EXPECT_FALSE(bus().read_into(name("no-such-topic"), 0, 0, 100, records).ok());
  EXPECT_TRUE(records.empty());
}

TEST_P(BusContractTest, ReadFromMiddleOffset) {
  const std::string topic = make_topic("ledger", 1);
  std::vector<Record> batch;
  for (int i = 0; i < 10; ++i) batch.push_back(make_record("k", "v" + std::to_string(i)));
  ASSERT_TRUE(bus().append_to(topic, 0, batch).ok());

  auto middle = bus().read(topic, 0, 4, 3);
  ASSERT_TRUE(middle.ok());
  EXPECT_THAT(offsets_of(*middle), ElementsAre(4, 5, 6));
  EXPECT_EQ((*middle)[0].value, "v4");

  auto rest = bus().read(topic, 0, 7, 100);
  ASSERT_TRUE(rest.ok());
  EXPECT_THAT(offsets_of(*rest), ElementsAre(7, 8, 9));
  EXPECT_EQ(rest->back().value, "v9");

  auto one = bus().read(topic, 0, 9, 1);
  ASSERT_TRUE(one.ok());
  EXPECT_THAT(offsets_of(*one), ElementsAre(9));
}

TEST_P(BusContractTest, ReadPastTheEndReturnsNothing) {
  const std::string topic = make_topic("ledger", 2);
  auto empty = bus().read(topic, 0, 0, 10);
  ASSERT_TRUE(empty.ok());
  EXPECT_THAT(*empty, IsEmpty());

  ASSERT_TRUE(bus().append_to(topic, 0, std::vector<Record>{make_record("k", "v")}).ok());
  for (std::int64_t from : {1, 2, 1000}) {
    auto past = bus().read(topic, 0, from, 10);
    ASSERT_TRUE(past.ok()) << "from " << from;
    EXPECT_THAT(*past, IsEmpty()) << "from " << from;
  }
  auto none = bus().read(topic, 0, 0, 0);
  ASSERT_TRUE(none.ok());
  EXPECT_THAT(*none, IsEmpty());
}

TEST_P(BusContractTest, UnknownTopicIsNotFoundAndBadPartitionIsInvalid) {
  const std::string missing = name("missing");
  EXPECT_EQ(bus().partition_count(missing).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(bus().end_offset(missing, 0).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(bus().read(missing, 0, 0, 1).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(bus().append(missing, std::vector<Record>{make_record("k", "v")}).error().code,
            ErrorCode::kNotFound);
  EXPECT_EQ(bus().latest_values(missing).error().code, ErrorCode::kNotFound);

  const std::string topic = make_topic("orders", 2);
  EXPECT_EQ(bus().partition_count(topic).value(), 2);
  for (std::int32_t bad : {-1, 2}) {
    EXPECT_EQ(bus().read(topic, bad, 0, 1).error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(bus().end_offset(topic, bad).error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(bus().append_to(topic, bad, std::vector<Record>{make_record("k", "v")})
                  .error()
                  .code,
              ErrorCode::kInvalidArgument);
    EXPECT_EQ(bus().commit(name("g"), topic, bad, 1).error().code, ErrorCode::kInvalidArgument);
  }
}

TEST_P(BusContractTest, CommittedOffsetsPerGroupAreIndependent) {
  const std::string topic = make_topic("orders", 2);
  const std::string a = name("group-a");
  const std::string b = name("group-b");
  EXPECT_EQ(bus().committed(a, topic, 0).value(), 0);

  ASSERT_TRUE(bus().commit(a, topic, 0, 5).ok());
  ASSERT_TRUE(bus().commit(b, topic, 0, 7).ok());
  ASSERT_TRUE(bus().commit(b, topic, 1, 3).ok());
  EXPECT_EQ(bus().committed(a, topic, 0).value(), 5);
  EXPECT_EQ(bus().committed(a, topic, 1).value(), 0);
  EXPECT_EQ(bus().committed(b, topic, 0).value(), 7);
  EXPECT_EQ(bus().committed(b, topic, 1).value(), 3);

  // A later commit replaces the earlier one, also when it goes back.
  ASSERT_TRUE(bus().commit(a, topic, 0, 9).ok());
  ASSERT_TRUE(bus().commit(b, topic, 0, 2).ok());
  EXPECT_EQ(bus().committed(a, topic, 0).value(), 9);
  EXPECT_EQ(bus().committed(b, topic, 0).value(), 2);
}

TEST_P(BusContractTest, CommittedOffsetsSurviveReopen) {
  const std::string topic = make_topic("orders", 2);
  const std::string a = name("group-a");
  const std::string b = name("group-b");
  ASSERT_TRUE(bus().commit(a, topic, 0, 11).ok());
  ASSERT_TRUE(bus().commit(a, topic, 1, 12).ok());
  ASSERT_TRUE(bus().commit(b, topic, 1, 13).ok());
  reopen();
  EXPECT_EQ(bus().committed(a, topic, 0).value(), 11);
  EXPECT_EQ(bus().committed(a, topic, 1).value(), 12);
  EXPECT_EQ(bus().committed(b, topic, 0).value(), 0);
  EXPECT_EQ(bus().committed(b, topic, 1).value(), 13);
}

TEST_P(BusContractTest, RecordsSurviveReopenAndOffsetsContinue) {
  const std::string topic = make_topic("orders", 3);
  std::vector<Record> batch;
  for (int i = 0; i < 60; ++i) {
    batch.push_back(make_record("merchant-" + std::to_string(i % 7), "event-" + std::to_string(i),
                                {{"seq", std::to_string(i)}}, 1000 + i));
  }
  ASSERT_TRUE(bus().append(topic, batch).ok());
  std::vector<std::vector<StoredRecord>> before;
  std::vector<std::int64_t> ends;
  for (std::int32_t p = 0; p < 3; ++p) {
    before.push_back(read_all(topic, p));
    ends.push_back(bus().end_offset(topic, p).value());
  }

  reopen();
  EXPECT_EQ(bus().partition_count(topic).value(), 3);
  for (std::int32_t p = 0; p < 3; ++p) {
    const std::vector<StoredRecord> after = read_all(topic, p);
    ASSERT_EQ(after.size(), before[static_cast<std::size_t>(p)].size());
    for (std::size_t i = 0; i < after.size(); ++i) {
      const StoredRecord& x = before[static_cast<std::size_t>(p)][i];
      const StoredRecord& y = after[i];
      EXPECT_EQ(x.offset, y.offset);
      EXPECT_EQ(x.key, y.key);
      EXPECT_EQ(x.value, y.value);
      EXPECT_EQ(x.headers, y.headers);
      EXPECT_EQ(x.timestamp_ms, y.timestamp_ms);
    }
    EXPECT_EQ(bus().end_offset(topic, p).value(), ends[static_cast<std::size_t>(p)]);
  }
  auto next = bus().append_to(topic, 1, std::vector<Record>{make_record("x", "y")});
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->front().offset, ends[1]);
}

TEST_P(BusContractTest, CompactedTopicKeepsLatestPerKeyAndTombstonesDelete) {
  const std::string topic = make_topic("merchant-config", 2, /*compacted=*/true);
  std::vector<Record> batch = {
      make_record("m-1", "v1"), make_record("m-2", "v2"), make_record("m-1", "v3"),
      make_record("m-3", "v4"), make_record("m-2", ""),  // tombstone
      make_record("m-4", "v5"), make_record("m-4", ""),  make_record("m-4", "v6"),
  };
  ASSERT_TRUE(bus().append(topic, batch).ok());
  const std::map<std::string, std::string> expected = {
      {"m-1", "v3"}, {"m-3", "v4"}, {"m-4", "v6"}};
  auto latest = bus().latest_values(topic);
  ASSERT_TRUE(latest.ok()) << latest.error().to_string();
  EXPECT_EQ(*latest, expected);

  // Many more updates of the same keys, one call each (so that a compacting
  // implementation has something to compact), then the same answer.
  std::map<std::string, std::string> model = expected;
  for (int i = 0; i < 400; ++i) {
    const std::string key = "m-" + std::to_string(i % 5);
    const std::string value = i % 9 == 0 ? "" : "u" + std::to_string(i) + std::string(40, 'x');
    ASSERT_TRUE(bus().append(topic, std::vector<Record>{make_record(key, value)}).ok());
    if (value.empty()) {
      model.erase(key);
    } else {
      model[key] = value;
    }
  }
  latest = bus().latest_values(topic);
  ASSERT_TRUE(latest.ok()) << latest.error().to_string();
  EXPECT_EQ(*latest, model);

  reopen();
  latest = bus().latest_values(topic);
  ASSERT_TRUE(latest.ok()) << latest.error().to_string();
  EXPECT_EQ(*latest, model);
}

TEST_P(BusContractTest, CreateTopicWithAnotherConfigurationIsConflict) {
  const std::string topic = make_topic("orders", 3);
  EXPECT_TRUE(bus().create_topic(TopicConfig{topic, 3, false}).ok()) << "same config is a no-op";
  EXPECT_EQ(bus().create_topic(TopicConfig{topic, 4, false}).error().code, ErrorCode::kConflict);
  EXPECT_EQ(bus().create_topic(TopicConfig{topic, 1, false}).error().code, ErrorCode::kConflict);
  EXPECT_EQ(bus().create_topic(TopicConfig{topic, 3, true}).error().code, ErrorCode::kConflict);
  EXPECT_EQ(bus().partition_count(topic).value(), 3);

  reopen();
  EXPECT_TRUE(bus().create_topic(TopicConfig{topic, 3, false}).ok());
  EXPECT_EQ(bus().create_topic(TopicConfig{topic, 4, false}).error().code, ErrorCode::kConflict);
}

TEST_P(BusContractTest, ConcurrentAppendsLoseNothingAndKeepPerThreadOrder) {
  constexpr int kThreads = 4;
  constexpr int kCalls = 50;
  constexpr int kBatch = 8;
  const std::string topic = make_topic("concurrent", 2);

  std::vector<std::thread> threads;
  std::vector<std::string> failures(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string key = "thread-" + std::to_string(t);
      int seq = 0;
      for (int c = 0; c < kCalls; ++c) {
        std::vector<Record> batch;
        for (int i = 0; i < kBatch; ++i) batch.push_back(make_record(key, std::to_string(seq++)));
        // Half the threads name the partition, half let the key pick it.
        auto positions = t % 2 == 0 ? bus().append(topic, batch)
                                    : bus().append_to(topic, partition_for(key, 2), batch);
        if (!positions.ok()) {
          failures[static_cast<std::size_t>(t)] = positions.error().to_string();
          return;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const std::string& failure : failures) EXPECT_EQ(failure, "");

  std::map<std::string, std::vector<int>> seen;
  std::size_t total = 0;
  for (std::int32_t p = 0; p < 2; ++p) {
    const std::vector<StoredRecord> records = read_all(topic, p, 37);
    for (std::size_t i = 0; i < records.size(); ++i) {
      EXPECT_EQ(records[i].offset, static_cast<std::int64_t>(i)) << "partition " << p;
      EXPECT_EQ(partition_for(records[i].key, 2), p);
      seen[records[i].key].push_back(std::stoi(records[i].value));
    }
    total += records.size();
    EXPECT_EQ(bus().end_offset(topic, p).value(), static_cast<std::int64_t>(records.size()));
  }
  EXPECT_EQ(total, static_cast<std::size_t>(kThreads * kCalls * kBatch));
  ASSERT_EQ(seen.size(), static_cast<std::size_t>(kThreads));
  for (const auto& [key, seqs] : seen) {
    ASSERT_EQ(seqs.size(), static_cast<std::size_t>(kCalls * kBatch)) << key;
    for (std::size_t i = 0; i < seqs.size(); ++i) {
      ASSERT_EQ(seqs[i], static_cast<int>(i)) << key << " out of order";
    }
  }
}

TEST_P(BusContractTest, ConcurrentAppendsAcrossPartitionsReturnWhereEachRecordLanded) {
  constexpr int kThreads = 3;
  constexpr int kCalls = 30;
  constexpr int kKeys = 6;  // per thread, over all four partitions
  const std::string topic = make_topic("spanning", 4);

  std::vector<std::thread> threads;
  std::vector<std::string> failures(kThreads);
  // Each thread's records by where append() said they went.
  std::vector<std::map<std::pair<std::int32_t, std::int64_t>, std::string>> placed(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int c = 0; c < kCalls; ++c) {
        std::vector<Record> batch;
        for (int k = 0; k < kKeys; ++k) {
          batch.push_back(make_record("t" + std::to_string(t) + "-k" + std::to_string(k),
                                      std::to_string(c)));
        }
        auto positions = bus().append(topic, batch);
        if (!positions.ok()) {
          failures[static_cast<std::size_t>(t)] = positions.error().to_string();
          return;
        }
        for (std::size_t i = 0; i < batch.size(); ++i) {
          const Position& at = (*positions)[i];
          placed[static_cast<std::size_t>(t)][{at.partition, at.offset}] =
              batch[i].key + "=" + batch[i].value;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const std::string& failure : failures) EXPECT_EQ(failure, "");

  std::map<std::pair<std::int32_t, std::int64_t>, std::string> stored;
  std::map<std::string, std::vector<int>> values_by_key;
  for (std::int32_t p = 0; p < 4; ++p) {
    const std::vector<StoredRecord> records = read_all(topic, p, 50);
    for (std::size_t i = 0; i < records.size(); ++i) {
      EXPECT_EQ(records[i].offset, static_cast<std::int64_t>(i)) << "partition " << p;
      EXPECT_EQ(partition_for(records[i].key, 4), p);
      stored[{p, records[i].offset}] = records[i].key + "=" + records[i].value;
      values_by_key[records[i].key].push_back(std::stoi(records[i].value));
    }
  }
  std::size_t total = 0;
  for (const auto& mine : placed) {
    for (const auto& [position, record] : mine) {
      EXPECT_EQ(stored[position], record)
          << "partition " << position.first << " offset " << position.second;
    }
    total += mine.size();
  }
  EXPECT_EQ(total, static_cast<std::size_t>(kThreads * kCalls * kKeys));
  EXPECT_EQ(stored.size(), total);
  for (const auto& [key, values] : values_by_key) {
    ASSERT_EQ(values.size(), static_cast<std::size_t>(kCalls)) << key;
    for (std::size_t i = 0; i < values.size(); ++i) ASSERT_EQ(values[i], static_cast<int>(i)) << key;
  }
}

TEST_P(BusContractTest, ConcurrentReadersSeeOnlyWholeRecordsInOrder) {
  const std::string topic = make_topic("tail", 1);
  constexpr int kRecords = 2000;
  std::atomic<bool> done{false};
  std::string reader_failure;
  std::thread reader([&] {
    std::int64_t next = 0;
    while (next < kRecords) {
      auto records = bus().read(topic, 0, next, 64);
      if (!records.ok()) {
        reader_failure = records.error().to_string();
        return;
      }
      for (const StoredRecord& r : *records) {
        if (r.offset != next || r.value != "value-" + std::to_string(next) + std::string(100, '.')) {
          reader_failure = "unexpected record at " + std::to_string(next);
          return;
        }
        ++next;
      }
      if (records->empty() && done.load()) {
        if (bus().end_offset(topic, 0).value() == next) {
          reader_failure = "stopped at " + std::to_string(next);
          return;
        }
      }
    }
  });
  for (int i = 0; i < kRecords; i += 10) {
    std::vector<Record> batch;
    for (int j = i; j < i + 10; ++j) {
      batch.push_back(make_record("k", "value-" + std::to_string(j) + std::string(100, '.')));
    }
    auto appended = bus().append_to(topic, 0, batch);
    if (!appended.ok()) {
      // Not ASSERT: the reader thread must be joined.
      ADD_FAILURE() << appended.error().to_string();
      break;
    }
  }
  done = true;
  reader.join();
  EXPECT_EQ(reader_failure, "");
}

}  // namespace settle::bus::testing
