// FileLogBus behaviour beyond the port's contract: recovery from torn and
// corrupt files, segments, the index, compaction, locking, limits.
#include "bus/file_log_bus.h"

#include <gtest/gtest.h>

#include <sys/resource.h>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include "bus/record_frame.h"
#include "bus/segment.h"
#include "scratch_dir.h"

namespace settle::bus {
namespace {

namespace fs = std::filesystem;

Record make_record(std::string key, std::string value) {
  Record r;
  r.key = std::move(key);
  r.value = std::move(value);
  r.timestamp_ms = 1;
  return r;
}

std::string value_for(std::int64_t i) { return "value-" + std::to_string(i) + std::string(60, '~'); }

struct FrameInfo {
  std::int64_t offset;
  std::uint64_t position;
  std::uint64_t bytes;
};

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The frames of a segment file, up to the first one that does not parse.
std::vector<FrameInfo> frames_of(const fs::path& path) {
  const std::string data = read_file(path);
  std::vector<FrameInfo> frames;
  std::string_view rest(data);
  FrameView frame;
  const char* why = "";
  while (parse_frame(rest, &frame, &why) == FrameParse::kOk) {
    frames.push_back(FrameInfo{frame.offset, data.size() - rest.size(), frame.frame_bytes});
    rest.remove_prefix(frame.frame_bytes);
  }
  return frames;
}

// Where a segment file's records end (the file may go on with zeros
// written ahead).
std::uint64_t records_end(const fs::path& path) {
  const std::vector<FrameInfo> frames = frames_of(path);
  return frames.empty() ? 0 : frames.back().position + frames.back().bytes;
}

void flip_byte(const fs::path& path, std::uint64_t position) {
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  file.seekg(static_cast<std::streamoff>(position));
  char c = 0;
  file.get(c);
  file.seekp(static_cast<std::streamoff>(position));
  file.put(static_cast<char>(c ^ 0x5a));
}

class FileLogTest : public ::testing::Test {
 protected:
  FileLogOptions options() const {
    FileLogOptions o;
    o.dir = scratch_.path() / "bus";
    return o;
  }

  std::unique_ptr<FileLogBus> open(const FileLogOptions& o) {
    auto bus = FileLogBus::open(o);
    EXPECT_TRUE(bus.ok()) << bus.error().to_string();
    return bus.ok() ? std::move(bus).value() : nullptr;
  }

  fs::path partition_dir(std::string_view topic, int partition) const {
    return scratch_.path() / "bus" / std::string(topic) / std::to_string(partition);
  }

  std::vector<fs::path> segment_files(std::string_view topic, int partition) const {
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(partition_dir(topic, partition))) {
      files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    return files;
  }

  static std::vector<StoredRecord> read_all(Bus& bus, std::string_view topic, int partition) {
    std::vector<StoredRecord> all;
    std::int64_t from = 0;
    for (;;) {
      auto batch = bus.read(topic, partition, from, 500);
      EXPECT_TRUE(batch.ok()) << batch.error().to_string();
      if (!batch.ok() || batch->empty()) return all;
      from = batch->back().offset + 1;
      for (StoredRecord& r : *batch) all.push_back(std::move(r));
    }
  }

  // Appends records 0..n-1 to partition 0 of `topic`, one call each.
  static void append_each(Bus& bus, std::string_view topic, std::int64_t from, std::int64_t to) {
    for (std::int64_t i = from; i < to; ++i) {
      auto positions = bus.append_to(topic, 0, std::vector<Record>{make_record("k", value_for(i))});
      ASSERT_TRUE(positions.ok()) << positions.error().to_string();
      ASSERT_EQ(positions->front().offset, i);
    }
  }

  static void expect_values(const std::vector<StoredRecord>& records, std::int64_t count) {
    ASSERT_EQ(records.size(), static_cast<std::size_t>(count));
    for (std::int64_t i = 0; i < count; ++i) {
      EXPECT_EQ(records[static_cast<std::size_t>(i)].offset, i);
      EXPECT_EQ(records[static_cast<std::size_t>(i)].value, value_for(i));
    }
  }

