// The production bus: Apache Kafka through librdkafka. It implements the Bus
// port (bus.h) and passes its contract suite (tests/bus/kafka_bus_contract_test.cc,
// on librdkafka's mock cluster hosted by tools/kafka-mock).
//
// URL: kafka://host:port[,host:port...][?name=value&...], where each name is
// a KafkaOptions field (linger_ms, batch_num_messages, batch_bytes,
// timeout_ms, replication_factor, retention_ms, session_timeout_ms,
// heartbeat_ms, client_id, mock_admin); URL values override `options`.
//
// Producing: one idempotent producer (enable.idempotence=true, acks=all,
// partitioner murmur2_random, so a keyed record lands on partition_for(key)
// as on the embedded bus). append() enqueues the call's records back to back
// and returns once every one has its delivery report with its offset; a
// record that fails fails the call (earlier ones may be in the log: the
// consumers' idempotence absorbs a retry's duplicates). Records with an empty
// key go to a random partition.
//
// Reading: one consumer in assign() mode with a queue per partition; read()
// keeps each partition's position, so sequential reads continue the fetch
// stream and only a read from another offset seeks (seeks() counts them).
// Reads of different partitions are served one at a time.
//
// Offsets: commit()/committed() use a consumer per group, offsets committed
// explicitly (never automatically). While a group has live members
// (group.h), commit through the member instead.
//
// Topics: create_topic() uses the Admin API (CreateTopics; cleanup.policy
// compact for compacted topics; an existing topic is checked with Metadata and
// DescribeConfigs). librdkafka's mock cluster implements neither, so with
// `mock_admin=host:port` topics are administered through settle-kafka-mock's
// admin port instead (tests and benchmarks only).
//
// Errors: an unknown topic is kNotFound; a partition out of range
// kInvalidArgument; a topic that exists with another partition count or
// cleanup policy kConflict; an unreachable cluster, a timeout or a broker
// refusal kUnavailable, with librdkafka's reason and the last broker error.
// Every call is bounded by timeout_ms (a delivery by message.timeout.ms =
// timeout_ms); none hangs.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "bus/bus.h"
#include "bus/group.h"
#include "common/result.h"

// librdkafka's handle types, kept out of this header.
typedef struct rd_kafka_s rd_kafka_t;
typedef struct rd_kafka_queue_s rd_kafka_queue_t;

namespace settle::bus {

struct KafkaOptions {
  // Producer batching: a record waits up to linger_ms for others to share its
  // request (throughput against latency of a lone append()). append() waits
  // for its records' acknowledgements, so the last request of every call
  // waits this long: 1 ms, not librdkafka's 5, took a synchronous append of
  // 4,096 records from 0.6M to 1.26M msg/s (docs/performance.md, round 6).
  // Concurrent appends still share requests while earlier ones are in flight.
  std::int32_t linger_ms = 1;
  std::int32_t batch_num_messages = 10'000;
  std::int32_t batch_bytes = 1'000'000;
  // The bound on every call: a delivery, a metadata lookup, a commit, a read
  // that waits for records the broker says exist.
  std::int32_t timeout_ms = 10'000;
  // New topics: replication factor (-1: the broker's default) and retention
  // of non-compacted topics (-1: the broker's default, 0: forever).
  std::int32_t replication_factor = -1;
  std::int64_t retention_ms = -1;
  // Group membership (group.h): a member that sends no heartbeat for
  // session_timeout_ms loses its partitions.
  std::int32_t session_timeout_ms = 10'000;
  std::int32_t heartbeat_ms = 1'000;
  std::string client_id = "settled";
  // "host:port" of settle-kafka-mock's admin port (see the class comment).
  std::string mock_admin;
};

// Per-topic settings for create_topic beyond the port's TopicConfig.
struct KafkaTopicSettings {
  std::int32_t replication_factor = -1;  // -1: KafkaOptions::replication_factor
  std::int64_t retention_ms = -1;        // -1: KafkaOptions::retention_ms
};

class KafkaBus final : public Bus {
 public:
  // Parses the URL, connects and checks that a broker answers within
  // timeout_ms (kUnavailable otherwise); kInvalidArgument for a bad URL.
  static Result<std::unique_ptr<KafkaBus>> open(const std::string& url,
                                                KafkaOptions options = {});
  // Parses the URL into options (exposed for the CLI and tests).
  static Result<std::pair<std::string, KafkaOptions>> parse_url(const std::string& url,
                                                                KafkaOptions options = {});

