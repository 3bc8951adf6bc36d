// Helpers shared by the RedisStore tests: the fencing-token source on the
// test PostgreSQL, a raw hiredis connection to look at what the store wrote,
// and Redis Cluster's key-to-slot function.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "idempotency/pg_token_source.h"

struct redisContext;

namespace settle::idempotency {

// The conninfo of the tests' token database on PostgresServer::shared().
std::string token_database_conninfo();

// One PgTokenSource per test process, on the default sequence.
std::shared_ptr<TokenSource> shared_pg_tokens();

// last_value of the default fencing-token sequence.
std::uint64_t last_sequence_value();

// The hash slot Redis Cluster gives a key: CRC16 (XMODEM) of its hash tag
// (the text between the first '{' and the next '}', when not empty) or of
// the whole key, modulo 16384.
int cluster_slot(const std::string& key);

// A plain hiredis connection for checks; every failure is a test failure.
class RawRedis {
 public:
  explicit RawRedis(int port);
  ~RawRedis();
  RawRedis(const RawRedis&) = delete;
  RawRedis& operator=(const RawRedis&) = delete;

  void command(const std::vector<std::string>& argv);
  long long integer(const std::vector<std::string>& argv);
  std::string string(const std::vector<std::string>& argv);  // "" for nil
  std::set<std::string> keys(const std::string& pattern);
  // A numeric field of INFO (e.g. total_commands_processed).
  long long info_stat(const std::string& field);

 private:
  struct Reply;
  std::unique_ptr<Reply> run(const std::vector<std::string>& argv);
  redisContext* ctx_ = nullptr;
};

}  // namespace settle::idempotency
