#include "bus/crc32c.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace settle::bus {
namespace {

TEST(Crc32c, KnownVectors) {
  EXPECT_EQ(crc32c("123456789"), 0xE3069283U);
  EXPECT_EQ(crc32c(""), 0U);
  // RFC 3720, B.4.
  std::string buf(32, '\0');
  EXPECT_EQ(crc32c(buf), 0x8A9136AAU);
  buf.assign(32, '\xff');
  EXPECT_EQ(crc32c(buf), 0x62A8AB43U);
  for (int i = 0; i < 32; ++i) buf[i] = static_cast<char>(i);
  EXPECT_EQ(crc32c(buf), 0x46DD794EU);
  for (int i = 0; i < 32; ++i) buf[i] = static_cast<char>(31 - i);
  EXPECT_EQ(crc32c(buf), 0x113FDB5CU);
}

TEST(Crc32c, PortablePathMatchesKnownVector) {
  EXPECT_EQ(detail::crc32c_portable("123456789", 9), 0xE3069283U);
}

TEST(Crc32c, HardwareAndPortableAgreeOnRandomBuffers) {
  if (!detail::crc32c_hardware_available()) GTEST_SKIP() << "no SSE4.2 on this CPU";
  EXPECT_EQ(detail::crc32c_hardware("123456789", 9), 0xE3069283U);
  std::mt19937_64 random(20240601);
  std::vector<unsigned char> buf(70000);
  for (auto& b : buf) b = static_cast<unsigned char>(random());
  for (int round = 0; round < 2000; ++round) {
    // Every small length, then random lengths and unaligned starts.
    const std::size_t size = round < 300 ? static_cast<std::size_t>(round) : random() % 65536;
    const std::size_t start = random() % 16;
    const unsigned char* p = buf.data() + start;
    ASSERT_EQ(detail::crc32c_hardware(p, size), detail::crc32c_portable(p, size))
        << "size " << size << " start " << start;
  }
}

}  // namespace
}  // namespace settle::bus
