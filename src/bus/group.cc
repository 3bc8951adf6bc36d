#include "bus/group.h"

#include <mutex>

namespace settle::bus {
namespace {

class SoleMember final : public GroupMember {
 public:
  SoleMember(Bus& bus, std::string group, std::string topic, std::int32_t partitions,
             GroupCallbacks callbacks)
      : bus_(bus),
        group_(std::move(group)),
        topic_(std::move(topic)),
        partitions_(partitions),
        callbacks_(std::move(callbacks)) {}

  ~SoleMember() override { (void)leave(); }

  Status poll(std::chrono::milliseconds) override {
    std::vector<std::int32_t> given;
    {
      std::lock_guard lock(mu_);
      if (joined_ || left_) return ok_status();
      joined_ = true;
      for (std::int32_t p = 0; p < partitions_; ++p) owned_.push_back(p);
      given = owned_;
    }
    if (callbacks_.assigned) callbacks_.assigned(given);
    return ok_status();
  }

  std::vector<std::int32_t> owned() const override {
    std::lock_guard lock(mu_);
    return owned_;
  }

  Status commit(std::int32_t partition, std::int64_t next_offset) override {
    {
      std::lock_guard lock(mu_);
      if (partition < 0 || partition >= partitions_ || !joined_ || left_) {
        return make_error(ErrorCode::kFailedPrecondition,
                          "group " + group_ + ": partition " + topic_ + "/" +
                              std::to_string(partition) + " is not owned by this member");
      }
    }
    return bus_.commit(group_, topic_, partition, next_offset);
  }

  Status leave() override {
    std::vector<std::int32_t> given_up;
    {
      std::lock_guard lock(mu_);
      if (left_) return ok_status();
      left_ = true;
      given_up.swap(owned_);
    }
    if (!given_up.empty() && callbacks_.revoked) callbacks_.revoked(given_up, false);
    return ok_status();
  }

 private:
  Bus& bus_;
  const std::string group_;
  const std::string topic_;
  const std::int32_t partitions_;
  const GroupCallbacks callbacks_;
  mutable std::mutex mu_;
  bool joined_ = false;
  bool left_ = false;
  std::vector<std::int32_t> owned_;
};

}  // namespace

Result<std::unique_ptr<GroupMember>> join_sole_member(Bus& bus, std::string group,
                                                      std::string topic,
                                                      GroupCallbacks callbacks) {
  SETTLE_ASSIGN_OR_RETURN(const std::int32_t partitions, bus.partition_count(topic));
  return std::unique_ptr<GroupMember>(std::make_unique<SoleMember>(
      bus, std::move(group), std::move(topic), partitions, std::move(callbacks)));
}

}  // namespace settle::bus
