#include "ledger/postgres_ledger.h"

#include "ledger/checks.h"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <tuple>
#include <mutex>
#include <set>
#include <unordered_map>
#include <utility>

#include "common/assert.h"
#include "common/pg_result.h"
#include "ledger/postgres_migrations.h"
#include "model/journal.h"

namespace settle::ledger {
namespace {

using model::AccountRole;
using model::BatchKey;
using model::BatchSummary;
using model::EventType;
using model::Journal;
using model::JournalKind;

// Serializes migrations of one database across processes (session lock).
constexpr std::int64_t kMigrationLock = 0x5e77'1e00'0000'0001;
// A post that deadlocks or fails serialization is retried this often.
constexpr int kAttempts = 4;

// ---------------------------------------------------------------------------
// Values

const Date kFirstDate = checks::first_date();
const Date kLastDate = checks::last_date();
using checks::check_key;
using checks::date_in_range;
using checks::is_event_kind;
using checks::journal_id_text;
using checks::validate_journal;



std::string digest_hex(const model::Digest& d) { return fmt::format("{:016x}{:016x}", d.hi, d.lo); }

// "\x0123..." (bytea's text output) -> bytes.
std::optional<std::string> bytea_from_text(std::string_view text) {
  if (text.size() < 2 || text[0] != '\\' || text[1] != 'x' || text.size() % 2 != 0) {
    return std::nullopt;
  }
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve((text.size() - 2) / 2);
  for (std::size_t i = 2; i < text.size(); i += 2) {
    const int hi = nibble(text[i]);
    const int lo = nibble(text[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

std::string bytea_to_hex_param(std::string_view bytes) {
  static const char* const kHex = "0123456789abcdef";
  std::string out = "\\x";
  out.reserve(2 + bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

// A decimal integer (bigint or numeric without fraction) -> int128.
std::optional<__int128> parse_int128(std::string_view text) {
  if (text.empty()) return std::nullopt;
  bool negative = false;
  std::size_t i = 0;
  if (text[0] == '-') {
    negative = true;
    i = 1;
  }
  if (i >= text.size() || text.size() - i > 38) return std::nullopt;
  __int128 v = 0;
  for (; i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
    v = v * 10 + (text[i] - '0');
  }
  return negative ? -v : v;
}

// Appends `s` escaped for COPY's text format.
void copy_text(std::string& out, std::string_view s) {
  for (char c : s) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      default: out += c;
    }
  }
}

// COPY's binary format (PostgreSQL's "COPY ... WITH (FORMAT binary)"):
// a signature and two zero words, then each row as a field count and each
// field as its length and bytes, in network byte order, then -1. The server
// takes these values without parsing text: the identities' COPY (about a
// quarter of a post's time) took 16% less time than in text (0.79 s against
// 0.94 s for 200,000, means of six rounds of pg_ledger_bench).
void put_be16(std::string& out, std::int16_t v) {
  const auto u = static_cast<std::uint16_t>(v);
  out += static_cast<char>(u >> 8);
  out += static_cast<char>(u & 0xFF);
}

void put_be32(std::string& out, std::int32_t v) {
  const auto u = static_cast<std::uint32_t>(v);
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((u >> shift) & 0xFF);
}

void put_be64(std::string& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xFF);
}

void copy_binary_header(std::string& out) {
  out.append("PGCOPY\n\xFF\r\n\0", 11);
  put_be32(out, 0);  // flags
  put_be32(out, 0);  // header extension length
}

void copy_binary_trailer(std::string& out) { put_be16(out, -1); }

// A text field: its bytes, in the client encoding (UTF8 on our connections).
void copy_binary_text(std::string& out, std::string_view s) {
  put_be32(out, static_cast<std::int32_t>(s.size()));
  out += s;
}

// A date field: days since 2000-01-01, PostgreSQL's epoch.
void copy_binary_date(std::string& out, Date d) {
  constexpr std::int64_t kPostgresEpochDays = 10'957;  // 2000-01-01 in days since 1970-01-01
  put_be32(out, 4);
  put_be32(out, static_cast<std::int32_t>(d.days - kPostgresEpochDays));
}

// A digest as a 16-byte bytea field, high word first (as digest_hex prints it).
void copy_binary_digest(std::string& out, const model::Digest& d) {
  put_be32(out, 16);
  put_be64(out, d.hi);
  put_be64(out, d.lo);
}

// A PostgreSQL array literal of text values.
std::string text_array(const std::vector<std::string>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (char c : values[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

template <typename T>
std::string int_array(const std::vector<T>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(values[i]);
  }
  out += '}';
  return out;
}

// The account a name like "merchant:m1:payable" or "platform:fees" names.
struct AccountRef {
  AccountRole role;
  std::string merchant;  // "" for platform accounts
};

std::optional<AccountRef> parse_account(std::string_view name) {
  if (name.starts_with("platform:")) {
    const std::string_view rest = name.substr(9);
    if (rest == "clearing") return AccountRef{AccountRole::kPlatformClearing, ""};
    if (rest == "fees") return AccountRef{AccountRole::kPlatformFees, ""};
    if (rest == "adjustments") return AccountRef{AccountRole::kPlatformAdjustments, ""};
    if (rest == "payouts") return AccountRef{AccountRole::kPlatformPayouts, ""};
    return std::nullopt;
  }
  if (name.starts_with("merchant:")) {
    const std::string_view rest = name.substr(9);
    const std::size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return std::nullopt;
    const std::string merchant(rest.substr(0, colon));
    const std::string_view role = rest.substr(colon + 1);
    if (role == "payable") return AccountRef{AccountRole::kMerchantPayable, merchant};
    if (role == "reserve") return AccountRef{AccountRole::kMerchantReserve, merchant};
  }
  return std::nullopt;
}

constexpr const char* kBatchColumns =
    "merchant_id, batch_date, currency, "
    "captures_count, captures, captures_fees, refunds_count, refunds, refunds_fees, "
    "chargebacks_count, chargebacks, chargebacks_fees, reversals_count, reversals, "
    "reversals_fees, adjustments_count, adjustments, adjustments_fees, "
    "reserve_held, reserve_released, carried_in, net, payout, carry_out, payout_date";
constexpr int kBatchColumnCount = 25;

// The journals' columns in table order, as COPY exports and restores them.
constexpr const char* kJournalColumns =
    "journal_id, merchant_id, ref, kind, currency, batch_date, settle_date, late, occurred_at, "
    "amount, fee, digest, metadata, trace_id, leg1_account, leg1_amount, leg2_account, "
    "leg2_amount, leg3_account, leg3_amount";

// ---------------------------------------------------------------------------
// libpq plumbing

// The ErrorCode for a failed result's SQLSTATE.
ErrorCode code_for(std::string_view state, std::string_view message) {
  if (state == "23505") return ErrorCode::kConflict;
  if (state == "22003" || state == "22008") return ErrorCode::kOverflow;
  if (state == "23514" && message.find("no partition") != std::string_view::npos) {
    return ErrorCode::kFailedPrecondition;
  }
  if (state.starts_with("22") || state.starts_with("23")) return ErrorCode::kInvalidArgument;
  if (state == "55000" || state == "P0001") return ErrorCode::kFailedPrecondition;
  if (state == "40P01" || state == "40001" || state.starts_with("08") || state.starts_with("57") ||
      state.starts_with("53")) {
    return ErrorCode::kUnavailable;
  }
  return ErrorCode::kIo;
}

bool retryable(std::string_view state) { return state == "40P01" || state == "40001"; }

// One pooled connection.
struct Conn {
  PGconn* pg = nullptr;
  bool broken = false;
  std::string last_state;  // SQLSTATE of the last failure
  std::array<bool, 16> postings_prepared{};

  ~Conn() {
    if (pg != nullptr) PQfinish(pg);
  }
};

}  // namespace

// ---------------------------------------------------------------------------

struct PostgresLedger::Impl {
  std::string url;
  std::string where;  // "postgresql://host:port/db" for messages, no password
  PostgresLedgerOptions options;

  std::mutex mu;
  std::condition_variable freed;
  std::vector<std::unique_ptr<Conn>> idle;
  std::size_t open_count = 0;

  std::mutex days_mu;
  std::set<std::int32_t> known_days;  // day partitions known to exist

  // Where post() spends its time (PostgresLedger::post_stats()).
  struct Timers {
    std::atomic<std::int64_t> stage_ns{0}, keys_ns{0}, journals_ns{0}, accounts_ns{0},
        commit_ns{0}, calls{0};
  } timers;
  static std::int64_t since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t)
        .count();
  }

  // --- errors ---------------------------------------------------------------

  Error fail(ErrorCode code, std::string_view what, std::string_view why) const {
    return make_error(code, fmt::format("ledger {}: {}: {}", where, what, why));
  }
  Error refuse(const checks::Refusal& r, std::string_view what) const { return fail(r.code, what, r.why); }

  Error pg_fail(Conn& c, const PgResult* r, std::string_view what) const {
    std::string message;
    std::string state;
    if (r != nullptr && r->get() != nullptr) {
      message = PQresultErrorMessage(r->get());
      if (const char* s = PQresultErrorField(r->get(), PG_DIAG_SQLSTATE)) state = s;
    }
    if (message.empty()) message = PQerrorMessage(c.pg);
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
    if (PQstatus(c.pg) != CONNECTION_OK) {
      c.broken = true;
      if (state.empty()) state = "08000";
    }
    c.last_state = state;
    return make_error(code_for(state, message),
                      fmt::format("ledger {}: {}: postgresql{}: {}", where, what,
                                  state.empty() ? "" : " " + state, message));
  }

  // --- statements -----------------------------------------------------------

  Result<PgResult> exec(Conn& c, const std::string& sql, std::string_view what) {
    PgResult r(PQexec(c.pg, sql.c_str()));
    const auto st = PQresultStatus(r.get());
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return pg_fail(c, &r, what);
    return r;
  }

  // A statement with text parameters (nullopt: NULL).
  Result<PgResult> exec_params(Conn& c, const std::string& sql,
                               const std::vector<std::optional<std::string>>& params,
                               std::string_view what) {
    std::vector<const char*> values;
    for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
    PgResult r(PQexecParams(c.pg, sql.c_str(), static_cast<int>(values.size()), nullptr,
                            values.data(), nullptr, nullptr, 0));
    const auto st = PQresultStatus(r.get());
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return pg_fail(c, &r, what);
    return r;
  }

  Result<PgResult> run(Conn& c, const char* name,
                       const std::vector<std::optional<std::string>>& params,
                       std::string_view what) {
    std::vector<const char*> values;
    for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
    PgResult r(PQexecPrepared(c.pg, name, static_cast<int>(values.size()), values.data(), nullptr,
                              nullptr, 0));
    const auto st = PQresultStatus(r.get());
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return pg_fail(c, &r, what);
    return r;
  }

  Status prepare(Conn& c, const char* name, const std::string& sql) {
    PgResult r(PQprepare(c.pg, name, sql.c_str(), 0, nullptr));
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
      return pg_fail(c, &r, fmt::format("prepare {}", name));
    }
    return ok_status();
  }

  Status prepare_all(Conn& c) {
    SETTLE_TRY(prepare(c, "add_to_accounts",
                       "INSERT INTO accounts AS a (name, currency, balance, postings) "
                       "SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) "
                       "ON CONFLICT (name, currency) DO UPDATE "
                       "SET balance = a.balance + excluded.balance, "
                       "postings = a.postings + excluded.postings"));
    SETTLE_TRY(prepare(c, "update_checkpoint",
                       "UPDATE checkpoints SET next_offset = $3, state = $4::bytea, version = $5 "
                       "WHERE consumer = $1 AND partition = $2 AND version = $5::bigint - 1 RETURNING version"));
    SETTLE_TRY(prepare(c, "insert_checkpoint",
                       "INSERT INTO checkpoints (consumer, partition, next_offset, state, version) "
                       "VALUES ($1, $2, $3, $4::bytea, $5) ON CONFLICT (consumer, partition) DO NOTHING "
                       "RETURNING version"));
    SETTLE_TRY(prepare(c, "get_checkpoint",
                       "SELECT next_offset, state, version FROM checkpoints "
                       "WHERE consumer = $1 AND partition = $2"));
    SETTLE_TRY(prepare(c, "settling",
                       "SELECT kind, count(*), sum(amount), sum(fee) FROM journals "
                       "WHERE merchant_id = $1 AND currency = $2 AND settle_date = $3 "
                       "AND kind IN ('capture', 'refund', 'chargeback', 'chargeback_reversal', "
                       "'adjustment') GROUP BY kind"));
    SETTLE_TRY(prepare(c, "last_closed",
                       "SELECT batch_date, carry_out FROM batches "
                       "WHERE merchant_id = $1 AND currency = $2 "
                       "ORDER BY batch_date DESC LIMIT 1"));
    SETTLE_TRY(prepare(c, "holds",
                       "SELECT batch_date, reserve_held FROM batches "
                       "WHERE merchant_id = $1 AND currency = $2 AND reserve_held > 0 "
                       "AND released_by IS NULL ORDER BY batch_date"));
    // Registers the token unless a higher one is; returns the row only when
    // it did.
    SETTLE_TRY(prepare(c, "register_fence",
                       "INSERT INTO batch_fences AS f (merchant_id, currency, batch_date, token) "
                       "VALUES ($1, $2, $3, $4) ON CONFLICT (merchant_id, currency, batch_date) "
                       "DO UPDATE SET token = excluded.token WHERE f.token <= excluded.token "
                       "RETURNING token"));
    SETTLE_TRY(prepare(c, "get_fence",
                       "SELECT token FROM batch_fences "
                       "WHERE merchant_id = $1 AND currency = $2 AND batch_date = $3"));
    // Locks the batch's fence row (creating it at the given token when
    // absent) and returns the registered token.
    SETTLE_TRY(prepare(c, "lock_fence",
                       "INSERT INTO batch_fences AS f (merchant_id, currency, batch_date, token) "
                       "VALUES ($1, $2, $3, $4) ON CONFLICT (merchant_id, currency, batch_date) "
                       "DO UPDATE SET token = f.token RETURNING token"));
    SETTLE_TRY(prepare(c, "raise_fence",
                       "UPDATE batch_fences SET token = greatest(token, $4) "
                       "WHERE merchant_id = $1 AND currency = $2 AND batch_date = $3"));
    SETTLE_TRY(prepare(c, "get_batch",
                       fmt::format("SELECT {} FROM batches WHERE merchant_id = $1 AND "
                                   "currency = $2 AND batch_date = $3",
                                   kBatchColumns)));
    SETTLE_TRY(prepare(c, "later_batch",
                       "SELECT batch_date FROM batches WHERE merchant_id = $1 AND currency = $2 "
                       "AND batch_date > $3 ORDER BY batch_date LIMIT 1"));
    SETTLE_TRY(prepare(c, "get_hold",
                       "SELECT reserve_held, released_by FROM batches "
                       "WHERE merchant_id = $1 AND currency = $2 AND batch_date = $3"));
    SETTLE_TRY(prepare(
        c, "insert_batch",
        fmt::format("INSERT INTO batches ({}, fees, fencing_token) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, "
                    "$16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27)",
                    kBatchColumns)));
    SETTLE_TRY(prepare(c, "release_hold",
                       "UPDATE batches SET released_by = $4 "
                       "WHERE merchant_id = $1 AND currency = $2 AND batch_date = $3 "
                       "AND released_by IS NULL"));
    SETTLE_TRY(prepare(c, "closed_batches",
                       fmt::format("SELECT {} FROM batches "
                                   "WHERE ($1::text IS NULL OR merchant_id = $1) "
                                   "AND ($2::date IS NULL OR batch_date >= $2) "
                                   "AND ($3::date IS NULL OR batch_date <= $3) "
                                   "ORDER BY merchant_id, currency, batch_date",
                                   kBatchColumns)));
    SETTLE_TRY(prepare(c, "balances",
                       "SELECT name, currency, balance, postings FROM accounts "
                       "WHERE $1::text IS NULL OR starts_with(name, $1) "
                       "ORDER BY name, currency"));
    // Recomputed from the postings (live partitions, plus the totals of the
    // archived days), never from the accounts' running balances.
    SETTLE_TRY(prepare(c, "trial_balance",
                       "SELECT currency, sum(debits), sum(credits) FROM ("
                       " SELECT currency,"
                       "  sum(greatest(leg1_amount, 0)) + sum(greatest(leg2_amount, 0))"
                       "   + coalesce(sum(greatest(leg3_amount, 0)), 0) AS debits,"
                       "  sum(least(leg1_amount, 0)) + sum(least(leg2_amount, 0))"
                       "   + coalesce(sum(least(leg3_amount, 0)), 0) AS credits"
                       " FROM journals GROUP BY currency"
                       " UNION ALL SELECT currency, debits, credits FROM archived_totals) AS t "
                       "GROUP BY currency ORDER BY currency"));
    SETTLE_TRY(prepare(c, "next_token", "SELECT nextval('settle_fencing_tokens')"));
    SETTLE_TRY(prepare(c, "ensure_day", "SELECT ledger_ensure_day($1::date)"));
    return ok_status();
  }

  // --- the pool -------------------------------------------------------------

  Result<std::unique_ptr<Conn>> connect() {
    auto c = std::make_unique<Conn>();
    c->pg = PQconnectdb(url.c_str());
    if (PQstatus(c->pg) != CONNECTION_OK) {
      std::string message = PQerrorMessage(c->pg);
      while (!message.empty() && message.back() == '\n') message.pop_back();
      return fail(ErrorCode::kUnavailable, "connect", message);
    }
    // Notices (e.g. "relation already exists, skipping") are not errors.
    PQsetNoticeProcessor(c->pg, [](void*, const char*) {}, nullptr);
    SETTLE_TRY(exec(*c, "SET application_name = 'settled'; SET client_encoding = 'UTF8'; "
                        "SET datestyle = 'ISO'; SET timezone = 'UTC'; "
                        "SET lock_timeout = '60s'; "
                        // JIT compiling a posting statement (whose row estimates
                        // cross jit_above_cost) took longer than running it.
                        "SET jit = off",
                    "connect"));
    return c;
  }

  // A connection for the duration of a call; back to the pool on release
  // unless it broke.
  class Lease {
   public:
    Lease(Impl& impl, std::unique_ptr<Conn> c) : impl_(impl), c_(std::move(c)) {}
    ~Lease() {
      if (!c_) return;
      std::lock_guard lock(impl_.mu);
      if (c_->broken || PQstatus(c_->pg) != CONNECTION_OK ||
          PQtransactionStatus(c_->pg) != PQTRANS_IDLE) {
        c_.reset();
        --impl_.open_count;
      } else {
        impl_.idle.push_back(std::move(c_));
      }
      impl_.freed.notify_one();
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Conn& operator*() { return *c_; }
    Conn* operator->() { return c_.get(); }

   private:
    Impl& impl_;
    std::unique_ptr<Conn> c_;
  };

  Result<std::unique_ptr<Lease>> acquire() {
    {
      std::unique_lock lock(mu);
      const auto deadline = std::chrono::steady_clock::now() + options.acquire_timeout;
      while (idle.empty() && open_count >= options.pool_size) {
        if (freed.wait_until(lock, deadline) == std::cv_status::timeout && idle.empty() &&
            open_count >= options.pool_size) {
          return fail(ErrorCode::kUnavailable, "connection pool",
                      fmt::format("all {} connections stayed busy for {} ms", options.pool_size,
                                  options.acquire_timeout.count()));
        }
      }
      if (!idle.empty()) {
        auto c = std::move(idle.back());
        idle.pop_back();
        return std::make_unique<Lease>(*this, std::move(c));
      }
      ++open_count;
    }
    auto c = connect();
    if (c.ok()) {
      Status ready = prepare_all(**c);
      if (ready.ok()) {
        // The staging table of post(): one per connection, emptied at commit.
        auto made = exec(**c,
                         "CREATE TEMP TABLE ledger_stage (ord integer NOT NULL, "
                         "merchant_id text COLLATE \"C\" NOT NULL, ref text COLLATE \"C\" NOT NULL, "
                         "settle_date date NOT NULL, digest bytea NOT NULL) ON COMMIT DELETE ROWS",
                         "connect: staging table");
        if (!made.ok()) ready = made.error();
      }
      if (!ready.ok()) c = ready.error();
    }
    if (!c.ok()) {
      std::lock_guard lock(mu);
      --open_count;
      freed.notify_one();
      return c.error();
    }
    return std::make_unique<Lease>(*this, std::move(c).value());
  }

  // --- transactions ---------------------------------------------------------

  // BEGIN ... COMMIT around `body`; rolled back when body or COMMIT fails.
  // Retried (from BEGIN) when PostgreSQL chose it as a deadlock victim or
  // failed it for serialization.
  template <typename F>
  auto transaction(std::string_view what, F&& body) -> decltype(body(std::declval<Conn&>())) {
    for (int attempt = 1;; ++attempt) {
      SETTLE_ASSIGN_OR_RETURN(auto lease, acquire());
      Conn& c = **lease;
      c.last_state.clear();
      auto begun = exec(c, "BEGIN", what);
      if (!begun.ok()) return begun.error();
      auto result = body(c);
      if (result.ok()) {
        const auto t = std::chrono::steady_clock::now();
        auto committed = exec(c, "COMMIT", what);
        timers.commit_ns += since(t);
        if (committed.ok()) return result;
        result = committed.error();
      } else if (PQtransactionStatus(c.pg) != PQTRANS_IDLE) {
        PgResult(PQexec(c.pg, "ROLLBACK"));
      }
      if (!retryable(c.last_state) || attempt >= kAttempts) return result;
    }
  }

  // --- partitions -----------------------------------------------------------

  // Creates, each in its own short transaction before the caller's, the day
  // partitions the journals need.
  Status ensure_days(Conn& c, std::span<const Journal> journals, std::string_view what) {
    std::vector<std::int32_t> missing;
    {
      std::lock_guard lock(days_mu);
      for (const Journal& j : journals) {
        if (!known_days.contains(j.settle_date.days)) missing.push_back(j.settle_date.days);
      }
    }
    std::sort(missing.begin(), missing.end());
    missing.erase(std::unique(missing.begin(), missing.end()), missing.end());
    for (const std::int32_t d : missing) {
      SETTLE_ASSIGN_OR_RETURN(PgResult r, run(c, "ensure_day", {format_date(Date{d})},
                                              fmt::format("{}: partition of {}", what,
                                                          format_date(Date{d}))));
      if (r.null_at(0, 0)) continue;  // archived: only redeliveries can pass
      std::lock_guard lock(days_mu);
      known_days.insert(d);
    }
    return ok_status();
  }

  void forget_days() {
    std::lock_guard lock(days_mu);
    known_days.clear();
  }

  // --- journals -------------------------------------------------------------

  // Inserts validated journals inside the open transaction, each unless its
  // identity is stored; sets out[i] for journals[i] and adds the inserted legs
  // into `deltas` (account name, currency) -> (amount, postings).
  // (role, merchant ("" for platform accounts), currency) -> (amount,
  // postings); the views point into the call's journals.
  using DeltaKey = std::tuple<std::string_view, std::string_view, int>;
  using Deltas = std::map<DeltaKey, std::pair<__int128, std::int64_t>>;

  Status insert_all(Conn& c, std::span<const Journal> journals, std::vector<PostOutcome>& out,
                    Deltas& deltas, std::string_view what) {
    const auto n = journals.size();
    // The first journal of each identity leads; later ones follow it.
    struct KeyHash {
      std::size_t operator()(const std::pair<std::string_view, std::string_view>& k) const noexcept {
        return std::hash<std::string_view>{}(k.first) * 31 + std::hash<std::string_view>{}(k.second);
      }
    };
    std::unordered_map<std::pair<std::string_view, std::string_view>, std::size_t, KeyHash> first;
    first.reserve(n);
    std::vector<std::size_t> leaders;
    std::vector<std::size_t> leader_of(n);
    for (std::size_t i = 0; i < n; ++i) {
      auto [it, inserted] = first.try_emplace({journals[i].merchant_id.view(), journals[i].ref}, i);
      leader_of[i] = it->second;
      if (inserted) leaders.push_back(i);
    }
    // Key order: the identity index is written in one sweep, and concurrent
    // posts take their key locks in one order.
    std::sort(leaders.begin(), leaders.end(), [&](std::size_t a, std::size_t b) {
      const Journal& x = journals[a];
      const Journal& y = journals[b];
      if (const int cmp = x.merchant_id.view().compare(y.merchant_id.view()); cmp != 0) return cmp < 0;
      return x.ref < y.ref;
    });

    std::vector<std::string> stored(n);  // stored digest (hex) of a leader not inserted
    std::vector<bool> inserted(n, false);
    const std::size_t chunk = std::max<std::size_t>(options.chunk_rows, 1);
    std::string buffer;
    bool staged = false;  // the stage holds rows of this transaction
    std::size_t fast_tries = 0;
    for (std::size_t from = 0; from < leaders.size(); from += chunk) {
      const std::size_t to = std::min(leaders.size(), from + chunk);
      std::vector<bool> refused(to - from, false);
      // The identities. Usually every one is new: then one COPY straight into
      // journal_keys, in a savepoint, stores them all (a unique violation
      // rolls it back, and the staged path below sorts the new from the
      // stored). Each savepoint holds a subtransaction id until the commit,
      // and past 64 of them every snapshot of the server slows, so a call
      // takes the fast path for its first 32 chunks only.
      bool all_new = false;
      auto t = std::chrono::steady_clock::now();
      if (fast_tries < kFastKeyChunks) {
        ++fast_tries;
        SETTLE_ASSIGN_OR_RETURN(all_new, copy_new_keys(c, journals, leaders, from, to, buffer, what));
      }
      if (!all_new) {
        SETTLE_TRY(stage_keys(c, journals, leaders, from, to, buffer, staged, refused, stored, what));
        staged = true;
      }
      timers.keys_ns += since(t);
      // The journals whose identity was new, by COPY: its multi-row insert
      // path is much faster than INSERT ... SELECT from the stage (which
      // inserts a row at a time), and the rows are routed to their partitions
      // as a plain COPY would.
      // Formatted a piece at a time and sent as it goes: the server stores
      // one piece while the next is formatted.
      if (std::find(refused.begin(), refused.end(), false) != refused.end()) {
        t = std::chrono::steady_clock::now();
        std::size_t p = from;
        Status copied = copy_in_pieces(c,
                                       "COPY journals (merchant_id, ref, kind, currency, batch_date, "
                                       "settle_date, late, occurred_at, amount, fee, digest, metadata, "
                                       "trace_id, leg1_account, leg1_amount, leg2_account, leg2_amount, "
                                       "leg3_account, leg3_amount) FROM STDIN",
                                       buffer,
                                       [&](std::string& piece) {
                                         for (; p < to && piece.size() < kCopyPiece; ++p) {
                                           if (refused[p - from]) continue;
                                           inserted[leaders[p]] = true;
                                           append_journal_row(piece, journals[leaders[p]]);
                                         }
                                         return p < to;
                                       },
                                       what);
        if (!copied.ok() && copied.error().code == ErrorCode::kFailedPrecondition) {
          return fail(ErrorCode::kFailedPrecondition, what,
                      copied.error().message +
                          " (a new journal settles on an archived day; restore the day with "
                          "`settled partitions restore` before posting to it)");
        }
        SETTLE_TRY(copied);
        timers.journals_ns += since(t);
      }
    }

    for (std::size_t i = 0; i < n; ++i) {
      const Journal& j = journals[i];
      const std::size_t lead = leader_of[i];
      // The digest as the server prints a bytea; needed only for a journal
      // not inserted.
      const auto mine = [&j] { return "\\x" + digest_hex(j.digest); };
      if (lead == i) {
        if (inserted[i]) {
          out[i] = PostOutcome::kPosted;
          for (std::size_t leg = 0; leg < j.leg_count; ++leg) {
            const model::Posting& p = j.legs[leg];
            const bool merchant = model::is_merchant_account(p.account);
            auto& d = deltas[{merchant ? j.merchant_id.view() : std::string_view(), j.currency,
                              static_cast<int>(p.account)}];
            d.first += p.amount;
            d.second += 1;
          }
        } else {
          out[i] = stored[i] == mine() ? PostOutcome::kDuplicate : PostOutcome::kConflict;
        }
      } else if (inserted[lead]) {
        out[i] = j.digest == journals[lead].digest ? PostOutcome::kDuplicate : PostOutcome::kConflict;
      } else {
        out[i] = stored[lead] == mine() ? PostOutcome::kDuplicate : PostOutcome::kConflict;
      }
    }
    return ok_status();
  }

  // Chunks of one post() that may try copy_new_keys (see insert_all).
  static constexpr std::size_t kFastKeyChunks = 32;

  // COPYs the identities of leaders[from, to) into journal_keys inside a
  // savepoint. True when all were new and are stored; false, with nothing
  // stored, when one was stored already (by any transaction, this one
  // included: a transaction still open is waited for, as a unique check does).
  Result<bool> copy_new_keys(Conn& c, std::span<const Journal> journals,
                             const std::vector<std::size_t>& leaders, std::size_t from,
                             std::size_t to, std::string& buffer, std::string_view what) {
    SETTLE_TRY(exec(c, "SAVEPOINT new_keys", what));
    std::size_t p = from;
    Status copied = copy_in_pieces(c,
                                   "COPY journal_keys (merchant_id, ref, settle_date, digest) FROM STDIN "
                                   "WITH (FORMAT binary)",
                                   buffer,
                                   [&](std::string& piece) {
                                     if (p == from) copy_binary_header(piece);
                                     for (; p < to && piece.size() < kCopyPiece; ++p) {
                                       const Journal& j = journals[leaders[p]];
                                       put_be16(piece, 4);
                                       copy_binary_text(piece, j.merchant_id.view());
                                       copy_binary_text(piece, j.ref);
                                       copy_binary_date(piece, j.settle_date);
                                       copy_binary_digest(piece, j.digest);
                                     }
                                     if (p == to) copy_binary_trailer(piece);
                                     return p < to;
                                   },
                                   what);
    if (copied.ok()) {
      SETTLE_TRY(exec(c, "RELEASE SAVEPOINT new_keys", what));
      return true;
    }
    if (copied.error().code != ErrorCode::kConflict) return copied.error();
    c.last_state.clear();  // expected, and not the transaction's failure
    // Back to the transaction itself: the staged path tells this
    // transaction's keys by its own xid.
    SETTLE_TRY(exec(c, "ROLLBACK TO SAVEPOINT new_keys", what));
    SETTLE_TRY(exec(c, "RELEASE SAVEPOINT new_keys", what));
    return false;
  }

  // Stores the new identities of leaders[from, to) through the stage; marks
  // refused[p - from] for each one stored already, with its stored digest in
  // stored[leaders[p]].
  Status stage_keys(Conn& c, std::span<const Journal> journals,
                    const std::vector<std::size_t>& leaders, std::size_t from, std::size_t to,
                    std::string& buffer, bool staged, std::vector<bool>& refused,
                    std::vector<std::string>& stored, std::string_view what) {
    buffer.clear();
    for (std::size_t p = from; p < to; ++p) append_key_row(buffer, journals[leaders[p]], p);
    // The commit empties the stage; an earlier chunk of the same call left rows here.
    if (staged) SETTLE_TRY(exec(c, "TRUNCATE ledger_stage", what));
    auto t = std::chrono::steady_clock::now();
    SETTLE_TRY(copy_in(c, "COPY ledger_stage FROM STDIN", buffer, what));
    timers.stage_ns += since(t);
    SETTLE_ASSIGN_OR_RETURN(PgResult counted,
                            exec(c,
                                 "INSERT INTO journal_keys (merchant_id, ref, settle_date, digest)"
                                 " SELECT merchant_id, ref, settle_date, digest FROM ledger_stage"
                                 " ON CONFLICT (merchant_id, ref) DO NOTHING",
                                 what));
    const std::int64_t new_keys = std::strtoll(PQcmdTuples(counted.get()), nullptr, 10);
    if (new_keys == static_cast<std::int64_t>(to - from)) return ok_status();
    // Some were stored already (or by a transaction that committed
    // meanwhile: ON CONFLICT waited for it). The keys this transaction
    // inserted carry its xid; every other one was refused, and its stored
    // digest tells a duplicate from a conflict.
    SETTLE_ASSIGN_OR_RETURN(PgResult stale,
                            exec(c,
                                 "SELECT s.ord, k.digest FROM ledger_stage AS s"
                                 " JOIN journal_keys AS k USING (merchant_id, ref)"
                                 " WHERE k.xmin::text::bigint <> (txid_current() & 4294967295)",
                                 what));
    for (int row = 0; row < stale.rows(); ++row) {
      const auto ord = parse_int128(stale.text(row, 0));
      if (!ord || *ord < static_cast<__int128>(from) || *ord >= static_cast<__int128>(to)) {
        return fail(ErrorCode::kCorruption, what, "staging returned an unknown row");
      }
      const auto p = static_cast<std::size_t>(*ord);
      refused[p - from] = true;
      stored[leaders[p]] = std::string(stale.text(row, 1));
    }
    if (static_cast<std::int64_t>(to - from) - stale.rows() != new_keys) {
      return fail(ErrorCode::kCorruption, what,
                  fmt::format("{} identities inserted but {} found refused of {}", new_keys,
                              stale.rows(), to - from));
    }
    return ok_status();
  }

  // One COPY text row of the staging table.
  static void append_key_row(std::string& out, const Journal& j, std::size_t ord) {
    out += std::to_string(ord);
    out += '\t';
    append_key_columns(out, j);
  }

  // One COPY text row of journal_keys: merchant_id, ref, settle_date, digest.
  static void append_key_columns(std::string& out, const Journal& j) {
    copy_text(out, j.merchant_id.view());
    out += '\t';
    copy_text(out, j.ref);
    out += '\t';
    out += format_date(j.settle_date);
    out += "\t\\\\x";
    out += digest_hex(j.digest);
    out += '\n';
  }

  // One COPY text row of journals (the columns after journal_id).
  static void append_journal_row(std::string& out, const Journal& j) {
    copy_text(out, j.merchant_id.view());
    out += '\t';
    copy_text(out, j.ref);
    out += '\t';
    out += model::journal_kind_name(j.kind);
    out += '\t';
    copy_text(out, j.currency);
    out += '\t';
    out += format_date(j.batch_date);
    out += '\t';
    out += format_date(j.settle_date);
    out += j.late ? "\tt\t" : "\tf\t";
    if (is_event_kind(j.kind)) {
      out += format_rfc3339(j.occurred_at);
    } else {
      out += "\\N";
    }
    out += '\t';
    out += std::to_string(j.amount);
    out += '\t';
    out += std::to_string(j.fee);
    out += "\t\\\\x";
    out += digest_hex(j.digest);
    out += '\t';
    if (j.metadata_json.empty()) {
      out += "\\N";
    } else {
      copy_text(out, j.metadata_json);
    }
    out += '\t';
    if (j.trace_id.empty()) {
      out += "\\N";
    } else {
      copy_text(out, j.trace_id);
    }
    for (std::size_t leg = 0; leg < model::kMaxLegs; ++leg) {
      if (leg < j.leg_count) {
        out += '\t';
        out += std::to_string(static_cast<int>(j.legs[leg].account));
        out += '\t';
        out += std::to_string(j.legs[leg].amount);
      } else {
        out += "\t\\N\t\\N";
      }
    }
    out += '\n';
  }

  // COPY ... FROM STDIN of `data` (COPY text format).
  Status copy_in(Conn& c, const std::string& sql, std::string_view data, std::string_view what) {
    PgResult start(PQexec(c.pg, sql.c_str()));
    if (PQresultStatus(start.get()) != PGRES_COPY_IN) return pg_fail(c, &start, what);
    constexpr std::size_t kPiece = 1 << 20;
    for (std::size_t at = 0; at < data.size(); at += kPiece) {
      const std::size_t len = std::min(kPiece, data.size() - at);
      if (PQputCopyData(c.pg, data.data() + at, static_cast<int>(len)) != 1) {
        return pg_fail(c, nullptr, what);
      }
    }
    return end_copy(c, what);
  }

  // The size of a piece copy_in_pieces() sends.
  static constexpr std::size_t kCopyPiece = 64 * 1024;

  // COPY ... FROM STDIN of the rows `fill(piece)` formats (COPY text format):
  // it appends rows to `piece` until it holds about kCopyPiece bytes, and
  // returns false once the last row is in. Each piece goes to the server as
  // soon as it is formatted (`buffer` holds it), so the server parses and
  // stores one while the next is formatted.
  template <typename Fill>
  Status copy_in_pieces(Conn& c, const std::string& sql, std::string& buffer, Fill&& fill, std::string_view what) {
    PgResult start(PQexec(c.pg, sql.c_str()));
    if (PQresultStatus(start.get()) != PGRES_COPY_IN) return pg_fail(c, &start, what);
    for (bool more = true; more;) {
      buffer.clear();
      more = fill(buffer);
      if (!buffer.empty() && PQputCopyData(c.pg, buffer.data(), static_cast<int>(buffer.size())) != 1) {
        return pg_fail(c, nullptr, what);
      }
    }
    return end_copy(c, what);
  }

  // Ends the COPY in progress and reads its outcome.
  Status end_copy(Conn& c, std::string_view what) {
    if (PQputCopyEnd(c.pg, nullptr) != 1) return pg_fail(c, nullptr, what);
    Status status = ok_status();
    while (PGresult* raw = PQgetResult(c.pg)) {
      PgResult r(raw);
      if (PQresultStatus(raw) != PGRES_COMMAND_OK && status.ok()) status = pg_fail(c, &r, what);
    }
    return status;
  }

  // Adds the deltas to the accounts (creating them), in name order.
  Status apply_deltas(Conn& c, const Deltas& deltas, std::string_view what) {
    if (deltas.empty()) return ok_status();
    std::vector<std::string> names;
    std::vector<std::string> currencies;
    std::vector<std::int64_t> amounts;
    std::vector<std::int64_t> counts;
    // Sorted by (name, currency): the order every transaction locks accounts in.
    std::vector<std::tuple<std::string, std::string_view, const std::pair<__int128, std::int64_t>*>> rows;
    for (const auto& [key, d] : deltas) {
      rows.emplace_back(model::account_name(static_cast<AccountRole>(std::get<2>(key)), std::get<0>(key)),
                        std::get<1>(key), &d);
    }
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
      return std::tie(std::get<0>(a), std::get<1>(a)) < std::tie(std::get<0>(b), std::get<1>(b));
    });
    for (const auto& [name, currency, dp] : rows) {
      const auto& d = *dp;
      if (d.first > INT64_MAX || d.first < INT64_MIN) {
        return fail(ErrorCode::kOverflow, what,
                    fmt::format("account {} {}: the balance change leaves int64", name, currency));
      }
      names.push_back(name);
      currencies.push_back(std::string(currency));
      amounts.push_back(static_cast<std::int64_t>(d.first));
      counts.push_back(d.second);
    }
    SETTLE_TRY(run(c, "add_to_accounts",
                   {text_array(names), text_array(currencies), int_array(amounts), int_array(counts)},
                   what));
    return ok_status();
  }

  // --- batches --------------------------------------------------------------

  Result<Date> date_at(const PgResult& r, int row, int col, std::string_view what) const {
    auto d = parse_date(r.text(row, col));
    if (!d.ok()) return fail(ErrorCode::kCorruption, what, "stored date: " + d.error().message);
    return d.value();
  }

  Result<std::int64_t> int_at(const PgResult& r, int row, int col, std::string_view what) const {
    const auto v = parse_int128(r.text(row, col));
    if (!v) return fail(ErrorCode::kCorruption, what, fmt::format("not an integer: '{}'", r.text(row, col)));
    if (*v > INT64_MAX || *v < INT64_MIN) {
      return fail(ErrorCode::kOverflow, what, fmt::format("{} leaves int64", r.text(row, col)));
    }
    return static_cast<std::int64_t>(*v);
  }

  Result<BatchSummary> summary_at(const PgResult& r, int row, std::string_view what) const {
    BatchSummary s;
    s.key.merchant_id = MerchantId(std::string(r.text(row, 0)));
    SETTLE_ASSIGN_OR_RETURN(s.key.batch_date, date_at(r, row, 1, what));
    s.key.currency = std::string(r.text(row, 2));
    int c = 3;
    for (auto& t : s.totals.by_type) {
      SETTLE_ASSIGN_OR_RETURN(t.count, int_at(r, row, c++, what));
      SETTLE_ASSIGN_OR_RETURN(t.amount, int_at(r, row, c++, what));
      SETTLE_ASSIGN_OR_RETURN(t.fees, int_at(r, row, c++, what));
    }
    SETTLE_ASSIGN_OR_RETURN(s.reserve_held, int_at(r, row, c++, what));
    SETTLE_ASSIGN_OR_RETURN(s.reserve_released, int_at(r, row, c++, what));
    SETTLE_ASSIGN_OR_RETURN(s.carried_in, int_at(r, row, c++, what));
    SETTLE_ASSIGN_OR_RETURN(s.net, int_at(r, row, c++, what));
    SETTLE_ASSIGN_OR_RETURN(s.payout, int_at(r, row, c++, what));
    SETTLE_ASSIGN_OR_RETURN(s.carry_out, int_at(r, row, c++, what));
    SETTLE_ASSIGN_OR_RETURN(s.payout_date, date_at(r, row, c++, what));
    SETTLE_ASSERT(c == kBatchColumnCount, "batch columns and summary fields disagree");
    return s;
  }

  Result<CloseOutcome> close(Conn& c, const BatchSummary& s, std::span<const Date> released,
                             std::span<const Journal> journals, std::int64_t token,
                             const std::string& what);

  Result<std::string> postings_sql(Conn& c, unsigned mask);
};

Result<CloseOutcome> PostgresLedger::Impl::close(Conn& c, const BatchSummary& s,
                                                 std::span<const Date> released,
                                                 std::span<const Journal> journals,
                                                 std::int64_t token, const std::string& what) {
  const std::string& merchant = s.key.merchant_id.str();
  const std::string& currency = s.key.currency;
  const std::string date = format_date(s.key.batch_date);
  const std::string token_text = std::to_string(token);

  // Closes of one merchant and currency run one at a time: each checks the
  // history (carry, holds, later batches) that the previous one wrote.
  SETTLE_TRY(exec_params(c, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                         {"settle.close/" + merchant + "/" + currency}, what));
  SETTLE_ASSIGN_OR_RETURN(PgResult fence, run(c, "lock_fence", {merchant, currency, date, token_text}, what));
  SETTLE_ASSIGN_OR_RETURN(const std::int64_t registered, int_at(fence, 0, 0, what));
  if (auto no = checks::fence_refusal(token, registered)) return refuse(*no, what);

  {
    SETTLE_ASSIGN_OR_RETURN(PgResult r, run(c, "get_batch", {merchant, currency, date}, what));
    if (r.rows() == 1) {
      SETTLE_ASSIGN_OR_RETURN(const BatchSummary stored, summary_at(r, 0, what));
      if (stored == s) return CloseOutcome::kAlreadyClosed;
      return refuse(checks::different_summary(stored, s), what);
    }
  }
  {
    SETTLE_ASSIGN_OR_RETURN(PgResult r, run(c, "later_batch", {merchant, currency, date}, what));
    if (r.rows() == 1) return refuse(checks::later_batch_closed(r.text(0, 0)), what);
  }
  {
    SETTLE_ASSIGN_OR_RETURN(PgResult r, run(c, "last_closed", {merchant, currency}, what));
    std::optional<checks::LastClosed> last;
    if (r.rows() == 1) {
      SETTLE_ASSIGN_OR_RETURN(const std::int64_t carry, int_at(r, 0, 1, what));
      last = checks::LastClosed{std::string(r.text(0, 0)), carry};
    }
    if (auto no = checks::carry_refusal(s.carried_in, last)) return refuse(*no, what);
  }

  checks::HoldReleases releases;
  for (const Date d : released) {
    if (auto no = releases.name(d)) return refuse(*no, what);
    SETTLE_ASSIGN_OR_RETURN(PgResult r, run(c, "get_hold", {merchant, currency, format_date(d)}, what));
    std::optional<checks::StoredHold> stored;
    if (r.rows() == 1) {
      SETTLE_ASSIGN_OR_RETURN(const std::int64_t held, int_at(r, 0, 0, what));
      stored = checks::StoredHold{held, r.null_at(0, 1) ? std::nullopt : std::optional<std::string>(r.text(0, 1))};
    }
    if (auto no = releases.take(d, stored)) return refuse(*no, what);
  }
  if (auto no = releases.finish(s.reserve_released)) return refuse(*no, what);

  std::vector<PostOutcome> outcomes(journals.size(), PostOutcome::kPosted);
  Deltas deltas;
  SETTLE_TRY(insert_all(c, journals, outcomes, deltas, what));
  for (std::size_t i = 0; i < journals.size(); ++i) {
    if (outcomes[i] == PostOutcome::kConflict) return refuse(checks::journal_conflict(journals[i]), what);
  }
  SETTLE_TRY(apply_deltas(c, deltas, what));

  {
    std::vector<std::optional<std::string>> p = {merchant, date, currency};
    for (const auto& t : s.totals.by_type) {
      p.push_back(std::to_string(t.count));
      p.push_back(std::to_string(t.amount));
      p.push_back(std::to_string(t.fees));
    }
    for (const Minor v : {s.reserve_held, s.reserve_released, s.carried_in, s.net, s.payout, s.carry_out}) {
      p.push_back(std::to_string(v));
    }
    p.push_back(format_date(s.payout_date));
    SETTLE_ASSERT(p.size() == static_cast<std::size_t>(kBatchColumnCount), "batch columns");
    auto fees = checks::batch_fees(s);
    if (!fees.ok()) return fail(fees.error().code, what, fees.error().message);
    p.push_back(std::to_string(fees.value()));
    p.push_back(token_text);
    SETTLE_TRY(run(c, "insert_batch", p, what));
  }
  for (const std::string& hold : releases.dates()) {
    SETTLE_ASSIGN_OR_RETURN(PgResult r, run(c, "release_hold", {merchant, currency, hold, date}, what));
    if (std::string_view(PQcmdTuples(r.get())) != "1") {
      return fail(ErrorCode::kCorruption, what, "hold " + hold + " vanished");
    }
  }
  SETTLE_TRY(run(c, "raise_fence", {merchant, currency, date, token_text}, what));
  return CloseOutcome::kClosed;
}

// The postings query for a combination of filters (bit 0 merchant, 1 account,
// 2 from, 3 to), prepared once per connection as "postings_<mask>". Only the
// filters given are in the SQL, so PostgreSQL prunes day partitions by the
// settle_date bounds and hash partitions by the merchant.
Result<std::string> PostgresLedger::Impl::postings_sql(Conn& c, unsigned mask) {
  const std::string name = fmt::format("postings_{}", mask);
  if (!c.postings_prepared[mask]) {
    std::string sql =
        "SELECT merchant_id, ref, kind, currency, batch_date, settle_date, late, "
        "leg1_account, leg1_amount, leg2_account, leg2_amount, leg3_account, leg3_amount "
        "FROM journals WHERE true";
    int n = 0;
    if ((mask & 1U) != 0) sql += fmt::format(" AND merchant_id = ${}", ++n);
    if ((mask & 2U) != 0) {
      ++n;
      sql += fmt::format(" AND (leg1_account = ${0} OR leg2_account = ${0} OR leg3_account = ${0})", n);
      ++n;
      sql += fmt::format(" AND (${0}::text IS NULL OR merchant_id = ${0})", n);
    }
    if ((mask & 4U) != 0) sql += fmt::format(" AND settle_date >= ${}", ++n);
    if ((mask & 8U) != 0) sql += fmt::format(" AND settle_date <= ${}", ++n);
    sql += fmt::format(" ORDER BY journal_id LIMIT ${}", ++n);
    SETTLE_TRY(prepare(c, name.c_str(), sql));
    c.postings_prepared[mask] = true;
  }
  return name;
}

// ---------------------------------------------------------------------------

namespace {

// host:port/db of a connection, for messages (never the password).
std::string describe(PGconn* pg) {
  const char* host = PQhost(pg);
  const char* port = PQport(pg);
  const char* db = PQdb(pg);
  return fmt::format("postgresql://{}:{}/{}", host != nullptr ? host : "", port != nullptr ? port : "",
                     db != nullptr ? db : "");
}

// The database's applied migrations: version -> md5 of its text.
Result<std::map<std::int32_t, std::string>> applied_migrations(PGconn* pg, const std::string& where) {
  PgResult r(PQexec(pg,
                    "SELECT version, checksum FROM schema_migrations ORDER BY version"));
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
    const char* state = PQresultErrorField(r.get(), PG_DIAG_SQLSTATE);
    if (state != nullptr && std::string_view(state) == "42P01") {
      return std::map<std::int32_t, std::string>{};  // no table yet: nothing applied
    }
    return make_error(ErrorCode::kIo, fmt::format("ledger {}: read schema_migrations: {}", where,
                                                  PQresultErrorMessage(r.get())));
  }
  std::map<std::int32_t, std::string> out;
  for (int i = 0; i < r.rows(); ++i) {
    out[static_cast<std::int32_t>(std::stol(std::string(r.text(i, 0))))] = std::string(r.text(i, 1));
  }
  return out;
}

std::string md5_of(PGconn* pg, std::string_view text) {
  const std::string t(text);
  const char* values[] = {t.c_str()};
  PgResult r(PQexecParams(pg, "SELECT md5($1)", 1, nullptr, values, nullptr, nullptr, 0));
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) return "";
  return std::string(r.text(0, 0));
}

// Checks the applied migrations against this build's; returns the pending ones.
Result<std::vector<const Migration*>> pending(PGconn* pg, const std::string& where) {
  SETTLE_ASSIGN_OR_RETURN(const auto applied, applied_migrations(pg, where));
  const auto all = postgres_migrations();
  std::vector<const Migration*> out;
  for (const auto& [version, checksum] : applied) {
    if (version < 1 || version > static_cast<std::int32_t>(all.size())) {
      return make_error(ErrorCode::kFailedPrecondition,
                        fmt::format("ledger {}: the database has migration {}, which this build "
                                    "(schema version {}) does not know; run a newer settled",
                                    where, version, all.size()));
    }
    const Migration& m = all[static_cast<std::size_t>(version - 1)];
    if (md5_of(pg, m.sql) != checksum) {
      return make_error(ErrorCode::kFailedPrecondition,
                        fmt::format("ledger {}: migration {:04} ({}) differs from the one applied "
                                    "to the database; applied migrations must not be edited",
                                    where, version, m.name));
    }
  }
  for (const Migration& m : all) {
    if (!applied.contains(m.version)) out.push_back(&m);
  }
  return out;
}

}  // namespace

