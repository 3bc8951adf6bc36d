#include "bus/partition_log.h"

#include <fcntl.h>

#include <algorithm>
#include <string_view>
#include <unordered_map>

#include <fmt/format.h>

namespace settle::bus {
namespace {

constexpr std::string_view kCompactingSuffix = ".compacting";
// The encoding buffer keeps its capacity between appends up to this, so one
// huge batch does not pin its memory for the life of the partition.
constexpr std::size_t kBufferKeepBytes = std::size_t{16} << 20;

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

}  // namespace

PartitionLog::PartitionLog(std::filesystem::path dir, std::string name, std::int32_t partition,
                           bool compacted, const FileLogOptions& options)
    : dir_(std::move(dir)),
      name_(std::move(name)),
      partition_(partition),
      compacted_(compacted),
      options_(options) {}

Result<std::unique_ptr<PartitionLog>> PartitionLog::open(std::filesystem::path dir,
                                                         std::string name,
                                                         std::int32_t partition, bool compacted,
                                                         const FileLogOptions& options) {
  std::unique_ptr<PartitionLog> log(
      new PartitionLog(std::move(dir), std::move(name), partition, compacted, options));
  SETTLE_TRY(log->recover());
  return log;
}

Status PartitionLog::recover() {
  SETTLE_TRY(make_dir(dir_));
  SETTLE_ASSIGN_OR_RETURN(std::vector<std::string> names, list_dir(dir_));
  std::vector<std::int64_t> bases;
  for (const std::string& name : names) {
    if (name.ends_with(kCompactingSuffix)) {
      // An interrupted compaction: the original segment is still in place.
      SETTLE_TRY(remove_file(dir_ / name));
    } else if (auto base = parse_segment_file_name(name)) {
      bases.push_back(*base);
    }
  }
  std::sort(bases.begin(), bases.end());

  if (bases.empty()) {
    SETTLE_ASSIGN_OR_RETURN(std::shared_ptr<Segment> first, new_segment(0));
    SETTLE_TRY(sync_dir(dir_));
    segments_.push_back(std::move(first));
  }
  for (std::int64_t base : bases) {
    auto segment = std::make_shared<Segment>();
    segment->id = next_segment_id_++;
    segment->base_offset = base;
    segment->path = dir_ / segment_file_name(base);
    SETTLE_ASSIGN_OR_RETURN(segment->fd, open_file(segment->path, O_RDWR));
    SETTLE_ASSIGN_OR_RETURN(segment->size, file_size(segment->fd.get(), segment->path));
    segments_.push_back(std::move(segment));
  }

  active_ = segments_.back();
  SETTLE_TRY(recover_last_segment(*active_));
  active_bytes_ = active_->size;
  file_bytes_ = active_bytes_;  // recovery cut off whatever followed the last record
  if (!active_->index.empty()) last_index_position_ = active_->index.back().position;
  visible_end_ = next_offset_;
  return ok_status();
}

Status PartitionLog::recover_last_segment(Segment& segment) {
  SegmentReader reader(segment, 0, segment.size);
  std::int64_t expected = segment.base_offset;
  std::optional<std::uint64_t> last_indexed;
  std::uint64_t good_end = 0;
  FrameView frame;
  for (;;) {
    SETTLE_ASSIGN_OR_RETURN(SegmentReader::Step step, reader.next(&frame));
    if (step != SegmentReader::Step::kFrame || frame.offset != expected) {
      good_end = reader.frame_position();
      break;
    }
    const std::uint64_t position = reader.frame_position();
    if (!last_indexed || position >= *last_indexed + options_.index_interval_bytes) {
      segment.index.push_back(IndexEntry{frame.offset, position});
      last_indexed = position;
    }
    ++expected;
  }
  if (good_end < segment.size) {
    // A torn or corrupt tail: cut it off so that appends continue from the
    // last good record, and make the cut durable before they do.
    SETTLE_TRY(truncate_file(segment.fd.get(), good_end, segment.path));
    SETTLE_TRY(sync_data(segment.fd.get(), segment.path));
  }
  segment.size = good_end;
  segment.indexed = true;
  next_offset_ = expected;
  return ok_status();
}

Result<std::shared_ptr<Segment>> PartitionLog::new_segment(std::int64_t base_offset) {
  auto segment = std::make_shared<Segment>();
  segment->id = next_segment_id_++;
  segment->base_offset = base_offset;
  segment->path = dir_ / segment_file_name(base_offset);
  SETTLE_ASSIGN_OR_RETURN(segment->fd, open_file(segment->path, O_RDWR | O_CREAT | O_EXCL));
  segment->indexed = true;
  return segment;
}

Status PartitionLog::roll() {
  // A closed segment holds records only: zeros written ahead are cut off.
  if (file_bytes_ > active_bytes_) {
    Status cut = truncate_file(active_->fd.get(), active_bytes_, active_->path);
    if (!cut.ok()) {
      failed_ = cut.error();
      return cut;
    }
    file_bytes_ = active_bytes_;
  }
  // The closing segment is synced whatever the policy, so that after a power
  // loss only the last segment can have a torn tail (which recovery cuts).
  Status synced = sync_data(active_->fd.get(), active_->path);
  if (!synced.ok()) {
    failed_ = synced.error();
    return synced;
  }
  SETTLE_ASSIGN_OR_RETURN(std::shared_ptr<Segment> segment, new_segment(next_offset_));
  if (options_.fsync == FsyncPolicy::kEveryAppend) {
    Status dir_synced = sync_dir(dir_);
    if (!dir_synced.ok()) {
      // The file exists but is not in segments_; a retry would collide with
      // it. Reopening picks it up.
      failed_ = dir_synced.error();
      return dir_synced;
    }
  }
  {
    std::lock_guard lock(mu_);
    segments_.push_back(segment);
  }
  dirty_bytes_ += active_bytes_;
  active_ = std::move(segment);
  active_bytes_ = 0;
  file_bytes_ = 0;
  last_index_position_.reset();
  return ok_status();
}

Error PartitionLog::failed_error() const {
  return make_error(ErrorCode::kIo,
                    fmt::format("{}: appends refused since an earlier failure ({}); reopen the "
                                "bus to recover the partition",
                                name_, failed_->message));
}

Status PartitionLog::validate(std::span<const Record* const> records) const {
  for (std::size_t i = 0; i < records.size(); ++i) {
    const Record& record = *records[i];
    const std::size_t bytes = payload_bytes(record);
    if (bytes > kPayloadBytesMax) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("{}: record {} is {} bytes encoded, over the limit of {}",
                                    name_, i, bytes, kPayloadBytesMax));
    }
    if (compacted_ && record.key.empty()) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("{}: record {} has no key; a compacted topic needs one",
                                    name_, i));
    }
  }
  return ok_status();
}

