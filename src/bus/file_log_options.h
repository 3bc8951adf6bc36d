// The knobs of the embedded file-backed bus (file_log_bus.h). Every field
// states its default and what it trades.
#pragma once

#include <cstdint>
#include <filesystem>

namespace settle::bus {

enum class FsyncPolicy {
  // fdatasync before append() returns: an acknowledged record survives a
  // power loss. Costs one fdatasync per append() call per partition touched.
  kEveryAppend,
  // Leave writing back to the OS: an acknowledged record survives a crash of
  // the process, not a power loss (which may also leave committed offsets past
  // the end of a log that lost its tail). For tests, benchmarks and data that
  // can be replayed.
  kNone,
};

struct FileLogOptions {
  // The bus's directory; created if missing. One FileLogBus at a time may
  // hold it (a lock file enforces it, across processes too).
  std::filesystem::path dir;

  // See FsyncPolicy. Consumer-group offsets and topic metadata are written
  // durably (temp file, fsync, rename) whatever this says: they are small
  // and rare, and a torn one would stop the bus from opening.
  FsyncPolicy fsync = FsyncPolicy::kEveryAppend;

  // A partition starts a new segment file when the current one would grow
  // past this. Smaller: compaction works in smaller steps and reclaims space
  // sooner; larger: fewer files (each open segment holds a file descriptor).
  // One append() call's records for a partition always go to one segment, so
  // a large batch may overshoot it.
  std::uint64_t segment_bytes = std::uint64_t{64} << 20;

  // Under kEveryAppend, a small append that would grow the last segment's
  // file first grows it by this many zero bytes more, and later appends
  // overwrite those zeros. An fdatasync after an append that grows a file
  // must also write the file's size (the inode, or a journal commit): two
  // device writes instead of one. Zeros written ahead make most appends
  // plain overwrites, which halved the CPU of each fdatasync and took 40% off
  // its latency on the benchmark machine, for one zero write per this many
  // bytes appended. Appends larger than a quarter of it just grow the file.
  // The zeros never reach a reader: a closing segment is cut to its records,
  // and recovery cuts them off like a torn tail. Each partition that takes
  // appends holds up to this much more on disk while the bus is open. 0:
  // never write ahead.
  std::uint64_t preallocate_bytes = std::uint64_t{256} << 10;

  // A sparse index entry every this many bytes of a segment: a read from an
  // arbitrary offset scans at most about this much before its first record.
  // Memory: 16 bytes per entry, i.e. 0.4% of the log at 4 KiB.
  std::uint64_t index_interval_bytes = 4096;

  // A compacted topic's partition is compacted after this many bytes of
  // segments have been closed since its last compaction (0: only on an
  // explicit FileLogBus::compact()). The compaction runs in the append() call
  // that closes the segment, after the records are durable; that call takes
  // longer (it rereads the partition), other appends and reads are not held.
  std::uint64_t compaction_dirty_bytes = std::uint64_t{256} << 20;
};

}  // namespace settle::bus
