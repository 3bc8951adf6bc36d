// settle-kafka-mock: hosts librdkafka's mock cluster (rdkafka_mock.h) as a
// Kafka-protocol server on 127.0.0.1 for tests and benchmarks. See README.md.
//
// Prints the bootstrap servers on stdout (one line), serves topic
// administration on a small line-based admin port (the mock implements no
// CreateTopics), and runs until SIGTERM or SIGINT.
#include <arpa/inet.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

// A Kafka broker accepts every connection with TCP_NODELAY (Kafka's
// SocketServer sets it); librdkafka's mock cluster (2.0) does not. Without it
// Nagle holds the second of two small responses written back to back until
// the client's delayed ACK, about 40 ms later, so every synchronous produce
// of a batch waited 40 ms here where it would not on a broker. The mock calls
// accept(); this definition in the executable takes its place, accepts with
// accept4 and sets TCP_NODELAY, as the broker does.
extern "C" int accept(int fd, sockaddr* addr, socklen_t* len) {
  const int conn = ::accept4(fd, addr, len, 0);
  if (conn >= 0) {
    int on = 1;
    ::setsockopt(conn, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  }
  return conn;
}

namespace {

struct TopicInfo {
  int partitions = 0;
  std::string cleanup_policy;
};

// Kafka's topic-name rule, so the admin port refuses what a broker would.
bool valid_topic(const std::string& name) {
  if (name.empty() || name.size() > 249 || name == "." || name == "..") return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

class AdminServer {
 public:
  AdminServer(rd_kafka_mock_cluster_t* cluster, int brokers, int default_rf)
      : cluster_(cluster), brokers_(brokers), default_rf_(default_rf) {}

  // Binds 127.0.0.1:port (0: the kernel picks); returns the bound port or -1.
  int bind_port(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return -1;
    int on = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return -1;
    if (::listen(fd_, 64) != 0) return -1;
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    return ntohs(addr.sin_port);
  }

  void start() {
    thread_ = std::thread([this] { serve(); });
  }

  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      const int conn = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) continue;
      timeval tv{5, 0};
      ::setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      std::string line;
      char buf[512];
      while (line.find('\n') == std::string::npos && line.size() < 4096) {
        const ssize_t n = ::recv(conn, buf, sizeof buf, 0);
        if (n <= 0) break;
        line.append(buf, static_cast<std::size_t>(n));
      }
      if (auto nl = line.find('\n'); nl != std::string::npos) line.resize(nl);
      const std::string reply = handle(line) + "\n";
      std::size_t sent = 0;
      while (sent < reply.size()) {
        const ssize_t n = ::send(conn, reply.data() + sent, reply.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += static_cast<std::size_t>(n);
      }
      ::close(conn);
    }
  }

  std::string handle(const std::string& line) {
    std::istringstream in(line);
    std::string verb, topic;
    in >> verb >> topic;
    if (!valid_topic(topic)) return "error invalid topic name '" + topic + "'";
    std::lock_guard lock(mu_);
    if (verb == "describe") {
      auto it = topics_.find(topic);
      if (it == topics_.end()) return "unknown";
      return "topic " + std::to_string(it->second.partitions) + " " + it->second.cleanup_policy;
    }
    if (verb != "create") return "error unknown request '" + verb + "'";
    int partitions = 0;
    int rf = 0;
    std::string policy;
    if (!(in >> partitions >> rf >> policy)) {
      return "error usage: create TOPIC PARTITIONS REPLICATION_FACTOR CLEANUP_POLICY";
    }
    if (partitions < 1 || partitions > 10000) return "error partitions must be 1..10000";
    if (rf == -1) rf = default_rf_;
    if (rf < 1 || rf > brokers_) {
      return "error replication factor " + std::to_string(rf) + " needs 1.." +
             std::to_string(brokers_) + " (the cluster has " + std::to_string(brokers_) +
             " brokers)";
    }
    if (policy != "delete" && policy != "compact") {
      return "error cleanup.policy must be delete or compact";
    }
    if (auto it = topics_.find(topic); it != topics_.end()) {
      return "exists " + std::to_string(it->second.partitions) + " " + it->second.cleanup_policy;
    }
    const rd_kafka_resp_err_t err =
        rd_kafka_mock_topic_create(cluster_, topic.c_str(), partitions, rf);
    if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      // Created behind our back (auto-creation): its settings are unknown.
      return "error topic " + topic + " exists but was not created through the admin port";
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return std::string("error ") + rd_kafka_err2str(err);
    topics_[topic] = TopicInfo{partitions, policy};
    std::fprintf(stderr, "settle-kafka-mock: created %s (%d partitions, replication %d, %s)\n",
                 topic.c_str(), partitions, rf, policy.c_str());
    return "created";
  }

  rd_kafka_mock_cluster_t* cluster_;
  const int brokers_;
  const int default_rf_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::map<std::string, TopicInfo> topics_;
};

}  // namespace

