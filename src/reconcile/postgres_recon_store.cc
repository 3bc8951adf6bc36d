#include "reconcile/postgres_recon_store.h"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <charconv>
#include <map>
#include <mutex>
#include <optional>
#include <utility>

#include "common/pg_result.h"

namespace settle::reconcile {
namespace {

// Serializes record_run() across processes (transaction-scoped).
constexpr std::int64_t kRunLock = 0x5e77'1e00'0000'0003;


// The ErrorCode for a failed statement's SQLSTATE (as PostgresLedger maps them).
ErrorCode code_for(std::string_view state) {
  if (state.starts_with("22") || state.starts_with("23")) return ErrorCode::kInvalidArgument;
  if (state == "40P01" || state == "40001" || state.starts_with("08") || state.starts_with("57") ||
      state.starts_with("53")) {
    return ErrorCode::kUnavailable;
  }
  return ErrorCode::kIo;
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// host:port/db of a connection, for messages (never the password).
std::string describe(PGconn* pg) {
  const char* host = PQhost(pg);
  const char* port = PQport(pg);
  const char* db = PQdb(pg);
  return fmt::format("postgresql://{}:{}/{}", host != nullptr ? host : "", port != nullptr ? port : "",
                     db != nullptr ? db : "");
}

// A PostgreSQL array literal of text values: {"a","b\"c"}.
std::string text_array(const std::vector<std::string>& values) {
  std::string out = "{";
  for (const std::string& v : values) {
    if (out.size() > 1) out += ',';
    out += '"';
    for (char c : v) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

template <typename T>
std::string int_array(const std::vector<T>& values) {
  std::string out = "{";
  for (const T& v : values) {
    if (out.size() > 1) out += ',';
    out += std::to_string(v);
  }
  return out + "}";
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& s : v) {
    if (!out.empty()) out += ' ';
    out += s;
  }
  return out;
}

// A timestamptz column as microseconds since the epoch.
constexpr const char* kCols =
    "id, reason, subject, merchant_id, currency, expected, actual, drift, our_ref, their_ref, detail, state, "
    "comment, statement_key, run_id, (extract(epoch FROM created_at) * 1000000)::bigint, "
    "(extract(epoch FROM updated_at) * 1000000)::bigint";

Timestamp from_micros(std::int64_t us) { return Timestamp{us * 1000}; }

Discrepancy row(const PgResult& r, int i) {
  Discrepancy d;
  d.id = r.int64(i, 0);
  d.finding.reason = parse_reason(r.text(i, 1)).value();
  d.finding.subject = r.text(i, 2);
  d.finding.merchant_id = r.text(i, 3);
  d.finding.currency = r.text(i, 4);
  d.finding.expected = r.int64(i, 5);
  d.finding.actual = r.int64(i, 6);
  d.finding.drift = r.int64(i, 7);
  d.finding.our_ref = r.text(i, 8);
  d.finding.their_ref = r.text(i, 9);
  d.finding.detail = r.text(i, 10);
  d.state = parse_state(r.text(i, 11)).value();
  d.comment = r.text(i, 12);
  d.statement_key = r.text(i, 13);
  d.run_id = r.int64(i, 14);
  d.created_at = from_micros(r.int64(i, 15));
  d.updated_at = from_micros(r.int64(i, 16));
  return d;
}

using Params = std::vector<std::optional<std::string>>;

}  // namespace

struct PostgresReconStore::Impl {
  std::string url;
  std::string where = "postgresql";
  PGconn* pg = nullptr;
  std::mutex mu;

  ~Impl() { close(); }
  void close() {
    if (pg != nullptr) PQfinish(pg);
    pg = nullptr;
  }

  Error fail(ErrorCode code, std::string_view what, std::string_view why) const {
    return make_error(code, fmt::format("recon store {}: {}: {}", where, what, why));
  }

  Status connect() {
    if (pg != nullptr && PQstatus(pg) == CONNECTION_OK) return ok_status();
    close();
    pg = PQconnectdb(url.c_str());
    if (pg == nullptr) return fail(ErrorCode::kUnavailable, "connect", "out of memory");
    if (PQstatus(pg) != CONNECTION_OK) {
      const std::string message = trimmed(PQerrorMessage(pg));
      close();
      return fail(ErrorCode::kUnavailable, "connect", message);
    }
    where = describe(pg);
    PQsetNoticeProcessor(pg, [](void*, const char*) {}, nullptr);
    SETTLE_TRY(exec("SET application_name = 'settled-recon'; SET client_encoding = 'UTF8'; "
                    "SET datestyle = 'ISO'; SET timezone = 'UTC'; SET lock_timeout = '60s'",
                    {}, "connect"));
    return ok_status();
  }

  // A statement with text parameters (nullopt: NULL).
  Result<PgResult> exec(const std::string& sql, const Params& params, std::string_view what) {
    std::vector<const char*> values;
    for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
    PgResult r(params.empty() ? PQexec(pg, sql.c_str())
                              : PQexecParams(pg, sql.c_str(), static_cast<int>(values.size()), nullptr,
                                             values.data(), nullptr, nullptr, 0));
    const auto st = PQresultStatus(r.get());
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return r;
    std::string message = r.get() != nullptr ? PQresultErrorMessage(r.get()) : "";
    if (message.empty()) message = PQerrorMessage(pg);
    const char* s = r.get() != nullptr ? PQresultErrorField(r.get(), PG_DIAG_SQLSTATE) : nullptr;
    std::string state = s != nullptr ? s : "";
    if (PQstatus(pg) != CONNECTION_OK && state.empty()) state = "08000";
    return make_error(code_for(state), fmt::format("recon store {}: {}: postgresql{}: {}", where, what,
                                                   state.empty() ? "" : " " + state, trimmed(message)));
  }

  Result<std::optional<Discrepancy>> by_id(std::int64_t id, std::string_view what) {
    SETTLE_ASSIGN_OR_RETURN(PgResult r, exec(fmt::format("SELECT {} FROM recon_discrepancies WHERE id = $1", kCols),
                                             {std::to_string(id)}, what));
    if (r.rows() == 0) return std::optional<Discrepancy>();
    return std::optional<Discrepancy>(row(r, 0));
  }

  // open|acknowledged -> `state`; the error names why not.
  Result<Discrepancy> transition(std::int64_t id, std::string_view state, const std::optional<std::string>& comment,
                                 Timestamp at, std::string_view what) {
    SETTLE_TRY(connect());
    SETTLE_ASSIGN_OR_RETURN(
        PgResult r, exec(fmt::format("UPDATE recon_discrepancies SET state = $2, updated_at = $3, "
                                     "comment = coalesce($4, comment) WHERE id = $1 AND state <> 'resolved' "
                                     "RETURNING {}",
                                     kCols),
                         {std::to_string(id), std::string(state), format_rfc3339(at), comment}, what));
    if (r.rows() == 1) return row(r, 0);
    SETTLE_ASSIGN_OR_RETURN(std::optional<Discrepancy> cur, by_id(id, what));
    if (!cur) return make_error(ErrorCode::kNotFound, fmt::format("discrepancy {} does not exist", id));
    return make_error(ErrorCode::kFailedPrecondition, fmt::format("discrepancy {} is resolved already", id));
  }

  Result<RunOutcome> record(const RunRecord& run) {
    RunOutcome out;
    SETTLE_ASSIGN_OR_RETURN(PgResult lock, exec(fmt::format("SELECT pg_advisory_xact_lock({})", kRunLock), {},
                                                "record run: lock"));
    SETTLE_ASSIGN_OR_RETURN(PgResult seen, exec("SELECT run_id FROM recon_statements WHERE statement_key = $1",
                                                {run.statement_key}, "record run: statement lookup"));
    if (seen.rows() > 0) {
      out.duplicate_statement = true;
      out.run_id = seen.int64(0, 0);
      return out;
    }
    const std::string at = format_rfc3339(run.at);
    SETTLE_ASSIGN_OR_RETURN(
        PgResult ins, exec("INSERT INTO recon_runs (ran_at, statement_key, format, items, matches, opened, "
                           "auto_resolved, open_count) VALUES ($1, $2, $3, $4, $5, 0, 0, 0) RETURNING run_id",
                           {at, run.statement_key, run.format, std::to_string(run.items),
                            std::to_string(run.matches.size())},
                           "record run: insert run"));
    out.run_id = ins.int64(0, 0);
    const std::string run_id = std::to_string(out.run_id);
    SETTLE_TRY(exec("INSERT INTO recon_statements (statement_key, format, statement_ids, loaded_at, run_id) "
                    "VALUES ($1, $2, $3, $4, $5)",
                    {run.statement_key, run.format, run.statement_ids, at, run_id}, "record run: insert statement"));
    if (!run.matches.empty()) {
      std::vector<std::string> rules, ours, theirs;
      std::vector<int> confidence;
      for (const Match& m : run.matches) {
        rules.push_back(m.rule);
        confidence.push_back(m.confidence);
        ours.push_back(join(m.ours));
        theirs.push_back(join(m.theirs));
      }
      SETTLE_TRY(exec("INSERT INTO recon_matches (run_id, rule, confidence, ours, theirs) "
                      "SELECT $1, * FROM unnest($2::text[], $3::integer[], $4::text[], $5::text[])",
                      {run_id, text_array(rules), int_array(confidence), text_array(ours), text_array(theirs)},
                      "record run: insert matches"));
    }
    if (!run.matched_subjects.empty()) {
      const std::string subjects = text_array(run.matched_subjects);
      SETTLE_TRY(exec("INSERT INTO recon_matched (subject, run_id) SELECT s, $2 FROM unnest($1::text[]) AS s "
                      "ON CONFLICT (subject) DO NOTHING",
                      {subjects, run_id}, "record run: matched subjects"));
      SETTLE_ASSIGN_OR_RETURN(
          PgResult resolved,
          exec("UPDATE recon_discrepancies SET state = 'resolved', updated_at = $2, comment = $3 "
               "WHERE subject = ANY($1::text[]) AND state <> 'resolved' "
               "AND reason IN ('missing_in_statement', 'missing_in_ledger')",
               {subjects, at,
                fmt::format("resolved automatically: matched by run {} (statement {})", out.run_id, run.statement_ids)},
               "record run: auto-resolve"));
      out.auto_resolved = resolved.affected();
    }
    for (const Finding& f : run.findings) {
      // A missing_* finding whose task is still open is not opened twice.
      const bool once = f.reason == Reason::kMissingInStatement || f.reason == Reason::kMissingInLedger;
      SETTLE_ASSIGN_OR_RETURN(
          PgResult r,
          exec("INSERT INTO recon_discrepancies (reason, subject, merchant_id, currency, expected, actual, drift, "
               "our_ref, their_ref, detail, state, statement_key, run_id, created_at, updated_at) "
               "SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'open', $11, $12, $13, $13 "
               "WHERE NOT ($14::boolean AND EXISTS (SELECT 1 FROM recon_discrepancies "
               "WHERE subject = $2 AND reason = $1 AND state <> 'resolved')) RETURNING id",
               {std::string(reason_name(f.reason)), f.subject, f.merchant_id, f.currency, std::to_string(f.expected),
                std::to_string(f.actual), std::to_string(f.drift), f.our_ref, f.their_ref, f.detail,
                run.statement_key, run_id, at, once ? "true" : "false"},
               "record run: insert discrepancy"));
      if (r.rows() == 0) continue;
      out.opened_ids.push_back(r.int64(0, 0));
      ++out.opened;
    }
    SETTLE_ASSIGN_OR_RETURN(out.drift, compute_drift(out.run_id, run.at));
    if (!out.drift.rows.empty()) {
      std::vector<std::string> currencies, merchants;
      std::vector<std::int64_t> counts, amounts;
      for (const DriftRow& r : out.drift.rows) {
        currencies.push_back(r.currency);
        merchants.push_back(r.merchant_id);
        counts.push_back(r.count);
        amounts.push_back(r.amount);
      }
      SETTLE_TRY(exec("INSERT INTO recon_drift (run_id, ran_at, currency, merchant_id, count, amount) "
                      "SELECT $1, $2, * FROM unnest($3::text[], $4::text[], $5::bigint[], $6::bigint[])",
                      {run_id, at, text_array(currencies), text_array(merchants), int_array(counts),
                       int_array(amounts)},
                      "record run: drift"));
    }
    SETTLE_TRY(exec("UPDATE recon_runs SET opened = $2, auto_resolved = $3, open_count = $4 WHERE run_id = $1",
                    {run_id, std::to_string(out.opened), std::to_string(out.auto_resolved),
                     std::to_string(out.drift.open_count)},
                    "record run: totals"));
    return out;
  }

  Result<DriftSample> compute_drift(std::int64_t run_id, Timestamp at) {
    DriftSample d;
    d.run_id = run_id;
    d.at = at;
    SETTLE_ASSIGN_OR_RETURN(PgResult r, exec("SELECT currency, merchant_id, count(*), sum(drift) "
                                             "FROM recon_discrepancies WHERE state <> 'resolved' "
                                             "GROUP BY currency, merchant_id ORDER BY currency, merchant_id",
                                             {}, "drift"));
    std::map<std::string, DriftRow> totals;
    for (int i = 0; i < r.rows(); ++i) {
      DriftRow x{std::string(r.text(i, 0)), std::string(r.text(i, 1)), r.int64(i, 2), r.int64(i, 3)};
      d.open_count += x.count;
      DriftRow& t = totals[x.currency];
      t.currency = x.currency;
      t.count += x.count;
      t.amount += x.amount;
      if (!x.merchant_id.empty()) d.rows.push_back(std::move(x));
    }
    for (auto& [cur, t] : totals) d.rows.push_back(t);
    return d;
  }
};

PostgresReconStore::PostgresReconStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PostgresReconStore::~PostgresReconStore() = default;

Result<std::unique_ptr<PostgresReconStore>> PostgresReconStore::open(const std::string& url) {
  auto impl = std::make_unique<Impl>();
  impl->url = url;
  SETTLE_TRY(impl->connect());
  SETTLE_ASSIGN_OR_RETURN(PgResult r, impl->exec("SELECT to_regclass('recon_discrepancies') IS NOT NULL", {},
                                                 "open"));
  if (r.text(0, 0) != "t") {
    return impl->fail(ErrorCode::kFailedPrecondition, "open",
                      "the database has no reconciliation tables (migration 0003_reconciliation); run "
                      "`settled migrate --ledger URL`");
  }
  return std::unique_ptr<PostgresReconStore>(new PostgresReconStore(std::move(impl)));
}

Result<RunOutcome> PostgresReconStore::record_run(const RunRecord& run) {
  Impl& d = *impl_;
  std::lock_guard lock(d.mu);
  SETTLE_TRY(d.connect());
  SETTLE_TRY(d.exec("BEGIN", {}, "record run"));
  auto out = d.record(run);
  if (out.ok() && !out->duplicate_statement) {
    auto committed = d.exec("COMMIT", {}, "record run: commit");
    if (committed.ok()) return out;
    out = committed.error();
  }
  if (PQtransactionStatus(d.pg) != PQTRANS_IDLE) PgResult(PQexec(d.pg, "ROLLBACK"));
  return out;
}

Result<std::vector<std::string>> PostgresReconStore::matched_subjects(std::string_view prefix) {
  Impl& d = *impl_;
  std::lock_guard lock(d.mu);
  SETTLE_TRY(d.connect());
  SETTLE_ASSIGN_OR_RETURN(PgResult r, d.exec("SELECT subject FROM recon_matched WHERE starts_with(subject, $1) "
                                             "ORDER BY subject",
                                             {std::string(prefix)}, "matched subjects"));
  std::vector<std::string> out;
  for (int i = 0; i < r.rows(); ++i) out.emplace_back(r.text(i, 0));
  return out;
}

Result<std::vector<Discrepancy>> PostgresReconStore::discrepancies(const DiscrepancyQuery& q) {
  Impl& d = *impl_;
  std::lock_guard lock(d.mu);
  SETTLE_TRY(d.connect());
  Params p;
  p.push_back(q.state ? std::optional<std::string>(state_name(*q.state)) : std::nullopt);
  p.push_back(q.merchant_id);
  p.push_back(q.reason ? std::optional<std::string>(reason_name(*q.reason)) : std::nullopt);
  p.push_back(q.created_before ? std::optional<std::string>(format_rfc3339(*q.created_before)) : std::nullopt);
  p.push_back(std::to_string(q.limit));
  SETTLE_ASSIGN_OR_RETURN(
      PgResult r, d.exec(fmt::format("SELECT {} FROM recon_discrepancies WHERE ($1::text IS NULL OR state = $1) "
                                     "AND ($2::text IS NULL OR merchant_id = $2) AND ($3::text IS NULL OR reason = $3) "
                                     "AND ($4::timestamptz IS NULL OR created_at < $4) ORDER BY id LIMIT $5",
                                     kCols),
                         p, "list discrepancies"));
  std::vector<Discrepancy> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(row(r, i));
  return out;
}

Result<Discrepancy> PostgresReconStore::acknowledge(std::int64_t id, Timestamp at) {
  Impl& d = *impl_;
  std::lock_guard lock(d.mu);
  return d.transition(id, "acknowledged", std::nullopt, at, "acknowledge");
}

Result<Discrepancy> PostgresReconStore::resolve(std::int64_t id, std::string_view comment, Timestamp at) {
  if (comment.empty()) return make_error(ErrorCode::kInvalidArgument, "resolve: a comment is required");
  Impl& d = *impl_;
  std::lock_guard lock(d.mu);
  return d.transition(id, "resolved", std::string(comment), at, "resolve");
}

Result<std::vector<DriftSample>> PostgresReconStore::drift(std::size_t last) {
  Impl& d = *impl_;
  std::lock_guard lock(d.mu);
  SETTLE_TRY(d.connect());
  SETTLE_ASSIGN_OR_RETURN(
      PgResult runs, d.exec("SELECT run_id, (extract(epoch FROM ran_at) * 1000000)::bigint, open_count FROM "
                            "(SELECT * FROM recon_runs ORDER BY run_id DESC LIMIT $1) AS r ORDER BY run_id",
                            {std::to_string(last)}, "drift"));
  std::vector<DriftSample> out;
  std::map<std::int64_t, std::size_t> index;
  std::vector<std::int64_t> ids;
  for (int i = 0; i < runs.rows(); ++i) {
    DriftSample x;
    x.run_id = runs.int64(i, 0);
    x.at = from_micros(runs.int64(i, 1));
    x.open_count = runs.int64(i, 2);
    index[x.run_id] = out.size();
    ids.push_back(x.run_id);
    out.push_back(std::move(x));
  }
  if (ids.empty()) return out;
  SETTLE_ASSIGN_OR_RETURN(
      PgResult rows, d.exec("SELECT run_id, currency, merchant_id, count, amount FROM recon_drift "
                            "WHERE run_id = ANY($1::bigint[]) ORDER BY run_id, currency, merchant_id = '', merchant_id",
                            {int_array(ids)}, "drift rows"));
  for (int i = 0; i < rows.rows(); ++i) {
    out[index.at(rows.int64(i, 0))].rows.push_back(
        DriftRow{std::string(rows.text(i, 1)), std::string(rows.text(i, 2)), rows.int64(i, 3), rows.int64(i, 4)});
  }
  return out;
}

}  // namespace settle::reconcile
