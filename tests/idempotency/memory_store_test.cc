// MemoryStore: the port's contract suite, plus what only the embedded store
// promises (reclamation of expired entries, the max_entries bound, separate key
// spaces for values and leases).
#include "idempotency/memory_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <latch>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "idempotency/clock.h"
#include "store_contract.h"

namespace settle::idempotency {
namespace {

using std::chrono::milliseconds;

// Every store a factory makes shares the factory's clock; each test gets a
// fresh store, so time having moved for earlier tests changes nothing.
StoreFactory manual_clock_factory(std::string name, std::size_t shards) {
  auto clock = std::make_shared<ManualClock>();
  return StoreFactory{
      std::move(name),
      [clock, shards] {
        return std::make_unique<MemoryStore>(
            MemoryStoreOptions{.shards = shards, .clock = clock.get()});
      },
      [clock](milliseconds by) { clock->advance(by); }};
}

// Real time and real sleeps: proves the suite's ttls and margins work for a
// store that cannot be given a manual clock (Redis).
StoreFactory system_clock_factory() {
  return StoreFactory{"MemorySystemClock", [] { return std::make_unique<MemoryStore>(); },
                      [](milliseconds by) { std::this_thread::sleep_for(by); }};
}

INSTANTIATE_TEST_SUITE_P(Memory, StoreContract,
                         ::testing::Values(manual_clock_factory("Memory64Shards", 64),
                                           manual_clock_factory("MemoryOneShard", 1),
                                           system_clock_factory()),
                         store_factory_name);

class MemoryStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<MemoryStore> make(std::size_t shards = 64, std::size_t max_entries = 10'000'000) {
    return std::make_unique<MemoryStore>(
        MemoryStoreOptions{.shards = shards, .max_entries = max_entries, .clock = &clock_});
  }

  ManualClock clock_;
};

TEST_F(MemoryStoreTest, ManualClockMovesOnlyWhenAdvanced) {
  const auto start = clock_.now();
  EXPECT_EQ(clock_.now(), start);
  clock_.advance(milliseconds(7));
  EXPECT_EQ(clock_.now() - start, milliseconds(7));
}

TEST_F(MemoryStoreTest, ExpiredKeysAreReclaimedWithoutBeingTouchedAgain) {
  // 200k keys written once and never read, each living 10 ms, one written per
  // ms: about 10 are live at any time. What is stored must track that, not
  // the number written.
  constexpr int kKeys = 200'000;
  for (const std::size_t shards : {std::size_t{1}, std::size_t{64}}) {
    auto store = make(shards);
    std::size_t peak = 0;
    for (int i = 0; i < kKeys; ++i) {
      ASSERT_TRUE(store->put_if_absent("evt-" + std::to_string(i), "v", milliseconds(10))->inserted);
      clock_.advance(milliseconds(1));
      peak = std::max(peak, store->size());
    }
    // The paced sweep lets a shard hold at most a few sweep intervals of
    // garbage: a bound set by the pacing and the shard count, not by kKeys.
    EXPECT_LT(peak, 64 * shards + 100) << shards << " shards";
  }
}

TEST_F(MemoryStoreTest, ExpiredLeasesAreReclaimedWithoutBeingTouchedAgain) {
  constexpr int kKeys = 100'000;
  auto store = make(4);
  std::size_t peak = 0;
  for (int i = 0; i < kKeys; ++i) {
    ASSERT_TRUE(store->try_lock("task-" + std::to_string(i), milliseconds(10))->has_value());
    clock_.advance(milliseconds(1));
    peak = std::max(peak, store->size());
  }
  EXPECT_LT(peak, 400u);
}

TEST_F(MemoryStoreTest, TouchingAnExpiredKeyReclaimsIt) {
  auto store = make();
  ASSERT_TRUE(store->put_if_absent("a", "1", milliseconds(10))->inserted);
  ASSERT_TRUE(store->put_if_absent("b", "2", milliseconds(10))->inserted);
  ASSERT_TRUE(store->try_lock("c", milliseconds(10))->has_value());
  ASSERT_EQ(store->size(), 3u);
  clock_.advance(milliseconds(10));  // expiry is inclusive: at now == expires_at it is gone

  EXPECT_EQ(*store->get("a"), std::nullopt);
  EXPECT_EQ(store->size(), 2u);
  EXPECT_FALSE(*store->delete_if_equal("b", "2"));
  EXPECT_EQ(store->size(), 1u);
  EXPECT_FALSE(*store->extend(Lease{"c", 1}, milliseconds(10)));
  EXPECT_EQ(store->size(), 0u);
}

TEST_F(MemoryStoreTest, UnlockAndDeleteFreeTheirEntries) {
  auto store = make();
  ASSERT_TRUE(store->put_if_absent("k", "v", milliseconds(100))->inserted);
  const std::optional<Lease> lease = *store->try_lock("l", milliseconds(100));
  ASSERT_TRUE(lease);
  EXPECT_EQ(store->size(), 2u);
  EXPECT_TRUE(*store->unlock(*lease));
  EXPECT_EQ(store->size(), 1u);
  EXPECT_TRUE(*store->delete_if_equal("k", "v"));
  EXPECT_EQ(store->size(), 0u);
}

TEST_F(MemoryStoreTest, FullStoreRefusesNewKeysWithUnavailable) {
  auto store = make(/*shards=*/1, /*max_entries=*/4);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(store->put_if_absent("k" + std::to_string(i), "v", milliseconds(100))->inserted);
  }
  ASSERT_TRUE(store->try_lock("lock", milliseconds(100))->has_value());
  ASSERT_EQ(store->size(), 4u);

