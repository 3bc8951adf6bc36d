// One partition of the embedded bus: a directory of segment files, the last
// of which takes appends.
//
// Durability and visibility: append() writes a call's frames with one write
// at the end of the last segment, syncs them under FsyncPolicy::kEveryAppend,
// and only then publishes the new end to readers, so a reader never sees a
// partial record nor one that a power loss could take back. When a segment
// is closed it is synced whatever the policy, so only the last segment can
// have a torn tail. The last segment's file may run past its records with
// zeros written ahead (FileLogOptions::preallocate_bytes); a closing segment
// is cut to its records first.
//
// Recovery (open()): the last segment is scanned; from its first short or
// corrupt frame (or one whose offset is out of sequence) the file is cut
// off, as Kafka's log recovery does, and appends continue after the last
// good record. Zeros written ahead end the scan the same way (a zero length
// is not a frame's). Closed segments are not scanned at open: each is indexed on
// its first read, and a defect in one is reported as kCorruption to the
// reads that reach it.
//
// Thread safety: every method may be called from any thread. Appends are
// serialized by their own mutex; reads take the partition's state mutex only
// to look up positions, never across I/O, so they do not hold up appends.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "bus/bus.h"
#include "bus/file_log_options.h"
#include "bus/segment.h"
#include "common/result.h"

namespace settle::bus {

class PartitionLog {
 public:
  // Opens the partition in `dir` (creating the directory and a first segment
  // when missing) and recovers its last segment. `name` ("topic/3") prefixes
  // error messages.
  static Result<std::unique_ptr<PartitionLog>> open(std::filesystem::path dir, std::string name,
                                                    std::int32_t partition, bool compacted,
                                                    const FileLogOptions& options);

  PartitionLog(const PartitionLog&) = delete;
  PartitionLog& operator=(const PartitionLog&) = delete;

  // kInvalidArgument when a record is over the frame limit, or has no key on
  // a compacted topic. append() checks it too; the bus calls it first to
  // refuse a multi-partition batch before writing any of it.
  Status validate(std::span<const Record* const> records) const;

  // Appends the records in order and returns the first one's offset (the
  // others follow by one). Records with timestamp_ms == 0 get `now_ms`.
  // After a failed write or sync the partition refuses further appends
  // (kIo) until the bus is reopened: after a failed fdatasync the state of
  // the file is unknown, and recovery is the one path that checks it.
  Result<std::int64_t> append(std::span<const Record* const> records, std::int64_t now_ms);

  // append() in two steps, for a bus append that spans partitions: write
  // every partition's frames and start their writeback, then sync each in
  // turn, so that the device writes them together instead of one after
  // another. A StagedAppend holds the partition's append lock until
  // finish_append(): callers staging several partitions take them in
  // ascending order, finish each, and compact (compact_after_append() where
  // finish_append() answered true) only once every lock is released.
  struct StagedAppend {
    std::unique_lock<std::mutex> lock;
    std::int64_t first = 0;  // the first record's offset
    std::size_t count = 0;   // 0: nothing written, nothing to sync
  };
  // Validates, takes the append lock, writes the frames; with
  // `begin_writeback` starts writing them back without waiting. On error
  // nothing is staged and the lock is released.
  Result<StagedAppend> start_append(std::span<const Record* const> records, std::int64_t now_ms,
                                    bool begin_writeback);
  // Syncs the staged frames (FsyncPolicy::kEveryAppend), publishes them to
  // readers and releases the lock, success or not. Answers whether a
  // compaction is due.
  Result<bool> finish_append(StagedAppend& staged);
  void compact_after_append();

  // Records with offset >= from_offset, in order, at most max_records.
  Result<std::vector<StoredRecord>> read(std::int64_t from_offset, std::size_t max_records);
  // The same into `out` (replacing its records, none on an error), reusing
  // the storage it kept.
  Status read_into(std::int64_t from_offset, std::size_t max_records, ReadBuffer& out);

  std::int64_t end_offset() const;

  // Rewrites each closed segment keeping only the latest record of each key
  // (offsets unchanged; tombstones are kept, since a consumer part-way
  // through the log must still see the delete). Each rewrite is atomic: a
  // new file, synced, renamed over the old one; a segment left with nothing
  // is deleted. Segments are not merged.
  Status compact();

  // The segment files' base offsets, oldest first (for tests and tools).
  std::vector<std::int64_t> segment_bases() const;

 private:
  struct Cursor {
    std::uint64_t segment_id = 0;
    std::int64_t next_offset = -1;
    std::uint64_t position = 0;
  };
  static constexpr std::size_t kCursors = 8;

  PartitionLog(std::filesystem::path dir, std::string name, std::int32_t partition,
               bool compacted, const FileLogOptions& options);

  Status recover();
  Status recover_last_segment(Segment& segment);
  Result<std::shared_ptr<Segment>> new_segment(std::int64_t base_offset);
  Status roll();
  // Indexes a closed segment that has not been read yet.
  Status index_segment(const std::shared_ptr<Segment>& segment);
  // read_into()'s reading, into a cleared `out`; may leave records on an error.
  Status read_records(std::int64_t from_offset, std::size_t max_records, ReadBuffer& out);
  Error corruption(const Segment& segment, const SegmentReader& reader) const;
  Error failed_error() const;

  // Guarded by mu_.
  std::shared_ptr<Segment> segment_for(std::int64_t offset) const;
  std::shared_ptr<Segment> segment_after(const Segment& segment) const;

  const std::filesystem::path dir_;
  const std::string name_;
  const std::int32_t partition_;
  const bool compacted_;
  const FileLogOptions options_;

  // Held across a whole append: the write position, the encoding buffer and
  // the failure flag belong to the appender.
  std::mutex append_mu_;
  std::shared_ptr<Segment> active_;
  std::int64_t next_offset_ = 0;
  std::uint64_t active_bytes_ = 0;
  // The active segment file's length: active_bytes_, or more when zeros were
  // written ahead (FileLogOptions::preallocate_bytes).
  std::uint64_t file_bytes_ = 0;
  std::optional<std::uint64_t> last_index_position_;
  std::string buffer_;
  std::vector<IndexEntry> pending_index_;
  std::optional<Error> failed_;
  std::uint64_t dirty_bytes_ = 0;  // closed since the last compaction

  // Held briefly, never across I/O.
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<Segment>> segments_;  // by base offset
  std::int64_t visible_end_ = 0;
  Cursor cursors_[kCursors];
  std::size_t next_cursor_ = 0;

  // One compaction at a time.
  std::mutex compact_mu_;

  std::atomic<std::uint64_t> next_segment_id_{1};
};

}  // namespace settle::bus
