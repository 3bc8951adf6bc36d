// The contract suite of the bus port (src/bus/bus.h): every Bus
// implementation must pass it.
//
// To run it against an implementation, compile bus_contract.cc into that
// implementation's test binary and instantiate the suite with a factory:
//
//   INSTANTIATE_TEST_SUITE_P(Kafka, BusContractTest,
//                            testing::Values(BusFactory{"Kafka", make_kafka_bus}),
//                            bus_factory_name);
//
// The factory gets a fresh scratch directory per test. Called again with the
// same directory after the previous bus was destroyed, it must reopen the
// same state: the "reopen" cases check what survives. A server-backed
// factory may ignore the directory (its state lives in the server) or keep
// its settings there. It returns nullptr to skip the suite (e.g. no server).
// Topic and group names are unique per test (name()), so one server can run
// every case.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "bus/bus.h"
#include "scratch_dir.h"

namespace settle::bus::testing {

struct BusFactory {
  std::string name;  // a test-name fragment: [A-Za-z0-9_]
  std::function<std::unique_ptr<Bus>(const std::filesystem::path& scratch)> make;
};

inline void PrintTo(const BusFactory& factory, std::ostream* os) { *os << factory.name; }

inline std::string bus_factory_name(const ::testing::TestParamInfo<BusFactory>& info) {
  return info.param.name;
}

class BusContractTest : public ::testing::TestWithParam<BusFactory> {
 protected:
  void SetUp() override;
  void TearDown() override;

  Bus& bus() { return *bus_; }
  // Destroys the bus and makes a new one on the same scratch directory.
  void reopen();
  // `base` made unique to this test, as a topic or group name.
  std::string name(std::string_view base) const;

  // Creates a topic named name(base) and returns its name.
  std::string make_topic(std::string_view base, std::int32_t partitions, bool compacted = false);
  // Every record of a partition, read in batches of `batch`.
  std::vector<StoredRecord> read_all(std::string_view topic, std::int32_t partition,
                                     std::size_t batch = 1000);

 private:
  std::optional<ScratchDir> scratch_;
  std::string suffix_;
  std::unique_ptr<Bus> bus_;
};

Record make_record(std::string key, std::string value, std::vector<Header> headers = {},
                   std::int64_t timestamp_ms = 0);

}  // namespace settle::bus::testing
