#include "idempotency/memory_store.h"

#include <algorithm>
#include <utility>

namespace settle::idempotency {
namespace {

// Sweep pacing. A sweep step looks at kSweepSlots slots of each of a shard's
// tables. While steps find expired entries, a step runs every
// kSweepEveryOpsMin operations on the shard: four slots an operation, so
// while a table's load factor is above 1/4 (it is at least 0.35 after each
// growth, until erasures thin it; FlatTable never shrinks) a full pass over a
// shard takes fewer operations than it has entries, and what expired is gone
// within a bounded number of inserts. A step that finds nothing
// doubles the interval, up to kSweepEveryOpsMax, so a shard of live entries
// pays almost nothing (the step reads slots only, side by side);
// sparse garbage, below about one entry in kSweepSlots, is what may linger, a
// small fraction of the shard.
constexpr std::uint32_t kSweepEveryOpsMin = 16;
constexpr std::uint32_t kSweepEveryOpsMax = 1024;
constexpr std::size_t kSweepSlots = 64;
// When the store is full, an insert first sweeps this much of its shard, so a
// full store of expired keys frees room without waiting for the paced sweep.
constexpr std::size_t kFullSweepSlots = 4096;

std::uint64_t hash_of(std::string_view key) { return std::hash<std::string_view>{}(key); }

// Longer ttls are clamped so that now + ttl cannot overflow the clock's
// nanosecond range (about 292 years); nobody needs a dedup key for a century.
constexpr std::chrono::milliseconds kTtlMax = std::chrono::hours(24 * 365 * 100);

// A time as the tables keep it: nanoseconds on the steady clock (a slot's
// stamp).
std::int64_t ns(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

std::int64_t deadline(std::chrono::steady_clock::time_point now, std::chrono::milliseconds ttl) {
  return ns(now + std::min(ttl, kTtlMax));
}

Status check_ttl(std::chrono::milliseconds ttl, const char* op) {
  if (ttl.count() > 0) return ok_status();
  return make_error(ErrorCode::kInvalidArgument,
                    std::string("idempotency ") + op + ": ttl must be positive, got " +
                        std::to_string(ttl.count()) + " ms");
}

}  // namespace

MemoryStore::MemoryStore(MemoryStoreOptions options)
    : shards_(options.shards),
      max_entries_(options.max_entries),
      clock_(options.clock != nullptr ? options.clock : &system_clock_),
      next_token_(options.first_token) {
  SETTLE_ASSERT(options.shards > 0, "MemoryStoreOptions::shards must be at least 1");
  SETTLE_ASSERT(options.first_token > 0, "MemoryStoreOptions::first_token must be at least 1");
  for (Shard& shard : shards_) shard.sweep_every_ops = kSweepEveryOpsMin;
}

MemoryStore::Shard& MemoryStore::shard_for(std::uint64_t hash) {
  // The high half picks the shard, so that the choice of shard and the
  // table's choice of slot (the low bits) stay independent.
  return shards_[(hash >> 32) % shards_.size()];
}

MemoryStore::Locked MemoryStore::lock_key(std::string_view key) {
  const std::uint64_t h = hash_of(key);
  Shard& shard = shard_for(h);
  std::unique_lock lock(shard.mu);
  // Read under the lock so that time only moves forward in the order the
  // shard serializes operations.
  const auto now = clock_->now();
  pay_sweep_share(shard, now);
  return Locked{shard, std::move(lock), h, now};
}

Result<PutOutcome> MemoryStore::put_if_absent(std::string_view key, std::string_view value,
                                              std::chrono::milliseconds ttl) {
  SETTLE_TRY(check_ttl(ttl, "put_if_absent"));
  auto [shard, lock, h, now] = lock_key(key);

  auto& map = shard.values.map;
  if (const std::size_t at = map.find(key, h); at != map.npos) {
    ValueEntry& e = map.at(at);
    if (map.stamp(at) > ns(now)) return PutOutcome{false, std::string(e.view())};
    // Expired: reuse the node; the number of entries does not change.
    e.assign(value);
    map.set_stamp(at, deadline(now, ttl));
    return PutOutcome{true, {}};
  }
  SETTLE_TRY(reserve_entry(shard, now));
  map.insert(key, h, ValueEntry(value), deadline(now, ttl));
  return PutOutcome{true, {}};
}

Result<std::optional<std::string>> MemoryStore::get(std::string_view key) {
  auto [shard, lock, h, now] = lock_key(key);

  auto& map = shard.values.map;
  const std::size_t at = map.find(key, h);
  if (at == map.npos) return std::optional<std::string>();
  if (map.stamp(at) <= ns(now)) {
    erase_entry(shard.values, at);
    return std::optional<std::string>();
  }
  return std::optional<std::string>(std::string(map.at(at).view()));
}

Result<bool> MemoryStore::delete_if_equal(std::string_view key, std::string_view expected) {
  auto [shard, lock, h, now] = lock_key(key);

  auto& map = shard.values.map;
  const std::size_t at = map.find(key, h);
  if (at == map.npos) return false;
  const bool live = map.stamp(at) > ns(now);
  const bool equal = live && map.at(at).view() == expected;
  if (!live || equal) erase_entry(shard.values, at);
  return equal;
}

Result<bool> MemoryStore::replace_if_equal(std::string_view key, std::string_view expected, std::string_view value,
                                           std::chrono::milliseconds ttl) {
  SETTLE_TRY(check_ttl(ttl, "replace_if_equal"));
  auto [shard, lock, h, now] = lock_key(key);

  auto& map = shard.values.map;
  const std::size_t at = map.find(key, h);
  if (at == map.npos || map.stamp(at) <= ns(now) || map.at(at).view() != expected) return false;
  map.at(at).assign(value);
  map.set_stamp(at, deadline(now, ttl));
  return true;
}

Result<std::optional<Lease>> MemoryStore::try_lock(std::string_view key,
                                                   std::chrono::milliseconds ttl) {
  SETTLE_TRY(check_ttl(ttl, "try_lock"));
  auto [shard, lock, h, now] = lock_key(key);

  auto& map = shard.leases.map;
  std::size_t at = map.find(key, h);
  if (at != map.npos && map.stamp(at) > ns(now)) return std::optional<Lease>();
  if (at == map.npos) {
    SETTLE_TRY(reserve_entry(shard, now));
    at = map.insert(key, h, LeaseEntry{});
  }
  // Drawn under the shard lock: grants of one key are ordered by the lock, and
  // grants of different keys by the counter itself.
  const std::uint64_t token = next_token_.fetch_add(1, std::memory_order_relaxed);
  map.at(at) = LeaseEntry{token};
  map.set_stamp(at, deadline(now, ttl));
  return std::optional<Lease>(Lease{std::string(key), token});
}

Result<bool> MemoryStore::extend(const Lease& lease, std::chrono::milliseconds ttl) {
  SETTLE_TRY(check_ttl(ttl, "extend"));
  auto [shard, lock, h, now] = lock_key(lease.key);

  auto& map = shard.leases.map;
  const std::size_t at = map.find(lease.key, h);
  if (at == map.npos) return false;
  if (map.stamp(at) <= ns(now)) {
    // Lapsed: the holder lost it even if nobody took it since.
    erase_entry(shard.leases, at);
    return false;
  }
  if (map.at(at).token != lease.token) return false;
  map.set_stamp(at, deadline(now, ttl));
  return true;
}

Result<bool> MemoryStore::unlock(const Lease& lease) {
  auto [shard, lock, h, now] = lock_key(lease.key);

  auto& map = shard.leases.map;
  const std::size_t at = map.find(lease.key, h);
  if (at == map.npos) return false;
  const bool live = map.stamp(at) > ns(now);
  const bool held = live && map.at(at).token == lease.token;
  if (!live || held) erase_entry(shard.leases, at);
  return held;
}

void MemoryStore::pay_sweep_share(Shard& shard, TimePoint now) {
  if (++shard.ops_since_sweep < shard.sweep_every_ops) return;
  shard.ops_since_sweep = 0;
  const bool found = sweep(shard, now, kSweepSlots) > 0;
  shard.sweep_every_ops =
      found ? kSweepEveryOpsMin : std::min(shard.sweep_every_ops * 2, kSweepEveryOpsMax);
}

std::size_t MemoryStore::sweep(Shard& shard, TimePoint now, std::size_t slots) {
  return sweep_table(shard.values, now, slots) + sweep_table(shard.leases, now, slots);
}

template <typename Entry>
std::size_t MemoryStore::sweep_table(Table<Entry>& table, TimePoint now, std::size_t slots) {
  auto& map = table.map;
  if (map.size() == 0) return 0;
  // The cursor is a slot index, so it survives growth; after the table grows
  // or entries shift back past the cursor a pass may miss some entries, which
  // the next pass finds.
  const std::size_t capacity = map.capacity();
  const std::size_t steps = std::min(slots, capacity);
  std::size_t erased = 0;
  for (std::size_t i = 0; i < steps; ++i) {
    const std::size_t at = table.sweep_cursor % capacity;
    if (map.occupied(at) && map.stamp(at) <= ns(now)) {
      // The entry that shifts into this slot is looked at next.
      erase_entry(table, at);
      ++erased;
      continue;
    }
    table.sweep_cursor = at + 1;
  }
  return erased;
}

Status MemoryStore::reserve_entry(Shard& shard, TimePoint now) {
  // Add first, then check: shards reserve concurrently, and this way the bound
  // holds exactly without a store-wide lock.
  if (entries_.fetch_add(1, std::memory_order_relaxed) < max_entries_) return ok_status();
  entries_.fetch_sub(1, std::memory_order_relaxed);
  sweep(shard, now, kFullSweepSlots);
  if (entries_.fetch_add(1, std::memory_order_relaxed) < max_entries_) return ok_status();
  entries_.fetch_sub(1, std::memory_order_relaxed);
  return make_error(ErrorCode::kUnavailable,
                    "idempotency store is full: it holds MemoryStoreOptions::max_entries = " +
                        std::to_string(max_entries_) +
                        " entries; retry after keys expire or are deleted");
}

template <typename Entry>
void MemoryStore::erase_entry(Table<Entry>& table, std::size_t slot) {
  table.map.erase(slot);
  entries_.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace settle::idempotency
