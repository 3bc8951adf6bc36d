#include "bus/bus.h"

#include <cstring>

namespace settle::bus {

std::string_view StoredRecord::header(std::string_view name) const {
  for (const Header& h : headers) {
    if (h.key == name) return h.value;
  }
  return {};
}

// A transcription of org.apache.kafka.common.utils.Utils.murmur2. Java ints
// wrap on overflow and `>>>` is a logical shift, so the arithmetic is done on
// uint32_t, where both hold by definition; the bit pattern is the same.
std::uint32_t murmur2(std::string_view key) {
  const auto* data = reinterpret_cast<const unsigned char*>(key.data());
  const std::uint32_t length = static_cast<std::uint32_t>(key.size());
  const std::uint32_t seed = 0x9747b28cU;
  const std::uint32_t m = 0x5bd1e995U;
  const int r = 24;

  std::uint32_t h = seed ^ length;
  const std::uint32_t length4 = length / 4;
  for (std::uint32_t i = 0; i < length4; ++i) {
    const std::uint32_t i4 = i * 4;
    std::uint32_t k = static_cast<std::uint32_t>(data[i4 + 0]) |
                      (static_cast<std::uint32_t>(data[i4 + 1]) << 8) |
                      (static_cast<std::uint32_t>(data[i4 + 2]) << 16) |
                      (static_cast<std::uint32_t>(data[i4 + 3]) << 24);
    k *= m;
    k ^= k >> r;
    k *= m;
    h *= m;
    h ^= k;
  }

  const std::uint32_t tail = length & ~3U;
  switch (length % 4) {
    case 3:
      h ^= static_cast<std::uint32_t>(data[tail + 2]) << 16;
      [[fallthrough]];
    case 2:
      h ^= static_cast<std::uint32_t>(data[tail + 1]) << 8;
      [[fallthrough]];
    case 1:
      h ^= static_cast<std::uint32_t>(data[tail]);
      h *= m;
  }

  h ^= h >> 13;
  h *= m;
  h ^= h >> 15;
  return h;
}

std::int32_t partition_for(std::string_view key, std::int32_t partitions) {
  SETTLE_ASSERT(partitions > 0, "partition_for needs at least one partition");
  // Kafka's Utils.toPositive: clear the sign bit (not abs(), which would map
  // INT_MIN to itself).
  const std::uint32_t positive = murmur2(key) & 0x7fffffffU;
  return static_cast<std::int32_t>(positive % static_cast<std::uint32_t>(partitions));
}

}  // namespace settle::bus