std::int32_t PostgresLedger::schema_version() {
  return static_cast<std::int32_t>(postgres_migrations().size());
}

Result<MigrationReport> PostgresLedger::migrate(const std::string& url) {
  PGconn* pg = PQconnectdb(url.c_str());
  struct Closer {
    PGconn* pg;
    ~Closer() { PQfinish(pg); }
  } closer{pg};
  if (PQstatus(pg) != CONNECTION_OK) {
    std::string message = PQerrorMessage(pg);
    while (!message.empty() && message.back() == '\n') message.pop_back();
    return make_error(ErrorCode::kUnavailable, "ledger: migrate: connect: " + message);
  }
  PQsetNoticeProcessor(pg, [](void*, const char*) {}, nullptr);
  const std::string where = describe(pg);
  auto exec = [&](const std::string& sql, std::string_view what) -> Status {
    PgResult r(PQexec(pg, sql.c_str()));
    const auto st = PQresultStatus(r.get());
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      const char* state = PQresultErrorField(r.get(), PG_DIAG_SQLSTATE);
      std::string message = PQresultErrorMessage(r.get());
      while (!message.empty() && message.back() == '\n') message.pop_back();
      return make_error(code_for(state != nullptr ? state : "", message),
                        fmt::format("ledger {}: migrate: {}: {}", where, what, message));
    }
    return ok_status();
  };
  // A session lock: held across the migrations' own transactions; other
  // migrators wait here and then find nothing left to do.
  SETTLE_TRY(exec(fmt::format("SELECT pg_advisory_lock({})", kMigrationLock), "lock"));
  auto unlock = [&] { PgResult(PQexec(pg, fmt::format("SELECT pg_advisory_unlock({})", kMigrationLock).c_str())); };
  auto body = [&]() -> Result<MigrationReport> {
    SETTLE_TRY(exec("CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version integer PRIMARY KEY, name text NOT NULL,"
                    " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
                    "create schema_migrations"));
    SETTLE_ASSIGN_OR_RETURN(const auto to_apply, pending(pg, where));
    MigrationReport report;
    for (const Migration* m : to_apply) {
      const std::string what = fmt::format("migration {:04}_{}", m->version, m->name);
      SETTLE_TRY(exec("BEGIN", what));
      Status s = exec(std::string(m->sql), what);
      if (s.ok()) {
        const std::string version = std::to_string(m->version);
        const std::string name(m->name);
        const std::string sql(m->sql);
        const char* values[] = {version.c_str(), name.c_str(), sql.c_str()};
        PgResult r(PQexecParams(pg,
                                "INSERT INTO schema_migrations (version, name, checksum) "
                                "VALUES ($1, $2, md5($3))",
                                3, nullptr, values, nullptr, nullptr, 0));
        if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
          s = make_error(ErrorCode::kIo, fmt::format("ledger {}: {}: record: {}", where, what,
                                                     PQresultErrorMessage(r.get())));
        }
      }
      if (s.ok()) s = exec("COMMIT", what);
      if (!s.ok()) {
        PgResult(PQexec(pg, "ROLLBACK"));
        return s.error();
      }
      report.applied.push_back(m->version);
    }
    report.version = schema_version();
    return report;
  };
  auto report = body();
  unlock();
  return report;
}

