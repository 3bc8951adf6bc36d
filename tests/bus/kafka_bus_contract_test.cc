// The bus contract suite on KafkaBus against librdkafka's mock cluster
// (tools/kafka-mock, three brokers on 127.0.0.1, started once per process).
// Every case names its own topics and groups, so they share the cluster; the
// "reopen" cases open a new KafkaBus on the same cluster.
#include "bus/kafka_bus.h"
#include "bus_contract.h"
#include "support/kafka_mock.h"

namespace settle::bus::testing {
namespace {

BusFactory kafka(std::string name, std::string params) {
  return BusFactory{std::move(name), [params](const std::filesystem::path&) {
                      auto& mock = settle::testing::KafkaMock::shared();
                      auto bus = KafkaBus::open(mock.url(params));
                      EXPECT_TRUE(bus.ok()) << bus.error().to_string();
                      return bus.ok() ? std::unique_ptr<Bus>(std::move(bus).value()) : nullptr;
                    }};
}

INSTANTIATE_TEST_SUITE_P(Kafka, BusContractTest,
                         ::testing::Values(kafka("KafkaMockCluster", "linger_ms=1")),
                         bus_factory_name);

}  // namespace
}  // namespace settle::bus::testing
