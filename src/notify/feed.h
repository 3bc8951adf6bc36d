// The feed: reads the `status` topic (every partition) into the status cache
// and hands every message to a listener (the hub that pushes it to clients).
//
// On start, a partition resumes at the cache's mark when the cache has one
// and the log still reaches it; otherwise (a new cache, or a log shorter
// than the mark: the topic was recreated) it is read from offset 0 with a
// new epoch, computed from the partition count, the partition and the time
// stamp of its first record (so every process computes the same one).
//
// Thread safety: poll() from one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>

#include "bus/bus.h"
#include "common/result.h"
#include "model/status_update.h"
#include "notify/status_cache.h"

namespace settle::notify {

std::uint64_t epoch_of(std::int32_t partitions, std::int32_t partition, std::int64_t first_timestamp_ms);

// A status record as a cache entry (kInvalidArgument for a record that is
// not a status update).
Result<CacheEntry> entry_of(const bus::StoredRecord& record, std::uint64_t epoch);
CacheEntry entry_of(const bus::StoredRecord& record, const model::StatusUpdate& update, std::uint64_t epoch);

// What the status records read so far say about the pipeline: per events
// partition, the processor's next offset after its latest event_posted, and
// how many batch_close_failed updates there were.
struct PipelineSeen {
  std::map<std::int32_t, std::int64_t> posted_offsets;
  std::int64_t close_failed = 0;
};

class Feed {
 public:
  using Listener = std::function<void(const CacheEntry&)>;
  Feed(bus::Bus& bus, StatusCache& cache, Listener listener) : bus_(bus), cache_(cache), listener_(std::move(listener)) {}

  // Reads what is new on every partition, up to max_records each; returns
  // how many records it handled. Unreadable records are skipped (counted).
  Result<std::size_t> poll(std::size_t max_records = 1000);
  std::int64_t skipped() const { return skipped_; }
  // True once every partition was read to its end at least once.
  bool caught_up() const { return caught_up_; }
  const PipelineSeen& pipeline() const { return pipeline_; }

 private:
  struct Cursor {
    std::optional<std::uint64_t> epoch;
    std::int64_t next = 0;
    bool started = false;
  };
  Status start(std::int32_t partitions, std::int32_t p, Cursor& c);

  bus::Bus& bus_;
  StatusCache& cache_;
  Listener listener_;
  std::map<std::int32_t, Cursor> cursors_;
  std::int32_t partitions_ = 0;
  std::int64_t skipped_ = 0;
  bool caught_up_ = false;
  PipelineSeen pipeline_;
};

}  // namespace settle::notify
