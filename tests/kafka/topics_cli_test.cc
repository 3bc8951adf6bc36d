// settled topics ensure against a Kafka-protocol cluster: it creates the
// pipeline's topics, accepts a rerun, refuses a different partition count and
// fails cleanly when no broker answers.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "bus/kafka_bus.h"
#include "processor/topics.h"
#include "support/kafka_mock.h"
#include "support/process.h"

namespace settle {
namespace {

using ::testing::HasSubstr;

int settled(const std::vector<std::string>& args, std::string* output) {
  testing::ProcessOptions p;
  p.argv = {SETTLED_BIN};
  p.argv.insert(p.argv.end(), args.begin(), args.end());
  return testing::run(p, output);
}

TEST(TopicsCliTest, EnsureCreatesThePipelineTopicsAndChecksThemOnRerun) {
  testing::KafkaMock mock;  // its own cluster: the topic names are fixed
  std::string out;
  ASSERT_EQ(settled({"topics", "ensure", "--bus", mock.url(), "--partitions", "4"}, &out), 0) << out;
  for (const char* topic : {"events", "merchants", "settlement-tasks", "status", "dead-letters"}) {
    EXPECT_THAT(out, HasSubstr(topic));
  }

  auto bus = bus::KafkaBus::open(mock.url());
  ASSERT_TRUE(bus.ok()) << bus.error().to_string();
  for (const char* topic : {processor::kEventsTopic, processor::kMerchantsTopic,
                            processor::kTasksTopic, processor::kStatusTopic,
                            processor::kDeadLettersTopic}) {
    EXPECT_EQ((*bus)->partition_count(topic).value(), 4) << topic;
  }
  // merchants is compacted, events is not.
  EXPECT_EQ((*bus)->create_topic({processor::kMerchantsTopic, 4, false}).error().code,
            ErrorCode::kConflict);
  EXPECT_TRUE((*bus)->create_topic({processor::kMerchantsTopic, 4, true}).ok());
  EXPECT_EQ((*bus)->create_topic({processor::kEventsTopic, 4, true}).error().code,
            ErrorCode::kConflict);

  EXPECT_EQ(settled({"topics", "ensure", "--bus", mock.url(), "--partitions", "4"}, &out), 0) << out;
  EXPECT_EQ(settled({"topics", "ensure", "--bus", mock.url(), "--partitions", "6"}, &out), 1) << out;
  EXPECT_THAT(out, HasSubstr("exists with 4 partitions"));
}

TEST(TopicsCliTest, NoBrokerExitsTwoWithTheReason) {
  const int port = testing::free_port();
  std::string out;
  EXPECT_EQ(settled({"topics", "ensure", "--bus",
                     "kafka://127.0.0.1:" + std::to_string(port) + "?timeout_ms=1000"},
                    &out),
            2)
      << out;
  EXPECT_THAT(out, HasSubstr("127.0.0.1:" + std::to_string(port)));
}

}  // namespace
}  // namespace settle
