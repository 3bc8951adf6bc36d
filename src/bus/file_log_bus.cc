#include "bus/file_log_bus.h"

#include <fcntl.h>
#include <sys/file.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <system_error>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bus/offset_store.h"
#include "bus/partition_log.h"

namespace settle::bus {
namespace {

constexpr std::string_view kTopicFile = "topic.json";
constexpr std::string_view kGroupsDir = "__groups";
constexpr std::string_view kLockFile = "LOCK";
constexpr std::string_view kReservedPrefix = "__";
constexpr std::size_t kTopicNameBytesMax = 249;
constexpr std::int32_t kPartitionsMax = 4096;
constexpr std::size_t kScanBatchRecords = 4096;

Status check_topic_name(std::string_view name) {
  auto invalid = [&](std::string_view why) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("topic name '{}': {}", name, why));
  };
  if (name.empty() || name.size() > kTopicNameBytesMax) {
    return invalid("must be 1 to 249 bytes");
  }
  if (name == "." || name == "..") return invalid("'.' and '..' are not topic names");
  if (name.starts_with(kReservedPrefix)) return invalid("names starting with '__' are reserved");
  for (char c : name) {
    const bool legal = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!legal) return invalid("only [A-Za-z0-9._-] may be used");
  }
  return ok_status();
}

std::string describe(const TopicConfig& config) {
  return fmt::format("{} partition{}, {}", config.partitions, config.partitions == 1 ? "" : "s",
                     config.compacted ? "compacted" : "not compacted");
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

struct FileLogBus::Topic {
  TopicConfig config;
  std::vector<std::unique_ptr<PartitionLog>> partitions;
  std::atomic<std::uint32_t> next_unkeyed_partition{0};
};

FileLogBus::FileLogBus(FileLogOptions options, UniqueFd lock)
    : options_(std::move(options)), lock_(std::move(lock)) {}

FileLogBus::~FileLogBus() = default;

Result<std::unique_ptr<FileLogBus>> FileLogBus::open(FileLogOptions options) {
  if (options.dir.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "FileLogOptions::dir is empty");
  }
  if (options.segment_bytes == 0 || options.index_interval_bytes == 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "FileLogOptions::segment_bytes and index_interval_bytes must be positive");
  }
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) return io_error("create directory", options.dir, ec.value());

  const std::filesystem::path lock_path = options.dir / kLockFile;
  SETTLE_ASSIGN_OR_RETURN(UniqueFd lock, open_file(lock_path, O_RDWR | O_CREAT));
  if (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    if (err == EWOULDBLOCK) {
      return make_error(ErrorCode::kUnavailable,
                        fmt::format("bus directory {} is open in another FileLogBus",
                                    options.dir.string()));
    }
    return io_error("flock", lock_path, err);
  }

  std::unique_ptr<FileLogBus> bus(new FileLogBus(std::move(options), std::move(lock)));
  SETTLE_ASSIGN_OR_RETURN(bus->offsets_, OffsetStore::open(bus->options_.dir / kGroupsDir));
  SETTLE_ASSIGN_OR_RETURN(std::vector<std::string> names, list_dir(bus->options_.dir));
  for (const std::string& name : names) {
    if (name.starts_with(kReservedPrefix) || name == kLockFile) continue;
    const std::filesystem::path topic_dir = bus->options_.dir / name;
    // A topic directory without topic.json is a create_topic() that did not
    // finish; create_topic() clears it if the topic is created again.
    if (!std::filesystem::is_directory(topic_dir, ec) ||
        !std::filesystem::exists(topic_dir / kTopicFile, ec)) {
      continue;
    }
    SETTLE_TRY(bus->load_topic(name));
  }
  return bus;
}