  const auto put = store->put_if_absent("one-too-many", "v", milliseconds(100));
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(put.error().message.find("max_entries = 4"), std::string::npos)
      << put.error().message;
  const auto lock = store->try_lock("another-lock", milliseconds(100));
  ASSERT_FALSE(lock.ok());
  EXPECT_EQ(lock.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(store->size(), 4u);

  // Existing keys still answer.
  const auto again = store->put_if_absent("k0", "other", milliseconds(100));
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->inserted);
  EXPECT_EQ(again->existing, "v");
  EXPECT_EQ(*store->get("k1"), std::optional<std::string>("v"));

  // A deletion makes room for exactly one.
  ASSERT_TRUE(*store->delete_if_equal("k0", "v"));
  EXPECT_TRUE(store->put_if_absent("fits", "v", milliseconds(100))->inserted);
  EXPECT_FALSE(store->put_if_absent("does-not", "v", milliseconds(100)).ok());
}

TEST_F(MemoryStoreTest, FullStoreReclaimsExpiredEntriesBeforeRefusing) {
  auto store = make(/*shards=*/1, /*max_entries=*/100);
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(store->put_if_absent("old-" + std::to_string(i), "v", milliseconds(10))->inserted);
  }
  clock_.advance(milliseconds(11));
  for (int i = 0; i < 100; ++i) {
    const auto put = store->put_if_absent("new-" + std::to_string(i), "v", milliseconds(10));
    ASSERT_TRUE(put.ok()) << i << ": " << put.error().to_string();
  }
  EXPECT_EQ(store->size(), 100u);
}

TEST_F(MemoryStoreTest, LeasesAndValuesUseSeparateKeySpaces) {
  auto store = make();
  ASSERT_TRUE(store->put_if_absent("k", "value", milliseconds(100))->inserted);
  const std::optional<Lease> lease = *store->try_lock("k", milliseconds(100));
  ASSERT_TRUE(lease) << "a value under the same key does not hold the lease";
  EXPECT_EQ(*store->get("k"), std::optional<std::string>("value"));
  EXPECT_TRUE(*store->unlock(*lease));
  EXPECT_EQ(*store->get("k"), std::optional<std::string>("value"));
  EXPECT_TRUE(*store->delete_if_equal("k", "value"));
}

TEST_F(MemoryStoreTest, TokensStartAtOne) {
  auto store = make();
  const std::optional<Lease> lease = *store->try_lock("k", milliseconds(100));
  ASSERT_TRUE(lease);
  EXPECT_EQ(lease->token, 1u);
}

TEST_F(MemoryStoreTest, TokensStartAtFirstTokenSoARestartedStoreIsNotFencedOut) {
  // A store that replaces one which granted tokens up to 41 (a process
  // restart) starts above them: the ledger refuses a token below a batch's fence.
  MemoryStore store(MemoryStoreOptions{.clock = &clock_, .first_token = 42});
  const std::optional<Lease> a = *store.try_lock("a", milliseconds(100));
  const std::optional<Lease> b = *store.try_lock("b", milliseconds(100));
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->token, 42u);
  EXPECT_EQ(b->token, 43u);
}

TEST_F(MemoryStoreTest, HugeTtlIsClampedNotOverflowed) {
  auto store = make();
  ASSERT_TRUE(store->put_if_absent("k", "v", milliseconds::max())->inserted);
  ASSERT_TRUE(store->try_lock("l", milliseconds::max())->has_value());
  clock_.advance(std::chrono::hours(24 * 365));
  EXPECT_EQ(*store->get("k"), std::optional<std::string>("v"));
  EXPECT_EQ(*store->try_lock("l", milliseconds(1)), std::nullopt);
}

TEST_F(MemoryStoreTest, EntryCountStaysExactUnderConcurrentChurn) {
  // Threads put, read, delete and lock overlapping keys while time moves; once
  // everything has expired and been touched, nothing may remain counted.
  constexpr int kThreads = 4;
  constexpr int kOpsPerThread = 20'000;
  constexpr int kKeySpace = 500;
  auto store = make(/*shards=*/4);
  std::latch start(kThreads + 1);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < kOpsPerThread; ++i) {
        const std::string k = "k" + std::to_string((i * 7 + t * 13) % kKeySpace);
        switch (i % 5) {
          case 0:
          case 1: (void)store->put_if_absent(k, "v", milliseconds(1 + i % 20)); break;
          case 2: (void)store->get(k); break;
          case 3: (void)store->delete_if_equal(k, "v"); break;
          case 4: {
            auto lease = store->try_lock(k, milliseconds(1 + i % 20));
            if (lease.ok() && lease->has_value() && i % 2 == 0) (void)store->unlock(**lease);
            break;
          }
        }
      }
    });
  }
  start.arrive_and_wait();
  std::atomic<bool> done{false};
  std::thread ticker([&] {
    while (!done.load()) {
      clock_.advance(milliseconds(1));
      std::this_thread::yield();
    }
  });
  for (auto& th : threads) th.join();
  done.store(true);
  ticker.join();

  clock_.advance(milliseconds(100));
  for (int i = 0; i < kKeySpace; ++i) {
    const std::string k = "k" + std::to_string(i);
    EXPECT_EQ(*store->get(k), std::nullopt);
    EXPECT_FALSE(*store->unlock(Lease{k, 0}));
  }
  EXPECT_EQ(store->size(), 0u);
}

}  // namespace
}  // namespace settle::idempotency
