// FlatTable: lookups, growth, and erasure by shifting back (stamps moving with
// their entries), checked against a std::map model under random operations
// with hashes forced to collide; and the huge-page allocator of its slots.
#include "idempotency/flat_table.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <random>
#include <string>

namespace settle::idempotency {
namespace {

TEST(FlatTable, FindsWhatWasInsertedAndNothingElse) {
  FlatTable<int> t;
  EXPECT_EQ(t.find("a", 1), t.npos);  // empty, no slots yet
  const std::size_t a = t.insert("a", 1, 10);
  EXPECT_EQ(t.find("a", 1), a);
  EXPECT_EQ(t.at(a), 10);
  EXPECT_EQ(t.key_at(a), "a");
  EXPECT_EQ(t.find("b", 1), t.npos) << "same hash, other key";
  EXPECT_EQ(t.find("a", 2), t.npos) << "same key, other hash";
  EXPECT_EQ(t.size(), 1u);
}

TEST(FlatTable, ErasingAnEntryKeepsTheEntriesThatProbedPastItReachable) {
  FlatTable<int> t;
  // Three keys with home slot 3 (in slots 3, 4, 5), then one at its home,
  // slot 6. Erasing the first moves the other two back one slot each; the
  // fourth must stay, or it would sit before its home and not be found.
  const std::size_t cap = 16;
  t.insert("k0", 3, 0);
  ASSERT_EQ(t.capacity(), cap);
  t.insert("k1", 3 + cap, 1);
  t.insert("k2", 3 + 2 * cap, 2);
  t.insert("k3", 6, 3);
  t.erase(t.find("k0", 3));
  EXPECT_EQ(t.find("k0", 3), t.npos);
  EXPECT_EQ(t.find("k1", 3 + cap), 3u);
  EXPECT_EQ(t.find("k2", 3 + 2 * cap), 4u);
  EXPECT_EQ(t.find("k3", 6), 6u);
  EXPECT_EQ(t.at(t.find("k2", 3 + 2 * cap)), 2);
  EXPECT_EQ(t.size(), 3u);
}

TEST(FlatTable, ErasureWrapsAroundTheEndOfTheSlots) {
  FlatTable<int> t;
  const std::size_t last = 15;
  t.insert("a", last, 1);       // slot 15
  t.insert("b", last + 16, 2);  // home 15, wraps to slot 0
  t.insert("c", 0, 3);          // home 0, taken: slot 1
  ASSERT_EQ(t.find("b", last + 16), 0u);
  ASSERT_EQ(t.find("c", 0), 1u);
  t.erase(t.find("a", last));
  EXPECT_EQ(t.find("b", last + 16), last) << "b moves back across the end";
  EXPECT_EQ(t.find("c", 0), 0u) << "then c moves into its home";
}

// Random inserts, erases and lookups over few distinct hashes (so that runs
// of collisions are long and wrap around) agree with a std::map throughout,
// across several growths.
TEST(FlatTable, AgreesWithAMapUnderRandomOperations) {
  FlatTable<std::uint64_t> t;
  std::map<std::string, std::uint64_t> model;
  std::mt19937_64 rng(42);
  auto hash_of = [](const std::string& key) { return std::hash<std::string>{}(key) % 97; };
  auto stamp_of = [](std::uint64_t v) { return static_cast<std::int64_t>(v >> 1) ^ 0x5a5a; };
  for (int op = 0; op < 200000; ++op) {
    const std::string key = "key-" + std::to_string(rng() % 3000);
    const std::uint64_t h = hash_of(key);
    const std::size_t at = t.find(key, h);
    const auto it = model.find(key);
    ASSERT_EQ(at != t.npos, it != model.end()) << "op " << op << " key " << key;
    if (at != t.npos) {
      ASSERT_EQ(t.at(at), it->second);
      ASSERT_EQ(t.key_at(at), key);
      ASSERT_EQ(t.stamp(at), stamp_of(it->second)) << "a stamp moves with its entry";
    }
    if (rng() % 3 == 0) {
      if (at != t.npos) {
        t.erase(at);
        model.erase(it);
      }
    } else if (at == t.npos) {
      const std::uint64_t v = rng();
      t.insert(key, h, v, stamp_of(v));
      model.emplace(key, v);
    }
    ASSERT_EQ(t.size(), model.size());
  }
  EXPECT_GE(t.capacity() * 7, t.size() * 10) << "load stays at most 7/10";
  for (const auto& [key, v] : model) {
    const std::size_t at = t.find(key, hash_of(key));
    ASSERT_NE(at, t.npos) << key;
    EXPECT_EQ(t.at(at), v);
    EXPECT_EQ(t.stamp(at), stamp_of(v));
  }
}

TEST(FlatTable, SetStampChangesOnlyThatSlot) {
  FlatTable<int> t;
  const std::size_t a = t.insert("a", 1, 10, 100);
  const std::size_t b = t.insert("b", 2, 20, 200);
  t.set_stamp(a, 150);
  EXPECT_EQ(t.stamp(a), 150);
  EXPECT_EQ(t.stamp(b), 200);
  EXPECT_EQ(t.at(a), 10) << "the entry is untouched";
}

TEST(HugePageAllocator, LargeArraysAreAlignedToHugePagesAndUsable) {
  HugePageAllocator<std::uint64_t> alloc;
  constexpr std::size_t kHuge = std::size_t{2} << 20;
  // 3 MiB and a little: rounded up to two huge pages.
  const std::size_t n = (3 * (std::size_t{1} << 20) + 8) / sizeof(std::uint64_t);
  std::uint64_t* p = alloc.allocate(n);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % kHuge, 0u) << "a huge page can only back an aligned range";
  for (std::size_t i = 0; i < n; i += 512) p[i] = i;  // every page is writable
  p[n - 1] = 7;
  std::uint64_t sum = 0;
  for (std::size_t i = 0; i < n; i += 512) sum += p[i];
  EXPECT_GT(sum, 0u);
  EXPECT_EQ(p[n - 1], 7u);
  alloc.deallocate(p, n);

  std::uint64_t* small = alloc.allocate(16);  // from operator new
  small[15] = 1;
  EXPECT_EQ(small[15], 1u);
  alloc.deallocate(small, 16);
}

}  // namespace
}  // namespace settle::idempotency