Status FileLogBus::load_topic(const std::string& name) {
  const std::filesystem::path path = options_.dir / name / kTopicFile;
  SETTLE_ASSIGN_OR_RETURN(std::string text, read_whole_file(path));
  auto corrupt = [&](std::string_view why) {
    return make_error(ErrorCode::kCorruption, fmt::format("topic file {}: {}", path.string(), why));
  };
  const nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) return corrupt("not a JSON object");
  auto partitions = json.find("partitions");
  auto compacted = json.find("compacted");
  if (partitions == json.end() || !partitions->is_number_integer() || compacted == json.end() ||
      !compacted->is_boolean()) {
    return corrupt("needs an integer \"partitions\" and a boolean \"compacted\"");
  }
  const auto count = partitions->get<std::int64_t>();
  if (count < 1 || count > kPartitionsMax) return corrupt("partition count out of range");

  TopicConfig config{name, static_cast<std::int32_t>(count), compacted->get<bool>()};
  SETTLE_ASSIGN_OR_RETURN(std::unique_ptr<Topic> topic, open_topic(config));
  std::unique_lock lock(topics_mu_);
  topics_.emplace(name, std::move(topic));
  return ok_status();
}

Result<std::unique_ptr<FileLogBus::Topic>> FileLogBus::open_topic(const TopicConfig& config) {
  auto topic = std::make_unique<Topic>();
  topic->config = config;
  const std::filesystem::path dir = options_.dir / config.name;
  for (std::int32_t p = 0; p < config.partitions; ++p) {
    SETTLE_ASSIGN_OR_RETURN(
        std::unique_ptr<PartitionLog> log,
        PartitionLog::open(dir / std::to_string(p),
                           fmt::format("topic '{}' partition {}", config.name, p), p,
                           config.compacted, options_));
    topic->partitions.push_back(std::move(log));
  }
  return topic;
}

Result<FileLogBus::Topic*> FileLogBus::find_topic(std::string_view name) const {
  std::shared_lock lock(topics_mu_);
  auto it = topics_.find(name);
  if (it == topics_.end()) {
    return make_error(ErrorCode::kNotFound, fmt::format("unknown topic '{}'", name));
  }
  return it->second.get();
}

Result<PartitionLog*> FileLogBus::find_partition(std::string_view topic_name,
                                                 std::int32_t partition) const {
  SETTLE_ASSIGN_OR_RETURN(Topic * topic, find_topic(topic_name));
  if (partition < 0 || partition >= topic->config.partitions) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("topic '{}' has {} partitions; there is no partition {}",
                                  topic_name, topic->config.partitions, partition));
  }
  return topic->partitions[static_cast<std::size_t>(partition)].get();
}

Status FileLogBus::create_topic(const TopicConfig& config) {
  SETTLE_TRY(check_topic_name(config.name));
  if (config.partitions < 1 || config.partitions > kPartitionsMax) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("topic '{}': partition count {} is not in [1, {}]",
                                  config.name, config.partitions, kPartitionsMax));
  }
  std::lock_guard creating(create_mu_);
  if (Result<Topic*> existing = find_topic(config.name); existing.ok()) {
    const TopicConfig& have = (*existing)->config;
    if (have.partitions == config.partitions && have.compacted == config.compacted) {
      return ok_status();
    }
    return make_error(ErrorCode::kConflict,
                      fmt::format("topic '{}' exists with {}; asked for {}", config.name,
                                  describe(have), describe(config)));
  }

  const std::filesystem::path dir = options_.dir / config.name;
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);  // what an interrupted create left
  if (ec) return io_error("remove the unfinished topic directory", dir, ec.value());
  SETTLE_TRY(make_dir(dir));
  SETTLE_ASSIGN_OR_RETURN(std::unique_ptr<Topic> topic, open_topic(config));
  SETTLE_TRY(sync_dir(dir));
  // topic.json last: its presence is what makes the topic exist on reopen.
  const nlohmann::json json = {{"partitions", config.partitions},
                               {"compacted", config.compacted}};
  SETTLE_TRY(write_file_atomically(dir / kTopicFile, json.dump(2) + "\n"));
  SETTLE_TRY(sync_dir(options_.dir));

  std::unique_lock lock(topics_mu_);
  topics_.emplace(config.name, std::move(topic));
  return ok_status();
}

