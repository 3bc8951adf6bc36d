// Consumer-group offsets of the embedded bus: one file per group,
// <dir>/<escaped group>.offsets, a text line "<topic> <partition> <offset>"
// per partition. A commit rewrites its group's file atomically (temp file,
// fsync, rename, fsync of the directory) and only then changes the copy in
// memory, so committed() never reports an offset a crash could take back.
// Thread safety: every method may be called from any thread; commits of one
// group are serialized, commits of different groups are not.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "common/result.h"

namespace settle::bus {

class OffsetStore {
 public:
  // Loads every group file in `dir` (created if missing). kCorruption names a
  // file that does not parse.
  static Result<std::unique_ptr<OffsetStore>> open(std::filesystem::path dir);

  // kInvalidArgument for an empty group or one whose file name would be too
  // long; kIo when the file cannot be written (the old offsets then stand).
  Status commit(std::string_view group, std::string_view topic, std::int32_t partition,
                std::int64_t next_offset);
  // 0 when the group has committed nothing for the partition.
  std::int64_t committed(std::string_view group, std::string_view topic,
                         std::int32_t partition) const;

 private:
  using Key = std::pair<std::string, std::int32_t>;  // topic, partition
  struct Group {
    std::mutex write_mu;  // held by a commit across its file write
    mutable std::mutex mu;
    std::map<Key, std::int64_t> offsets;  // guarded by mu; changed under write_mu too
  };

  explicit OffsetStore(std::filesystem::path dir) : dir_(std::move(dir)) {}
  Status load(const std::string& file_name);
  Group* find_group(std::string_view name) const;

  const std::filesystem::path dir_;
  mutable std::mutex mu_;  // guards groups_ (not the groups' contents)
  std::map<std::string, std::unique_ptr<Group>, std::less<>> groups_;
};

}  // namespace settle::bus
