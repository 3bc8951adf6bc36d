#include "bus/posix_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <system_error>

namespace settle::bus {

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

Error io_error(std::string_view what, const std::filesystem::path& path, int err) {
  // std::generic_category().message() is thread-safe, unlike strerror().
  std::string message(what);
  message += ' ';
  message += path.string();
  message += ": ";
  message += std::generic_category().message(err);
  return make_error(ErrorCode::kIo, std::move(message));
}

Result<UniqueFd> open_file(const std::filesystem::path& path, int flags, mode_t mode) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return io_error("open", path, errno);
  return UniqueFd(fd);
}

Status write_at(int fd, std::string_view data, std::uint64_t pos,
                const std::filesystem::path& path) {
  while (!data.empty()) {
    const ssize_t n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(pos));
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error("write", path, errno);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
    pos += static_cast<std::uint64_t>(n);
  }
  return ok_status();
}

Status write_zeros(int fd, std::uint64_t size, std::uint64_t pos, const std::filesystem::path& path) {
  static const std::array<char, 64 * 1024> kZeros{};
  while (size > 0) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(size, kZeros.size()));
    SETTLE_TRY(write_at(fd, std::string_view(kZeros.data(), n), pos, path));
    size -= n;
    pos += n;
  }
  return ok_status();
}

Result<std::size_t> read_at(int fd, char* buf, std::size_t size, std::uint64_t pos,
                            const std::filesystem::path& path) {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pread(fd, buf + done, size - done, static_cast<off_t>(pos + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error("read", path, errno);
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  return done;
}

Status sync_data(int fd, const std::filesystem::path& path) {
  if (::fdatasync(fd) != 0) return io_error("fdatasync", path, errno);
  return ok_status();
}

Status start_writeback(int fd, std::uint64_t pos, std::uint64_t size,
                       const std::filesystem::path& path) {
  if (::sync_file_range(fd, static_cast<off64_t>(pos), static_cast<off64_t>(size),
                        SYNC_FILE_RANGE_WRITE) != 0) {
    return io_error("sync_file_range", path, errno);
  }
  return ok_status();
}

Status truncate_file(int fd, std::uint64_t size, const std::filesystem::path& path) {
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) return io_error("ftruncate", path, errno);
  return ok_status();
}

Result<std::uint64_t> file_size(int fd, const std::filesystem::path& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return io_error("fstat", path, errno);
  return static_cast<std::uint64_t>(st.st_size);
}

Status sync_dir(const std::filesystem::path& dir) {
  SETTLE_ASSIGN_OR_RETURN(UniqueFd fd, open_file(dir, O_RDONLY | O_DIRECTORY));
  if (::fsync(fd.get()) != 0) return io_error("fsync directory", dir, errno);
  return ok_status();
}

Status make_dir(const std::filesystem::path& dir) {
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return io_error("mkdir", dir, errno);
  return ok_status();
}

Status rename_file(const std::filesystem::path& from, const std::filesystem::path& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    const int err = errno;
    return io_error("rename to " + to.string() + " from", from, err);
  }
  return ok_status();
}

Status remove_file(const std::filesystem::path& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return io_error("unlink", path, errno);
  return ok_status();
}

Result<std::string> read_whole_file(const std::filesystem::path& path) {
  SETTLE_ASSIGN_OR_RETURN(UniqueFd fd, open_file(path, O_RDONLY));
  SETTLE_ASSIGN_OR_RETURN(std::uint64_t size, file_size(fd.get(), path));
  std::string contents(static_cast<std::size_t>(size), '\0');
  SETTLE_ASSIGN_OR_RETURN(std::size_t n, read_at(fd.get(), contents.data(), contents.size(), 0, path));
  contents.resize(n);
  return contents;
}

Result<std::vector<std::string>> list_dir(const std::filesystem::path& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return io_error("opendir", dir, errno);
  std::vector<std::string> names;
  errno = 0;
  while (const dirent* entry = ::readdir(d)) {
    const std::string_view name(entry->d_name);
    if (name != "." && name != "..") names.emplace_back(name);
  }
  const int err = errno;
  ::closedir(d);
  if (err != 0) return io_error("readdir", dir, err);
  return names;
}

Status write_file_atomically(const std::filesystem::path& path, std::string_view contents) {
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  {
    SETTLE_ASSIGN_OR_RETURN(UniqueFd fd, open_file(tmp, O_WRONLY | O_CREAT | O_TRUNC));
    SETTLE_TRY(write_at(fd.get(), contents, 0, tmp));
    SETTLE_TRY(sync_data(fd.get(), tmp));
  }
  SETTLE_TRY(rename_file(tmp, path));
  return sync_dir(path.parent_path());
}

}  // namespace settle::bus