Result<std::int32_t> FileLogBus::partition_count(std::string_view topic_name) {
  SETTLE_ASSIGN_OR_RETURN(Topic * topic, find_topic(topic_name));
  return topic->config.partitions;
}

Result<std::vector<Position>> FileLogBus::append(std::string_view topic_name,
                                                 std::span<const Record> records) {
  SETTLE_ASSIGN_OR_RETURN(Topic * topic, find_topic(topic_name));
  std::vector<Position> positions(records.size());
  if (records.empty()) return positions;

  const std::int32_t partitions = topic->config.partitions;
  std::optional<std::int32_t> unkeyed;
  // Each partition's records, in call order, and their indexes in `records`.
  std::map<std::int32_t, std::pair<std::vector<const Record*>, std::vector<std::size_t>>> groups;
  for (std::size_t i = 0; i < records.size(); ++i) {
    std::int32_t partition;
    if (!records[i].key.empty()) {
      partition = partition_for(records[i].key, partitions);
    } else {
      if (!unkeyed) {
        unkeyed = static_cast<std::int32_t>(topic->next_unkeyed_partition.fetch_add(1) %
                                            static_cast<std::uint32_t>(partitions));
      }
      partition = *unkeyed;
    }
    auto& group = groups[partition];
    group.first.push_back(&records[i]);
    group.second.push_back(i);
  }
  // Refuse a bad record before any partition is written.
  for (const auto& [partition, group] : groups) {
    SETTLE_TRY(topic->partitions[static_cast<std::size_t>(partition)]->validate(group.first));
  }
  const std::int64_t now = now_ms();
  const auto set_positions = [&](std::int32_t partition, const std::vector<std::size_t>& indexes,
                                 std::int64_t first) {
    for (std::size_t j = 0; j < indexes.size(); ++j) {
      positions[indexes[j]] = Position{partition, first + static_cast<std::int64_t>(j)};
    }
  };
  if (groups.size() == 1) {
    const auto& [partition, group] = *groups.begin();
    SETTLE_ASSIGN_OR_RETURN(
        std::int64_t first,
        topic->partitions[static_cast<std::size_t>(partition)]->append(group.first, now));
    set_positions(partition, group.second, first);
    return positions;
  }

  // Several partitions: write them all and start their writeback, then sync
  // each in turn (see PartitionLog::start_append). The append locks are taken
  // in ascending partition order (`groups` is ordered), so two such appends
  // cannot deadlock. As when the partitions were appended one by one, an
  // error leaves the partitions before it appended: what was staged is still
  // synced and published, and the first error is the call's.
  std::vector<std::pair<std::int32_t, PartitionLog::StagedAppend>> staged;
  staged.reserve(groups.size());
  std::optional<Error> failure;
  for (const auto& [partition, group] : groups) {
    Result<PartitionLog::StagedAppend> started =
        topic->partitions[static_cast<std::size_t>(partition)]->start_append(
            group.first, now, /*begin_writeback=*/true);
    if (!started.ok()) {
      failure = started.error();
      break;
    }
    staged.emplace_back(partition, std::move(started).value());
  }
  std::vector<PartitionLog*> to_compact;
  for (auto& [partition, stage] : staged) {
    PartitionLog* log = topic->partitions[static_cast<std::size_t>(partition)].get();
    Result<bool> finished = log->finish_append(stage);
    if (!finished.ok()) {
      if (!failure) failure = finished.error();
      continue;
    }
    if (*finished) to_compact.push_back(log);
    set_positions(partition, groups.at(partition).second, stage.first);
  }
  for (PartitionLog* log : to_compact) log->compact_after_append();
  if (failure) return *failure;
  return positions;
}