Result<std::int64_t> PartitionLog::append(std::span<const Record* const> records,
                                          std::int64_t now_ms) {
  SETTLE_ASSIGN_OR_RETURN(StagedAppend staged,
                          start_append(records, now_ms, /*begin_writeback=*/false));
  SETTLE_ASSIGN_OR_RETURN(bool compact_now, finish_append(staged));
  if (compact_now) compact_after_append();
  return staged.first;
}

Result<PartitionLog::StagedAppend> PartitionLog::start_append(
    std::span<const Record* const> records, std::int64_t now_ms, bool begin_writeback) {
  SETTLE_TRY(validate(records));
  std::uint64_t batch_bytes = 0;
  for (const Record* record : records) batch_bytes += kFrameHeaderBytes + payload_bytes(*record);

  StagedAppend staged;
  staged.lock = std::unique_lock(append_mu_);
  if (failed_) return failed_error();
  staged.first = next_offset_;
  if (records.empty()) return staged;
  if (active_bytes_ > 0 && active_bytes_ + batch_bytes > options_.segment_bytes) {
    SETTLE_TRY(roll());
    staged.first = next_offset_;
  }

  const std::int64_t first = staged.first;
  const std::optional<std::uint64_t> index_position_before = last_index_position_;
  buffer_.clear();
  buffer_.reserve(static_cast<std::size_t>(batch_bytes));
  pending_index_.clear();
  for (std::size_t i = 0; i < records.size(); ++i) {
    const std::int64_t offset = first + static_cast<std::int64_t>(i);
    const std::uint64_t position = active_bytes_ + buffer_.size();
    if (!last_index_position_ ||
        position >= *last_index_position_ + options_.index_interval_bytes) {
      pending_index_.push_back(IndexEntry{offset, position});
      last_index_position_ = position;
    }
    const Record& record = *records[i];
    append_frame(buffer_, offset, record.timestamp_ms == 0 ? now_ms : record.timestamp_ms,
                 record);
  }

  const std::uint64_t end = active_bytes_ + buffer_.size();
  std::uint64_t file_end = std::max(file_bytes_, end);
  Status written = write_at(active_->fd.get(), buffer_, active_bytes_, active_->path);
  if (written.ok() && end > file_bytes_ && options_.fsync == FsyncPolicy::kEveryAppend &&
      options_.preallocate_bytes > 0 && buffer_.size() <= options_.preallocate_bytes / 4) {
    // This append grew the file: zeros after it, so that the next ones
    // overwrite (see FileLogOptions::preallocate_bytes); the fdatasync in
    // finish_append() makes both durable.
    const std::uint64_t ahead = std::min(end + options_.preallocate_bytes, options_.segment_bytes);
    if (ahead > end) {
      written = write_zeros(active_->fd.get(), ahead - end, end, active_->path);
      file_end = ahead;
    }
  }
  if (!written.ok()) {
    // Cut off whatever part of the batch (or of the zeros ahead) reached the
    // file, or the next append would leave it in the middle of the log.
    last_index_position_ = index_position_before;
    Status cut = truncate_file(active_->fd.get(), active_bytes_, active_->path);
    if (!cut.ok()) failed_ = cut.error();
    file_bytes_ = active_bytes_;
    return written.error();
  }
  file_bytes_ = file_end;
  if (begin_writeback && options_.fsync == FsyncPolicy::kEveryAppend) {
    Status started =
        start_writeback(active_->fd.get(), active_bytes_, file_end - active_bytes_, active_->path);
    if (!started.ok()) {
      // The frames are in the file but may never reach the disk; as after a
      // failed fdatasync, only recovery can tell what is there.
      failed_ = started.error();
      return started.error();
    }
  }
  staged.count = records.size();
  return staged;
}

