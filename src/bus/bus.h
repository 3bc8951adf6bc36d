// The bus port: a durable, partitioned, ordered log (Kafka's model).
//
// Contract (tests/bus/bus_contract.h runs it against every implementation):
// - A topic has a fixed number of partitions. A keyed record goes to
//   partition_for(key, partitions): murmur2 as Kafka's Java client and
//   librdkafka's murmur2_random compute it, so a merchant lands on the same
//   partition on every backend.
// - append() returns each record's offset only once the record is durable under
//   the configured policy; offsets in a partition start at 0 and increase by 1.
// - read() returns records of one partition from an offset, in order, with
//   their headers, at most `max_records`; fewer (or none) at the end.
// - commit()/committed() keep a consumer group's next offset per partition.
// - A compacted topic keeps at least the latest value per key; latest_values()
//   returns exactly that (an empty value is a tombstone and removes the key).
// Thread safety: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace settle::bus {

struct Header {
  std::string key;
  std::string value;
  bool operator==(const Header&) const = default;
};

struct Record {
  std::string key;
  std::string value;
  std::vector<Header> headers;
  std::int64_t timestamp_ms = 0;  // producer time; 0 = let the bus stamp it
};

struct StoredRecord {
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::int64_t timestamp_ms = 0;
  std::string key;
  std::string value;
  std::vector<Header> headers;

  // The value of the first header named `key`, or "" when absent.
  std::string_view header(std::string_view key) const;
};

// What Bus::read_into() reads into: the last read's records, in storage kept
// from read to read. A consumer that keeps one reads without an allocation
// per record and field once it has held as many records as a read brings; a
// vector would drop the records past a shorter read and build them again for
// a longer one. It holds at most as many records as its largest read.
class ReadBuffer {
 public:
  std::span<const StoredRecord> records() const { return {slots_.data(), size_}; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // For a bus filling it. clear() forgets the records and keeps their
  // storage; next_slot() is the next record's, which the bus writes over
  // whole (it still holds an older record's fields).
  void clear() { size_ = 0; }
  StoredRecord& next_slot() {
    if (size_ == slots_.size()) slots_.emplace_back();
    return slots_[size_++];
  }
  // Replaces the records with these.
  void assign(std::vector<StoredRecord> records) {
    slots_ = std::move(records);
    size_ = slots_.size();
  }
  // The records, as a vector; leaves it empty.
  std::vector<StoredRecord> take() {
    slots_.resize(size_);
    size_ = 0;
    return std::move(slots_);
  }

 private:
  std::vector<StoredRecord> slots_;
  std::size_t size_ = 0;
};

struct TopicConfig {
  std::string name;
  std::int32_t partitions = 1;
  bool compacted = false;
};

struct Position {
  std::int32_t partition = 0;
  std::int64_t offset = 0;
};

// Kafka's partitioner for keyed records: toPositive(murmur2(key)) % partitions.
std::uint32_t murmur2(std::string_view key);
std::int32_t partition_for(std::string_view key, std::int32_t partitions);

class Bus {
 public:
  virtual ~Bus() = default;

  // Creates the topic, or checks that an existing one has this configuration
  // (kConflict when its partition count or compaction differs).
  virtual Status create_topic(const TopicConfig& config) = 0;
  virtual Result<std::int32_t> partition_count(std::string_view topic) = 0;

  // Appends each record to partition_for(record.key); returns positions in
  // the order of `records` once all of them are durable.
  virtual Result<std::vector<Position>> append(std::string_view topic,
                                               std::span<const Record> records) = 0;
  // Appends to one named partition.
  virtual Result<std::vector<Position>> append_to(std::string_view topic, std::int32_t partition,
                                                  std::span<const Record> records) = 0;

  virtual Result<std::vector<StoredRecord>> read(std::string_view topic, std::int32_t partition,
                                                 std::int64_t from_offset,
                                                 std::size_t max_records) = 0;
  // read() into `out`, whose records it replaces (none on an error). A bus
  // may reuse the storage `out` kept (see ReadBuffer).
  virtual Status read_into(std::string_view topic, std::int32_t partition, std::int64_t from_offset,
                           std::size_t max_records, ReadBuffer& out) {
    auto records = read(topic, partition, from_offset, max_records);
    if (!records.ok()) {
      out.clear();
      return records.error();
    }
    out.assign(std::move(records).value());
    return ok_status();
  }
  // The offset the next record appended to the partition will get.
  virtual Result<std::int64_t> end_offset(std::string_view topic, std::int32_t partition) = 0;

  virtual Status commit(std::string_view group, std::string_view topic, std::int32_t partition,
                        std::int64_t next_offset) = 0;
  // The group's committed next offset, or 0 when it has committed none.
  virtual Result<std::int64_t> committed(std::string_view group, std::string_view topic,
                                         std::int32_t partition) = 0;

  virtual Result<std::map<std::string, std::string>> latest_values(std::string_view topic) = 0;
};

}  // namespace settle::bus
