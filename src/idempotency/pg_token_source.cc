#include "idempotency/pg_token_source.h"

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <utility>

#include "common/pg_result.h"

namespace settle::idempotency {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// [a-z_][a-z0-9_]* with at most one '.', so it can be spliced into SQL as is.
bool valid_sequence_name(const std::string& name) {
  if (name.empty() || name.size() > 127) return false;
  bool segment_start = true;
  int dots = 0;
  for (char c : name) {
    if (c == '.') {
      if (segment_start || ++dots > 1) return false;
      segment_start = true;
      continue;
    }
    const bool letter = (c >= 'a' && c <= 'z') || c == '_';
    const bool digit = c >= '0' && c <= '9';
    if (!letter && !(digit && !segment_start)) return false;
    segment_start = false;
  }
  return !segment_start;
}

// Where the connection goes, for messages (never the password).
std::string describe(PGconn* conn) {
  if (conn == nullptr) return "PostgreSQL";
  const char* host = PQhost(conn);
  const char* port = PQport(conn);
  const char* db = PQdb(conn);
  return std::string("PostgreSQL at ") + (host != nullptr ? host : "?") + ":" +
         (port != nullptr ? port : "?") + "/" + (db != nullptr ? db : "?");
}

std::string trimmed(const char* message) {
  std::string s = message != nullptr ? message : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Runs one statement, waiting at most `timeout` for its result. Returns the
// last result, or an error message (and then the connection is unusable:
// the caller drops it).
std::pair<PgResult, std::string> exec_with_timeout(PGconn* conn, const std::string& sql,
                                                   milliseconds timeout) {
  if (PQsendQuery(conn, sql.c_str()) != 1) return {PgResult(), trimmed(PQerrorMessage(conn))};
  const auto deadline = Clock::now() + timeout;
  PgResult last;
  for (;;) {
    while (PQisBusy(conn) == 1) {
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) {
        return {PgResult(), "no answer within " + std::to_string(timeout.count()) + " ms"};
      }
      pollfd pfd{PQsocket(conn), POLLIN, 0};
      const int ready = ::poll(&pfd, 1, static_cast<int>(std::max<long long>(1, left.count())));
      if (ready < 0 && errno != EINTR) return {PgResult(), std::string("poll: ") + std::strerror(errno)};
      if (PQconsumeInput(conn) != 1) return {PgResult(), trimmed(PQerrorMessage(conn))};
    }
    PGresult* r = PQgetResult(conn);
    if (r == nullptr) break;
    last = PgResult(r);
  }
  if (!last) return {PgResult(), "no result"};
  return {std::move(last), ""};
}

}  // namespace

Result<std::shared_ptr<PgTokenSource>> PgTokenSource::open(std::string conninfo,
                                                           PgTokenSourceOptions options) {
  if (!valid_sequence_name(options.sequence)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "PgTokenSource: sequence name '" + options.sequence +
                          "' must be a lower-case identifier ([a-z_][a-z0-9_]*, optionally "
                          "schema.name)");
  }
  if (options.connect_timeout.count() <= 0 || options.query_timeout.count() <= 0) {
    return make_error(ErrorCode::kInvalidArgument, "PgTokenSource: timeouts must be positive");
  }
  std::shared_ptr<PgTokenSource> source(new PgTokenSource(std::move(conninfo), std::move(options)));
  {
    std::lock_guard lock(source->mu_);
    SETTLE_TRY(source->ensure_connected());
  }
  return source;
}

PgTokenSource::PgTokenSource(std::string conninfo, PgTokenSourceOptions options)
    : conninfo_(std::move(conninfo)), options_(std::move(options)) {}

PgTokenSource::~PgTokenSource() {
  std::lock_guard lock(mu_);
  drop_connection();
}

void PgTokenSource::drop_connection() {
  if (conn_ != nullptr) PQfinish(conn_);
  conn_ = nullptr;
}