PostgresLedger::PostgresLedger(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PostgresLedger::~PostgresLedger() = default;

Result<std::unique_ptr<PostgresLedger>> PostgresLedger::open(const std::string& url,
                                                             const PostgresLedgerOptions& options) {
  if (options.pool_size == 0) {
    return make_error(ErrorCode::kInvalidArgument, "ledger: pool_size must be at least 1");
  }
  if (options.migrate) SETTLE_TRY(migrate(url));
  auto impl = std::make_unique<Impl>();
  impl->url = url;
  impl->options = options;
  impl->where = "postgresql";
  // A bare connection: the pool's prepare statements that need the schema.
  SETTLE_ASSIGN_OR_RETURN(auto probe, impl->connect());
  impl->where = describe(probe->pg);
  SETTLE_ASSIGN_OR_RETURN(const auto to_apply, pending(probe->pg, impl->where));
  if (!to_apply.empty()) {
    return make_error(ErrorCode::kFailedPrecondition,
                      fmt::format("ledger {}: the database lacks migration {:04}_{} (this build "
                                  "needs schema version {}); run `settled migrate --ledger URL`",
                                  impl->where, to_apply.front()->version, to_apply.front()->name,
                                  schema_version()));
  }
  // The probe joins the pool once it is ready for calls.
  {
    auto ready = impl->acquire();
    if (!ready.ok()) return ready.error();
  }
  return std::unique_ptr<PostgresLedger>(new PostgresLedger(std::move(impl)));
}

Result<std::vector<PostOutcome>> PostgresLedger::post(std::span<const Journal> journals,
                                                      std::span<const Checkpoint> checkpoints) {
  Impl& d = *impl_;
  constexpr std::string_view kWhat = "post";
  for (const Journal& j : journals) {
    if (auto s = validate_journal(j); !s.ok()) {
      return d.fail(ErrorCode::kInvalidArgument, kWhat, s.error().message);
    }
  }
  for (const Checkpoint& c : checkpoints) {
    if (c.consumer.empty()) {
      return d.fail(ErrorCode::kInvalidArgument, kWhat, "a checkpoint names no consumer");
    }
  }
  std::vector<PostOutcome> out(journals.size(), PostOutcome::kPosted);
  if (journals.empty() && checkpoints.empty()) return out;
  {
    SETTLE_ASSIGN_OR_RETURN(auto lease, d.acquire());
    SETTLE_TRY(d.ensure_days(**lease, journals, kWhat));
  }
  // Checkpoints in key order, like every other lock a post takes.
  std::vector<const Checkpoint*> sorted;
  for (const Checkpoint& c : checkpoints) sorted.push_back(&c);
  std::sort(sorted.begin(), sorted.end(), [](const Checkpoint* a, const Checkpoint* b) {
    return std::tie(a->consumer, a->partition) < std::tie(b->consumer, b->partition);
  });
  auto result = d.transaction(kWhat, [&](Conn& c) -> Status {
    Impl::Deltas deltas;
    SETTLE_TRY(d.insert_all(c, journals, out, deltas, kWhat));
    for (const Checkpoint* cp : sorted) {
      // The successor of the stored version: an update of version - 1, or the
      // first write (version 1) of a checkpoint none has written.
      const std::vector<std::optional<std::string>> params = {
          cp->consumer, std::to_string(cp->partition), std::to_string(cp->next_offset),
          bytea_to_hex_param(cp->state), std::to_string(cp->version)};
      const std::string what = fmt::format("{}: checkpoint {}/{}", kWhat, cp->consumer, cp->partition);
      SETTLE_ASSIGN_OR_RETURN(PgResult updated, d.run(c, "update_checkpoint", params, what));
      if (updated.rows() == 1) continue;
      if (cp->version == 1) {
        SETTLE_ASSIGN_OR_RETURN(PgResult inserted, d.run(c, "insert_checkpoint", params, what));
        if (inserted.rows() == 1) continue;
      }
      return checks::checkpoint_fenced(*cp);
    }
    const auto t = std::chrono::steady_clock::now();
    SETTLE_TRY(d.apply_deltas(c, deltas, kWhat));
    d.timers.accounts_ns += Impl::since(t);
    return ok_status();
  });
  if (!result.ok()) {
    // A day archived (or restored) meanwhile: forget what we knew of days.
    if (result.error().code == ErrorCode::kFailedPrecondition) d.forget_days();
    return result.error();
  }
  return out;
}

Result<std::optional<Checkpoint>> PostgresLedger::checkpoint(std::string_view consumer,
                                                             std::int32_t partition) {
  Impl& d = *impl_;
  const std::string what = fmt::format("read checkpoint {}/{}", consumer, partition);
  SETTLE_ASSIGN_OR_RETURN(auto lease, d.acquire());
  SETTLE_ASSIGN_OR_RETURN(PgResult r, d.run(**lease, "get_checkpoint",
                                            {std::string(consumer), std::to_string(partition)}, what));
  if (r.rows() == 0) return std::optional<Checkpoint>{};
  Checkpoint c;
  c.consumer = std::string(consumer);
  c.partition = partition;
  SETTLE_ASSIGN_OR_RETURN(c.next_offset, d.int_at(r, 0, 0, what));
  const auto state = bytea_from_text(r.text(0, 1));
  if (!state) return d.fail(ErrorCode::kCorruption, what, "state is not bytea hex");
  c.state = *state;
  SETTLE_ASSIGN_OR_RETURN(c.version, d.int_at(r, 0, 2, what));
  return std::optional<Checkpoint>(std::move(c));
}

Result<model::ControlTotals> PostgresLedger::settling_totals(const BatchKey& key) {
  Impl& d = *impl_;
  if (auto s = check_key(key); !s.ok()) {
    return d.fail(ErrorCode::kInvalidArgument, "settling totals", s.error().message);
  }
  const std::string what = "settling totals " + key.to_string();
  SETTLE_ASSIGN_OR_RETURN(auto lease, d.acquire());
  SETTLE_ASSIGN_OR_RETURN(PgResult r, d.run(**lease, "settling",
                                            {key.merchant_id.str(), key.currency,
                                             format_date(key.batch_date)},
                                            what));
  model::ControlTotals totals;
  for (int row = 0; row < r.rows(); ++row) {
    const auto type = model::event_type_from_name(r.text(row, 0));
    if (!type) return d.fail(ErrorCode::kCorruption, what, fmt::format("unknown event kind '{}'", r.text(row, 0)));
    model::TypeTotals& t = totals.of(*type);
    SETTLE_ASSIGN_OR_RETURN(t.count, d.int_at(r, row, 1, what));
    SETTLE_ASSIGN_OR_RETURN(t.amount, d.int_at(r, row, 2, what));
    SETTLE_ASSIGN_OR_RETURN(t.fees, d.int_at(r, row, 3, what));
  }
  return totals;
}

Result<BatchHistory> PostgresLedger::batch_history(std::string_view merchant_id,
                                                   std::string_view currency) {
  Impl& d = *impl_;
  const std::string what = fmt::format("batch history {}/{}", merchant_id, currency);
  SETTLE_ASSIGN_OR_RETURN(auto lease, d.acquire());
  Conn& c = **lease;
  // One snapshot for both reads.
  SETTLE_TRY(d.exec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", what));
  auto body = [&]() -> Result<BatchHistory> {
    BatchHistory h;
    SETTLE_ASSIGN_OR_RETURN(PgResult last, d.run(c, "last_closed",
                                                 {std::string(merchant_id), std::string(currency)}, what));
    if (last.rows() == 1) {
      SETTLE_ASSIGN_OR_RETURN(h.last_closed, d.date_at(last, 0, 0, what));
      SETTLE_ASSIGN_OR_RETURN(h.carry_out, d.int_at(last, 0, 1, what));
    }
    SETTLE_ASSIGN_OR_RETURN(PgResult holds, d.run(c, "holds",
                                                  {std::string(merchant_id), std::string(currency)}, what));
    for (int row = 0; row < holds.rows(); ++row) {
      BatchHistory::Hold hold;
      SETTLE_ASSIGN_OR_RETURN(hold.batch_date, d.date_at(holds, row, 0, what));
      SETTLE_ASSIGN_OR_RETURN(hold.amount, d.int_at(holds, row, 1, what));
      h.unreleased.push_back(hold);
    }
    return h;
  };
  auto h = body();
  PgResult(PQexec(c.pg, h.ok() ? "COMMIT" : "ROLLBACK"));
  return h;
}

Status PostgresLedger::register_fence(const BatchKey& key, std::uint64_t token) {
  Impl& d = *impl_;
  if (auto s = check_key(key); !s.ok()) {
    return d.fail(ErrorCode::kInvalidArgument, "register fence", s.error().message);
  }
  const std::string what = "register fence " + key.to_string();
  if (token > static_cast<std::uint64_t>(INT64_MAX)) {
    return d.fail(ErrorCode::kInvalidArgument, what, "fencing token above 2^63-1");
  }
  const std::vector<std::optional<std::string>> params = {
      key.merchant_id.str(), key.currency, format_date(key.batch_date), std::to_string(token)};
  SETTLE_ASSIGN_OR_RETURN(auto lease, d.acquire());
  SETTLE_ASSIGN_OR_RETURN(PgResult r, d.run(**lease, "register_fence", params, what));
  if (r.rows() == 1) return ok_status();
  SETTLE_ASSIGN_OR_RETURN(PgResult held, d.run(**lease, "get_fence", {params[0], params[1], params[2]}, what));
  return d.fail(ErrorCode::kFenced, what,
                fmt::format("token {} is below the registered {}", token,
                            held.rows() == 1 ? std::string(held.text(0, 0)) : std::string("?")));
}

Result<CloseOutcome> PostgresLedger::close_batch(const BatchSummary& summary,
                                                 std::span<const Date> released,
                                                 std::span<const Journal> journals,
                                                 std::uint64_t fencing_token) {
  Impl& d = *impl_;
  if (auto s = check_key(summary.key); !s.ok()) {
    return d.fail(ErrorCode::kInvalidArgument, "close batch", s.error().message);
  }
  const std::string what = "close batch " + summary.key.to_string();
  if (auto s = checks::validate_close(summary, released, journals, fencing_token); !s.ok()) {
    return d.fail(ErrorCode::kInvalidArgument, what, s.error().message);
  }
  if (!journals.empty()) {
    SETTLE_ASSIGN_OR_RETURN(auto lease, d.acquire());
    SETTLE_TRY(d.ensure_days(**lease, journals, what));
  }
  return d.transaction(what, [&](Conn& c) {
    return d.close(c, summary, released, journals, static_cast<std::int64_t>(fencing_token), what);
  });
}

Result<std::vector<BatchSummary>> PostgresLedger::closed_batches(const BatchQuery& query) {
  Impl& d = *impl_;
  constexpr std::string_view kWhat = "closed batches";
  auto bound = [](const std::optional<Date>& b) -> std::optional<std::string> {
    if (!b) return std::nullopt;
    return format_date(std::clamp(*b, kFirstDate, kLastDate));
  };
  SETTLE_ASSIGN_OR_RETURN(auto lease, d.acquire());
  SETTLE_ASSIGN_OR_RETURN(PgResult r, d.run(**lease, "closed_batches",
                                            {query.merchant_id, bound(query.from), bound(query.to)},
                                            kWhat));
  std::vector<BatchSummary> out;
  for (int row = 0; row < r.rows(); ++row) {
    SETTLE_ASSIGN_OR_RETURN(BatchSummary s, d.summary_at(r, row, kWhat));
    out.push_back(std::move(s));
  }
  return out;
}

Result<std::vector<Balance>> PostgresLedger::balances(std::optional<std::string_view> merchant_id) {
  Impl& d = *impl_;
  constexpr std::string_view kWhat = "balances";
  std::optional<std::string> prefix;
  if (merchant_id) prefix = fmt::format("merchant:{}:", *merchant_id);
  SETTLE_ASSIGN_OR_RETURN(auto lease, d.acquire());
  SETTLE_ASSIGN_OR_RETURN(PgResult r, d.run(**lease, "balances", {prefix}, kWhat));
  std::vector<Balance> out;
  for (int row = 0; row < r.rows(); ++row) {
    Balance b;
    b.account = std::string(r.text(row, 0));
    b.currency = std::string(r.text(row, 1));
    SETTLE_ASSIGN_OR_RETURN(b.balance, d.int_at(r, row, 2, kWhat));
    SETTLE_ASSIGN_OR_RETURN(b.postings, d.int_at(r, row, 3, kWhat));
    out.push_back(std::move(b));
  }
  return out;
}

Result<std::vector<TrialBalance>> PostgresLedger::trial_balance() {
  Impl& d = *impl_;
  constexpr std::string_view kWhat = "trial balance";
  SETTLE_ASSIGN_OR_RETURN(auto lease, d.acquire());
  SETTLE_ASSIGN_OR_RETURN(PgResult r, d.run(**lease, "trial_balance", {}, kWhat));
  std::vector<TrialBalance> out;
  for (int row = 0; row < r.rows(); ++row) {
    const auto debits = parse_int128(r.text(row, 1));
    const auto credits = parse_int128(r.text(row, 2));
    if (!debits || !credits) return d.fail(ErrorCode::kOverflow, kWhat, "sums beyond 38 digits");
    const __int128 net = *debits + *credits;
    for (const __int128 v : {*debits, *credits, net}) {
      if (v > INT64_MAX || v < INT64_MIN) {
        return d.fail(ErrorCode::kOverflow, kWhat,
                      fmt::format("the {} postings add up beyond int64", r.text(row, 0)));
      }
    }
    TrialBalance t;
    t.currency = std::string(r.text(row, 0));
    t.debits = static_cast<Minor>(*debits);
    t.credits = static_cast<Minor>(*credits);
    t.net = static_cast<Minor>(net);
    out.push_back(std::move(t));
  }
  return out;
}

Result<std::vector<PostingRow>> PostgresLedger::postings(const PostingQuery& query) {
  Impl& d = *impl_;
  constexpr std::string_view kWhat = "postings";
  std::vector<PostingRow> out;
  if (query.limit == 0) return out;
  std::optional<AccountRef> account;
  if (query.account) {
    account = parse_account(*query.account);
    if (!account) return out;  // no such account, so no postings
  }
  const unsigned mask = (query.merchant_id ? 1U : 0U) | (query.account ? 2U : 0U) |
                        (query.settle_from ? 4U : 0U) | (query.settle_to ? 8U : 0U);
  std::vector<std::optional<std::string>> params;
  if (query.merchant_id) params.emplace_back(*query.merchant_id);
  if (account) {
    params.emplace_back(std::to_string(static_cast<int>(account->role)));
    params.emplace_back(account->merchant.empty() ? std::nullopt
                                                  : std::optional<std::string>(account->merchant));
  }
  if (query.settle_from) params.emplace_back(format_date(std::clamp(*query.settle_from, kFirstDate, kLastDate)));
  if (query.settle_to) params.emplace_back(format_date(std::clamp(*query.settle_to, kFirstDate, kLastDate)));
  const std::size_t limit = std::min<std::size_t>(query.limit, static_cast<std::size_t>(INT64_MAX));
  params.emplace_back(std::to_string(limit));

  SETTLE_ASSIGN_OR_RETURN(auto lease, d.acquire());
  SETTLE_ASSIGN_OR_RETURN(const std::string name, d.postings_sql(**lease, mask));
  SETTLE_ASSIGN_OR_RETURN(PgResult r, d.run(**lease, name.c_str(), params, kWhat));
  for (int row = 0; row < r.rows() && out.size() < query.limit; ++row) {
    for (int leg = 0; leg < static_cast<int>(model::kMaxLegs) && out.size() < query.limit; ++leg) {
      const int role_col = 7 + 2 * leg;
      if (r.null_at(row, role_col)) continue;
      SETTLE_ASSIGN_OR_RETURN(const std::int64_t role, d.int_at(r, row, role_col, kWhat));
      if (role < 0 || role > static_cast<int>(AccountRole::kPlatformPayouts)) {
        return d.fail(ErrorCode::kCorruption, kWhat, "unknown account role");
      }
      if (account && static_cast<int>(account->role) != role) continue;
      PostingRow p;
      p.merchant_id = std::string(r.text(row, 0));
      p.ref = std::string(r.text(row, 1));
      p.kind = std::string(r.text(row, 2));
      p.currency = std::string(r.text(row, 3));
      SETTLE_ASSIGN_OR_RETURN(p.batch_date, d.date_at(r, row, 4, kWhat));
      SETTLE_ASSIGN_OR_RETURN(p.settle_date, d.date_at(r, row, 5, kWhat));
      p.late = r.text(row, 6) == "t";
      p.account = model::account_name(static_cast<AccountRole>(role), p.merchant_id);
      SETTLE_ASSIGN_OR_RETURN(p.amount, d.int_at(r, row, role_col + 1, kWhat));
      out.push_back(std::move(p));
    }
  }
  return out;
}

PostgresLedger::PostStats PostgresLedger::post_stats() const {
  const Impl::Timers& t = impl_->timers;
  auto ms = [](const std::atomic<std::int64_t>& ns) { return static_cast<double>(ns.load()) / 1e6; };
  return PostStats{ms(t.stage_ns), ms(t.keys_ns), ms(t.journals_ns), ms(t.accounts_ns),
                   ms(t.commit_ns)};
}

Result<std::uint64_t> PostgresLedger::next_fencing_token() {
  Impl& d = *impl_;
  constexpr std::string_view kWhat = "next fencing token";
  SETTLE_ASSIGN_OR_RETURN(auto lease, d.acquire());
  SETTLE_ASSIGN_OR_RETURN(PgResult r, d.run(**lease, "next_token", {}, kWhat));
  SETTLE_ASSIGN_OR_RETURN(const std::int64_t token, d.int_at(r, 0, 0, kWhat));
  return static_cast<std::uint64_t>(token);
}

// --- partition upkeep --------------------------------------------------------

Result<std::vector<Date>> PostgresLedger::partition_days() {
  Impl& d = *impl_;
  constexpr std::string_view kWhat = "partition days";
  SETTLE_ASSIGN_OR_RETURN(auto lease, d.acquire());
  SETTLE_ASSIGN_OR_RETURN(PgResult r, d.exec(**lease, "SELECT day FROM journal_days", kWhat));
  std::vector<Date> out;
  for (int row = 0; row < r.rows(); ++row) {
    SETTLE_ASSIGN_OR_RETURN(const Date day, d.date_at(r, row, 0, kWhat));
    out.push_back(day);
  }
  return out;
}

Result<std::vector<Date>> PostgresLedger::ensure_partitions(Date from, Date to) {
  Impl& d = *impl_;
  constexpr std::string_view kWhat = "ensure partitions";
  if (!date_in_range(from) || !date_in_range(to)) {
    return d.fail(ErrorCode::kInvalidArgument, kWhat, "dates outside the years 0001-9999");
  }
  SETTLE_ASSIGN_OR_RETURN(auto lease, d.acquire());
  Conn& c = **lease;
  SETTLE_ASSIGN_OR_RETURN(PgResult archived, d.exec(c, "SELECT day FROM archived_days", kWhat));
  std::set<std::string> skip;
  for (int row = 0; row < archived.rows(); ++row) skip.insert(std::string(archived.text(row, 0)));
  std::vector<Date> created;
  for (Date day = from; day <= to; day = day.plus_days(1)) {
    const std::string text = format_date(day);
    if (skip.contains(text)) continue;
    SETTLE_ASSIGN_OR_RETURN(PgResult r, d.run(c, "ensure_day", {text}, fmt::format("{} {}", kWhat, text)));
    if (r.text(0, 0) == "t") created.push_back(day);
  }
  return created;
}

Result<std::vector<ArchivedDay>> PostgresLedger::archive_partitions(Date before,
                                                                   const std::filesystem::path& dir) {
  Impl& d = *impl_;
  constexpr std::string_view kWhat = "archive partitions";
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return d.fail(ErrorCode::kInvalidArgument, kWhat,
                  fmt::format("{} is not a directory", dir.string()));
  }
  SETTLE_ASSIGN_OR_RETURN(const std::vector<Date> days, partition_days());
  std::vector<ArchivedDay> out;
  for (const Date day : days) {
    if (day >= before) break;
    const std::string text = format_date(day);
    const std::string what = fmt::format("archive {}", text);
    ArchivedDay a;
    a.day = day;
    a.table = fmt::format("journals_p{:04}{:02}{:02}", civil_from_date(day).year,
                          civil_from_date(day).month, civil_from_date(day).day);
    a.file = std::filesystem::absolute(dir) / (a.table + ".copy");
    auto archived = d.transaction(what, [&](Conn& c) -> Status {
      // Nobody posts to the day while it is exported and detached.
      SETTLE_TRY(d.exec(c, fmt::format("LOCK TABLE {} IN SHARE MODE", a.table), what));
      // The export first: the day leaves the live table only once its rows
      // are in a file.
      const std::string tmp = a.file.string() + ".tmp";
      std::FILE* f = std::fopen(tmp.c_str(), "wb");
      if (f == nullptr) {
        return d.fail(ErrorCode::kIo, what, fmt::format("cannot create {}: {}", tmp, std::strerror(errno)));
      }
      PgResult start(PQexec(c.pg, fmt::format("COPY (SELECT {} FROM {} ORDER BY journal_id) TO STDOUT",
                                              kJournalColumns, a.table)
                                      .c_str()));
      if (PQresultStatus(start.get()) != PGRES_COPY_OUT) {
        std::fclose(f);
        return d.pg_fail(c, &start, what);
      }
      char* buf = nullptr;
      int len = 0;
      bool written = true;
      while ((len = PQgetCopyData(c.pg, &buf, 0)) > 0) {
        written = written && std::fwrite(buf, 1, static_cast<std::size_t>(len), f) ==
                                 static_cast<std::size_t>(len);
        PQfreemem(buf);
      }
      Status copied = ok_status();
      while (PGresult* raw = PQgetResult(c.pg)) {
        PgResult r(raw);
        if (PQresultStatus(raw) != PGRES_COMMAND_OK && copied.ok()) copied = d.pg_fail(c, &r, what);
        if (PQresultStatus(raw) == PGRES_COMMAND_OK) {
          a.rows = std::stoll(PQcmdTuples(raw));
        }
      }
      written = std::fflush(f) == 0 && ::fsync(fileno(f)) == 0 && written;
      written = std::fclose(f) == 0 && written;
      if (!copied.ok()) return copied;
      if (!written) return d.fail(ErrorCode::kIo, what, "cannot write " + tmp);
      std::filesystem::rename(tmp, a.file, ec);
      if (ec) return d.fail(ErrorCode::kIo, what, "rename " + tmp + ": " + ec.message());

      SETTLE_TRY(d.exec_params(c,
                               "INSERT INTO archived_days (day, table_name, file, rows) "
                               "VALUES ($1, $2, $3, $4)",
                               {text, a.table, a.file.string(), std::to_string(a.rows)}, what));
      SETTLE_TRY(d.exec_params(
          c,
          fmt::format("INSERT INTO archived_totals (day, currency, debits, credits) "
                      "SELECT $1::date, currency,"
                      " sum(greatest(leg1_amount, 0)) + sum(greatest(leg2_amount, 0))"
                      "  + coalesce(sum(greatest(leg3_amount, 0)), 0),"
                      " sum(least(leg1_amount, 0)) + sum(least(leg2_amount, 0))"
                      "  + coalesce(sum(least(leg3_amount, 0)), 0)"
                      " FROM {} GROUP BY currency",
                      a.table),
          {text}, what));
      SETTLE_TRY(d.exec(c, fmt::format("ALTER TABLE journals DETACH PARTITION {}", a.table), what));
      SETTLE_ASSIGN_OR_RETURN(PgResult children,
                              d.exec_params(c,
                                            "SELECT c.relname FROM pg_inherits i JOIN pg_class c "
                                            "ON c.oid = i.inhrelid WHERE i.inhparent = $1::regclass",
                                            {a.table}, what));
      for (int row = 0; row < children.rows(); ++row) {
        SETTLE_TRY(d.exec(c, fmt::format("ALTER TABLE \"{}\" SET SCHEMA ledger_archive",
                                         children.text(row, 0)),
                          what));
      }
      SETTLE_TRY(d.exec(c, fmt::format("ALTER TABLE {} SET SCHEMA ledger_archive", a.table), what));
      return ok_status();
    });
    if (!archived.ok()) {
      std::filesystem::remove(a.file.string() + ".tmp", ec);
      return archived.error();
    }
    out.push_back(std::move(a));
  }
  d.forget_days();
  return out;
}

Status PostgresLedger::restore_partition(Date day, const std::filesystem::path& file) {
  Impl& d = *impl_;
  const std::string text = format_date(day);
  const std::string what = fmt::format("restore {}", text);
  Status restored = d.transaction(what, [&](Conn& c) -> Status {
    SETTLE_ASSIGN_OR_RETURN(PgResult rec, d.exec_params(c,
                                                        "SELECT table_name, file FROM archived_days "
                                                        "WHERE day = $1 FOR UPDATE",
                                                        {text}, what));
    if (rec.rows() != 1) {
      return d.fail(ErrorCode::kNotFound, what, "the day is not archived (see archived_days)");
    }
    const std::string table(rec.text(0, 0));
    const std::filesystem::path export_file = file.empty() ? std::filesystem::path(std::string(rec.text(0, 1))) : file;
    SETTLE_ASSIGN_OR_RETURN(PgResult kept, d.exec_params(c, "SELECT to_regclass($1) IS NOT NULL",
                                                         {"ledger_archive." + table}, what));
    if (kept.text(0, 0) == "t") {
      SETTLE_ASSIGN_OR_RETURN(
          PgResult children,
          d.exec_params(c,
                        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                        "WHERE i.inhparent = $1::regclass",
                        {"ledger_archive." + table}, what));
      // Back into the ledger's schema (the first of the search path).
      SETTLE_ASSIGN_OR_RETURN(PgResult schema, d.exec(c, "SELECT quote_ident(current_schema())", what));
      const std::string home(schema.text(0, 0));
      SETTLE_TRY(d.exec(c, fmt::format("ALTER TABLE ledger_archive.{} SET SCHEMA {}", table, home), what));
      for (int row = 0; row < children.rows(); ++row) {
        SETTLE_TRY(d.exec(c, fmt::format("ALTER TABLE ledger_archive.\"{}\" SET SCHEMA {}",
                                         children.text(row, 0), home),
                          what));
      }
      SETTLE_TRY(d.exec(c, fmt::format("ALTER TABLE journals ATTACH PARTITION {} FOR VALUES FROM "
                                       "('{}') TO ('{}')",
                                       table, text, format_date(day.plus_days(1))),
                        what));
    } else {
      // The archive table was dropped: rebuild the day from its export.
      std::ifstream in(export_file, std::ios::binary);
      if (!in) {
        return d.fail(ErrorCode::kNotFound, what,
                      fmt::format("ledger_archive.{} is gone and the export {} cannot be read",
                                  table, export_file.string()));
      }
      std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      SETTLE_TRY(d.exec_params(c, "DELETE FROM archived_days WHERE day = $1", {text}, what));
      SETTLE_TRY(d.run(c, "ensure_day", {text}, what));
      SETTLE_TRY(d.copy_in(c, fmt::format("COPY {} ({}) FROM STDIN", table, kJournalColumns), data, what));
    }
    SETTLE_TRY(d.exec_params(c, "DELETE FROM archived_days WHERE day = $1", {text}, what));
    return ok_status();
  });
  d.forget_days();
  return restored;
}

}  // namespace settle::ledger
