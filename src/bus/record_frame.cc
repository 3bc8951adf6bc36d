#include "bus/record_frame.h"

#include <bit>
#include <cstring>

#include "bus/crc32c.h"

namespace settle::bus {
namespace {

static_assert(std::endian::native == std::endian::little || std::endian::native == std::endian::big,
              "mixed-endian hosts are not supported");

std::uint32_t to_le(std::uint32_t v) {
  if constexpr (std::endian::native == std::endian::big) return __builtin_bswap32(v);
  return v;
}
std::uint64_t to_le(std::uint64_t v) {
  if constexpr (std::endian::native == std::endian::big) return __builtin_bswap64(v);
  return v;
}

char* put_u32(char* p, std::uint32_t v) {
  v = to_le(v);
  std::memcpy(p, &v, sizeof v);
  return p + sizeof v;
}
char* put_u64(char* p, std::uint64_t v) {
  v = to_le(v);
  std::memcpy(p, &v, sizeof v);
  return p + sizeof v;
}
char* put_bytes(char* p, std::string_view s) {
  p = put_u32(p, static_cast<std::uint32_t>(s.size()));
  if (!s.empty()) std::memcpy(p, s.data(), s.size());
  return p + s.size();
}

std::uint32_t get_u32(const char* p) {
  std::uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return to_le(v);
}
std::uint64_t get_u64(const char* p) {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return to_le(v);
}

// Reads length-prefixed fields from a payload, refusing to run past its end.
class PayloadReader {
 public:
  explicit PayloadReader(std::string_view payload) : rest_(payload) {}

  bool u32(std::uint32_t* v) {
    if (rest_.size() < 4) return false;
    *v = get_u32(rest_.data());
    rest_.remove_prefix(4);
    return true;
  }
  bool u64(std::uint64_t* v) {
    if (rest_.size() < 8) return false;
    *v = get_u64(rest_.data());
    rest_.remove_prefix(8);
    return true;
  }
  bool bytes(std::string_view* v) {
    std::uint32_t n = 0;
    if (!u32(&n) || rest_.size() < n) return false;
    *v = rest_.substr(0, n);
    rest_.remove_prefix(n);
    return true;
  }
  std::string_view rest() const { return rest_; }

 private:
  std::string_view rest_;
};

}  // namespace

std::size_t payload_bytes(const Record& record) {
  std::size_t n = kPayloadBytesMin + record.key.size() + record.value.size();
  for (const Header& h : record.headers) n += 8 + h.key.size() + h.value.size();
  return n;
}

void append_frame(std::string& out, std::int64_t offset, std::int64_t timestamp_ms,
                  const Record& record) {
  const std::size_t payload = payload_bytes(record);
  const std::size_t start = out.size();
  out.resize(start + kFrameHeaderBytes + payload);
  char* const frame = out.data() + start;
  char* p = frame + kFrameHeaderBytes;
  p = put_u64(p, static_cast<std::uint64_t>(offset));
  p = put_u64(p, static_cast<std::uint64_t>(timestamp_ms));
  p = put_bytes(p, record.key);
  p = put_u32(p, static_cast<std::uint32_t>(record.headers.size()));
  for (const Header& h : record.headers) {
    p = put_bytes(p, h.key);
    p = put_bytes(p, h.value);
  }
  p = put_bytes(p, record.value);
  SETTLE_ASSERT(p == frame + kFrameHeaderBytes + payload, "payload_bytes() disagrees with encoding");
  put_u32(frame, static_cast<std::uint32_t>(payload));
  put_u32(frame + 4, crc32c(frame + kFrameHeaderBytes, payload));
}

FrameParse parse_frame(std::string_view bytes, FrameView* frame, const char** why) {
  if (bytes.size() < kFrameHeaderBytes) return FrameParse::kIncomplete;
  const std::uint32_t payload = get_u32(bytes.data());
  if (payload < kPayloadBytesMin || payload > kPayloadBytesMax) {
    *why = "frame length out of range";
    return FrameParse::kCorrupt;
  }
  if (bytes.size() - kFrameHeaderBytes < payload) return FrameParse::kIncomplete;
  const std::string_view body = bytes.substr(kFrameHeaderBytes, payload);
  if (crc32c(body) != get_u32(bytes.data() + 4)) {
    *why = "checksum mismatch";
    return FrameParse::kCorrupt;
  }

  PayloadReader in(body);
  std::uint64_t offset = 0;
  std::uint64_t timestamp = 0;
  if (!in.u64(&offset) || !in.u64(&timestamp) || !in.bytes(&frame->key) ||
      !in.u32(&frame->header_count)) {
    *why = "payload shorter than its fields";
    return FrameParse::kCorrupt;
  }
  const std::string_view headers_start = in.rest();
  for (std::uint32_t i = 0; i < frame->header_count; ++i) {
    std::string_view name;
    std::string_view value;
    if (!in.bytes(&name) || !in.bytes(&value)) {
      *why = "header runs past the payload";
      return FrameParse::kCorrupt;
    }
  }
  frame->headers = headers_start.substr(0, headers_start.size() - in.rest().size());
  if (!in.bytes(&frame->value) || !in.rest().empty()) {
    *why = "value does not end the payload";
    return FrameParse::kCorrupt;
  }
  frame->offset = static_cast<std::int64_t>(offset);
  frame->timestamp_ms = static_cast<std::int64_t>(timestamp);
  frame->frame_bytes = kFrameHeaderBytes + payload;
  return FrameParse::kOk;
}

StoredRecord to_stored_record(const FrameView& frame, std::int32_t partition) {
  StoredRecord out;
  assign_stored_record(frame, partition, out);
  return out;
}

void assign_stored_record(const FrameView& frame, std::int32_t partition, StoredRecord& out) {
  out.partition = partition;
  out.offset = frame.offset;
  out.timestamp_ms = frame.timestamp_ms;
  out.key.assign(frame.key);
  out.value.assign(frame.value);
  out.headers.resize(frame.header_count);
  PayloadReader in(frame.headers);
  for (Header& h : out.headers) {
    std::string_view name;
    std::string_view value;
    const bool well_formed = in.bytes(&name) && in.bytes(&value);
    SETTLE_ASSERT(well_formed, "headers not checked by parse_frame");
    h.key.assign(name);
    h.value.assign(value);
  }
}

}  // namespace settle::bus
