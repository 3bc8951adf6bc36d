#include "bus/crc32c.h"

#include <boost/crc.hpp>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

#include "common/assert.h"

namespace settle::bus {
namespace detail {

std::uint32_t crc32c_portable(const void* data, std::size_t size) {
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;
  crc.process_bytes(data, size);
  return crc.checksum();
}

#if defined(__x86_64__)

bool crc32c_hardware_available() { return __builtin_cpu_supports("sse4.2"); }

// Compiled for SSE4.2 on its own so that the rest of the binary still runs on
// CPUs without it; crc32c() calls it only after the runtime check.
__attribute__((target("sse4.2"))) std::uint32_t crc32c_hardware(const void* data,
                                                                std::size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint64_t crc = 0xFFFFFFFFU;
  while (size >= 8) {
    std::uint64_t word;
    std::memcpy(&word, p, sizeof word);  // unaligned load without UB
    crc = _mm_crc32_u64(crc, word);
    p += 8;
    size -= 8;
  }
  auto crc32 = static_cast<std::uint32_t>(crc);
  while (size > 0) {
    crc32 = _mm_crc32_u8(crc32, *p);
    ++p;
    --size;
  }
  return crc32 ^ 0xFFFFFFFFU;
}

#else

bool crc32c_hardware_available() { return false; }

std::uint32_t crc32c_hardware(const void*, std::size_t) {
  SETTLE_ASSERT(false, "crc32c_hardware on a CPU without it");
}

#endif

}  // namespace detail

std::uint32_t crc32c(const void* data, std::size_t size) {
  using Fn = std::uint32_t (*)(const void*, std::size_t);
  static const Fn impl =
      detail::crc32c_hardware_available() ? detail::crc32c_hardware : detail::crc32c_portable;
  return impl(data, size);
}

}  // namespace settle::bus
