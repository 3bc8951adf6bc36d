// conn_mem_bench: RSS a server process spends per idle keep-alive HTTP
// connection. Opens N connections to HOST:PORT, sends one `GET PATH` on each
// and reads its answer (so every session reaches its steady idle state with its
// buffers), then reads the server's VmRSS from /proc/PID/status and prints the
// growth per connection. Prints bench/run's ROW line (bench/row.h).
//
// Usage: conn_mem_bench HOST PORT SERVER_PID [connections=1000] [path=/healthz]
#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "row.h"

namespace {

long vm_rss_kib(int pid) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

// Sends the request and reads until the end of the answer's headers and its
// Content-Length body. Returns false on any error.
bool request(int fd, const std::string& req) {
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) return false;
  std::string got;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return false;
    got.append(buf, static_cast<std::size_t>(n));
    const std::size_t end = got.find("\r\n\r\n");
    if (end == std::string::npos) continue;
    std::size_t length = 0;
    const std::size_t cl = got.find("Content-Length: ");
    if (cl != std::string::npos && cl < end) length = std::strtoul(got.c_str() + cl + 16, nullptr, 10);
    if (got.size() >= end + 4 + length) return got.rfind("HTTP/1.1 200", 0) == 0;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: conn_mem_bench HOST PORT SERVER_PID [connections=1000] [path=/healthz]\n");
    return 2;
  }
  const std::string host = argv[1];
  const int port = std::atoi(argv[2]);
  const int pid = std::atoi(argv[3]);
  const int count = argc > 4 ? std::atoi(argv[4]) : 1000;
  const std::string path = argc > 5 ? argv[5] : "/healthz";
  rlimit nofile{};
  getrlimit(RLIMIT_NOFILE, &nofile);
  nofile.rlim_cur = nofile.rlim_max;
  setrlimit(RLIMIT_NOFILE, &nofile);

  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    std::fprintf(stderr, "conn_mem_bench: bad host %s\n", host.c_str());
    return 2;
  }
  const std::string req = fmt::format("GET {} HTTP/1.1\r\nHost: {}\r\n\r\n", path, host);
  // Warm the server's allocator and threads with one connection first.
  std::vector<int> fds;
  auto open_one = [&]() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 || !request(fd, req)) {
      std::fprintf(stderr, "conn_mem_bench: connection %zu failed: %s\n", fds.size() + 1, std::strerror(errno));
      return false;
    }
    fds.push_back(fd);
    return true;
  };
  if (!open_one()) return 1;
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const long before = vm_rss_kib(pid);
  for (int i = 1; i < count; ++i) {
    if (!open_one()) return 1;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const long after = vm_rss_kib(pid);
  if (before < 0 || after < 0) {
    std::fprintf(stderr, "conn_mem_bench: cannot read /proc/%d/status\n", pid);
    return 1;
  }
  const double per = static_cast<double>(after - before) * 1024.0 / (count - 1);
  std::printf("%d idle keep-alive connections: server RSS %.1f -> %.1f MiB, %.0f bytes each\n", count,
              static_cast<double>(before) / 1024.0, static_cast<double>(after) / 1024.0, per);
  settle::bench::print_row("RSS per idle keep-alive HTTP connection (bytes)", fmt::format("{:.0f}", per), "", "",
                           "flat", "");
  for (int fd : fds) ::close(fd);
  return 0;
}
