#include "reconcile/sqlite_recon_store.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <map>
#include <mutex>

namespace settle::reconcile {

std::string_view state_name(TaskState state) {
  switch (state) {
    case TaskState::kOpen: return "open";
    case TaskState::kAcknowledged: return "acknowledged";
    case TaskState::kResolved: return "resolved";
  }
  return "?";
}

Result<TaskState> parse_state(std::string_view name) {
  if (name == "open") return TaskState::kOpen;
  if (name == "acknowledged") return TaskState::kAcknowledged;
  if (name == "resolved") return TaskState::kResolved;
  return make_error(ErrorCode::kInvalidArgument,
                    fmt::format("unknown state '{}' (expected open, acknowledged or resolved)", name));
}

std::int64_t age_days(const Discrepancy& d, Timestamp now) {
  const std::int64_t ns = now.ns - d.created_at.ns;
  return ns <= 0 ? 0 : ns / kNsPerDay;
}

std::string_view aging_bucket(std::int64_t days) {
  if (days < 1) return "0-1d";
  if (days < 3) return "1-3d";
  if (days < 7) return "3-7d";
  if (days < 30) return "7-30d";
  return ">30d";
}

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS recon_statements (
  statement_key TEXT    NOT NULL PRIMARY KEY,  -- digest of the content + statement ids
  format        TEXT    NOT NULL,
  statement_ids TEXT    NOT NULL,
  loaded_at     TEXT    NOT NULL,
  run_id        INTEGER NOT NULL
) STRICT;
-- One row per run: the drift time series' totals.
CREATE TABLE IF NOT EXISTS recon_runs (
  run_id        INTEGER PRIMARY KEY,
  ran_at        TEXT    NOT NULL,
  statement_key TEXT    NOT NULL,
  format        TEXT    NOT NULL,
  items         INTEGER NOT NULL,
  matches       INTEGER NOT NULL,
  opened        INTEGER NOT NULL,
  auto_resolved INTEGER NOT NULL,
  open_count    INTEGER NOT NULL   -- open + acknowledged tasks after the run
) STRICT;
CREATE TABLE IF NOT EXISTS recon_matches (
  match_id   INTEGER PRIMARY KEY,
  run_id     INTEGER NOT NULL,
  rule       TEXT    NOT NULL,
  confidence INTEGER NOT NULL CHECK (confidence BETWEEN 0 AND 100),  -- percent
  ours       TEXT    NOT NULL,   -- subjects, space separated
  theirs     TEXT    NOT NULL    -- statement locations, space separated
) STRICT;
CREATE TABLE IF NOT EXISTS recon_matched (
  subject TEXT    NOT NULL PRIMARY KEY,
  run_id  INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS recon_discrepancies (
  id            INTEGER PRIMARY KEY,
  reason        TEXT    NOT NULL CHECK (reason IN ('missing_in_ledger', 'missing_in_statement', 'amount_mismatch',
                                         'fee_mismatch', 'duplicate_in_statement', 'outside_date_window',
                                         'currency_mismatch')),
  subject       TEXT    NOT NULL,
  merchant_id   TEXT    NOT NULL,
  currency      TEXT    NOT NULL,
  expected      INTEGER NOT NULL,
  actual        INTEGER NOT NULL,
  drift         INTEGER NOT NULL CHECK (drift >= 0),
  our_ref       TEXT    NOT NULL,
  their_ref     TEXT    NOT NULL,
  detail        TEXT    NOT NULL,
  state         TEXT    NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved')),
  comment       TEXT    NOT NULL DEFAULT '',
  statement_key TEXT    NOT NULL,
  run_id        INTEGER NOT NULL,
  created_at    TEXT    NOT NULL,
  updated_at    TEXT    NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS recon_discrepancies_subject ON recon_discrepancies (subject, state);
CREATE INDEX IF NOT EXISTS recon_discrepancies_state ON recon_discrepancies (state, created_at);
-- Drift per run: per currency and merchant, and per currency (merchant_id '').
CREATE TABLE IF NOT EXISTS recon_drift (
  run_id      INTEGER NOT NULL,
  ran_at      TEXT    NOT NULL,
  currency    TEXT    NOT NULL,
  merchant_id TEXT    NOT NULL,
  count       INTEGER NOT NULL,
  amount      INTEGER NOT NULL,
  PRIMARY KEY (run_id, currency, merchant_id)
) STRICT;
)sql";

class Stmt {
 public:
  Stmt() = default;
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  sqlite3_stmt** out() { return &s_; }
  sqlite3_stmt* get() const { return s_; }
  void text(int i, std::string_view v) { sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT); }
  void int64(int i, std::int64_t v) { sqlite3_bind_int64(s_, i, v); }
  int step() { return sqlite3_step(s_); }
  std::string col_text(int i) const {
    const unsigned char* t = sqlite3_column_text(s_, i);
    return t == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(t),
                                                      static_cast<std::size_t>(sqlite3_column_bytes(s_, i)));
  }
  std::int64_t col_int(int i) const { return sqlite3_column_int64(s_, i); }

