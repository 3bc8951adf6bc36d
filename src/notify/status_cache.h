// The status cache: what notify serves from. The latest state per batch and
// per merchant, and a bounded history of each merchant's recent messages so a
// client that reconnects gets exactly what it missed.
//
// Sequence and epoch: a message's `seq` is the offset of its status record
// on the `status` topic. The topic is keyed by merchant, so one merchant's
// records share a partition and their offsets increase with every update
// (with gaps: merchants share partitions). The `epoch` names the partition's
// log: it is derived from the partition count, the partition and the time
// stamp of its first record, so it changes when the topic is recreated or
// re-partitioned, i.e. when a merchant's sequence cannot be continued. Every
// notify process reading the same topic computes the same (epoch, seq) for a
// message, so clients may reconnect to any of them.
//
// Contract (tests/notify/status_cache_contract.h runs it on each
// implementation):
// - apply() keeps, per merchant, the latest (epoch, seq) and appends the
//   message to its history; a message at or below the head of the same
//   epoch is ignored (applying the topic twice changes nothing), and a new
//   epoch starts the history again.
// - History holds at most history_max messages per merchant; the seq of the
//   last message dropped is the floor: since(p) answers the messages after p
//   when p is in the current epoch, at or above the floor and at or below
//   the head, and nullopt (the client must resync) otherwise.
// - A batch's state is its latest batch message; at most batches_max
//   batches per merchant are kept (the oldest batch dates dropped first).
// - Marks: the next offset and epoch per partition, for the feed to resume.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <map>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace settle::notify {

struct StreamPosition {
  std::uint64_t epoch = 0;
  std::int64_t seq = -1;
  bool operator==(const StreamPosition&) const = default;
};
// "E:S" (both decimal) or an error saying what is wrong with it.
Result<StreamPosition> parse_position(std::string_view text);
// An all-merchants stream's resume point: "E:MERCHANT:S" per merchant,
// comma-separated (the merchant id is what lies between the first and the
// last ':'), e.g. "123:m1:40,987:m2:7". Errors name the item.
Result<std::map<std::string, StreamPosition>> parse_positions(std::string_view text);

// The cache key of a merchant's latest merchant_discrepancies update: kept
// beside its batches (and, sorting after every batch date, never the one a
// full merchant drops first).
inline constexpr const char* kDiscrepanciesKey = "merchant/discrepancies";

struct CacheEntry {
  std::string merchant_id;
  StreamPosition at;
  // "2026-03-02/USD" for batch messages, kDiscrepanciesKey for the merchant's
  // discrepancy summary; empty for event messages.
  std::string batch;
  std::string status;   // the status update as JSON (model::status_json)
  std::string message;  // what clients receive (notify_message())
};

struct MerchantState {
  std::string merchant_id;
  StreamPosition head;                // {0, -1} when nothing is known
  // Each batch's latest status JSON, by batch key, then the merchant's
  // latest merchant_discrepancies update when there is one.
  std::vector<std::string> batches;
};

struct PartitionMark {
  std::uint64_t epoch = 0;
  std::int64_t next_offset = 0;
  bool operator==(const PartitionMark&) const = default;
};

struct CacheLimits {
  std::size_t history_max = 1000;     // messages per merchant
  std::size_t batches_max = 200;      // batches per merchant
  std::size_t merchants_max = 100'000;  // in-process only: least recently updated dropped beyond it
};

class StatusCache {
 public:
  virtual ~StatusCache() = default;
  // True when the entry was new (false: already applied).
  virtual Result<bool> apply(const CacheEntry& entry) = 0;
  virtual Result<MerchantState> state(std::string_view merchant_id) = 0;
  // The messages after `from`, oldest first; nullopt when they are not all
  // in the history (another epoch, below the floor, beyond the head).
  virtual Result<std::optional<std::vector<CacheEntry>>> since(std::string_view merchant_id, StreamPosition from) = 0;
  // Every merchant with a state, sorted.
  virtual Result<std::vector<std::string>> merchants() = 0;
  virtual Result<std::optional<PartitionMark>> mark(std::int32_t partition) = 0;
  virtual Status set_mark(std::int32_t partition, PartitionMark mark) = 0;
};

// The message clients receive for a status record:
// {"type":"status","epoch":E,"seq":S,"merchant_id":"m1","status":{...}}
std::string notify_message(std::string_view merchant_id, StreamPosition at, std::string_view status_json);
// {"type":"resync","merchant_id":"m1","epoch":E,"seq":S,"batches":[...]}
std::string resync_message(const MerchantState& state);
// The same state as GET /v1/merchants/{id}/status answers it.
std::string state_json(const MerchantState& state);

std::unique_ptr<StatusCache> make_memory_cache(CacheLimits limits = {});

}  // namespace settle::notify
