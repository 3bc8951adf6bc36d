// The bus contract suite on the embedded FileLogBus, twice: with its default
// options, and with tiny segments, a tiny index interval, automatic
// compaction and no fsync, so that every contract case also crosses segment
// boundaries and runs while compaction rewrites files.
#include "bus/file_log_bus.h"
#include "bus_contract.h"

namespace settle::bus::testing {
namespace {

BusFactory file_log(std::string name, FileLogOptions base) {
  return BusFactory{std::move(name), [base](const std::filesystem::path& scratch) {
                      FileLogOptions options = base;
                      options.dir = scratch / "bus";
                      auto bus = FileLogBus::open(options);
                      EXPECT_TRUE(bus.ok()) << bus.error().to_string();
                      return bus.ok() ? std::unique_ptr<Bus>(std::move(bus).value()) : nullptr;
                    }};
}

FileLogOptions small_segments() {
  FileLogOptions options;
  options.fsync = FsyncPolicy::kNone;
  options.segment_bytes = 2048;
  options.index_interval_bytes = 256;
  options.compaction_dirty_bytes = 4096;
  return options;
}

INSTANTIATE_TEST_SUITE_P(Embedded, BusContractTest,
                         ::testing::Values(file_log("FileLogDefaults", FileLogOptions{}),
                                           file_log("FileLogSmallSegments", small_segments())),
                         bus_factory_name);

}  // namespace
}  // namespace settle::bus::testing
