#include "support/kafka_mock.h"

#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace settle::testing {
namespace {

std::string read_all(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

KafkaMock::KafkaMock(KafkaMockOptions options) : dir_("kafka-mock") {
  const int admin_port = free_port();
  admin_ = "127.0.0.1:" + std::to_string(admin_port);
  const std::filesystem::path log = dir_.path() / "kafka-mock.log";
  ProcessOptions p;
  p.argv = {SETTLE_KAFKA_MOCK_BIN, "--brokers", std::to_string(options.brokers), "--admin-port",
            std::to_string(admin_port)};
  if (options.replication_factor > 0) {
    p.argv.push_back("--replication-factor");
    p.argv.push_back(std::to_string(options.replication_factor));
  }
  p.log = log;
  process_ = std::make_unique<Process>(std::move(p));

  // The helper prints the bootstrap list as a line of its own; its log lines
  // (same file) start with "settle-kafka-mock:" or librdkafka's "%N|".
  const std::regex bootstrap_line(R"(^(127\.0\.0\.1:[0-9]+)(,127\.0\.0\.1:[0-9]+)*$)");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (bootstrap_.empty()) {
    std::istringstream lines(read_all(log));
    for (std::string line; std::getline(lines, line);) {
      if (std::regex_match(line, bootstrap_line)) {
        bootstrap_ = line;
        break;
      }
    }
    if (!bootstrap_.empty()) break;
    if (!process_->running() || std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error("settle-kafka-mock did not start: " + process_->log_tail());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!wait_for_port(admin_port, std::chrono::seconds(10))) {
    throw std::runtime_error("settle-kafka-mock: no admin port: " + process_->log_tail());
  }
}

KafkaMock::~KafkaMock() = default;

KafkaMock& KafkaMock::shared() {
  static KafkaMock mock;
  return mock;
}

std::string KafkaMock::url(std::string_view params) const {
  std::string u = "kafka://" + bootstrap_ + "?mock_admin=" + admin_;
  if (!params.empty()) u += "&" + std::string(params);
  return u;
}

void KafkaMock::stop() { process_->stop(); }

}  // namespace settle::testing
