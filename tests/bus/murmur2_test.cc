#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "bus/bus.h"

namespace settle::bus {
namespace {

std::int32_t as_java_int(std::uint32_t h) { return static_cast<std::int32_t>(h); }

// The vectors of Kafka's UtilsTest.testMurmur2.
TEST(Murmur2, MatchesKafkaJavaClientVectors) {
  EXPECT_EQ(as_java_int(murmur2("21")), -973932308);
  EXPECT_EQ(as_java_int(murmur2("foobar")), -790332482);
  EXPECT_EQ(as_java_int(murmur2("a-little-bit-long-string")), -985981536);
  EXPECT_EQ(as_java_int(murmur2("a-little-bit-longer-string")), -1486304829);
  EXPECT_EQ(as_java_int(murmur2("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8")), -58897971);
  EXPECT_EQ(as_java_int(murmur2(std::string{'a', 'b', 'c'})), 479470107);
}

TEST(Murmur2, HashesEveryByteIncludingNulAndHighBytes) {
  const std::string with_nul("a\0b", 3);
  EXPECT_NE(murmur2(with_nul), murmur2("a"));
  EXPECT_NE(murmur2("\xff\xfe"), murmur2("\x7f\x7e"));
}

TEST(PartitionFor, IsToPositiveOfMurmur2ModuloPartitions) {
  // toPositive clears the sign bit: -973932308 & 0x7fffffff = 1173551340.
  EXPECT_EQ(murmur2("21") & 0x7fffffffU, 1173551340U);
  EXPECT_EQ(partition_for("21", 10), 0);
  EXPECT_EQ(partition_for("21", 7), static_cast<std::int32_t>(1173551340U % 7));
  EXPECT_EQ(partition_for("abc", 12), static_cast<std::int32_t>(479470107U % 12));
  for (int n = 1; n <= 64; ++n) {
    const std::int32_t p = partition_for("merchant-42", n);
    EXPECT_GE(p, 0);
    EXPECT_LT(p, n);
  }
}

TEST(PartitionFor, SingletonPartitionIsAlwaysZero) {
  EXPECT_EQ(partition_for("", 1), 0);
  EXPECT_EQ(partition_for("anything", 1), 0);
}

}  // namespace
}  // namespace settle::bus
