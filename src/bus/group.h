// Consumer-group membership for roles that run as several processes: which
// partitions of a topic this process owns now, and when that changes.
//
// A GroupMember only carries membership; records are read through Bus::read()
// at offsets the owner chooses (e.g. from its ledger checkpoint). Callbacks run
// on the thread that calls poll() (and leave()), never concurrently:
// - `assigned` after partitions were given to this member: recover them (e.g.
//   load the checkpoint) before reading;
// - `revoked` before partitions are given up: flush what covers them (commit
//   the checkpoint, the offsets) before returning, since the next owner starts
//   from there. `lost` = the group already gave them away (session expired):
//   nothing may be committed for them any more.
// Kafka: a subscribe()d consumer with the eager range assignor (every
// rebalance revokes all and assigns anew) whose fetching is paused. Embedded: the only member, which owns every partition.
//
// Offsets: while a group has live members, commit its offsets through
// commit() here (Kafka refuses commits from outside an active generation).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "bus/bus.h"
#include "common/result.h"

namespace settle::bus {

struct GroupCallbacks {
  std::function<void(std::span<const std::int32_t> partitions)> assigned;
  std::function<void(std::span<const std::int32_t> partitions, bool lost)> revoked;
};

class GroupMember {
 public:
  // Leaves the group (see leave()) if still a member.
  virtual ~GroupMember() = default;

  // Serves membership for up to `timeout` (heartbeats, rebalances, the
  // callbacks). Call it regularly, at least every few hundred ms: a member
  // that does not poll for max.poll.interval.ms is expelled. kUnavailable when
  // the cluster cannot be reached.
  virtual Status poll(std::chrono::milliseconds timeout) = 0;

  // The partitions this member owns now, ascending. Thread-safe.
  virtual std::vector<std::int32_t> owned() const = 0;

  // Commits the group's next offset for an owned partition (kFailedPrecondition
  // when not owned). Synchronous, bounded by the bus timeout.
  virtual Status commit(std::int32_t partition, std::int64_t next_offset) = 0;

  // Gives every partition up (the `revoked` callback runs first) and leaves
  // the group, so the others get its partitions without waiting for a session
  // timeout. Idempotent.
  virtual Status leave() = 0;
};

// The embedded implementation: the one member of `group`, owning every
// partition of `topic` from the first poll() on. Offsets go to bus.commit().
Result<std::unique_ptr<GroupMember>> join_sole_member(Bus& bus, std::string group,
                                                      std::string topic,
                                                      GroupCallbacks callbacks);

}  // namespace settle::bus
