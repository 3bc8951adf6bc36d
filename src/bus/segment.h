// One segment file of a partition: <20-digit base offset>.log, holding frames
// (record_frame.h) whose offsets are >= its base offset and below the next
// segment's base. A segment keeps its file open for its whole life, so a
// reader that holds a shared_ptr<Segment> keeps reading the same bytes even
// after compaction has renamed a rewritten file over its path.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bus/posix_file.h"
#include "bus/record_frame.h"
#include "common/result.h"

namespace settle::bus {

// A sparse index entry: the record with `offset` starts at byte `position`.
struct IndexEntry {
  std::int64_t offset = 0;
  std::uint64_t position = 0;
};

struct Segment {
  std::uint64_t id = 0;  // unique within its partition, never reused
  std::int64_t base_offset = 0;
  std::filesystem::path path;
  UniqueFd fd;

  // Guarded by the owning PartitionLog's mutex. `size` is the byte length of
  // the complete records readers may see; it only grows. `index` is sorted by
  // offset and position; `indexed` says it covers the whole segment (closed
  // segments are indexed lazily, on their first read).
  std::uint64_t size = 0;
  std::vector<IndexEntry> index;
  bool indexed = false;

  // The position from which to scan for `offset` (0 when the index has no
  // entry at or before it).
  std::uint64_t scan_start(std::int64_t offset) const;
};

std::string segment_file_name(std::int64_t base_offset);
// The base offset of a segment file name, or nullopt when `name` is not one.
std::optional<std::int64_t> parse_segment_file_name(std::string_view name);

// Reads the frames of [position, limit) of a segment file in order, through
// a buffer; each read from the file is twice the last, from 16 KiB to 1 MiB,
// so short reads stay cheap and long scans make few system calls.
class SegmentReader {
 public:
  enum class Step {
    kFrame,    // *frame is the next record
    kEnd,      // clean end at `limit`
    kTorn,     // the data ends inside a frame
    kCorrupt,  // a frame fails its checks; defect() says which
  };

  SegmentReader(const Segment& segment, std::uint64_t position, std::uint64_t limit);
  ~SegmentReader();
  SegmentReader(const SegmentReader&) = delete;
  SegmentReader& operator=(const SegmentReader&) = delete;

  // The views in *frame stay valid until the next call.
  Result<Step> next(FrameView* frame);

  // Where the frame last returned (or the defect found) starts.
  std::uint64_t frame_position() const { return frame_position_; }
  // Where the next frame starts.
  std::uint64_t position() const { return buffer_position_ + begin_; }
  // The raw bytes of the frame last returned.
  std::string_view frame_bytes() const { return last_frame_; }
  const char* defect() const { return defect_; }

 private:
  Status fill(std::size_t need);

  const Segment& segment_;
  std::uint64_t limit_;
  // Borrowed from a per-thread spare when free (see segment.cc).
  std::string buffer_;
  bool borrowed_ = false;
  std::uint64_t buffer_position_;  // file position of buffer_[0]
  std::size_t begin_ = 0;          // first unread byte in buffer_
  std::size_t end_ = 0;            // end of the bytes read into buffer_
  std::size_t chunk_bytes_;
  std::uint64_t frame_position_ = 0;
  std::string_view last_frame_;
  const char* defect_ = "";
};

}  // namespace settle::bus
