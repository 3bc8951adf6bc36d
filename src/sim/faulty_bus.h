// A Bus that forwards to another and injects faults (sim/faults.h): appends
// lost before they are written, or written and then reported failed (the
// caller retries: duplicate delivery); short reads (delayed delivery); lost
// consumer-group commits. Metadata calls are never faulted: the processor's
// merchant directory makes them on a wall-clock schedule, and drawing from the
// seed's PRNG there would make a run depend on timing.
#pragma once

#include "bus/bus.h"
#include "sim/faults.h"

namespace settle::sim {

class FaultyBus final : public bus::Bus {
 public:
  FaultyBus(bus::Bus* inner, Faults& faults) : inner_(inner), faults_(faults) {}
  void reset(bus::Bus* inner) { inner_ = inner; }
  // Whether the last failed append had written its records anyway.
  bool last_append_written() const { return last_written_; }

  Status create_topic(const bus::TopicConfig& config) override;
  Result<std::int32_t> partition_count(std::string_view topic) override;
  Result<std::vector<bus::Position>> append(std::string_view topic, std::span<const bus::Record> records) override;
  Result<std::vector<bus::Position>> append_to(std::string_view topic, std::int32_t partition,
                                               std::span<const bus::Record> records) override;
  Result<std::vector<bus::StoredRecord>> read(std::string_view topic, std::int32_t partition,
                                              std::int64_t from_offset, std::size_t max_records) override;
  Result<std::int64_t> end_offset(std::string_view topic, std::int32_t partition) override;
  Status commit(std::string_view group, std::string_view topic, std::int32_t partition,
                std::int64_t next_offset) override;
  Result<std::int64_t> committed(std::string_view group, std::string_view topic, std::int32_t partition) override;
  Result<std::map<std::string, std::string>> latest_values(std::string_view topic) override;

 private:
  template <typename Fn>
  Result<std::vector<bus::Position>> faulted_append(Fn&& write);

  bus::Bus* inner_;
  Faults& faults_;
  bool last_written_ = false;
};

}  // namespace settle::sim