int main(int argc, char** argv) {
  int brokers = 3;
  int replication_factor = 0;
  int admin_port = 0;
  CLI::App cli{"settle-kafka-mock: librdkafka's mock Kafka cluster on 127.0.0.1"};
  cli.add_option("--brokers", brokers, "number of brokers")->check(CLI::Range(1, 32));
  cli.add_option("--replication-factor", replication_factor,
                 "default replication factor of new topics (default: min(3, brokers))");
  cli.add_option("--admin-port", admin_port,
                 "port of the topic admin server on 127.0.0.1 (0: any free port)")
      ->check(CLI::Range(0, 65535));
  CLI11_PARSE(cli, argc, argv);
  if (replication_factor == 0) replication_factor = std::min(3, brokers);
  if (replication_factor < 1 || replication_factor > brokers) {
    std::fprintf(stderr, "settle-kafka-mock: --replication-factor %d needs 1..%d\n",
                 replication_factor, brokers);
    return 2;
  }

  // Every thread (librdkafka's included) inherits this mask; the main thread
  // takes SIGTERM/SIGINT with sigwait.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof errstr);
  rd_kafka_conf_set(conf, "client.id", "settle-kafka-mock", errstr, sizeof errstr);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (rk == nullptr) {
    std::fprintf(stderr, "settle-kafka-mock: rd_kafka_new: %s\n", errstr);
    return 2;
  }
  rd_kafka_mock_cluster_t* cluster = rd_kafka_mock_cluster_new(rk, brokers);
  if (cluster == nullptr) {
    std::fprintf(stderr, "settle-kafka-mock: could not start a mock cluster of %d brokers\n",
                 brokers);
    rd_kafka_destroy(rk);
    return 2;
  }

  AdminServer admin(cluster, brokers, replication_factor);
  const int bound = admin.bind_port(admin_port);
  if (bound < 0) {
    std::fprintf(stderr, "settle-kafka-mock: admin port 127.0.0.1:%d: %s\n", admin_port,
                 std::strerror(errno));
    rd_kafka_mock_cluster_destroy(cluster);
    rd_kafka_destroy(rk);
    return 2;
  }
  admin.start();

  std::fprintf(stderr,
               "settle-kafka-mock: %d brokers, default replication factor %d, admin port "
               "127.0.0.1:%d\n",
               brokers, replication_factor, bound);
  std::fprintf(stdout, "%s\n", rd_kafka_mock_cluster_bootstraps(cluster));
  std::fflush(stdout);
  std::fflush(stderr);

  int signal = 0;
  sigwait(&stop_signals, &signal);
  std::fprintf(stderr, "settle-kafka-mock: stopping on signal %d\n", signal);

  admin.stop();
  rd_kafka_mock_cluster_destroy(cluster);
  rd_kafka_destroy(rk);
  return 0;
}
