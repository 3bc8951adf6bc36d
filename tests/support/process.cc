#include "process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace settle::testing {
namespace {

sockaddr_in loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

struct UserIds {
  uid_t uid;
  gid_t gid;
};

std::optional<UserIds> lookup_user(const std::string& name) {
  passwd* pw = ::getpwnam(name.c_str());
  if (pw == nullptr) return std::nullopt;
  return UserIds{pw->pw_uid, pw->pw_gid};
}

}  // namespace

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("free_port: socket: " + std::string(std::strerror(errno)));
  sockaddr_in addr = loopback(0);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    throw std::runtime_error("free_port: bind: " + std::string(std::strerror(errno)));
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

bool wait_for_port(int port, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr = loopback(port);
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    if (ok) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

std::filesystem::path temp_root() {
  const char* tmp = std::getenv("TMPDIR");
  return tmp != nullptr && *tmp != '\0' ? std::filesystem::path(tmp) : std::filesystem::path("/tmp");
}

TempDir::TempDir(std::string_view prefix) {
  static std::atomic<int> counter{0};
  std::random_device random;
  path_ = temp_root() / (std::string(prefix) + "-" + std::to_string(::getpid()) + "-" +
                         std::to_string(counter++) + "-" + std::to_string(random()));
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

void TempDir::give_to(const std::string& user) const {
  if (::geteuid() != 0) return;
  auto ids = lookup_user(user);
  if (!ids) throw std::runtime_error("TempDir::give_to: no user " + user);
  for (const auto& entry : std::filesystem::recursive_directory_iterator(path_)) {
    (void)::chown(entry.path().c_str(), ids->uid, ids->gid);
  }
  if (::chown(path_.c_str(), ids->uid, ids->gid) != 0) {
    throw std::runtime_error("TempDir::give_to: chown " + path_.string() + ": " + std::strerror(errno));
  }
}

Process::Process(ProcessOptions options) : log_(options.log) {
  if (options.argv.empty()) throw std::runtime_error("Process: empty argv");
  std::optional<UserIds> ids;
  if (options.run_as && ::geteuid() == 0) {
    ids = lookup_user(*options.run_as);
    if (!ids) throw std::runtime_error("Process: no user " + *options.run_as);
  }
  std::vector<char*> argv;
  for (auto& a : options.argv) argv.push_back(a.data());
  argv.push_back(nullptr);
  int log_fd = -1;
  if (!options.log.empty()) {
    log_fd = ::open(options.log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) throw std::runtime_error("Process: open " + options.log.string() + ": " + std::strerror(errno));
    if (ids) (void)::fchown(log_fd, ids->uid, ids->gid);
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("Process: fork: " + std::string(std::strerror(errno)));
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::setpgid(0, 0);
    if (log_fd >= 0) {
      ::dup2(log_fd, 1);
      ::dup2(log_fd, 2);
    }
    if (!options.cwd.empty() && ::chdir(options.cwd.c_str()) != 0) ::_exit(126);
    if (ids) {
      if (::setgid(ids->gid) != 0 || ::setuid(ids->uid) != 0) ::_exit(126);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // cleared by the credential change
    }
    for (auto& e : options.env) ::putenv(e.data());
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  if (log_fd >= 0) ::close(log_fd);
  pid_ = pid;
}

Process::~Process() {
  if (pid_ > 0 && !status_) stop();
}

Process::Process(Process&& other) noexcept
    : pid_(other.pid_), status_(other.status_), log_(std::move(other.log_)) {
  other.pid_ = -1;
}

Process& Process::operator=(Process&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0 && !status_) stop();
    pid_ = other.pid_;
    status_ = other.status_;
    log_ = std::move(other.log_);
    other.pid_ = -1;
  }
  return *this;
}

std::string Process::describe_status(int status) {
  if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const char* name = sigabbrev_np(WTERMSIG(status));
    return "killed by signal " + std::to_string(WTERMSIG(status)) + " (SIG" + (name != nullptr ? name : "?") + ")" +
           (WCOREDUMP(status) ? ", core dumped" : "");
  }
  return "wait status " + std::to_string(status);
}

bool Process::running() {
  if (pid_ <= 0 || status_) return false;
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    status_ = status;
    return false;
  }
  return true;
}

std::optional<int> Process::wait(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return std::nullopt;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return status_;
}

int Process::stop(int signal, std::chrono::milliseconds grace) {
  if (!running()) return status_ ? *status_ : -1;
  ::kill(pid_, signal);
  if (auto s = wait(grace)) return *s;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  status_ = status;
  return status;
}

bool Process::wait_for_output(std::string_view needle, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (log_tail(1 << 20).find(needle) != std::string::npos) return true;
    if (!running() || std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::string Process::log_tail(std::size_t bytes) const {
  if (log_.empty()) return "";
  std::ifstream in(log_, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string all = ss.str();
  return all.size() > bytes ? all.substr(all.size() - bytes) : all;
}

int run(const ProcessOptions& options, std::string* output) {
  TempDir dir("settle-run");
  ProcessOptions opts = options;
  opts.log = dir.path() / "output";
  if (opts.run_as) dir.give_to(*opts.run_as);
  Process p(opts);
  auto status = p.wait(std::chrono::minutes(10));
  if (!status) {
    p.stop(SIGKILL);
    throw std::runtime_error("run: " + opts.argv[0] + " did not finish in 10 minutes");
  }
  if (output != nullptr) *output = p.log_tail(1 << 20);
  if (WIFEXITED(*status)) return WEXITSTATUS(*status);
  return 128 + WTERMSIG(*status);
}

}  // namespace settle::testing