 private:
  sqlite3_stmt* s_ = nullptr;
};

Timestamp parse_ts(const std::string& s) {
  auto r = parse_rfc3339(s);
  return r.ok() ? *r : Timestamp{};
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& s : v) {
    if (!out.empty()) out += ' ';
    out += s;
  }
  return out;
}

}  // namespace

struct SqliteReconStore::Impl {
  sqlite3* db = nullptr;
  std::string path;
  std::mutex mu;
  ~Impl() { sqlite3_close_v2(db); }

  Error fail(std::string_view what) const {
    return make_error(ErrorCode::kIo, fmt::format("recon store {}: {}: sqlite: {}", path, what, sqlite3_errmsg(db)));
  }
  Status exec(const char* sql, std::string_view what) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string m = err != nullptr ? err : "?";
      sqlite3_free(err);
      return make_error(ErrorCode::kIo, fmt::format("recon store {}: {}: sqlite: {}", path, what, m));
    }
    return ok_status();
  }
  Status prepare(Stmt& s, const char* sql) {
    if (sqlite3_prepare_v2(db, sql, -1, s.out(), nullptr) != SQLITE_OK) return fail(sql);
    return ok_status();
  }
  Status done(Stmt& s, std::string_view what) {
    if (s.step() != SQLITE_DONE) return fail(what);
    return ok_status();
  }

  static constexpr const char* kSelect =
      "SELECT id, reason, subject, merchant_id, currency, expected, actual, drift, our_ref, their_ref, detail, state, "
      "comment, statement_key, run_id, created_at, updated_at FROM recon_discrepancies";

  static Discrepancy row(const Stmt& s) {
    Discrepancy d;
    d.id = s.col_int(0);
    d.finding.reason = parse_reason(s.col_text(1)).value();
    d.finding.subject = s.col_text(2);
    d.finding.merchant_id = s.col_text(3);
    d.finding.currency = s.col_text(4);
    d.finding.expected = s.col_int(5);
    d.finding.actual = s.col_int(6);
    d.finding.drift = s.col_int(7);
    d.finding.our_ref = s.col_text(8);
    d.finding.their_ref = s.col_text(9);
    d.finding.detail = s.col_text(10);
    d.state = parse_state(s.col_text(11)).value();
    d.comment = s.col_text(12);
    d.statement_key = s.col_text(13);
    d.run_id = s.col_int(14);
    d.created_at = parse_ts(s.col_text(15));
    d.updated_at = parse_ts(s.col_text(16));
    return d;
  }

  Result<std::optional<Discrepancy>> by_id(std::int64_t id) {
    Stmt s;
    SETTLE_TRY(prepare(s, (std::string(kSelect) + " WHERE id = ?1").c_str()));
    s.int64(1, id);
    const int rc = s.step();
    if (rc == SQLITE_ROW) return std::optional<Discrepancy>(row(s));
    if (rc == SQLITE_DONE) return std::optional<Discrepancy>();
    return fail("read discrepancy");
  }

  Result<DriftSample> compute_drift(std::int64_t run_id, Timestamp at) {
    DriftSample d;
    d.run_id = run_id;
    d.at = at;
    Stmt s;
    SETTLE_TRY(prepare(s,
                       "SELECT currency, merchant_id, count(*), sum(drift) FROM recon_discrepancies "
                       "WHERE state <> 'resolved' GROUP BY currency, merchant_id ORDER BY currency, merchant_id"));
    std::map<std::string, DriftRow> totals;
    for (int rc = s.step(); rc != SQLITE_DONE; rc = s.step()) {
      if (rc != SQLITE_ROW) return fail("drift");
      DriftRow r{s.col_text(0), s.col_text(1), s.col_int(2), s.col_int(3)};
      d.open_count += r.count;
      DriftRow& t = totals[r.currency];
      t.currency = r.currency;
      t.count += r.count;
      t.amount += r.amount;
      if (!r.merchant_id.empty()) d.rows.push_back(std::move(r));
    }
    for (auto& [cur, t] : totals) d.rows.push_back(t);
    return d;
  }
};

