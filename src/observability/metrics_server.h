// A small HTTP listener for roles that have no gateway (processor, worker,
// recon watch): GET /metrics (text exposition 0.0.4) and GET /healthz, on
// one thread, each connection answered and closed (Prometheus scrapes a few
// times a minute; this is not a general HTTP server).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/result.h"
#include "observability/metrics.h"

namespace settle::observability {

class MetricsServer {
 public:
  // Binds host:port (port 0 picks a free one) and starts serving.
  static Result<std::unique_ptr<MetricsServer>> start(Metrics& metrics, const std::string& host,
                                                      std::uint16_t port);
  ~MetricsServer();  // stops and joins
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  std::uint16_t port() const;

 private:
  struct Impl;
  explicit MetricsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Parses "host:port" (":port" means 127.0.0.1).
Result<std::pair<std::string, std::uint16_t>> parse_listen(const std::string& address);

}  // namespace settle::observability