Result<bool> PartitionLog::finish_append(StagedAppend& staged) {
  SETTLE_ASSERT(staged.lock.owns_lock() && staged.lock.mutex() == &append_mu_,
                "finish_append() takes a StagedAppend of this partition, once");
  if (staged.count == 0) {
    staged.lock.unlock();
    return false;
  }
  if (options_.fsync == FsyncPolicy::kEveryAppend) {
    Status synced = sync_data(active_->fd.get(), active_->path);
    if (!synced.ok()) {
      // After a failed fdatasync the kernel may have dropped the dirty pages:
      // what is on disk is unknown until recovery rescans it.
      failed_ = synced.error();
      staged.lock.unlock();
      return synced.error();
    }
  }

  const auto count = static_cast<std::int64_t>(staged.count);
  {
    std::lock_guard state(mu_);
    active_->size = active_bytes_ + buffer_.size();
    active_->index.insert(active_->index.end(), pending_index_.begin(), pending_index_.end());
    visible_end_ = staged.first + count;
  }
  active_bytes_ += buffer_.size();
  next_offset_ = staged.first + count;
  if (buffer_.capacity() > kBufferKeepBytes) std::string().swap(buffer_);

  const bool compact_now = compacted_ && options_.compaction_dirty_bytes > 0 &&
                           dirty_bytes_ >= options_.compaction_dirty_bytes;
  staged.lock.unlock();
  return compact_now;
}

void PartitionLog::compact_after_append() {
  // The records are durable, so their append succeeds whatever compaction
  // does: a failed compaction leaves the segments as they were and its dirty
  // bytes counted, so the next closed segment tries again, and an explicit
  // compact() reports the error.
  (void)compact();
}

std::shared_ptr<Segment> PartitionLog::segment_for(std::int64_t offset) const {
  auto it = std::upper_bound(
      segments_.begin(), segments_.end(), offset,
      [](std::int64_t o, const std::shared_ptr<Segment>& s) { return o < s->base_offset; });
  if (it == segments_.begin()) return segments_.front();
  return *std::prev(it);
}

std::shared_ptr<Segment> PartitionLog::segment_after(const Segment& segment) const {
  auto it = std::upper_bound(segments_.begin(), segments_.end(), segment.base_offset,
                             [](std::int64_t o, const std::shared_ptr<Segment>& s) {
                               return o < s->base_offset;
                             });
  if (it == segments_.end()) return nullptr;
  return *it;
}

