// Produce throughput of KafkaBus::append against its baseline, kcat, on the
// same librdkafka mock cluster in the same run: the same messages (count,
// keys, value size), the same producer guarantees (idempotent, acks=all,
// murmur2_random, same linger), each into a fresh topic of the same shape.
//
//   kafka_bus_bench [--messages N] [--value-bytes B] [--batch R] [--partitions P] [--rounds K]
//
// Prints one line per round and the ratio of the best rounds (target >= 0.5x).
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "bus/kafka_bus.h"
#include "row.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

pid_t spawn(const std::vector<std::string>& args, int stdout_fd) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (stdout_fd >= 0) posix_spawn_file_actions_adddup2(&actions, stdout_fd, 1);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    std::fprintf(stderr, "kafka_bus_bench: cannot run %s: %s\n", argv[0], std::strerror(rc));
    std::exit(2);
  }
  return pid;
}

int wait_exit(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

struct Args {
  int messages = 200'000;
  int value_bytes = 100;
  int batch = 4096;
  int partitions = 8;
  int rounds = 3;
  int linger_ms = settle::bus::KafkaOptions{}.linger_ms;  // the bus's default
};

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const int v = std::atoi(argv[i + 1]);
    if (flag == "--messages") a.messages = v;
    else if (flag == "--value-bytes") a.value_bytes = v;
    else if (flag == "--batch") a.batch = v;
    else if (flag == "--partitions") a.partitions = v;
    else if (flag == "--rounds") a.rounds = v;
    else if (flag == "--linger-ms") a.linger_ms = v;
    else {
      std::fprintf(stderr, "kafka_bus_bench: unknown flag %s\n", flag.c_str());
      return 2;
    }
  }

  // The cluster: settle-kafka-mock, bootstrap servers read from its stdout.
  const int admin_port = free_port();
  int out[2];
  if (::pipe(out) != 0) return 2;
  const pid_t mock = spawn({SETTLE_KAFKA_MOCK_BIN, "--admin-port", std::to_string(admin_port)}, out[1]);
  ::close(out[1]);
  std::string bootstrap;
  char c;
  while (::read(out[0], &c, 1) == 1 && c != '\n') bootstrap += c;
  if (bootstrap.empty()) {
    std::fprintf(stderr, "kafka_bus_bench: settle-kafka-mock printed no bootstrap servers\n");
    return 2;
  }
  const std::string admin = "127.0.0.1:" + std::to_string(admin_port);
  const int linger_ms = a.linger_ms;
  auto opened = settle::bus::KafkaBus::open(
      fmt::format("kafka://{}?mock_admin={}&linger_ms={}", bootstrap, admin, linger_ms));
  if (!opened.ok()) {
    std::fprintf(stderr, "kafka_bus_bench: %s\n", opened.error().to_string().c_str());
    ::kill(mock, SIGTERM);
    return 2;
  }
  settle::bus::KafkaBus& bus = **opened;

  // The messages: 1000 merchants round-robin, values of value_bytes.
  std::vector<settle::bus::Record> records(static_cast<std::size_t>(a.messages));
  for (int i = 0; i < a.messages; ++i) {
    auto& r = records[static_cast<std::size_t>(i)];
    r.key = fmt::format("merchant-{:04d}", i % 1000);
    r.value = fmt::format("{:08d}", i);
    r.value.resize(static_cast<std::size_t>(a.value_bytes), 'x');
  }
  char path_template[] = "/tmp/kafka-bench-XXXXXX";
  const int file_fd = ::mkstemp(path_template);
  ::close(file_fd);
  const std::string path = path_template;
  {
    std::ofstream file(path);
    for (const auto& r : records) file << r.key << ':' << r.value << '\n';
  }

  std::fprintf(stderr,
               "kafka_bus_bench: %d messages (%d-byte values, 1000 keys), %d partitions, "
               "KafkaBus batches of %d, linger %d ms, idempotent acks=all; cluster %s\n",
               a.messages, a.value_bytes, a.partitions, a.batch, linger_ms, bootstrap.c_str());
  double best_bus = 0;
  double best_kcat = 0;
  for (int round = 0; round < a.rounds; ++round) {
    const std::string bus_topic = fmt::format("bench-bus-{}", round);
    const std::string kcat_topic = fmt::format("bench-kcat-{}", round);
    for (const std::string& t : {bus_topic, kcat_topic}) {
      auto s = bus.create_topic(settle::bus::TopicConfig{t, a.partitions, false});
      if (!s.ok()) {
        std::fprintf(stderr, "kafka_bus_bench: %s\n", s.error().to_string().c_str());
        return 2;
      }
    }

    const auto t0 = Clock::now();
    for (std::size_t i = 0; i < records.size(); i += static_cast<std::size_t>(a.batch)) {
      const std::size_t n = std::min(records.size() - i, static_cast<std::size_t>(a.batch));
      auto positions = bus.append(bus_topic, std::span(records).subspan(i, n));
      if (!positions.ok()) {
        std::fprintf(stderr, "kafka_bus_bench: %s\n", positions.error().to_string().c_str());
        return 2;
      }
    }
    const double bus_s = std::chrono::duration<double>(Clock::now() - t0).count();

    const auto t1 = Clock::now();
    const pid_t kcat = spawn({"kcat", "-P", "-b", bootstrap, "-t", kcat_topic, "-K:", "-l",
                              "-X", "enable.idempotence=true", "-X", "acks=all", "-X",
                              "partitioner=murmur2_random", "-X",
                              "linger.ms=" + std::to_string(linger_ms), path},
                             -1);
    const int kcat_exit = wait_exit(kcat);
    const double kcat_s = std::chrono::duration<double>(Clock::now() - t1).count();
    if (kcat_exit != 0) {
      std::fprintf(stderr, "kafka_bus_bench: kcat exited %d\n", kcat_exit);
      return 2;
    }
    const double bus_rate = a.messages / bus_s;
    const double kcat_rate = a.messages / kcat_s;
    best_bus = std::max(best_bus, bus_rate);
    best_kcat = std::max(best_kcat, kcat_rate);
    std::printf("round %d: KafkaBus::append %.0f msg/s (%.3f s), kcat -P %.0f msg/s (%.3f s)\n",
                round + 1, bus_rate, bus_s, kcat_rate, kcat_s);
  }
  std::printf("best: KafkaBus::append %.0f msg/s, kcat %.0f msg/s, ratio %.2fx (target >= 0.5x)\n",
              best_bus, best_kcat, best_bus / best_kcat);
  settle::bench::print_row("Kafka produce to the mock cluster (msg/s)", fmt::format("{:.0f}", best_bus),
                           fmt::format("{:.0f} kcat -P", best_kcat), settle::bench::ratio_text(best_bus, best_kcat),
                           ">= 0.5x", settle::bench::met(best_bus >= 0.5 * best_kcat));

  ::unlink(path.c_str());
  opened->reset();
  ::kill(mock, SIGTERM);
  wait_exit(mock);
  return 0;
}
