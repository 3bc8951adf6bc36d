#include "bus/record_frame.h"

#include <gtest/gtest.h>

#include <string>

namespace settle::bus {
namespace {

Record sample() {
  Record r;
  r.key = std::string("merchant\0-7", 11);
  r.value = "{\"amount\":1250}";
  r.headers = {{"traceparent", "00-abc-def-01"}, {"h", ""}, {"h", "second"}};
  r.timestamp_ms = 1717200000123;
  return r;
}

TEST(RecordFrame, RoundTripsEveryField) {
  const Record r = sample();
  std::string buf;
  append_frame(buf, 42, r.timestamp_ms, r);
  ASSERT_EQ(buf.size(), kFrameHeaderBytes + payload_bytes(r));

  FrameView frame;
  const char* why = "";
  ASSERT_EQ(parse_frame(buf, &frame, &why), FrameParse::kOk) << why;
  EXPECT_EQ(frame.frame_bytes, buf.size());
  const StoredRecord s = to_stored_record(frame, 3);
  EXPECT_EQ(s.partition, 3);
  EXPECT_EQ(s.offset, 42);
  EXPECT_EQ(s.timestamp_ms, r.timestamp_ms);
  EXPECT_EQ(s.key, r.key);
  EXPECT_EQ(s.value, r.value);
  EXPECT_EQ(s.headers, r.headers);
  EXPECT_EQ(s.header("h"), "");
  EXPECT_EQ(s.header("traceparent"), "00-abc-def-01");
}

TEST(RecordFrame, LengthAndChecksumAreLittleEndian) {
  Record r;
  std::string buf;
  append_frame(buf, 1, 2, r);
  ASSERT_EQ(payload_bytes(r), kPayloadBytesMin);
  EXPECT_EQ(static_cast<unsigned char>(buf[0]), kPayloadBytesMin);
  EXPECT_EQ(buf[1], 0);
  EXPECT_EQ(static_cast<unsigned char>(buf[8]), 1);  // the offset's low byte
}

TEST(RecordFrame, EveryTruncationIsIncomplete) {
  std::string buf;
  append_frame(buf, 7, 1, sample());
  for (std::size_t n = 0; n < buf.size(); ++n) {
    FrameView frame;
    const char* why = "";
    EXPECT_EQ(parse_frame(std::string_view(buf).substr(0, n), &frame, &why),
              FrameParse::kIncomplete)
        << "cut at " << n;
  }
}

TEST(RecordFrame, EveryChangedByteIsDetected) {
  std::string good;
  append_frame(good, 7, 1, sample());
  for (std::size_t i = 0; i < good.size(); ++i) {
    for (int flip : {0x01, 0x80, 0xff}) {
      std::string bad = good;
      bad[i] = static_cast<char>(static_cast<unsigned char>(bad[i]) ^ flip);
      FrameView frame;
      const char* why = "";
      EXPECT_NE(parse_frame(bad, &frame, &why), FrameParse::kOk) << "byte " << i;
    }
  }
}

TEST(RecordFrame, ZeroFilledBytesAreCorrupt) {
  // What a power loss can leave at the end of a file whose size grew.
  const std::string zeros(64, '\0');
  FrameView frame;
  const char* why = "";
  EXPECT_EQ(parse_frame(zeros, &frame, &why), FrameParse::kCorrupt);
}

TEST(RecordFrame, ParsesConsecutiveFrames) {
  std::string buf;
  for (int i = 0; i < 5; ++i) append_frame(buf, i, 0, sample());
  std::string_view rest(buf);
  for (int i = 0; i < 5; ++i) {
    FrameView frame;
    const char* why = "";
    ASSERT_EQ(parse_frame(rest, &frame, &why), FrameParse::kOk);
    EXPECT_EQ(frame.offset, i);
    rest.remove_prefix(frame.frame_bytes);
  }
  EXPECT_TRUE(rest.empty());
}

}  // namespace
}  // namespace settle::bus
