// Thin POSIX file helpers for the embedded log: every call returns a Result
// whose message names the operation, the path and strerror, and nothing
// throws. Thread safety: the functions are safe to call concurrently; a
// UniqueFd is owned by one object.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace settle::bus {

// Owns a file descriptor and closes it on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// kIo: "<what> <path>: <strerror(err)>".
Error io_error(std::string_view what, const std::filesystem::path& path, int err);

Result<UniqueFd> open_file(const std::filesystem::path& path, int flags, mode_t mode = 0644);
// Writes all of `data` at `pos`, retrying short writes and EINTR.
Status write_at(int fd, std::string_view data, std::uint64_t pos,
                const std::filesystem::path& path);
// Writes `size` zero bytes at `pos` (real blocks, unlike fallocate's
// unwritten extents), retrying short writes and EINTR.
Status write_zeros(int fd, std::uint64_t size, std::uint64_t pos, const std::filesystem::path& path);
// Reads up to `size` bytes at `pos`; fewer only at the end of the file.
Result<std::size_t> read_at(int fd, char* buf, std::size_t size, std::uint64_t pos,
                            const std::filesystem::path& path);
Status sync_data(int fd, const std::filesystem::path& path);
// Starts writing back the dirty pages of [pos, pos + size) without waiting
// (sync_file_range with SYNC_FILE_RANGE_WRITE). Durability still takes
// sync_data(); starting several files' writeback before syncing them in turn
// lets the device write them together.
Status start_writeback(int fd, std::uint64_t pos, std::uint64_t size,
                       const std::filesystem::path& path);
Status truncate_file(int fd, std::uint64_t size, const std::filesystem::path& path);
Result<std::uint64_t> file_size(int fd, const std::filesystem::path& path);
// Makes a new or renamed entry of `dir` durable.
Status sync_dir(const std::filesystem::path& dir);
// mkdir; an existing directory is fine.
Status make_dir(const std::filesystem::path& dir);
Status rename_file(const std::filesystem::path& from, const std::filesystem::path& to);
Status remove_file(const std::filesystem::path& path);
Result<std::string> read_whole_file(const std::filesystem::path& path);
// The names in `dir` (not "." or ".."), unsorted.
Result<std::vector<std::string>> list_dir(const std::filesystem::path& dir);
// Replaces `path` with `contents` so that a reader (or a crash) sees the old
// file or the new one, never a mix: write `path`.tmp, fsync, rename, fsync
// the directory.
Status write_file_atomically(const std::filesystem::path& path, std::string_view contents);

}  // namespace settle::bus