Result<std::vector<Position>> FileLogBus::append_to(std::string_view topic,
                                                    std::int32_t partition,
                                                    std::span<const Record> records) {
  SETTLE_ASSIGN_OR_RETURN(PartitionLog * log, find_partition(topic, partition));
  std::vector<Position> positions;
  if (records.empty()) return positions;
  std::vector<const Record*> pointers;
  pointers.reserve(records.size());
  for (const Record& record : records) pointers.push_back(&record);
  SETTLE_ASSIGN_OR_RETURN(std::int64_t first, log->append(pointers, now_ms()));
  positions.reserve(records.size());
  for (std::size_t j = 0; j < records.size(); ++j) {
    positions.push_back(Position{partition, first + static_cast<std::int64_t>(j)});
  }
  return positions;
}

Result<std::vector<StoredRecord>> FileLogBus::read(std::string_view topic, std::int32_t partition,
                                                   std::int64_t from_offset,
                                                   std::size_t max_records) {
  ReadBuffer out;
  SETTLE_TRY(read_into(topic, partition, from_offset, max_records, out));
  return out.take();
}

Status FileLogBus::read_into(std::string_view topic, std::int32_t partition, std::int64_t from_offset,
                             std::size_t max_records, ReadBuffer& out) {
  auto log = find_partition(topic, partition);
  if (!log.ok()) {
    out.clear();
    return log.error();
  }
  if (from_offset < 0) {
    out.clear();
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("topic '{}' partition {}: negative offset {}", topic, partition,
                                  from_offset));
  }
  return (*log)->read_into(from_offset, max_records, out);
}

Result<std::int64_t> FileLogBus::end_offset(std::string_view topic, std::int32_t partition) {
  SETTLE_ASSIGN_OR_RETURN(PartitionLog * log, find_partition(topic, partition));
  return log->end_offset();
}

Status FileLogBus::commit(std::string_view group, std::string_view topic, std::int32_t partition,
                          std::int64_t next_offset) {
  SETTLE_TRY(find_partition(topic, partition));
  if (next_offset < 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("group '{}' topic '{}' partition {}: negative offset {}", group,
                                  topic, partition, next_offset));
  }
  return offsets_->commit(group, topic, partition, next_offset);
}

Result<std::int64_t> FileLogBus::committed(std::string_view group, std::string_view topic,
                                           std::int32_t partition) {
  SETTLE_TRY(find_partition(topic, partition));
  return offsets_->committed(group, topic, partition);
}

Result<std::map<std::string, std::string>> FileLogBus::latest_values(std::string_view topic_name) {
  SETTLE_ASSIGN_OR_RETURN(Topic * topic, find_topic(topic_name));
  std::map<std::string, std::string> values;
  for (const auto& log : topic->partitions) {
    std::int64_t from = 0;
    for (;;) {
      SETTLE_ASSIGN_OR_RETURN(std::vector<StoredRecord> batch, log->read(from, kScanBatchRecords));
      if (batch.empty()) break;
      for (StoredRecord& record : batch) {
        if (record.value.empty()) {
          values.erase(record.key);
        } else {
          values.insert_or_assign(std::move(record.key), std::move(record.value));
        }
      }
      from = batch.back().offset + 1;
    }
  }
  return values;
}

Status FileLogBus::compact(std::string_view topic_name) {
  SETTLE_ASSIGN_OR_RETURN(Topic * topic, find_topic(topic_name));
  if (!topic->config.compacted) {
    return make_error(ErrorCode::kFailedPrecondition,
                      fmt::format("topic '{}' is not compacted; compaction would delete its "
                                  "history",
                                  topic_name));
  }
  for (const auto& log : topic->partitions) SETTLE_TRY(log->compact());
  return ok_status();
}

Result<std::vector<std::int64_t>> FileLogBus::segment_bases(std::string_view topic,
                                                            std::int32_t partition) {
  SETTLE_ASSIGN_OR_RETURN(PartitionLog * log, find_partition(topic, partition));
  return log->segment_bases();
}

}  // namespace settle::bus
