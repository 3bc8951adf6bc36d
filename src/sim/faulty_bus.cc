#include "sim/faulty_bus.h"

namespace settle::sim {

Status FaultyBus::create_topic(const bus::TopicConfig& config) { return inner_->create_topic(config); }

Result<std::int32_t> FaultyBus::partition_count(std::string_view topic) { return inner_->partition_count(topic); }

template <typename Fn>
Result<std::vector<bus::Position>> FaultyBus::faulted_append(Fn&& write) {
  last_written_ = false;
  const FaultOptions& o = faults_.options();
  if (faults_.inject(o.append_lost, "bus append lost")) return make_error(ErrorCode::kUnavailable, "injected: append lost");
  auto r = write();
  if (r.ok() && faults_.inject(o.append_unacked, "bus append written, unacknowledged")) {
    last_written_ = true;
    return make_error(ErrorCode::kUnavailable, "injected: append written but not acknowledged");
  }
  return r;
}

Result<std::vector<bus::Position>> FaultyBus::append(std::string_view topic, std::span<const bus::Record> records) {
  return faulted_append([&] { return inner_->append(topic, records); });
}

Result<std::vector<bus::Position>> FaultyBus::append_to(std::string_view topic, std::int32_t partition,
                                                        std::span<const bus::Record> records) {
  return faulted_append([&] { return inner_->append_to(topic, partition, records); });
}

Result<std::vector<bus::StoredRecord>> FaultyBus::read(std::string_view topic, std::int32_t partition,
                                                       std::int64_t from_offset, std::size_t max_records) {
  if (max_records > 1 && faults_.inject(faults_.options().short_read, "bus short read")) {
    max_records = 1 + static_cast<std::size_t>(faults_.below(max_records - 1));
  }
  return inner_->read(topic, partition, from_offset, max_records);
}

Result<std::int64_t> FaultyBus::end_offset(std::string_view topic, std::int32_t partition) {
  return inner_->end_offset(topic, partition);
}

Status FaultyBus::commit(std::string_view group, std::string_view topic, std::int32_t partition,
                         std::int64_t next_offset) {
  if (faults_.inject(faults_.options().commit_lost, "bus commit lost")) {
    return make_error(ErrorCode::kUnavailable, "injected: commit lost");
  }
  return inner_->commit(group, topic, partition, next_offset);
}

Result<std::int64_t> FaultyBus::committed(std::string_view group, std::string_view topic, std::int32_t partition) {
  return inner_->committed(group, topic, partition);
}

Result<std::map<std::string, std::string>> FaultyBus::latest_values(std::string_view topic) {
  return inner_->latest_values(topic);
}

}  // namespace settle::sim
