#include "redis_test_util.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <sys/time.h>

#include <mutex>
#include <stdexcept>

#include "support/postgres_server.h"

namespace settle::idempotency {

std::string token_database_conninfo() {
  static std::once_flag once;
  auto& pg = testing::PostgresServer::shared();
  std::call_once(once, [&] { pg.create_database("fencing_tokens"); });
  return pg.conninfo("fencing_tokens");
}

std::shared_ptr<TokenSource> shared_pg_tokens() {
  static std::mutex mutex;
  static std::shared_ptr<TokenSource> tokens;
  std::lock_guard lock(mutex);
  if (!tokens) {
    auto opened = PgTokenSource::open(token_database_conninfo());
    if (!opened.ok()) throw std::runtime_error(opened.error().to_string());
    tokens = std::move(opened).value();
  }
  return tokens;
}

std::uint64_t last_sequence_value() {
  PGconn* conn = PQconnectdb(token_database_conninfo().c_str());
  std::uint64_t value = 0;
  if (PQstatus(conn) == CONNECTION_OK) {
    PGresult* r = PQexec(conn, "SELECT last_value FROM settle_fencing_tokens");
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
      value = std::stoull(PQgetvalue(r, 0, 0));
    } else {
      ADD_FAILURE() << "last_sequence_value: " << PQresultErrorMessage(r);
    }
    PQclear(r);
  } else {
    ADD_FAILURE() << "last_sequence_value: " << PQerrorMessage(conn);
  }
  PQfinish(conn);
  return value;
}

int cluster_slot(const std::string& key) {
  std::string hashed = key;
  if (const auto open = key.find('{'); open != std::string::npos) {
    const auto close = key.find('}', open + 1);
    if (close != std::string::npos && close > open + 1) hashed = key.substr(open + 1, close - open - 1);
  }
  std::uint16_t crc = 0;
  for (const unsigned char c : hashed) {
    crc = static_cast<std::uint16_t>(crc ^ (c << 8));
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x8000) != 0 ? static_cast<std::uint16_t>((crc << 1) ^ 0x1021)
                                : static_cast<std::uint16_t>(crc << 1);
    }
  }
  return crc % 16384;
}

struct RawRedis::Reply {
  redisReply* r = nullptr;
  ~Reply() {
    if (r != nullptr) freeReplyObject(r);
  }
};

RawRedis::RawRedis(int port) {
  ctx_ = redisConnectWithTimeout("127.0.0.1", port, timeval{5, 0});
  if (ctx_ == nullptr || ctx_->err != 0) {
    throw std::runtime_error("RawRedis: cannot connect to port " + std::to_string(port));
  }
  redisSetTimeout(ctx_, timeval{5, 0});
}

RawRedis::~RawRedis() {
  if (ctx_ != nullptr) redisFree(ctx_);
}

std::unique_ptr<RawRedis::Reply> RawRedis::run(const std::vector<std::string>& argv) {
  std::vector<const char*> args;
  std::vector<std::size_t> lengths;
  for (const auto& a : argv) {
    args.push_back(a.data());
    lengths.push_back(a.size());
  }
  auto reply = std::make_unique<Reply>();
  reply->r = static_cast<redisReply*>(
      redisCommandArgv(ctx_, static_cast<int>(args.size()), args.data(), lengths.data()));
  if (reply->r == nullptr) throw std::runtime_error(std::string("RawRedis: ") + ctx_->errstr);
  if (reply->r->type == REDIS_REPLY_ERROR) {
    ADD_FAILURE() << "RawRedis " << argv.front() << ": " << reply->r->str;
  }
  return reply;
}

void RawRedis::command(const std::vector<std::string>& argv) { run(argv); }

long long RawRedis::integer(const std::vector<std::string>& argv) {
  auto reply = run(argv);
  EXPECT_EQ(reply->r->type, REDIS_REPLY_INTEGER) << argv.front();
  return reply->r->integer;
}

std::string RawRedis::string(const std::vector<std::string>& argv) {
  auto reply = run(argv);
  if (reply->r->type == REDIS_REPLY_NIL) return "";
  EXPECT_EQ(reply->r->type, REDIS_REPLY_STRING) << argv.front();
  return std::string(reply->r->str, reply->r->len);
}

std::set<std::string> RawRedis::keys(const std::string& pattern) {
  auto reply = run({"KEYS", pattern});
  std::set<std::string> out;
  if (reply->r->type != REDIS_REPLY_ARRAY) return out;
  for (std::size_t i = 0; i < reply->r->elements; ++i) {
    out.emplace(reply->r->element[i]->str, reply->r->element[i]->len);
  }
  return out;
}

long long RawRedis::info_stat(const std::string& field) {
  const std::string text = string({"INFO", "stats"});
  const auto at = text.find(field + ":");
  if (at == std::string::npos) {
    ADD_FAILURE() << "INFO has no " << field;
    return -1;
  }
  return std::stoll(text.substr(at + field.size() + 1));
}

}  // namespace settle::idempotency