  testing::ScratchDir scratch_;
};

TEST_F(FileLogTest, LayoutIsTopicJsonAndTwentyDigitSegments) {
  auto bus = open(options());
  ASSERT_TRUE(bus->create_topic(TopicConfig{"orders", 2, false}).ok());
  const std::string json = read_file(scratch_.path() / "bus" / "orders" / "topic.json");
  EXPECT_NE(json.find("\"partitions\": 2"), std::string::npos) << json;
  EXPECT_NE(json.find("\"compacted\": false"), std::string::npos) << json;
  EXPECT_TRUE(fs::exists(partition_dir("orders", 1) / "00000000000000000000.log"));
  ASSERT_TRUE(bus->commit("billing", "orders", 1, 5).ok());
  EXPECT_TRUE(fs::exists(scratch_.path() / "bus" / "__groups" / "billing.offsets"));
}

TEST_F(FileLogTest, TornTailIsCutOffAndAppendsContinue) {
  // Cut the last record's frame at several places: inside the length, inside
  // the checksum, inside the payload, one byte short.
  for (int cut_case = 0; cut_case < 5; ++cut_case) {
    SCOPED_TRACE("case " + std::to_string(cut_case));
    testing::ScratchDir scratch;
    FileLogOptions o = options();
    o.dir = scratch.path();
    std::uint64_t good_size = 0;
    std::uint64_t full_size = 0;
    const fs::path segment = scratch.path() / "t" / "0" / "00000000000000000000.log";
    {
      auto bus = open(o);
      ASSERT_TRUE(bus->create_topic(TopicConfig{"t", 1, false}).ok());
      append_each(*bus, "t", 0, 9);
      good_size = records_end(segment);
      append_each(*bus, "t", 9, 10);
      full_size = records_end(segment);
    }
    const std::uint64_t frame = full_size - good_size;
    const std::uint64_t cuts[] = {good_size + 2, good_size + 6, good_size + 8,
                                  good_size + frame / 2, full_size - 1};
    fs::resize_file(segment, cuts[cut_case]);

    auto bus = open(o);
    ASSERT_TRUE(bus);
    EXPECT_EQ(fs::file_size(segment), good_size) << "the torn tail is truncated away";
    EXPECT_EQ(bus->end_offset("t", 0).value(), 9);
    expect_values(read_all(*bus, "t", 0), 9);
    append_each(*bus, "t", 9, 12);
    expect_values(read_all(*bus, "t", 0), 12);
  }
}

TEST_F(FileLogTest, ZerosWrittenAheadAreCutOffAtOpenAndAppendsContinue) {
  const fs::path segment = partition_dir("t", 0) / "00000000000000000000.log";
  FileLogOptions o = options();
  ASSERT_EQ(o.fsync, FsyncPolicy::kEveryAppend);
  ASSERT_GT(o.preallocate_bytes, 0U);
  {
    auto bus = open(o);
    ASSERT_TRUE(bus->create_topic(TopicConfig{"t", 1, false}).ok());
    append_each(*bus, "t", 0, 9);
    EXPECT_EQ(fs::file_size(segment), frames_of(segment).front().bytes + o.preallocate_bytes)
        << "the first append wrote its record and the zeros ahead; the next ones overwrote zeros";
    expect_values(read_all(*bus, "t", 0), 9);
  }
  auto bus = open(o);
  EXPECT_EQ(fs::file_size(segment), records_end(segment)) << "recovery cuts the zeros like a torn tail";
  EXPECT_EQ(bus->end_offset("t", 0).value(), 9);
  append_each(*bus, "t", 9, 12);
  expect_values(read_all(*bus, "t", 0), 12);
}

TEST_F(FileLogTest, ATornRecordFollowedByZerosIsCutOff) {
  // A power loss in an append that overwrote zeros written ahead: the record
  // is partly on disk and the zeros follow it.
  const fs::path segment = partition_dir("t", 0) / "00000000000000000000.log";
  std::uint64_t good_end = 0;
  {
    auto bus = open(options());
    ASSERT_TRUE(bus->create_topic(TopicConfig{"t", 1, false}).ok());
    append_each(*bus, "t", 0, 10);
    const std::vector<FrameInfo> frames = frames_of(segment);
    ASSERT_EQ(frames.size(), 10U);
    good_end = frames.back().position;
    ASSERT_GT(fs::file_size(segment), good_end + frames.back().bytes) << "zeros follow the records";
    // Zero the last record's second half, as if only its first half reached the disk.
    std::fstream file(segment, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(good_end + frames.back().bytes / 2));
    const std::string zeros(frames.back().bytes - frames.back().bytes / 2, '\0');
    file.write(zeros.data(), static_cast<std::streamsize>(zeros.size()));
  }
  auto bus = open(options());
  EXPECT_EQ(fs::file_size(segment), good_end);
  EXPECT_EQ(bus->end_offset("t", 0).value(), 9);
  expect_values(read_all(*bus, "t", 0), 9);
}

TEST_F(FileLogTest, AClosedSegmentHoldsItsRecordsOnlyWhileTheBusRuns) {
  FileLogOptions o = options();
  o.segment_bytes = 4096;
  o.preallocate_bytes = 2048;
  auto bus = open(o);
  ASSERT_TRUE(bus->create_topic(TopicConfig{"t", 1, false}).ok());
  append_each(*bus, "t", 0, 200);  // ~100 bytes each: several segments
  const std::vector<fs::path> files = segment_files("t", 0);
  ASSERT_GE(files.size(), 3U);
  for (std::size_t i = 0; i + 1 < files.size(); ++i) {
    EXPECT_EQ(fs::file_size(files[i]), records_end(files[i])) << files[i] << " is closed: no zeros";
  }
  EXPECT_GT(fs::file_size(files.back()), records_end(files.back())) << "the last one has zeros ahead";
  EXPECT_LE(fs::file_size(files.back()), o.segment_bytes) << "never written ahead past the segment size";
  expect_values(read_all(*bus, "t", 0), 200);
}

TEST_F(FileLogTest, FlippedByteInTailRecordIsDetectedAndCutOff) {
  const fs::path segment = partition_dir("t", 0) / "00000000000000000000.log";
  {
    auto bus = open(options());
    ASSERT_TRUE(bus->create_topic(TopicConfig{"t", 1, false}).ok());
    append_each(*bus, "t", 0, 10);
  }
  const std::vector<FrameInfo> frames = frames_of(segment);
  ASSERT_EQ(frames.size(), 10U);
  flip_byte(segment, frames.back().position + frames.back().bytes - 3);  // in the value

  auto bus = open(options());
  EXPECT_EQ(fs::file_size(segment), frames.back().position);
  EXPECT_EQ(bus->end_offset("t", 0).value(), 9);
  expect_values(read_all(*bus, "t", 0), 9);
  append_each(*bus, "t", 9, 10);
  expect_values(read_all(*bus, "t", 0), 10);
}

TEST_F(FileLogTest, CorruptLengthInTailIsCutOff) {
  const fs::path segment = partition_dir("t", 0) / "00000000000000000000.log";
  {
    auto bus = open(options());
    ASSERT_TRUE(bus->create_topic(TopicConfig{"t", 1, false}).ok());
    append_each(*bus, "t", 0, 5);
  }
  const std::vector<FrameInfo> frames = frames_of(segment);
  flip_byte(segment, frames.back().position + 3);  // the length's high byte
  auto bus = open(options());
  EXPECT_EQ(bus->end_offset("t", 0).value(), 4);
  expect_values(read_all(*bus, "t", 0), 4);
}

TEST_F(FileLogTest, CorruptionInAnOlderSegmentIsReportedWhenRead) {
  FileLogOptions o = options();
  o.segment_bytes = 1024;
  {
    auto bus = open(o);
    ASSERT_TRUE(bus->create_topic(TopicConfig{"t", 1, false}).ok());
    append_each(*bus, "t", 0, 60);
  }
  const std::vector<fs::path> files = segment_files("t", 0);
  ASSERT_GE(files.size(), 3U);
  const std::vector<FrameInfo> frames = frames_of(files[0]);
  ASSERT_GE(frames.size(), 4U);
  const FrameInfo bad = frames[2];
  flip_byte(files[0], bad.position + bad.bytes - 5);

  auto bus = open(o);
  ASSERT_TRUE(bus) << "corruption in a closed segment does not stop the bus from opening";
  EXPECT_EQ(bus->end_offset("t", 0).value(), 60);
  // A read returns what comes before the bad record...
  auto before = bus->read("t", 0, 0, 100);
  ASSERT_TRUE(before.ok());
  ASSERT_EQ(before->size(), static_cast<std::size_t>(bad.offset));
  // ...and a read that starts at it gets kCorruption naming the file.
  auto at = bus->read("t", 0, bad.offset, 100);
  ASSERT_FALSE(at.ok());
  EXPECT_EQ(at.error().code, ErrorCode::kCorruption);
  EXPECT_NE(at.error().message.find(files[0].filename().string()), std::string::npos)
      << at.error().message;
  EXPECT_NE(at.error().message.find("topic 't' partition 0"), std::string::npos);
  // Later segments are unaffected.
  auto later = bus->read("t", 0, 55, 100);
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(later->size(), 5U);
  // Nothing was truncated: the old segment is evidence, not a tail.
  EXPECT_EQ(frames_of(files[0]).size(), 2U);
}

TEST_F(FileLogTest, SegmentsRollOverAndReadsCrossThem) {
  FileLogOptions o = options();
  o.fsync = FsyncPolicy::kNone;
  o.segment_bytes = 4096;
  o.index_interval_bytes = 512;
  constexpr std::int64_t kRecords = 1000;
  std::mt19937 random(7);
  {
    auto bus = open(o);
    ASSERT_TRUE(bus->create_topic(TopicConfig{"t", 1, false}).ok());
    std::int64_t next = 0;
    while (next < kRecords) {
      const std::int64_t n = std::min<std::int64_t>(1 + random() % 20, kRecords - next);
      std::vector<Record> batch;
      for (std::int64_t i = next; i < next + n; ++i) batch.push_back(make_record("k", value_for(i)));
      auto positions = bus->append_to("t", 0, batch);
      ASSERT_TRUE(positions.ok());
      ASSERT_EQ(positions->front().offset, next);
      next += n;
    }
    auto bases = bus->segment_bases("t", 0);
    ASSERT_TRUE(bases.ok());
    EXPECT_GT(bases->size(), 10U);
  }

  const std::vector<fs::path> files = segment_files("t", 0);
  ASSERT_GT(files.size(), 10U);
  std::int64_t expected_base = 0;
  for (const fs::path& file : files) {
    const auto base = parse_segment_file_name(file.filename().string());
    ASSERT_TRUE(base) << file;
    EXPECT_EQ(*base, expected_base) << "a segment's name is the offset of its first record";
    const std::vector<FrameInfo> frames = frames_of(file);
    ASSERT_FALSE(frames.empty());
    EXPECT_EQ(frames.front().offset, *base);
    EXPECT_LE(fs::file_size(file), o.segment_bytes);
    expected_base = frames.back().offset + 1;
  }

  for (int pass = 0; pass < 2; ++pass) {
    auto bus = open(o);
    expect_values(read_all(*bus, "t", 0), kRecords);
    // From every offset, a few records, across segment boundaries.
    for (std::int64_t from = 0; from < kRecords; ++from) {
      auto records = bus->read("t", 0, from, 7);
      ASSERT_TRUE(records.ok());
      const auto want = static_cast<std::size_t>(std::min<std::int64_t>(7, kRecords - from));
      ASSERT_EQ(records->size(), want) << "from " << from;
      for (std::size_t i = 0; i < want; ++i) {
        ASSERT_EQ((*records)[i].offset, from + static_cast<std::int64_t>(i));
        ASSERT_EQ((*records)[i].value, value_for(from + static_cast<std::int64_t>(i)));
      }
    }
  }
}

TEST_F(FileLogTest, RandomReadsMatchTheLog) {
  FileLogOptions o = options();
  o.fsync = FsyncPolicy::kNone;
  o.segment_bytes = 64 << 10;
  auto bus = open(o);
  ASSERT_TRUE(bus->create_topic(TopicConfig{"t", 1, false}).ok());
  constexpr std::int64_t kRecords = 5000;
  std::vector<Record> batch;
  for (std::int64_t i = 0; i < kRecords; ++i) batch.push_back(make_record("k", value_for(i)));
  ASSERT_TRUE(bus->append_to("t", 0, batch).ok());
  std::mt19937 random(11);
  for (int i = 0; i < 2000; ++i) {
    const std::int64_t from = random() % kRecords;
    auto records = bus->read("t", 0, from, 1 + random() % 3);
    ASSERT_TRUE(records.ok());
    ASSERT_FALSE(records->empty());
    ASSERT_EQ(records->front().offset, from);
    ASSERT_EQ(records->front().value, value_for(from));
  }
}

TEST_F(FileLogTest, CompactionPreservesOffsetsAndLatestValues) {
  FileLogOptions o = options();
  o.fsync = FsyncPolicy::kNone;
  o.segment_bytes = 2048;
  o.compaction_dirty_bytes = 0;  // explicit compact() only
  std::map<std::int64_t, std::pair<std::string, std::string>> written;  // offset -> key, value
  std::map<std::string, std::string> model;
  std::map<std::string, std::int64_t> latest_offset;
  std::uint64_t bytes_before = 0;
  {
    auto bus = open(o);
    ASSERT_TRUE(bus->create_topic(TopicConfig{"config", 1, true}).ok());
    for (std::int64_t i = 0; i < 600; ++i) {
      const std::string key = "merchant-" + std::to_string(i % 12);
      const std::string value = i % 11 == 0 ? "" : value_for(i);
      auto positions = bus->append_to("config", 0, std::vector<Record>{make_record(key, value)});
      ASSERT_TRUE(positions.ok());
      ASSERT_EQ(positions->front().offset, i);
      written[i] = {key, value};
      latest_offset[key] = i;
      if (value.empty()) {
        model.erase(key);
      } else {
        model[key] = value;
      }
    }
    for (const fs::path& f : segment_files("config", 0)) bytes_before += fs::file_size(f);

    Status compacted = bus->compact("config");
    ASSERT_TRUE(compacted.ok()) << compacted.error().to_string();
    EXPECT_EQ(bus->latest_values("config").value(), model);
  }
  std::uint64_t bytes_after = 0;
  for (const fs::path& f : segment_files("config", 0)) bytes_after += fs::file_size(f);
  EXPECT_LT(bytes_after * 4, bytes_before) << "most of the history is gone";

  for (int pass = 0; pass < 2; ++pass) {
    auto bus = open(o);
    const std::vector<StoredRecord> records = read_all(*bus, "config", 0);
    ASSERT_FALSE(records.empty());
    std::int64_t previous = -1;
    std::map<std::string, int> per_key;
    for (const StoredRecord& r : records) {
      EXPECT_GT(r.offset, previous) << "offsets still increase";
      previous = r.offset;
      // The record at an offset is the one written there.
      EXPECT_EQ(r.key, written[r.offset].first);
      EXPECT_EQ(r.value, written[r.offset].second);
      ++per_key[r.key];
    }
    // Every key's latest record survives (tombstones too).
    for (const auto& [key, offset] : latest_offset) {
      auto at = bus->read("config", 0, offset, 1);
      ASSERT_TRUE(at.ok());
      ASSERT_EQ(at->size(), 1U);
      EXPECT_EQ(at->front().offset, offset);
      EXPECT_EQ(at->front().key, key);
    }
    EXPECT_EQ(bus->latest_values("config").value(), model);
    EXPECT_EQ(bus->end_offset("config", 0).value(), 600 + pass);
    if (pass == 0) {
      auto next = bus->append_to("config", 0, std::vector<Record>{make_record("new", "v")});
      ASSERT_TRUE(next.ok());
      EXPECT_EQ(next->front().offset, 600);
      written[600] = {"new", "v"};
      latest_offset["new"] = 600;
      model["new"] = "v";
    }
  }
}

TEST_F(FileLogTest, CompactionRunsByItselfPastTheDirtyThreshold) {
  FileLogOptions o = options();
  o.fsync = FsyncPolicy::kNone;
  o.segment_bytes = 4096;
  o.compaction_dirty_bytes = 16384;
  auto bus = open(o);
  ASSERT_TRUE(bus->create_topic(TopicConfig{"config", 1, true}).ok());
  std::map<std::string, std::string> model;
  for (std::int64_t i = 0; i < 5000; ++i) {
    const std::string key = "k" + std::to_string(i % 8);
    ASSERT_TRUE(bus->append_to("config", 0, std::vector<Record>{make_record(key, value_for(i))}).ok());
    model[key] = value_for(i);
  }
  std::uint64_t bytes = 0;
  for (const fs::path& f : segment_files("config", 0)) bytes += fs::file_size(f);
  // 5000 records of ~100 bytes is ~500 KB uncompacted.
  EXPECT_LT(bytes, 100'000U);
  EXPECT_EQ(bus->latest_values("config").value(), model);
  EXPECT_EQ(bus->end_offset("config", 0).value(), 5000);
}

TEST_F(FileLogTest, CompactRefusesATopicThatIsNotCompacted) {
  auto bus = open(options());
  ASSERT_TRUE(bus->create_topic(TopicConfig{"orders", 1, false}).ok());
  EXPECT_EQ(bus->compact("orders").error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(bus->compact("nope").error().code, ErrorCode::kNotFound);
}

TEST_F(FileLogTest, ReopenAfterManyAppendsKeepsEverything) {
  FileLogOptions o = options();
  o.fsync = FsyncPolicy::kNone;
  o.segment_bytes = 256 << 10;
  constexpr int kPartitions = 4;
  constexpr int kRecords = 40000;
  std::vector<std::vector<std::string>> expected(kPartitions);
  {
    auto bus = open(o);
    ASSERT_TRUE(bus->create_topic(TopicConfig{"events", kPartitions, false}).ok());
    for (int start = 0; start < kRecords; start += 500) {
      std::vector<Record> batch;
      for (int i = start; i < start + 500; ++i) {
        batch.push_back(make_record("merchant-" + std::to_string(i % 97), value_for(i)));
      }
      auto positions = bus->append("events", batch);
      ASSERT_TRUE(positions.ok());
      for (std::size_t j = 0; j < batch.size(); ++j) {
        auto& list = expected[static_cast<std::size_t>((*positions)[j].partition)];
        ASSERT_EQ((*positions)[j].offset, static_cast<std::int64_t>(list.size()));
        list.push_back(batch[j].value);
      }
    }
  }
  auto bus = open(o);
  for (int p = 0; p < kPartitions; ++p) {
    const std::vector<StoredRecord> records = read_all(*bus, "events", p);
    const auto& want = expected[static_cast<std::size_t>(p)];
    ASSERT_EQ(records.size(), want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
      ASSERT_EQ(records[i].offset, static_cast<std::int64_t>(i));
      ASSERT_EQ(records[i].value, want[i]);
    }
    EXPECT_EQ(bus->end_offset("events", p).value(), static_cast<std::int64_t>(want.size()));
  }
}

TEST_F(FileLogTest, ASecondOpenOfTheSameDirectoryIsUnavailable) {
  auto first = open(options());
  auto second = FileLogBus::open(options());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, ErrorCode::kUnavailable);
  first.reset();
  EXPECT_TRUE(FileLogBus::open(options()).ok());
}

TEST_F(FileLogTest, RefusesBadRecordsBeforeWritingAny) {
  auto bus = open(options());
  ASSERT_TRUE(bus->create_topic(TopicConfig{"orders", 4, false}).ok());
  ASSERT_TRUE(bus->create_topic(TopicConfig{"config", 1, true}).ok());

  std::vector<Record> batch;
  for (int i = 0; i < 8; ++i) batch.push_back(make_record("m" + std::to_string(i), "ok"));
  batch.push_back(make_record("big", std::string(kPayloadBytesMax + 1, 'x')));
  auto refused = bus->append("orders", batch);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument);
  for (int p = 0; p < 4; ++p) EXPECT_EQ(bus->end_offset("orders", p).value(), 0);

  auto keyless = bus->append("config", std::vector<Record>{make_record("", "v")});
  ASSERT_FALSE(keyless.ok());
  EXPECT_EQ(keyless.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(keyless.error().message.find("config"), std::string::npos);
}

// A key that partition_for() sends to `partition` of `partitions`.
std::string key_on(std::int32_t partition, std::int32_t partitions) {
  for (int i = 0;; ++i) {
    std::string key = "key-" + std::to_string(i);
    if (partition_for(key, partitions) == partition) return key;
  }
}

// Lowers the process's file size limit (writes past it fail with EFBIG)
// until destroyed.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    previous_signal_ = std::signal(SIGXFSZ, SIG_IGN);
    ::getrlimit(RLIMIT_FSIZE, &previous_);
    rlimit lowered = previous_;
    lowered.rlim_cur = bytes;
    ok_ = ::setrlimit(RLIMIT_FSIZE, &lowered) == 0;
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &previous_);
    std::signal(SIGXFSZ, previous_signal_);
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;
  bool ok() const { return ok_; }