Status PartitionLog::index_segment(const std::shared_ptr<Segment>& segment) {
  std::uint64_t limit = 0;
  {
    std::lock_guard lock(mu_);
    if (segment->indexed) return ok_status();
    limit = segment->size;
  }
  // Scanned without the lock: a closed segment's bytes do not change. Two
  // readers may race to index it; the first to finish installs its index.
  SegmentReader reader(*segment, 0, limit);
  std::vector<IndexEntry> index;
  FrameView frame;
  for (;;) {
    SETTLE_ASSIGN_OR_RETURN(SegmentReader::Step step, reader.next(&frame));
    // A defect ends the index; the reads that reach it report it.
    if (step != SegmentReader::Step::kFrame) break;
    const std::uint64_t position = reader.frame_position();
    if (index.empty() || position >= index.back().position + options_.index_interval_bytes) {
      index.push_back(IndexEntry{frame.offset, position});
    }
  }
  std::lock_guard lock(mu_);
  if (!segment->indexed) {
    segment->index = std::move(index);
    segment->indexed = true;
  }
  return ok_status();
}

Error PartitionLog::corruption(const Segment& segment, const SegmentReader& reader) const {
  return make_error(ErrorCode::kCorruption,
                    fmt::format("{}: bad record in {} at byte {}: {}", name_,
                                segment.path.string(), reader.frame_position(),
                                reader.defect()));
}

Result<std::vector<StoredRecord>> PartitionLog::read(std::int64_t from_offset,
                                                     std::size_t max_records) {
  ReadBuffer out;
  SETTLE_TRY(read_into(from_offset, max_records, out));
  return out.take();
}

Status PartitionLog::read_into(std::int64_t from_offset, std::size_t max_records, ReadBuffer& out) {
  out.clear();
  Status read = read_records(from_offset, max_records, out);
  if (!read.ok()) out.clear();
  return read;
}

Status PartitionLog::read_records(std::int64_t from_offset, std::size_t max_records,
                                  ReadBuffer& out) {
  if (max_records == 0) return ok_status();

  std::shared_ptr<Segment> segment;
  std::uint64_t position = 0;
  std::uint64_t limit = 0;
  bool positioned = false;
  {
    std::lock_guard lock(mu_);
    if (from_offset >= visible_end_) return ok_status();
    segment = segment_for(from_offset);
    limit = segment->size;
    for (const Cursor& cursor : cursors_) {
      if (cursor.segment_id == segment->id && cursor.next_offset == from_offset) {
        position = cursor.position;
        positioned = true;
        break;
      }
    }
    if (!positioned && segment->indexed) {
      position = segment->scan_start(from_offset);
      positioned = true;
    }
  }
  if (!positioned) {
    SETTLE_TRY(index_segment(segment));
    std::lock_guard lock(mu_);
    position = segment->scan_start(from_offset);
  }

  FrameView frame;
  for (;;) {
    bool segment_done = false;
    {
      SegmentReader reader(*segment, position, limit);
      while (out.size() < max_records) {
        SETTLE_ASSIGN_OR_RETURN(SegmentReader::Step step, reader.next(&frame));
        if (step == SegmentReader::Step::kFrame) {
          if (frame.offset < from_offset) continue;
          assign_stored_record(frame, partition_, out.next_slot());
          continue;
        }
        if (step == SegmentReader::Step::kEnd) {
          segment_done = true;
          break;
        }
        // A defect inside published bytes. Return what came before it; the
        // read that starts at it gets the error.
        if (!out.empty()) return ok_status();
        return corruption(*segment, reader);
      }
      position = reader.position();
    }
    if (!segment_done) break;
    std::lock_guard lock(mu_);
    std::shared_ptr<Segment> next = segment_after(*segment);
    if (!next) break;
    segment = std::move(next);
    limit = segment->size;
    position = 0;
  }

  if (!out.empty()) {
    std::lock_guard lock(mu_);
    cursors_[next_cursor_] = Cursor{segment->id, out.records().back().offset + 1, position};
    next_cursor_ = (next_cursor_ + 1) % kCursors;
  }
  return ok_status();
}

std::int64_t PartitionLog::end_offset() const {
  std::lock_guard lock(mu_);
  return visible_end_;
}

std::vector<std::int64_t> PartitionLog::segment_bases() const {
  std::lock_guard lock(mu_);
  std::vector<std::int64_t> bases;
  for (const auto& segment : segments_) bases.push_back(segment->base_offset);
  return bases;
}

