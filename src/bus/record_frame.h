// The on-disk framing of one record in a segment file. All integers are
// little-endian, whatever the host:
//
//   u32 payload_bytes | u32 crc32c(payload) | payload
//   payload = i64 offset | i64 timestamp_ms
//           | u32 key_bytes | key
//           | u32 header_count | { u32 name_bytes | name | u32 value_bytes | value }*
//           | u32 value_bytes | value
//
// The offset is stored in the record (not derived from its position) so that
// compaction can drop records and keep the survivors' offsets. The checksum
// covers the whole payload, so a torn write or a flipped bit anywhere in it is
// caught; a torn length prefix shows as a frame that runs past the data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "bus/bus.h"

namespace settle::bus {

inline constexpr std::size_t kFrameHeaderBytes = 8;
// offset + timestamp + key length + header count + value length.
inline constexpr std::size_t kPayloadBytesMin = 8 + 8 + 4 + 4 + 4;
// A limit on one record, so that a corrupt length prefix cannot make a reader
// allocate gigabytes, and so that one record always fits a reader's buffer.
inline constexpr std::size_t kPayloadBytesMax = std::size_t{16} << 20;

// The encoded payload size of `record` (without the 8-byte frame header).
std::size_t payload_bytes(const Record& record);

// Appends the frame of `record` with the given offset and timestamp to `out`.
// The caller has checked payload_bytes(record) <= kPayloadBytesMax.
void append_frame(std::string& out, std::int64_t offset, std::int64_t timestamp_ms,
                  const Record& record);

// A parsed frame; the views point into the parsed buffer.
struct FrameView {
  std::int64_t offset = 0;
  std::int64_t timestamp_ms = 0;
  std::string_view key;
  std::string_view value;
  std::string_view headers;  // the encoded header entries
  std::uint32_t header_count = 0;
  std::size_t frame_bytes = 0;  // header + payload: where the next frame starts
};

enum class FrameParse {
  kOk,          // *frame holds the first frame of `bytes`
  kIncomplete,  // `bytes` ends inside the frame: read more, or it is torn
  kCorrupt,     // bad length, checksum or structure; *why says which
};

// Parses the frame at the start of `bytes`. On kCorrupt, *why is a static
// string naming the defect.
FrameParse parse_frame(std::string_view bytes, FrameView* frame, const char** why);

// Copies a parsed frame into a record that owns its bytes.
StoredRecord to_stored_record(const FrameView& frame, std::int32_t partition);
// The same, into `out`, reusing the storage its strings and headers have.
void assign_stored_record(const FrameView& frame, std::int32_t partition, StoredRecord& out);

}  // namespace settle::bus
