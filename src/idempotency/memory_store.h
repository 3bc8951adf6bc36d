// MemoryStore: the embedded (in-process) idempotency store. It implements the
// Store contract for one process; nothing survives a restart, which the port
// allows because the ledger's unique keys are the durable guard.
//
// Beyond the port's contract:
// - Leases and plain keys live in separate key spaces: try_lock("k") neither
//   sees nor disturbs a value stored under "k", and the reverse. (A Redis
//   implementation gets the same by prefixing its lock keys.)
// - Expired entries count as absent at once. Their memory is reclaimed when the
//   key is next touched, and by a sweep that operations pay a small, bounded
//   share of (less while it finds nothing to reclaim), so stored entries stay
//   proportional to live ones even for keys that are never touched again.
// - At most max_entries entries (values and leases together) are stored. When
//   full, an operation that would add a key (put_if_absent, try_lock) first
//   reclaims expired entries of the key's shard, then fails with kUnavailable
//   rather than grow; operations on existing keys keep working.
// - Fencing tokens come from one counter per store, starting at
//   MemoryStoreOptions::first_token.
// Thread safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "idempotency/clock.h"
#include "idempotency/flat_table.h"
#include "idempotency/store.h"

namespace settle::idempotency {

struct MemoryStoreOptions {
  // Independent locks, chosen by key hash; must be at least 1. More shards
  // mean less contention between threads, fewer mean larger tables: a table's
  // slots get huge pages from 2 MiB on (see HugePageAllocator), which is what
  // keeps a lookup in millions of keys to one cache miss. Eight shards for a
  // gateway's few threads reach that size at about 370k entries (a shard's
  // table grows to 131,072 slots of 24 bytes past 45,875 entries).
  std::size_t shards = 8;
  // Bound on stored entries (values and leases; expired ones not yet reclaimed
  // count too). Roughly 100-200 bytes each plus key and value bytes.
  std::size_t max_entries = 10'000'000;
  // Not owned; must outlive the store. nullptr means the system steady clock.
  Clock* clock = nullptr;
  // The first fencing token. Tokens must exceed every token an earlier
  // process registered with the ledger, or a restarted worker is fenced out
  // of a batch its dead predecessor had claimed; the embedded runtime starts
  // them at the wall clock in microseconds (a store grants far fewer than one
  // token per microsecond), the simulator at its simulated clock's.
  std::uint64_t first_token = 1;
};

class MemoryStore final : public Store {
 public:
  explicit MemoryStore(MemoryStoreOptions options = {});

  MemoryStore(const MemoryStore&) = delete;
  MemoryStore& operator=(const MemoryStore&) = delete;

  Result<PutOutcome> put_if_absent(std::string_view key, std::string_view value,
                                   std::chrono::milliseconds ttl) override;
  Result<std::optional<std::string>> get(std::string_view key) override;
  Result<bool> delete_if_equal(std::string_view key, std::string_view expected) override;
  Result<bool> replace_if_equal(std::string_view key, std::string_view expected, std::string_view value,
                                std::chrono::milliseconds ttl) override;
  bool in_process() const override { return true; }

  Result<std::optional<Lease>> try_lock(std::string_view key,
                                        std::chrono::milliseconds ttl) override;
  Result<bool> extend(const Lease& lease, std::chrono::milliseconds ttl) override;
  Result<bool> unlock(const Lease& lease) override;

  // Entries held in memory now: live values and leases plus expired ones not
  // yet reclaimed. For tests and metrics.
  std::size_t size() const { return entries_.load(std::memory_order_relaxed); }

 private:
  using TimePoint = std::chrono::steady_clock::time_point;

  // An entry's expiry is its slot's stamp (FlatTable::stamp, nanoseconds
  // on the steady clock), so that the sweep reads slots only.
  // A value of up to kInlineBytes sits in the entry itself (the table
  // node's one allocation); a longer one on the heap. A claim's value (a
  // 32-digit digest, then with "|bus") fits: a claim costs no allocation of
  // its own, comparing it no second cache miss, and marking it writes in place.
  class ValueEntry {
   public:
    static constexpr std::size_t kInlineBytes = 48;
    explicit ValueEntry(std::string_view v) { assign(v); }
    std::string_view view() const {
      return size_ <= kInlineBytes ? std::string_view(inline_, size_) : std::string_view(heap_);
    }
    void assign(std::string_view v) {
      size_ = v.size();
      if (v.size() <= kInlineBytes) {
        if (!v.empty()) std::memcpy(inline_, v.data(), v.size());
        std::string().swap(heap_);
      } else {
        heap_.assign(v);
      }
    }

   private:
    std::size_t size_ = 0;
    char inline_[kInlineBytes] = {};
    std::string heap_;  // when size_ > kInlineBytes
  };
  struct LeaseEntry {
    std::uint64_t token = 0;
  };

  template <typename Entry>
  struct Table {
    FlatTable<Entry> map;
    std::size_t sweep_cursor = 0;  // the next slot the sweep looks at
  };

  // Cache-line aligned so that threads working on neighbouring shards do not
  // invalidate each other's lock.
  struct alignas(64) Shard {
    std::mutex mu;
    Table<ValueEntry> values;
    Table<LeaseEntry> leases;
    std::uint32_t ops_since_sweep = 0;
    std::uint32_t sweep_every_ops;  // adapts to how much the last step found
  };

  // The shard of a key with hash `hash`.
  Shard& shard_for(std::uint64_t hash);

  // What every operation starts with: the key's shard, locked, the key's
  // hash, and the time, read under the lock after the sweep's share is paid.
  struct Locked {
    Shard& shard;
    std::unique_lock<std::mutex> lock;
    std::uint64_t hash;
    TimePoint now;
  };
  Locked lock_key(std::string_view key);

  // Runs a sweep step every few operations; called with the shard locked.
  void pay_sweep_share(Shard& shard, TimePoint now);
  // Drops the expired entries of up to `slots` slots of each table and
  // returns how many it dropped.
  std::size_t sweep(Shard& shard, TimePoint now, std::size_t slots);
  template <typename Entry>
  std::size_t sweep_table(Table<Entry>& table, TimePoint now, std::size_t slots);

  // Claims room for one new entry, or explains why there is none.
  Status reserve_entry(Shard& shard, TimePoint now);
  template <typename Entry>
  void erase_entry(Table<Entry>& table, std::size_t slot);

  std::vector<Shard> shards_;
  std::size_t max_entries_;
  SystemClock system_clock_;
  Clock* clock_;
  std::atomic<std::size_t> entries_{0};
  std::atomic<std::uint64_t> next_token_{1};
};

}  // namespace settle::idempotency
