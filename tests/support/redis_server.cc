#include "redis_server.h"

#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/time.h>

#include <chrono>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "process.h"

namespace settle::testing {
namespace {

// True when a redis-server answers PING on 127.0.0.1:port.
bool answers_ping(int port) {
  timeval timeout{1, 0};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port, timeout);
  if (c == nullptr) return false;
  bool ok = false;
  if (c->err == 0 && redisSetTimeout(c, timeout) == REDIS_OK) {
    auto* reply = static_cast<redisReply*>(redisCommand(c, "PING"));
    ok = reply != nullptr && reply->type == REDIS_REPLY_STATUS && std::string(reply->str) == "PONG";
    if (reply != nullptr) freeReplyObject(reply);
  }
  redisFree(c);
  return ok;
}

}  // namespace

struct RedisServer::Impl {
  RedisServerOptions options;
  TempDir dir{"settle-redis"};
  int port = 0;
  int starts = 0;
  bool paused = false;
  std::optional<Process> server;

  // Tries once on the current port; the log tail when it did not come up.
  std::optional<std::string> try_start() {
    std::vector<std::string> argv = {"redis-server", "--port", std::to_string(port),
                                     "--bind", "127.0.0.1", "--protected-mode", "no",
                                     "--dir", dir.path().string(), "--save", "",
                                     "--daemonize", "no", "--logfile", "",
                                     "--loglevel", "warning"};
    if (options.persistent) {
      argv.insert(argv.end(), {"--appendonly", "yes", "--appendfsync", "always"});
    } else {
      argv.insert(argv.end(), {"--appendonly", "no"});
    }
    if (options.maxmemory_bytes > 0) {
      argv.insert(argv.end(), {"--maxmemory", std::to_string(options.maxmemory_bytes)});
    }
    const auto log = dir.path() / ("server-" + std::to_string(starts++) + ".log");
    Process p({.argv = argv, .env = {}, .run_as = std::nullopt, .log = log, .cwd = dir.path()});
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline && p.running()) {
      if (answers_ping(port)) {
        server.emplace(std::move(p));
        return std::nullopt;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::string tail = p.log_tail();
    p.stop(SIGKILL);
    return tail.empty() ? std::string("(empty log)") : tail;
  }
};

RedisServer::RedisServer(RedisServerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
  // free_port() can race with another process taking the port: retry a few times.
  std::string last_log;
  for (int attempt = 0; attempt < 5; ++attempt) {
    impl_->port = free_port();
    auto failure = impl_->try_start();
    if (!failure) return;
    last_log = *failure;
  }
  throw std::runtime_error("RedisServer: redis-server did not start:\n" + last_log);
}

RedisServer::~RedisServer() {
  if (impl_->server) {
    if (impl_->paused) ::kill(impl_->server->pid(), SIGCONT);
    impl_->server->stop(SIGTERM, std::chrono::seconds(10));
  }
}

RedisServer& RedisServer::shared() {
  static std::mutex mutex;
  // Destroyed by static destruction at exit, which stops the server.
  static std::unique_ptr<RedisServer> server;
  std::lock_guard lock(mutex);
  if (!server) server = std::make_unique<RedisServer>();
  return *server;
}

int RedisServer::port() const { return impl_->port; }

std::string RedisServer::url() const { return "redis://127.0.0.1:" + std::to_string(impl_->port); }

pid_t RedisServer::pid() const { return impl_->server ? impl_->server->pid() : -1; }

void RedisServer::stop() {
  if (!impl_->server) return;
  impl_->server->stop(SIGKILL);
  impl_->server.reset();
  impl_->paused = false;
}

void RedisServer::start() {
  if (impl_->server) return;
  // The port was ours a moment ago; redis-server binds with SO_REUSEADDR, so
  // connections of the old server in TIME_WAIT do not keep it out.
  if (auto failure = impl_->try_start()) {
    throw std::runtime_error("RedisServer: redis-server did not restart on port " +
                             std::to_string(impl_->port) + ":\n" + *failure);
  }
}

void RedisServer::pause() {
  if (!impl_->server || impl_->paused) return;
  ::kill(impl_->server->pid(), SIGSTOP);
  impl_->paused = true;
}

void RedisServer::resume() {
  if (!impl_->server || !impl_->paused) return;
  ::kill(impl_->server->pid(), SIGCONT);
  impl_->paused = false;
}

}  // namespace settle::testing
