#include "postgres_server.h"

#include <libpq-fe.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "process.h"

namespace settle::testing {
namespace {

namespace fs = std::filesystem;

const char* const kAccount = "postgres";

// The directory holding initdb and postgres.
fs::path bin_dir() {
  if (const char* env = std::getenv("SETTLE_PG_BINDIR"); env != nullptr && *env != '\0') {
    return env;
  }
  if (fs::exists("/usr/lib/postgresql/15/bin/postgres")) return "/usr/lib/postgresql/15/bin";
  if (const char* path = std::getenv("PATH"); path != nullptr) {
    std::string all = path;
    std::size_t start = 0;
    while (start <= all.size()) {
      std::size_t end = all.find(':', start);
      if (end == std::string::npos) end = all.size();
      fs::path dir = all.substr(start, end - start);
      if (!dir.empty() && fs::exists(dir / "initdb") && fs::exists(dir / "postgres")) return dir;
      start = end + 1;
    }
  }
  throw std::runtime_error(
      "PostgresServer: no PostgreSQL 15 binaries (install postgresql-15 with scripts/setup, or "
      "set SETTLE_PG_BINDIR)");
}

// A libpq keyword value, single-quoted with \ and ' escaped.
std::string quote_keyword(const std::string& value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  out += '\'';
  return out;
}

std::string percent_encode(const std::string& value) {
  static const char* const kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string quote_identifier(const std::string& name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

}  // namespace

struct PostgresServer::Impl {
  PostgresServerOptions options;
  TempDir dir{"settle-pg"};
  fs::path bin;
  int port = 0;
  std::optional<Process> server;
  int starts = 0;

  std::string conninfo(const std::string& dbname) const {
    return "host=127.0.0.1 port=" + std::to_string(port) + " user=" + kAccount +
           " dbname=" + quote_keyword(dbname) + " connect_timeout=10";
  }

  // Starts postgres on `port` and waits until it answers; the log tail when
  // it does not.
  std::optional<std::string> launch() {
    const fs::path log = dir.path() / ("server-" + std::to_string(starts++) + ".log");
    Process p({.argv = {(bin / "postgres").string(), "-D", (dir.path() / "data").string(), "-p",
                        std::to_string(port), "-k", (dir.path() / "sockets").string(), "-c",
                        "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c",
                        "full_page_writes=off", "-c",
                        options.synchronous_commit ? "synchronous_commit=on" : "synchronous_commit=off", "-c",
                        "shared_buffers=64MB", "-c", "max_connections=200", "-c",
                        "max_wal_size=2GB", "-c", "logging_collector=off", "-c",
                        "log_min_messages=warning"},
               .env = {},
               .run_as = std::string(kAccount),
               .log = log,
               .cwd = dir.path()});
    const std::string info = conninfo("postgres");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline && p.running()) {
      if (PQping(info.c_str()) == PQPING_OK) {
        server.emplace(std::move(p));
        return std::nullopt;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    std::string tail = p.log_tail();
    p.stop(SIGINT);
    return tail;
  }
};

PostgresServer::PostgresServer(PostgresServerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
  impl_->bin = bin_dir();
  const fs::path bin = impl_->bin;
  const fs::path data = impl_->dir.path() / "data";
  const fs::path sockets = impl_->dir.path() / "sockets";
  fs::create_directories(sockets);
  impl_->dir.give_to(kAccount);

  std::string output;
  const int rc = run({.argv = {(bin / "initdb").string(), "-D", data.string(), "-U", kAccount,
                               "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
                               "--no-instructions"},
                      .env = {},
                      .run_as = std::string(kAccount),
                      .log = {},
                      .cwd = impl_->dir.path()},
                     &output);
  if (rc != 0) {
    throw std::runtime_error("PostgresServer: initdb failed (exit " + std::to_string(rc) +
                             "):\n" + output);
  }

  // free_port() can race with another process taking the port: retry a few times.
  std::string last_log;
  for (int attempt = 0; attempt < 5; ++attempt) {
    impl_->port = free_port();
    auto failed = impl_->launch();
    if (!failed) return;
    last_log = *failed;
  }
  throw std::runtime_error("PostgresServer: postgres did not start:\n" + last_log);
}

void PostgresServer::stop() {
  // SIGQUIT is PostgreSQL's immediate shutdown: no checkpoint, the next start
  // runs crash recovery, as after a power cut of the server alone.
  if (impl_->server) impl_->server->stop(SIGQUIT, std::chrono::seconds(20));
  impl_->server.reset();
}

void PostgresServer::start() {
  if (impl_->server) return;
  if (auto failed = impl_->launch()) {
    throw std::runtime_error("PostgresServer: postgres did not start again on port " + std::to_string(impl_->port) +
                             ":\n" + *failed);
  }
}

pid_t PostgresServer::pid() const { return impl_->server ? impl_->server->pid() : -1; }

PostgresServer::~PostgresServer() {
  // SIGINT is PostgreSQL's fast shutdown: it disconnects clients and exits cleanly.
  if (impl_ && impl_->server) impl_->server->stop(SIGINT, std::chrono::seconds(20));
}

PostgresServer& PostgresServer::shared() {
  static std::mutex mutex;
  // Destroyed by static destruction at exit, which stops the server.
  static std::unique_ptr<PostgresServer> server;
  std::lock_guard lock(mutex);
  if (!server) server = std::make_unique<PostgresServer>(PostgresServerOptions{});
  return *server;
}

int PostgresServer::port() const { return impl_->port; }

std::string PostgresServer::conninfo(const std::string& dbname) const {
  return impl_->conninfo(dbname);
}

std::string PostgresServer::url(const std::string& dbname) const {
  return "postgresql://" + std::string(kAccount) + "@127.0.0.1:" + std::to_string(impl_->port) +
         "/" + percent_encode(dbname);
}

void PostgresServer::create_database(const std::string& name) {
  std::lock_guard lock(mutex_);
  PGconn* conn = PQconnectdb(impl_->conninfo("postgres").c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = PQerrorMessage(conn);
    PQfinish(conn);
    throw std::runtime_error("PostgresServer::create_database: connect: " + message);
  }
  const char* params[] = {name.c_str()};
  PGresult* exists = PQexecParams(conn, "SELECT 1 FROM pg_database WHERE datname = $1", 1,
                                  nullptr, params, nullptr, nullptr, 0);
  const bool found = PQresultStatus(exists) == PGRES_TUPLES_OK && PQntuples(exists) == 1;
  PQclear(exists);
  if (!found) {
    PGresult* created = PQexec(conn, ("CREATE DATABASE " + quote_identifier(name)).c_str());
    const bool ok = PQresultStatus(created) == PGRES_COMMAND_OK;
    const char* state = PQresultErrorField(created, PG_DIAG_SQLSTATE);
    // 42P04 duplicate_database: another process created it meanwhile.
    const bool duplicate = state != nullptr && std::string(state) == "42P04";
    std::string message = PQresultErrorMessage(created);
    PQclear(created);
    if (!ok && !duplicate) {
      PQfinish(conn);
      throw std::runtime_error("PostgresServer::create_database " + name + ": " + message);
    }
  }
  PQfinish(conn);
}

}  // namespace settle::testing
