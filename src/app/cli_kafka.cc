// settled topics ensure: creates the pipeline's topics on a Kafka cluster
// (Admin API), or checks that existing ones have the expected configuration.
#include <fmt/format.h>

#include <cstdio>
#include <memory>
#include <vector>

#include "app/cli.h"
#include "bus/kafka_bus.h"
#include "processor/topics.h"

namespace settle::app {
namespace {

struct TopicsFlags {
  std::string bus;
  std::int32_t partitions = 12;
  std::int32_t replication_factor = -1;
  std::int64_t events_retention_ms = 30LL * 24 * 3600 * 1000;
};

struct Planned {
  bus::TopicConfig config;
  bus::KafkaTopicSettings settings;
  const char* purpose;
};

int run_topics_ensure(const TopicsFlags& flags) {
  auto opened = bus::KafkaBus::open(flags.bus);
  if (!opened.ok()) return fatal(opened.error().message);
  bus::KafkaBus& kafka = **opened;
  const std::int32_t rf = flags.replication_factor;
  // Every topic is keyed by merchant_id with the same partition count, so a
  // merchant's events, config, tasks and statuses share a partition number.
  const std::vector<Planned> topics = {
      {{processor::kEventsTopic, flags.partitions, false}, {rf, flags.events_retention_ms},
       "money events, replayable for the retention"},
      {{processor::kMerchantsTopic, flags.partitions, true}, {rf, -1},
       "merchant config, latest per merchant (compacted)"},
      {{processor::kTasksTopic, flags.partitions, false}, {rf, -1}, "settlement tasks"},
      {{processor::kStatusTopic, flags.partitions, false}, {rf, -1}, "batch status updates"},
      {{processor::kDeadLettersTopic, flags.partitions, false}, {rf, -1},
       "records no role could handle"},
  };
  int exit_code = kExitOk;
  for (const Planned& t : topics) {
    const Status s = kafka.create_topic(t.config, t.settings);
    if (!s.ok()) {
      std::fprintf(stderr, "settled: topic %s: %s\n", t.config.name.c_str(),
                   s.error().message.c_str());
      if (s.error().code != ErrorCode::kConflict) return kExitFatal;
      exit_code = kExitRejected;
      continue;
    }
    std::printf("%-16s %3d partitions  cleanup.policy=%-7s  %s\n", t.config.name.c_str(),
                t.config.partitions, t.config.compacted ? "compact" : "delete", t.purpose);
  }
  return exit_code;
}

}  // namespace

void add_kafka_commands(CLI::App& cli, Commands& commands) {
  CLI::App* topics = cli.add_subcommand("topics", "Kafka topics of the pipeline");
  topics->require_subcommand(1);
  auto flags = std::make_shared<TopicsFlags>();
  CLI::App* ensure = topics->add_subcommand(
      "ensure",
      "Create events, merchants (compacted), settlement-tasks, status and dead-letters, or check "
      "that existing ones match (exit 1 on a mismatch)");
  ensure->add_option("--bus", flags->bus, "kafka://host:port[,host:port][?options]")->required();
  ensure->add_option("--partitions", flags->partitions, "partitions of every topic")
      ->check(CLI::Range(1, 10000));
  ensure->add_option("--replication-factor", flags->replication_factor,
                     "replication factor (default: the cluster's)");
  ensure->add_option("--events-retention-ms", flags->events_retention_ms,
                     "retention of events (default 30 days; 0 keeps them forever)")
      ->check(CLI::Range(static_cast<std::int64_t>(0), INT64_MAX));
  commands.push_back(Command{ensure, [flags] { return run_topics_ensure(*flags); }});
}

}  // namespace settle::app