Status PartitionLog::compact() {
  std::lock_guard compacting(compact_mu_);
  std::uint64_t dirty_at_start = 0;
  {
    std::lock_guard lock(append_mu_);
    dirty_at_start = dirty_bytes_;
  }
  std::vector<std::shared_ptr<Segment>> segments;
  std::vector<std::uint64_t> sizes;
  {
    std::lock_guard lock(mu_);
    segments = segments_;
    for (const auto& segment : segments) sizes.push_back(segment->size);
  }

  // Pass 1: the latest offset of each key, over every segment including the
  // active one. Records appended after the snapshot only make more records
  // obsolete, so keeping what the snapshot says is latest is safe.
  std::unordered_map<std::string, std::int64_t, StringHash, std::equal_to<>> latest;
  FrameView frame;
  for (std::size_t i = 0; i < segments.size(); ++i) {
    SegmentReader reader(*segments[i], 0, sizes[i]);
    for (;;) {
      SETTLE_ASSIGN_OR_RETURN(SegmentReader::Step step, reader.next(&frame));
      if (step == SegmentReader::Step::kEnd) break;
      if (step != SegmentReader::Step::kFrame) return corruption(*segments[i], reader);
      auto it = latest.find(frame.key);
      if (it == latest.end()) {
        latest.emplace(std::string(frame.key), frame.offset);
      } else {
        it->second = frame.offset;
      }
    }
  }

  // Pass 2: rewrite each closed segment that holds an obsolete record.
  for (std::size_t i = 0; i + 1 < segments.size(); ++i) {
    const std::shared_ptr<Segment>& old = segments[i];
    std::string kept;
    std::vector<IndexEntry> index;
    bool dropped = false;
    SegmentReader reader(*old, 0, sizes[i]);
    for (;;) {
      SETTLE_ASSIGN_OR_RETURN(SegmentReader::Step step, reader.next(&frame));
      if (step == SegmentReader::Step::kEnd) break;
      if (step != SegmentReader::Step::kFrame) return corruption(*old, reader);
      auto it = latest.find(frame.key);
      SETTLE_ASSERT(it != latest.end(), "pass 1 saw every record of the snapshot");
      if (it->second != frame.offset) {
        dropped = true;
        continue;
      }
      const std::uint64_t position = kept.size();
      if (index.empty() || position >= index.back().position + options_.index_interval_bytes) {
        index.push_back(IndexEntry{frame.offset, position});
      }
      kept.append(reader.frame_bytes());
    }
    if (!dropped) continue;

    std::shared_ptr<Segment> replacement;
    if (kept.empty()) {
      SETTLE_TRY(remove_file(old->path));
      SETTLE_TRY(sync_dir(dir_));
    } else {
      std::filesystem::path temp = old->path;
      temp += kCompactingSuffix;
      auto rewrite = [&]() -> Result<UniqueFd> {
        SETTLE_ASSIGN_OR_RETURN(UniqueFd fd, open_file(temp, O_RDWR | O_CREAT | O_TRUNC));
        SETTLE_TRY(write_at(fd.get(), kept, 0, temp));
        SETTLE_TRY(sync_data(fd.get(), temp));
        SETTLE_TRY(rename_file(temp, old->path));
        return fd;
      };
      Result<UniqueFd> fd = rewrite();
      if (!fd.ok()) {
        (void)remove_file(temp);  // best effort; open() removes leftovers too
        return fd.error();
      }
      SETTLE_TRY(sync_dir(dir_));
      replacement = std::make_shared<Segment>();
      replacement->id = next_segment_id_++;
      replacement->base_offset = old->base_offset;
      replacement->path = old->path;
      replacement->fd = std::move(fd).value();
      replacement->size = kept.size();
      replacement->index = std::move(index);
      replacement->indexed = true;
    }

    std::lock_guard lock(mu_);
    auto it = std::find(segments_.begin(), segments_.end(), old);
    SETTLE_ASSERT(it != segments_.end(), "a closed segment vanished during compaction");
    if (replacement) {
      *it = std::move(replacement);
    } else {
      segments_.erase(it);
    }
    // Readers still holding the old segment keep reading its (unlinked)
    // file; cursors into it must not be used with the new one.
    for (Cursor& cursor : cursors_) cursor = Cursor{};
  }

  std::lock_guard lock(append_mu_);
  dirty_bytes_ -= std::min(dirty_bytes_, dirty_at_start);
  return ok_status();
}

}  // namespace settle::bus
