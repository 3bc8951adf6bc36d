// A small blocking HTTP/1.1 client (Boost.Beast) for the gateway's tests: one
// connection per request, or a kept-alive Connection.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace settle::testing {

struct HttpResult {
  unsigned status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // names in lowercase
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

using Headers = std::vector<std::pair<std::string, std::string>>;

// Sends one request on a new connection; throws std::runtime_error when the
// exchange fails (connection refused or closed before a response).
HttpResult http_request(int port, const std::string& method, const std::string& target, const std::string& body = {},
                        const Headers& headers = {});

// A raw TCP connection to 127.0.0.1:port, for tests of slow or idle clients.
class RawConnection {
 public:
  explicit RawConnection(int port);
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;
  void send(const std::string& bytes);
  // Reads until the peer closes or `timeout_ms` passes; returns what arrived
  // and whether the peer closed.
  std::pair<std::string, bool> read_until_close(int timeout_ms);

 private:
  int fd_ = -1;
};

}  // namespace settle::testing
