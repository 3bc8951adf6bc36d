#include "idempotency/memory_store.h"

#include <algorithm>
#include <utility>

namespace settle::idempotency {
namespace {

// Sweep pacing. A sweep step looks at kSweepBuckets buckets of each of a
// shard's tables. While steps find expired entries, a step runs every
// kSweepEveryOpsMin operations on the shard: four buckets an operation, so
// with the maps' load factor at most 1 a full pass over a shard takes fewer
// operations than it has entries, and what expired is gone within a bounded
// number of inserts. A step that finds nothing doubles the interval, up to
// kSweepEveryOpsMax, so a shard of live entries pays almost nothing (the step
// costs a cache miss per entry it looks at); sparse garbage, below about one
// entry in kSweepBuckets, is what may linger, a small fraction of the shard.
constexpr std::uint32_t kSweepEveryOpsMin = 16;
constexpr std::uint32_t kSweepEveryOpsMax = 1024;
constexpr std::size_t kSweepBuckets = 64;
// When the store is full, an insert first sweeps this much of its shard, so a
// full store of expired keys frees room without waiting for the paced sweep.
constexpr std::size_t kFullSweepBuckets = 4096;

// Longer ttls are clamped so that now + ttl cannot overflow the clock's
// nanosecond range (about 292 years); nobody needs a dedup key for a century.
constexpr std::chrono::milliseconds kTtlMax = std::chrono::hours(24 * 365 * 100);

std::chrono::steady_clock::time_point deadline(std::chrono::steady_clock::time_point now,
                                               std::chrono::milliseconds ttl) {
  return now + std::min(ttl, kTtlMax);
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

MemoryStore::Shard& MemoryStore::shard_for(std::string_view key) {
  // The high half picks the shard, so that the choice of shard and the map's
  // choice of bucket (the whole hash modulo a prime) stay independent.
  const std::size_t h = KeyHash{}(key);
  return shards_[(h >> 32) % shards_.size()];
}

Result<PutOutcome> MemoryStore::put_if_absent(std::string_view key, std::string_view value,
                                              std::chrono::milliseconds ttl) {
  SETTLE_TRY(check_ttl(ttl, "put_if_absent"));
  Shard& shard = shard_for(key);
  std::lock_guard lock(shard.mu);
  // Read under the lock so that time only moves forward in the order the
  // shard serializes operations.
  const auto now = clock_->now();
  pay_sweep_share(shard, now);

  auto& map = shard.values.map;
  if (auto it = map.find(key); it != map.end()) {
    if (it->second.expires_at > now) return PutOutcome{false, it->second.value};
    // Expired: reuse the node; the number of entries does not change.
    it->second.value.assign(value);
    it->second.expires_at = deadline(now, ttl);
    return PutOutcome{true, {}};
  }
  SETTLE_TRY(reserve_entry(shard, now));
  map.emplace(std::string(key), ValueEntry{std::string(value), deadline(now, ttl)});
  return PutOutcome{true, {}};
}

Result<std::optional<std::string>> MemoryStore::get(std::string_view key) {
  Shard& shard = shard_for(key);
  std::lock_guard lock(shard.mu);
  const auto now = clock_->now();
  pay_sweep_share(shard, now);

  auto& map = shard.values.map;
  auto it = map.find(key);
  if (it == map.end()) return std::optional<std::string>();
  if (it->second.expires_at <= now) {
    erase_entry(shard.values, it);
    return std::optional<std::string>();
  }
  return std::optional<std::string>(it->second.value);
}

Result<bool> MemoryStore::delete_if_equal(std::string_view key, std::string_view expected) {
  Shard& shard = shard_for(key);
  std::lock_guard lock(shard.mu);
  const auto now = clock_->now();
  pay_sweep_share(shard, now);

  auto& map = shard.values.map;
  auto it = map.find(key);
  if (it == map.end()) return false;
  const bool live = it->second.expires_at > now;
  const bool equal = live && it->second.value == expected;
  if (!live || equal) erase_entry(shard.values, it);
  return equal;
}

Result<std::optional<Lease>> MemoryStore::try_lock(std::string_view key,
                                                   std::chrono::milliseconds ttl) {
  SETTLE_TRY(check_ttl(ttl, "try_lock"));
  Shard& shard = shard_for(key);
  std::lock_guard lock(shard.mu);
  const auto now = clock_->now();
  pay_sweep_share(shard, now);

  auto& map = shard.leases.map;
  auto it = map.find(key);
  if (it != map.end() && it->second.expires_at > now) return std::optional<Lease>();
  if (it == map.end()) {
    SETTLE_TRY(reserve_entry(shard, now));
    it = map.emplace(std::string(key), LeaseEntry{}).first;
  }
  // Drawn under the shard lock: grants of one key are ordered by the lock, and
  // grants of different keys by the counter itself.
  const std::uint64_t token = next_token_.fetch_add(1, std::memory_order_relaxed);
  it->second = LeaseEntry{token, deadline(now, ttl)};
  return std::optional<Lease>(Lease{std::string(key), token});
}

Result<bool> MemoryStore::extend(const Lease& lease, std::chrono::milliseconds ttl) {
  SETTLE_TRY(check_ttl(ttl, "extend"));
  Shard& shard = shard_for(lease.key);
  std::lock_guard lock(shard.mu);
  const auto now = clock_->now();
  pay_sweep_share(shard, now);

  auto& map = shard.leases.map;
  auto it = map.find(lease.key);
  if (it == map.end()) return false;
  if (it->second.expires_at <= now) {
    // Lapsed: the holder lost it even if nobody took it since.
    erase_entry(shard.leases, it);
    return false;
  }
  if (it->second.token != lease.token) return false;
  it->second.expires_at = deadline(now, ttl);
  return true;
}

Result<bool> MemoryStore::unlock(const Lease& lease) {
  Shard& shard = shard_for(lease.key);
  std::lock_guard lock(shard.mu);
  const auto now = clock_->now();
  pay_sweep_share(shard, now);

  auto& map = shard.leases.map;
  auto it = map.find(lease.key);
  if (it == map.end()) return false;
  const bool live = it->second.expires_at > now;
  const bool held = live && it->second.token == lease.token;
  if (!live || held) erase_entry(shard.leases, it);
  return held;
}

void MemoryStore::pay_sweep_share(Shard& shard, TimePoint now) {
  if (++shard.ops_since_sweep < shard.sweep_every_ops) return;
  shard.ops_since_sweep = 0;
  const bool found = sweep(shard, now, kSweepBuckets) > 0;
  shard.sweep_every_ops =
      found ? kSweepEveryOpsMin : std::min(shard.sweep_every_ops * 2, kSweepEveryOpsMax);
}

std::size_t MemoryStore::sweep(Shard& shard, TimePoint now, std::size_t buckets) {
  return sweep_table(shard.values, now, buckets) + sweep_table(shard.leases, now, buckets);
}

template <typename Entry>
std::size_t MemoryStore::sweep_table(Table<Entry>& table, TimePoint now, std::size_t buckets) {
  auto& map = table.map;
  if (map.empty()) return 0;
  // The cursor is a bucket index, not an iterator, so it survives rehashing;
  // after a rehash a pass may miss some entries, which the next pass finds.
  const std::size_t bucket_count = map.bucket_count();
  const std::size_t steps = std::min(buckets, bucket_count);
  std::size_t erased = 0;
  for (std::size_t i = 0; i < steps; ++i) {
    const std::size_t b = table.sweep_cursor % bucket_count;
    table.sweep_cursor = b + 1;
    for (auto lit = map.begin(b); lit != map.end(b);) {
      if (lit->second.expires_at > now) {
        ++lit;
        continue;
      }
      // A local iterator cannot be erased through; find the node's iterator.
      // Erasing it leaves iterators to other nodes, lit included, valid.
      auto victim = map.find(lit->first);
      ++lit;
      erase_entry(table, victim);
      ++erased;
    }
  }
  return erased;
}

Status MemoryStore::reserve_entry(Shard& shard, TimePoint now) {
  // Add first, then check: shards reserve concurrently, and this way the bound
  // holds exactly without a store-wide lock.
  if (entries_.fetch_add(1, std::memory_order_relaxed) < max_entries_) return ok_status();
  entries_.fetch_sub(1, std::memory_order_relaxed);
  sweep(shard, now, kFullSweepBuckets);
  if (entries_.fetch_add(1, std::memory_order_relaxed) < max_entries_) return ok_status();
  entries_.fetch_sub(1, std::memory_order_relaxed);
  return make_error(ErrorCode::kUnavailable,
                    "idempotency store is full: it holds MemoryStoreOptions::max_entries = " +
                        std::to_string(max_entries_) +
                        " entries; retry after keys expire or are deleted");
}

template <typename Entry, typename It>
void MemoryStore::erase_entry(Table<Entry>& table, It it) {
  table.map.erase(it);
  entries_.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace settle::idempotency