 private:
  rlimit previous_{};
  void (*previous_signal_)(int) = nullptr;
  bool ok_ = false;
};

TEST_F(FileLogTest, AnAppendAcrossPartitionsThatOneCannotTakeKeepsThoseBeforeItAndARetryEndsIt) {
  FileLogOptions o = options();
  o.preallocate_bytes = 0;  // each file as long as its records
  auto bus = open(o);
  ASSERT_TRUE(bus->create_topic(TopicConfig{"orders", 4, false}).ok());
  // Partition 2 grows past the limit set below; the others stay under it.
  ASSERT_TRUE(bus->append_to("orders", 2, std::vector<Record>{make_record(key_on(2, 4),
                                                                          std::string(64 << 10, 'x'))})
                  .ok());
  std::vector<Record> batch;
  for (std::int32_t p = 0; p < 4; ++p) batch.push_back(make_record(key_on(p, 4), value_for(p)));

  {
    FileSizeLimit limit(32 << 10);
    ASSERT_TRUE(limit.ok());
    auto failed = bus->append("orders", batch);
    ASSERT_FALSE(failed.ok());
    EXPECT_EQ(failed.error().code, ErrorCode::kIo);
    EXPECT_NE(failed.error().message.find("orders"), std::string::npos) << failed.error().message;
  }
  // Partitions 0 and 1 took their records before 2 failed; 3 was not tried.
  EXPECT_EQ(bus->end_offset("orders", 0).value(), 1);
  EXPECT_EQ(bus->end_offset("orders", 1).value(), 1);
  EXPECT_EQ(bus->end_offset("orders", 2).value(), 1);
  EXPECT_EQ(bus->end_offset("orders", 3).value(), 0);

  // Partition 2 cut off what reached its file, so the retry lands cleanly.
  auto retried = bus->append("orders", batch);
  ASSERT_TRUE(retried.ok()) << retried.error().to_string();
  EXPECT_EQ((*retried)[2].offset, 1);
  EXPECT_EQ((*retried)[3].offset, 0);

  bus.reset();
  bus = open(o);
  const std::vector<std::int64_t> ends = {2, 2, 2, 1};
  for (std::int32_t p = 0; p < 4; ++p) {
    const std::vector<StoredRecord> records = read_all(*bus, "orders", p);
    ASSERT_EQ(records.size(), static_cast<std::size_t>(ends[static_cast<std::size_t>(p)]))
        << "partition " << p;
    EXPECT_EQ(records.back().value, value_for(p));
    EXPECT_EQ(frames_of(segment_files("orders", p).back()).size(), records.size());
  }
}

TEST_F(FileLogTest, ConcurrentAppendsAcrossPartitionsOfACompactedTopicCompactAndKeepTheLatest) {
  FileLogOptions o = options();
  o.segment_bytes = 4096;
  o.compaction_dirty_bytes = 8192;
  auto bus = open(o);
  ASSERT_TRUE(bus->create_topic(TopicConfig{"config", 4, true}).ok());
  constexpr int kThreads = 3;
  constexpr int kCalls = 150;
  std::vector<std::thread> threads;
  std::vector<std::string> failures(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int c = 0; c < kCalls; ++c) {
        std::vector<Record> batch;
        // Every call spans the four partitions; the threads share no key.
        for (int k = 0; k < 8; ++k) {
          batch.push_back(make_record("t" + std::to_string(t) + "-k" + std::to_string(k),
                                      value_for(c)));
        }
        auto positions = bus->append("config", batch);
        if (!positions.ok()) {
          failures[static_cast<std::size_t>(t)] = positions.error().to_string();
          return;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const std::string& failure : failures) EXPECT_EQ(failure, "");

  std::map<std::string, std::string> expected;
  for (int t = 0; t < kThreads; ++t) {
    for (int k = 0; k < 8; ++k) {
      expected["t" + std::to_string(t) + "-k" + std::to_string(k)] = value_for(kCalls - 1);
    }
  }
  EXPECT_EQ(bus->latest_values("config").value(), expected);
  std::int64_t appended = 0;
  std::size_t kept = 0;
  for (std::int32_t p = 0; p < 4; ++p) {
    appended += bus->end_offset("config", p).value();
    kept += read_all(*bus, "config", p).size();
  }
  EXPECT_EQ(appended, kThreads * kCalls * 8);
  // 3,600 records of ~100 bytes: compaction must have dropped most of them.
  EXPECT_LT(kept, static_cast<std::size_t>(appended) / 2);
}

TEST_F(FileLogTest, RejectsBadNamesAndOptions) {
  auto bus = open(options());
  for (const char* bad : {"", ".", "..", "a/b", "has space", "__groups", "__x"}) {
    EXPECT_EQ(bus->create_topic(TopicConfig{bad, 1, false}).error().code,
              ErrorCode::kInvalidArgument)
        << bad;
  }
  EXPECT_EQ(bus->create_topic(TopicConfig{"t", 0, false}).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_TRUE(bus->create_topic(TopicConfig{std::string(249, 'a'), 1, false}).ok());
  EXPECT_EQ(bus->create_topic(TopicConfig{std::string(250, 'a'), 1, false}).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(bus->read(std::string(249, 'a'), 0, -1, 1).error().code, ErrorCode::kInvalidArgument);

  FileLogOptions no_dir;
  EXPECT_EQ(FileLogBus::open(no_dir).error().code, ErrorCode::kInvalidArgument);
}

TEST_F(FileLogTest, UnkeyedRecordsOfOneCallShareAPartitionAndCallsRotate) {
  auto bus = open(options());
  ASSERT_TRUE(bus->create_topic(TopicConfig{"t", 3, false}).ok());
  std::set<std::int32_t> used;
  for (int call = 0; call < 3; ++call) {
    auto positions = bus->append("t", std::vector<Record>{make_record("", "a"), make_record("", "b")});
    ASSERT_TRUE(positions.ok());
    EXPECT_EQ((*positions)[0].partition, (*positions)[1].partition);
    used.insert((*positions)[0].partition);
  }
  EXPECT_EQ(used.size(), 3U);
}

TEST_F(FileLogTest, GroupNamesAreEscapedInFileNames) {
  const std::string group = "billing/eu west.%\n";
  {
    auto bus = open(options());
    ASSERT_TRUE(bus->create_topic(TopicConfig{"orders", 1, false}).ok());
    ASSERT_TRUE(bus->commit(group, "orders", 0, 42).ok());
    EXPECT_EQ(bus->commit("", "orders", 0, 1).error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(bus->commit(std::string(300, 'g'), "orders", 0, 1).error().code,
              ErrorCode::kInvalidArgument);
    EXPECT_EQ(bus->commit("g", "orders", 0, -1).error().code, ErrorCode::kInvalidArgument);
  }
  auto bus = open(options());
  EXPECT_EQ(bus->committed(group, "orders", 0).value(), 42);
  EXPECT_EQ(bus->committed("billing", "orders", 0).value(), 0);
}

TEST_F(FileLogTest, LeftoversOfInterruptedWorkAreCleanedUp) {
  {
    auto bus = open(options());
    ASSERT_TRUE(bus->create_topic(TopicConfig{"config", 1, true}).ok());
    append_each(*bus, "config", 0, 3);
  }
  // A compaction and a commit that died before their renames, and a
  // create_topic that died before writing topic.json.
  std::ofstream(partition_dir("config", 0) / "00000000000000000000.log.compacting") << "junk";
  std::ofstream(scratch_.path() / "bus" / "__groups" / "g.offsets.tmp") << "junk";
  fs::create_directories(scratch_.path() / "bus" / "half" / "0");

  auto bus = open(options());
  ASSERT_TRUE(bus);
  EXPECT_FALSE(fs::exists(partition_dir("config", 0) / "00000000000000000000.log.compacting"));
  EXPECT_FALSE(fs::exists(scratch_.path() / "bus" / "__groups" / "g.offsets.tmp"));
  expect_values(read_all(*bus, "config", 0), 3);
  EXPECT_EQ(bus->partition_count("half").error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(bus->create_topic(TopicConfig{"half", 2, false}).ok());
  EXPECT_EQ(bus->partition_count("half").value(), 2);
}

TEST_F(FileLogTest, ACorruptTopicFileStopsTheOpenWithCorruption) {
  {
    auto bus = open(options());
    ASSERT_TRUE(bus->create_topic(TopicConfig{"orders", 1, false}).ok());
  }
  std::ofstream(scratch_.path() / "bus" / "orders" / "topic.json") << "{\"partitions\": \"two\"}";
  auto bus = FileLogBus::open(options());
  ASSERT_FALSE(bus.ok());
  EXPECT_EQ(bus.error().code, ErrorCode::kCorruption);
  EXPECT_NE(bus.error().message.find("topic.json"), std::string::npos);
}

TEST_F(FileLogTest, ReadsKeepUpWithAppendsAcrossRollsAndCompaction) {
  FileLogOptions o = options();
  o.fsync = FsyncPolicy::kNone;
  o.segment_bytes = 1024;
  o.compaction_dirty_bytes = 4096;
  auto bus = open(o);
  ASSERT_TRUE(bus->create_topic(TopicConfig{"config", 1, true}).ok());
  std::atomic<bool> stop{false};
  std::string failure;
  std::thread reader([&] {
    while (!stop.load()) {
      auto records = bus->read("config", 0, 0, 100000);
      if (!records.ok()) {
        failure = records.error().to_string();
        return;
      }
      std::int64_t previous = -1;
      for (const StoredRecord& r : *records) {
        if (r.offset <= previous || r.value != value_for(r.offset)) {
          failure = "bad record at " + std::to_string(r.offset);
          return;
        }
        previous = r.offset;
      }
    }
  });
  for (std::int64_t i = 0; i < 1500; ++i) {
    auto appended =
        bus->append_to("config", 0, std::vector<Record>{make_record("k" + std::to_string(i % 5), value_for(i))});
    if (!appended.ok()) {
      ADD_FAILURE() << appended.error().to_string();
      break;
    }
  }
  stop = true;
  reader.join();
  EXPECT_EQ(failure, "");
}

}  // namespace
}  // namespace settle::bus