SqliteReconStore::SqliteReconStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SqliteReconStore::~SqliteReconStore() = default;

Result<std::unique_ptr<SqliteReconStore>> SqliteReconStore::open(const std::filesystem::path& db_path) {
  auto impl = std::make_unique<Impl>();
  impl->path = db_path.string();
  if (sqlite3_open_v2(impl->path.c_str(), &impl->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    return make_error(ErrorCode::kIo, fmt::format("recon store {}: open: sqlite: {}", impl->path,
                                                  impl->db != nullptr ? sqlite3_errmsg(impl->db) : "out of memory"));
  }
  sqlite3_busy_timeout(impl->db, 5000);
  SETTLE_TRY(impl->exec("PRAGMA journal_mode = WAL", "open"));
  SETTLE_TRY(impl->exec("PRAGMA synchronous = FULL", "open"));
  SETTLE_TRY(impl->exec(kSchema, "create tables"));
  return std::unique_ptr<SqliteReconStore>(new SqliteReconStore(std::move(impl)));
}

Result<RunOutcome> SqliteReconStore::record_run(const RunRecord& run) {
  Impl& d = *impl_;
  std::lock_guard lock(d.mu);
  SETTLE_TRY(d.exec("BEGIN IMMEDIATE", "record run"));
  struct Rollback {
    Impl& d;
    bool armed = true;
    ~Rollback() {
      if (armed) sqlite3_exec(d.db, "ROLLBACK", nullptr, nullptr, nullptr);
    }
  } guard{d};
  RunOutcome out;
  {
    Stmt s;
    SETTLE_TRY(d.prepare(s, "SELECT run_id FROM recon_statements WHERE statement_key = ?1"));
    s.text(1, run.statement_key);
    const int rc = s.step();
    if (rc == SQLITE_ROW) {
      out.duplicate_statement = true;
      out.run_id = s.col_int(0);
      return out;
    }
    if (rc != SQLITE_DONE) return d.fail("record run: statement lookup");
  }
  const std::string at = format_rfc3339(run.at);
  {
    Stmt s;
    SETTLE_TRY(d.prepare(s,
                         "INSERT INTO recon_runs (ran_at, statement_key, format, items, matches, opened, "
                         "auto_resolved, open_count) VALUES (?1, ?2, ?3, ?4, ?5, 0, 0, 0)"));
    s.text(1, at);
    s.text(2, run.statement_key);
    s.text(3, run.format);
    s.int64(4, run.items);
    s.int64(5, static_cast<std::int64_t>(run.matches.size()));
    SETTLE_TRY(d.done(s, "record run: insert run"));
    out.run_id = sqlite3_last_insert_rowid(d.db);
  }
  {
    Stmt s;
    SETTLE_TRY(d.prepare(s, "INSERT INTO recon_statements VALUES (?1, ?2, ?3, ?4, ?5)"));
    s.text(1, run.statement_key);
    s.text(2, run.format);
    s.text(3, run.statement_ids);
    s.text(4, at);
    s.int64(5, out.run_id);
    SETTLE_TRY(d.done(s, "record run: insert statement"));
  }
  for (const Match& m : run.matches) {
    Stmt s;
    SETTLE_TRY(d.prepare(s, "INSERT INTO recon_matches (run_id, rule, confidence, ours, theirs) VALUES (?1, ?2, ?3, ?4, ?5)"));
    s.int64(1, out.run_id);
    s.text(2, m.rule);
    s.int64(3, m.confidence);
    s.text(4, join(m.ours));
    s.text(5, join(m.theirs));
    SETTLE_TRY(d.done(s, "record run: insert match"));
  }
  for (const std::string& subject : run.matched_subjects) {
    Stmt s;
    SETTLE_TRY(d.prepare(s, "INSERT OR IGNORE INTO recon_matched VALUES (?1, ?2)"));
    s.text(1, subject);
    s.int64(2, out.run_id);
    SETTLE_TRY(d.done(s, "record run: matched subject"));
    Stmt r;
    SETTLE_TRY(d.prepare(r,
                         "UPDATE recon_discrepancies SET state = 'resolved', updated_at = ?2, comment = ?3 "
                         "WHERE subject = ?1 AND state <> 'resolved' "
                         "AND reason IN ('missing_in_statement', 'missing_in_ledger')"));
    r.text(1, subject);
    r.text(2, at);
    r.text(3, fmt::format("resolved automatically: matched by run {} (statement {})", out.run_id, run.statement_ids));
    SETTLE_TRY(d.done(r, "record run: auto-resolve"));
    out.auto_resolved += sqlite3_changes(d.db);
  }
  for (const Finding& f : run.findings) {
    if (f.reason == Reason::kMissingInStatement || f.reason == Reason::kMissingInLedger) {
      Stmt q;
      SETTLE_TRY(d.prepare(q, "SELECT 1 FROM recon_discrepancies WHERE subject = ?1 AND reason = ?2 AND state <> 'resolved'"));
      q.text(1, f.subject);
      q.text(2, reason_name(f.reason));
      const int rc = q.step();
      if (rc == SQLITE_ROW) continue;
      if (rc != SQLITE_DONE) return d.fail("record run: open task lookup");
    }
    Stmt s;
    SETTLE_TRY(d.prepare(s,
                         "INSERT INTO recon_discrepancies (reason, subject, merchant_id, currency, expected, actual, "
                         "drift, our_ref, their_ref, detail, state, statement_key, run_id, created_at, updated_at) "
                         "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'open', ?11, ?12, ?13, ?13)"));
    s.text(1, reason_name(f.reason));
    s.text(2, f.subject);
    s.text(3, f.merchant_id);
    s.text(4, f.currency);
    s.int64(5, f.expected);
    s.int64(6, f.actual);
    s.int64(7, f.drift);
    s.text(8, f.our_ref);
    s.text(9, f.their_ref);
    s.text(10, f.detail);
    s.text(11, run.statement_key);
    s.int64(12, out.run_id);
    s.text(13, at);
    SETTLE_TRY(d.done(s, "record run: insert discrepancy"));
    out.opened_ids.push_back(sqlite3_last_insert_rowid(d.db));
    ++out.opened;
  }
  SETTLE_ASSIGN_OR_RETURN(out.drift, d.compute_drift(out.run_id, run.at));
  for (const DriftRow& r : out.drift.rows) {
    Stmt s;
    SETTLE_TRY(d.prepare(s, "INSERT INTO recon_drift VALUES (?1, ?2, ?3, ?4, ?5, ?6)"));
    s.int64(1, out.run_id);
    s.text(2, at);
    s.text(3, r.currency);
    s.text(4, r.merchant_id);
    s.int64(5, r.count);
    s.int64(6, r.amount);
    SETTLE_TRY(d.done(s, "record run: drift"));
  }
  {
    Stmt s;
    SETTLE_TRY(d.prepare(s, "UPDATE recon_runs SET opened = ?2, auto_resolved = ?3, open_count = ?4 WHERE run_id = ?1"));
    s.int64(1, out.run_id);
    s.int64(2, out.opened);
    s.int64(3, out.auto_resolved);
    s.int64(4, out.drift.open_count);
    SETTLE_TRY(d.done(s, "record run: totals"));
  }
  SETTLE_TRY(d.exec("COMMIT", "record run: commit"));
  guard.armed = false;
  return out;
}

Result<std::vector<std::string>> SqliteReconStore::matched_subjects(std::string_view prefix) {
  Impl& d = *impl_;
  std::lock_guard lock(d.mu);
  Stmt s;
  SETTLE_TRY(d.prepare(s, "SELECT subject FROM recon_matched WHERE substr(subject, 1, length(?1)) = ?1"));
  s.text(1, prefix);
  std::vector<std::string> out;
  for (int rc = s.step(); rc != SQLITE_DONE; rc = s.step()) {
    if (rc != SQLITE_ROW) return d.fail("matched subjects");
    out.push_back(s.col_text(0));
  }
  return out;
}

Result<std::vector<Discrepancy>> SqliteReconStore::discrepancies(const DiscrepancyQuery& q) {
  Impl& d = *impl_;
  std::lock_guard lock(d.mu);
  Stmt s;
  SETTLE_TRY(d.prepare(s, (std::string(Impl::kSelect) +
                           " WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR merchant_id = ?2) "
                           "AND (?3 IS NULL OR reason = ?3) AND (?4 IS NULL OR created_at < ?4) ORDER BY id LIMIT ?5")
                              .c_str()));
  if (q.state) s.text(1, state_name(*q.state));
  if (q.merchant_id) s.text(2, *q.merchant_id);
  if (q.reason) s.text(3, reason_name(*q.reason));
  if (q.created_before) s.text(4, format_rfc3339(*q.created_before));
  s.int64(5, static_cast<std::int64_t>(q.limit));
  std::vector<Discrepancy> out;
  for (int rc = s.step(); rc != SQLITE_DONE; rc = s.step()) {
    if (rc != SQLITE_ROW) return d.fail("list discrepancies");
    out.push_back(Impl::row(s));
  }
  return out;
}

Result<Discrepancy> SqliteReconStore::acknowledge(std::int64_t id, Timestamp at) {
  Impl& d = *impl_;
  std::lock_guard lock(d.mu);
  SETTLE_ASSIGN_OR_RETURN(std::optional<Discrepancy> cur, d.by_id(id));
  if (!cur) return make_error(ErrorCode::kNotFound, fmt::format("discrepancy {} does not exist", id));
  if (cur->state == TaskState::kResolved) {
    return make_error(ErrorCode::kFailedPrecondition, fmt::format("discrepancy {} is resolved already", id));
  }
  Stmt s;
  SETTLE_TRY(d.prepare(s, "UPDATE recon_discrepancies SET state = 'acknowledged', updated_at = ?2 WHERE id = ?1"));
  s.int64(1, id);
  s.text(2, format_rfc3339(at));
  SETTLE_TRY(d.done(s, "acknowledge"));
  SETTLE_ASSIGN_OR_RETURN(cur, d.by_id(id));
  return *cur;
}

Result<Discrepancy> SqliteReconStore::resolve(std::int64_t id, std::string_view comment, Timestamp at) {
  Impl& d = *impl_;
  if (comment.empty()) return make_error(ErrorCode::kInvalidArgument, "resolve: a comment is required");
  std::lock_guard lock(d.mu);
  SETTLE_ASSIGN_OR_RETURN(std::optional<Discrepancy> cur, d.by_id(id));
  if (!cur) return make_error(ErrorCode::kNotFound, fmt::format("discrepancy {} does not exist", id));
  if (cur->state == TaskState::kResolved) {
    return make_error(ErrorCode::kFailedPrecondition, fmt::format("discrepancy {} is resolved already", id));
  }
  Stmt s;
  SETTLE_TRY(d.prepare(s, "UPDATE recon_discrepancies SET state = 'resolved', comment = ?3, updated_at = ?2 WHERE id = ?1"));
  s.int64(1, id);
  s.text(2, format_rfc3339(at));
  s.text(3, comment);
  SETTLE_TRY(d.done(s, "resolve"));
  SETTLE_ASSIGN_OR_RETURN(cur, d.by_id(id));
  return *cur;
}

Result<std::vector<DriftSample>> SqliteReconStore::drift(std::size_t last) {
  Impl& d = *impl_;
  std::lock_guard lock(d.mu);
  std::vector<DriftSample> out;
  Stmt s;
  SETTLE_TRY(d.prepare(s,
                       "SELECT run_id, ran_at, open_count FROM (SELECT * FROM recon_runs ORDER BY run_id DESC "
                       "LIMIT ?1) ORDER BY run_id"));
  s.int64(1, static_cast<std::int64_t>(last));
  for (int rc = s.step(); rc != SQLITE_DONE; rc = s.step()) {
    if (rc != SQLITE_ROW) return d.fail("drift");
    DriftSample x;
    x.run_id = s.col_int(0);
    x.at = parse_ts(s.col_text(1));
    x.open_count = s.col_int(2);
    out.push_back(std::move(x));
  }
  for (DriftSample& x : out) {
    Stmt r;
    SETTLE_TRY(d.prepare(r,
                         "SELECT currency, merchant_id, count, amount FROM recon_drift WHERE run_id = ?1 "
                         "ORDER BY currency, merchant_id = '', merchant_id"));
    r.int64(1, x.run_id);
    for (int rc = r.step(); rc != SQLITE_DONE; rc = r.step()) {
      if (rc != SQLITE_ROW) return d.fail("drift rows");
      x.rows.push_back(DriftRow{r.col_text(0), r.col_text(1), r.col_int(2), r.col_int(3)});
    }
  }
  return out;
}

}  // namespace settle::reconcile