Status PgTokenSource::ensure_connected() {
  if (conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK) return ok_status();
  drop_connection();
  const auto now = Clock::now();
  if (backoff_.count() > 0 && now < retry_at_) {
    const auto wait = std::chrono::duration_cast<milliseconds>(retry_at_ - now);
    return make_error(ErrorCode::kUnavailable,
                      "fencing token source: " + last_error_ + " (next connection attempt in " +
                          std::to_string(wait.count()) + " ms)");
  }

  auto fail = [&](std::string message) -> Status {
    drop_connection();
    backoff_ = backoff_.count() == 0 ? options_.reconnect_backoff_min
                                     : std::min(backoff_ * 2, options_.reconnect_backoff_max);
    retry_at_ = Clock::now() + backoff_;
    last_error_ = std::move(message);
    return make_error(ErrorCode::kUnavailable, "fencing token source: " + last_error_);
  };

  // connect_timeout precedes dbname, so a connect_timeout in the caller's
  // conninfo (expanded from dbname) wins over ours.
  const long long timeout_s = std::max<long long>(2, (options_.connect_timeout.count() + 999) / 1000);
  const std::string timeout_text = std::to_string(timeout_s);
  const char* keywords[] = {"connect_timeout", "dbname", "application_name", nullptr};
  const char* values[] = {timeout_text.c_str(), conninfo_.c_str(), "settle-fencing-tokens", nullptr};
  conn_ = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
  if (conn_ == nullptr) return fail("PostgreSQL: out of memory");
  if (PQstatus(conn_) != CONNECTION_OK) {
    return fail("cannot connect to " + describe(conn_) + ": " + trimmed(PQerrorMessage(conn_)));
  }
  // "relation already exists, skipping" and the like are not for stderr.
  PQsetNoticeProcessor(conn_, [](void*, const char*) {}, nullptr);

  // A token must be on disk before anyone acts on it, whatever the server's
  // default (the tests' server runs with synchronous_commit off).
  std::string setup = "SET synchronous_commit = on";
  if (!sequence_ready_) {
    setup += "; CREATE SEQUENCE IF NOT EXISTS " + options_.sequence +
             " AS bigint MINVALUE 1 START 1 CACHE 1 NO CYCLE";
  }
  auto [result, error] = exec_with_timeout(conn_, setup, options_.query_timeout);
  if (!result) return fail(describe(conn_) + ": setting up " + options_.sequence + ": " + error);
  if (PQresultStatus(result.get()) != PGRES_COMMAND_OK) {
    const char* state = PQresultErrorField(result.get(), PG_DIAG_SQLSTATE);
    const std::string sqlstate = state != nullptr ? state : "";
    // Two processes creating the sequence at once: the loser gets a unique
    // violation (23505) or duplicate_table (42P07); the sequence exists.
    if (sqlstate != "23505" && sqlstate != "42P07") {
      std::string message = describe(conn_) + ": CREATE SEQUENCE " + options_.sequence + ": " +
                            trimmed(PQresultErrorMessage(result.get()));
      drop_connection();
      return make_error(ErrorCode::kFailedPrecondition, "fencing token source: " + message);
    }
    // The failed statement aborted the rest of the string; redo the SET.
    auto [again, again_error] =
        exec_with_timeout(conn_, "SET synchronous_commit = on", options_.query_timeout);
    if (!again || PQresultStatus(again.get()) != PGRES_COMMAND_OK) {
      return fail(describe(conn_) + ": SET synchronous_commit: " +
                  (again ? trimmed(PQresultErrorMessage(again.get())) : again_error));
    }
  }
  sequence_ready_ = true;
  backoff_ = milliseconds(0);
  return ok_status();
}

Result<std::uint64_t> PgTokenSource::next() {
  std::lock_guard lock(mu_);
  SETTLE_TRY(ensure_connected());
  auto [result, error] = exec_with_timeout(
      conn_, "SELECT nextval('" + options_.sequence + "')", options_.query_timeout);
  if (!result) {
    std::string message = describe(conn_) + ": nextval: " + error;
    drop_connection();
    return make_error(ErrorCode::kUnavailable, "fencing token source: " + message);
  }
  if (PQresultStatus(result.get()) != PGRES_TUPLES_OK || PQntuples(result.get()) != 1) {
    std::string message = describe(conn_) + ": nextval('" + options_.sequence +
                          "'): " + trimmed(PQresultErrorMessage(result.get()));
    // The server may be shutting down or read-only (a standby): reconnect next time.
    drop_connection();
    return make_error(ErrorCode::kUnavailable, "fencing token source: " + message);
  }
  const char* text = PQgetvalue(result.get(), 0, 0);
  const std::size_t length = static_cast<std::size_t>(PQgetlength(result.get(), 0, 0));
  std::uint64_t token = 0;
  const auto [end, ec] = std::from_chars(text, text + length, token);
  if (ec != std::errc() || end != text + length || token == 0) {
    return make_error(ErrorCode::kCorruption, "fencing token source: nextval('" +
                                                  options_.sequence + "') returned '" +
                                                  std::string(text, length) + "'");
  }
  return token;
}

}  // namespace settle::idempotency
