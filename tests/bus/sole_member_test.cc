// The embedded group membership: the only member owns every partition.
#include <gtest/gtest.h>

#include "bus/file_log_bus.h"
#include "bus/group.h"
#include "scratch_dir.h"

namespace settle::bus {
namespace {

TEST(SoleMemberTest, OwnsEveryPartitionFromFirstPollAndRevokesOnLeave) {
  testing::ScratchDir scratch;
  FileLogOptions options;
  options.dir = scratch.path() / "bus";
  options.fsync = FsyncPolicy::kNone;
  auto bus = FileLogBus::open(options);
  ASSERT_TRUE(bus.ok()) << bus.error().to_string();
  ASSERT_TRUE((*bus)->create_topic(TopicConfig{"events", 4, false}).ok());

  std::vector<std::int32_t> assigned, revoked;
  auto member = join_sole_member(
      **bus, "processors", "events",
      GroupCallbacks{[&](std::span<const std::int32_t> ps) { assigned.assign(ps.begin(), ps.end()); },
                     [&](std::span<const std::int32_t> ps, bool lost) {
                       EXPECT_FALSE(lost);
                       revoked.assign(ps.begin(), ps.end());
                     }});
  ASSERT_TRUE(member.ok()) << member.error().to_string();
  EXPECT_TRUE((*member)->owned().empty()) << "nothing is owned before the first poll";
  ASSERT_TRUE((*member)->poll(std::chrono::milliseconds(0)).ok());
  EXPECT_EQ(assigned, (std::vector<std::int32_t>{0, 1, 2, 3}));
  EXPECT_EQ((*member)->owned(), assigned);

  ASSERT_TRUE((*member)->commit(2, 17).ok());
  EXPECT_EQ((*bus)->committed("processors", "events", 2).value(), 17);
  EXPECT_EQ((*member)->commit(4, 1).error().code, ErrorCode::kFailedPrecondition);

  ASSERT_TRUE((*member)->leave().ok());
  EXPECT_EQ(revoked, assigned);
  EXPECT_TRUE((*member)->owned().empty());
  EXPECT_EQ((*member)->commit(2, 18).error().code, ErrorCode::kFailedPrecondition);
}

TEST(SoleMemberTest, UnknownTopicIsNotFound) {
  testing::ScratchDir scratch;
  FileLogOptions options;
  options.dir = scratch.path() / "bus";
  auto bus = FileLogBus::open(options);
  ASSERT_TRUE(bus.ok());
  auto member = join_sole_member(**bus, "g", "missing", {});
  ASSERT_FALSE(member.ok());
  EXPECT_EQ(member.error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace settle::bus