  ~KafkaBus() override;
  KafkaBus(const KafkaBus&) = delete;
  KafkaBus& operator=(const KafkaBus&) = delete;

  Status create_topic(const TopicConfig& config) override;
  Status create_topic(const TopicConfig& config, const KafkaTopicSettings& settings);
  Result<std::int32_t> partition_count(std::string_view topic) override;
  Result<std::vector<Position>> append(std::string_view topic,
                                       std::span<const Record> records) override;
  Result<std::vector<Position>> append_to(std::string_view topic, std::int32_t partition,
                                          std::span<const Record> records) override;
  Result<std::vector<StoredRecord>> read(std::string_view topic, std::int32_t partition,
                                         std::int64_t from_offset,
                                         std::size_t max_records) override;
  Result<std::int64_t> end_offset(std::string_view topic, std::int32_t partition) override;
  Status commit(std::string_view group, std::string_view topic, std::int32_t partition,
                std::int64_t next_offset) override;
  Result<std::int64_t> committed(std::string_view group, std::string_view topic,
                                 std::int32_t partition) override;
  // Reads every partition to its end; the last value of each key wins and an
  // empty value removes the key (what compaction keeps, before or after it ran).
  Result<std::map<std::string, std::string>> latest_values(std::string_view topic) override;

  // Joins `group` as a member on `topic` (see group.h).
  Result<std::unique_ptr<GroupMember>> join_group(std::string group, std::string topic,
                                                  GroupCallbacks callbacks);

  // How many times read() had to move a partition's fetch position.
  std::int64_t seeks() const { return seeks_.load(); }
  const std::string& bootstrap() const { return bootstrap_; }
  const KafkaOptions& options() const { return options_; }

  struct Handle;  // a librdkafka client and the last error it reported

 private:
  struct Reader;
  KafkaBus(std::string bootstrap, KafkaOptions options);

  Status start();
  Result<std::int32_t> lookup_partitions(std::string_view topic, bool refresh);
  Status check_partition(std::string_view topic, std::int32_t partition);
  Result<std::vector<Position>> produce(std::string_view topic, std::int32_t partition,
                                        std::span<const Record> records);
  Result<std::vector<StoredRecord>> read_locked(const std::string& topic, std::int32_t partition,
                                                std::int64_t from_offset,
                                                std::size_t max_records);
  Result<Handle*> group_handle(std::string_view group);
  Status create_with_admin_api(const TopicConfig& config, std::int32_t replication_factor,
                               std::int64_t retention_ms);
  Status create_with_mock_admin(const TopicConfig& config, std::int32_t replication_factor);
  Status check_existing(const TopicConfig& config);
  Status wait_for_topic(const std::string& topic, std::int32_t partitions);

  const std::string bootstrap_;
  const KafkaOptions options_;

  std::unique_ptr<Handle> producer_;
  std::atomic<bool> stopping_{false};
  std::thread poller_;  // serves the producer's delivery reports
  std::mutex produce_mu_;  // one call's records are enqueued back to back

  std::mutex read_mu_;
  std::unique_ptr<Reader> reader_;
  std::atomic<std::int64_t> seeks_{0};

  std::mutex groups_mu_;
  std::map<std::string, std::unique_ptr<Handle>, std::less<>> groups_;

  std::mutex topics_mu_;
  std::map<std::string, std::int32_t, std::less<>> partitions_;
};

}  // namespace settle::bus
