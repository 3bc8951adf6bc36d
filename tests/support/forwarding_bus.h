// A bus::Bus that forwards every call to another bus: the base of the tests'
// decorators, which override only the calls they observe or fault.
#pragma once

#include "bus/bus.h"

namespace settle::testing {

class ForwardingBus : public bus::Bus {
 public:
  explicit ForwardingBus(bus::Bus& inner) : inner_(inner) {}

  Status create_topic(const bus::TopicConfig& c) override { return inner_.create_topic(c); }
  Result<std::int32_t> partition_count(std::string_view t) override { return inner_.partition_count(t); }
  Result<std::vector<bus::Position>> append(std::string_view t, std::span<const bus::Record> r) override {
    return inner_.append(t, r);
  }
  Result<std::vector<bus::Position>> append_to(std::string_view t, std::int32_t p,
                                               std::span<const bus::Record> r) override {
    return inner_.append_to(t, p, r);
  }
  Result<std::vector<bus::StoredRecord>> read(std::string_view t, std::int32_t p, std::int64_t from,
                                              std::size_t n) override {
    return inner_.read(t, p, from, n);
  }
  Result<std::int64_t> end_offset(std::string_view t, std::int32_t p) override { return inner_.end_offset(t, p); }
  Status commit(std::string_view g, std::string_view t, std::int32_t p, std::int64_t o) override {
    return inner_.commit(g, t, p, o);
  }
  Result<std::int64_t> committed(std::string_view g, std::string_view t, std::int32_t p) override {
    return inner_.committed(g, t, p);
  }
  Result<std::map<std::string, std::string>> latest_values(std::string_view t) override {
    return inner_.latest_values(t);
  }

 private:
  bus::Bus& inner_;
};

}  // namespace settle::testing
