// The embedded bus: a file-backed, partitioned, append-only log in the
// process, for running the whole platform on one machine with no servers.
// It implements the Bus port (bus.h) and passes its contract suite
// (tests/bus/bus_contract.h).
//
// On disk, under FileLogOptions::dir:
//   LOCK                                  held (flock) while a FileLogBus is open
//   <topic>/topic.json                    {"partitions": N, "compacted": bool}
//   <topic>/<partition>/<base>.log        segments; <base> is the 20-digit offset
//                                         of the segment's first record
//   __groups/<group>.offsets              consumer-group offsets (offset_store.h)
// Records are framed as record_frame.h says (little-endian, CRC32C-checked).
//
// Durability: see FsyncPolicy. append() returns positions only once the
// records are durable under the policy and visible to read().
//
// Partitioning: a keyed record goes to partition_for(key). Records with an
// empty key go, all of one append() call, to one partition chosen round-robin
// per call (Kafka's sticky partitioner does much the same), so a call still
// costs one write.
//
// A multi-partition append() writes partition after partition, starting
// each one's writeback as it goes, and then syncs them in turn, so that the
// device writes them together rather than one after another (eight 128 KiB
// partitions: 1.5 ms instead of 2.4 ms on the disk of docs/performance.md's
// round 16). If a partition fails, the ones before it are still synced and
// published and the call reports the error; the ones after it are not
// written. The caller retries and the consumers' idempotence absorbs the
// duplicates, as with Kafka.
//
// Errors: an unknown topic is kNotFound; a partition out of range, a
// negative offset or a malformed name is kInvalidArgument; a topic that
// exists with another configuration is kConflict; an OS failure is kIo with
// strerror; bytes that fail their checks are kCorruption. Each message names
// the topic, partition and file. No exception leaves this class.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "bus/bus.h"
#include "bus/file_log_options.h"
#include "bus/posix_file.h"
#include "common/result.h"

namespace settle::bus {

class OffsetStore;
class PartitionLog;

class FileLogBus final : public Bus {
 public:
  // Opens (creating if needed) the bus in options.dir and recovers every
  // partition (see partition_log.h). kUnavailable when another FileLogBus,
  // in this process or another, has the directory open.
  static Result<std::unique_ptr<FileLogBus>> open(FileLogOptions options);

  ~FileLogBus() override;
  FileLogBus(const FileLogBus&) = delete;
  FileLogBus& operator=(const FileLogBus&) = delete;

  // Topic names follow Kafka's rule ([A-Za-z0-9._-], 1 to 249 bytes, not "."
  // or ".."); names starting with "__" are reserved for the bus's own files.
  // At most 4096 partitions (each holds open file descriptors).
  Status create_topic(const TopicConfig& config) override;
  Result<std::int32_t> partition_count(std::string_view topic) override;
  Result<std::vector<Position>> append(std::string_view topic,
                                       std::span<const Record> records) override;
  Result<std::vector<Position>> append_to(std::string_view topic, std::int32_t partition,
                                          std::span<const Record> records) override;
  Result<std::vector<StoredRecord>> read(std::string_view topic, std::int32_t partition,
                                         std::int64_t from_offset,
                                         std::size_t max_records) override;
  Status read_into(std::string_view topic, std::int32_t partition, std::int64_t from_offset,
                   std::size_t max_records, ReadBuffer& out) override;
  Result<std::int64_t> end_offset(std::string_view topic, std::int32_t partition) override;
  Status commit(std::string_view group, std::string_view topic, std::int32_t partition,
                std::int64_t next_offset) override;
  Result<std::int64_t> committed(std::string_view group, std::string_view topic,
                                 std::int32_t partition) override;
  // Reads the whole topic (compacted or not); with keyed appends a key lives
  // in one partition, so "latest" is its last record there.
  Result<std::map<std::string, std::string>> latest_values(std::string_view topic) override;

  // Compacts every partition of a compacted topic now (see
  // PartitionLog::compact). kFailedPrecondition on a topic that is not
  // compacted: compaction would delete its history.
  Status compact(std::string_view topic);

  // The base offsets of a partition's segment files, oldest first.
  Result<std::vector<std::int64_t>> segment_bases(std::string_view topic, std::int32_t partition);

 private:
  struct Topic;

  FileLogBus(FileLogOptions options, UniqueFd lock);
  Status load_topic(const std::string& name);
  Result<std::unique_ptr<Topic>> open_topic(const TopicConfig& config);
  Result<Topic*> find_topic(std::string_view name) const;
  Result<PartitionLog*> find_partition(std::string_view topic, std::int32_t partition) const;

  const FileLogOptions options_;
  UniqueFd lock_;
  std::unique_ptr<OffsetStore> offsets_;

  std::mutex create_mu_;  // one create_topic() at a time
  // Guards the map; topics are never removed, so a Topic* stays valid.
  mutable std::shared_mutex topics_mu_;
  std::map<std::string, std::unique_ptr<Topic>, std::less<>> topics_;
};

}  // namespace settle::bus
