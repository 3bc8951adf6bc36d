// A Kafka-protocol cluster for tests: tools/kafka-mock (librdkafka's mock
// cluster) as a child process on 127.0.0.1. See tools/kafka-mock/README.md for
// what the mock does and does not implement.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "support/process.h"

namespace settle::testing {

struct KafkaMockOptions {
  int brokers = 3;
  int replication_factor = 0;  // 0: the helper's default, min(3, brokers)
};

class KafkaMock {
 public:
  // Starts settle-kafka-mock and waits until it serves; throws
  // std::runtime_error (with the helper's log) when it does not.
  explicit KafkaMock(KafkaMockOptions options = {});
  ~KafkaMock();
  KafkaMock(const KafkaMock&) = delete;
  KafkaMock& operator=(const KafkaMock&) = delete;

  // One cluster for the whole test process, started on first use and stopped
  // at exit (or by PR_SET_PDEATHSIG when the test dies).
  static KafkaMock& shared();

  // "127.0.0.1:p1,127.0.0.1:p2,..."
  const std::string& bootstrap() const { return bootstrap_; }
  // "127.0.0.1:P", the helper's topic admin port.
  const std::string& admin() const { return admin_; }
  // kafka://<bootstrap>?mock_admin=<admin>[&<params>], for KafkaBus::open.
  std::string url(std::string_view params = "") const;

  // Stops the cluster (every broker at once), e.g. to test what clients do
  // when it is gone.
  void stop();
  Process& process() { return *process_; }

 private:
  TempDir dir_;
  std::unique_ptr<Process> process_;
  std::string bootstrap_;
  std::string admin_;
};

}  // namespace settle::testing
