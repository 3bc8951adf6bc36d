// PostgresLedger on a real PostgreSQL 15 (started by the test, see
// tests/support/postgres_server.h): the port's contract suite, plus what only
// the PostgreSQL ledger promises (migrations, COPY staging verdicts, fencing
// under concurrent closers, partition upkeep, the token sequence).
#include "ledger/postgres_ledger.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "ledger_contract.h"
#include "model/merchant.h"
#include "rules/rules.h"
#include "support/postgres_server.h"
#include "support/process.h"

namespace settle::ledger {
namespace {

namespace fs = std::filesystem;
using settle::testing::PostgresServer;

// A database name from a scratch path: "settle-ledger-AbC123" -> "ledger_abc123_<hash>".
std::string database_for(const std::string& scratch) {
  std::string base = fs::path(scratch).filename().string();
  std::string name = "ledger_";
  for (char c : base) {
    if (std::isalnum(static_cast<unsigned char>(c)) != 0) {
      name += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  // mkdtemp's suffix is mixed case: keep distinct scratches distinct.
  name += "_" + std::to_string(std::hash<std::string>{}(base) % 1'000'000'007ULL);
  return name.substr(0, 63);
}

// Creates `db` (unless it exists) as a copy of a database migrated once per
// process: a test then pays for CREATE DATABASE, not for the migrations.
void create_migrated_database(const std::string& db) {
  static std::once_flag once;
  static std::string failure;
  PostgresServer& server = PostgresServer::shared();
  std::call_once(once, [&] {
    server.create_database("ledger_template");
    auto migrated = PostgresLedger::migrate(server.url("ledger_template"));
    if (!migrated.ok()) failure = migrated.error().to_string();
  });
  if (!failure.empty()) throw std::runtime_error("migrating the template: " + failure);
  PGconn* pg = PQconnectdb(server.conninfo().c_str());
  PGresult* r = PQexec(pg, ("CREATE DATABASE \"" + db + "\" TEMPLATE ledger_template").c_str());
  const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK ||
                  (state != nullptr && std::string(state) == "42P04");  // exists: a reopen
  const std::string message = PQresultErrorMessage(r);
  PQclear(r);
  PQfinish(pg);
  if (!ok) throw std::runtime_error("CREATE DATABASE " + db + ": " + message);
}

LedgerFactory postgres_factory(std::string name, std::size_t pool_size, std::size_t chunk_rows) {
  return LedgerFactory{std::move(name), [pool_size, chunk_rows](const std::string& scratch) {
                         PostgresServer& server = PostgresServer::shared();
                         const std::string db = database_for(scratch);
                         create_migrated_database(db);
                         PostgresLedgerOptions options;
                         options.migrate = true;
                         options.pool_size = pool_size;
                         options.chunk_rows = chunk_rows;
                         auto opened = PostgresLedger::open(server.url(db), options);
                         if (!opened.ok()) {
                           ADD_FAILURE() << opened.error().to_string();
                           return std::unique_ptr<Ledger>();
                         }
                         return std::unique_ptr<Ledger>(std::move(opened).value());
                       }};
}

INSTANTIATE_TEST_SUITE_P(Postgres, LedgerContract,
                         ::testing::Values(postgres_factory("Pool4", 4, 20'000),
                                           // Many small COPY chunks per call, one connection.
                                           postgres_factory("OneConnectionChunks7", 1, 7)),
                         ledger_factory_name);

// --- helpers -------------------------------------------------------------------

template <typename T>
T must(Result<T> r) {
  if (!r.ok()) throw std::runtime_error("unexpected error: " + r.error().to_string());
  return std::move(r).value();
}

void must(const Status& s) {
  if (!s.ok()) throw std::runtime_error("unexpected error: " + s.error().to_string());
}

// A plain libpq connection: what an operator with psql sees.
class Sql {
 public:
  explicit Sql(const std::string& conninfo) : pg_(PQconnectdb(conninfo.c_str())) {
    if (PQstatus(pg_) != CONNECTION_OK) throw std::runtime_error(PQerrorMessage(pg_));
  }
  ~Sql() { PQfinish(pg_); }
  Sql(const Sql&) = delete;
  Sql& operator=(const Sql&) = delete;

  // Every row, columns separated by '|', rows by '\n'.
  std::string query(const std::string& sql) {
    PGresult* r = PQexec(pg_, sql.c_str());
    const auto st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
      std::string message = PQresultErrorMessage(r);
      PQclear(r);
      throw std::runtime_error(sql + ": " + message);
    }
    std::string out;
    for (int i = 0; i < PQntuples(r); ++i) {
      for (int c = 0; c < PQnfields(r); ++c) {
        if (c > 0) out += '|';
        out += PQgetisnull(r, i, c) != 0 ? "NULL" : PQgetvalue(r, i, c);
      }
      out += '\n';
    }
    PQclear(r);
    return out;
  }
  std::int64_t count(const std::string& sql) { return std::stoll(query(sql)); }

 private:
  PGconn* pg_;
};

Date day(unsigned d) { return date_from_civil(2026, 3, d); }

model::Merchant merchant(const std::string& id, std::int64_t reserve_bps = 0, int reserve_days = 0) {
  model::Merchant m;
  m.id = MerchantId(id);
  m.delay_days = 1;
  m.fees[static_cast<std::size_t>(model::EventType::kCapture)] = {290, 30};
  m.reserve_bps = reserve_bps;
  m.reserve_days = reserve_days;
  return m;
}

model::Journal capture(const model::Merchant& m, const std::string& id, Minor amount, Date on) {
  model::Event e;
  e.merchant_id = m.id;
  e.event_id = EventId(id);
  e.type = model::EventType::kCapture;
  e.amount = amount;
  e.currency = "USD";
  e.occurred_at = Timestamp{static_cast<std::int64_t>(on.days) * kNsPerDay + 3600 * kNsPerSecond};
  const Date d = rules::batch_date_of(m, e.occurred_at);
  return must(rules::event_journal(e, m, d, d, false));
}

// A fresh, migrated database of its own per test.
class PostgresLedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    db_ = "pgtest_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
    server().create_database(db_);
  }

  PostgresServer& server() { return PostgresServer::shared(); }
  std::string url() { return server().url(db_); }
  std::unique_ptr<PostgresLedger> open(PostgresLedgerOptions options = {}) {
    options.migrate = true;
    return must(PostgresLedger::open(url(), options));
  }
  Sql sql() { return Sql(server().conninfo(db_)); }

  std::string db_;
};

// --- migrations ---------------------------------------------------------------------

// The database's schema as text: tables, columns, indexes, functions.
std::string schema_of(Sql& s) {
  return s.query(
             "SELECT c.relname, c.relkind, a.attname, format_type(a.atttypid, a.atttypmod) "
             "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
             "LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 "
             "WHERE n.nspname IN ('public', 'ledger_archive') ORDER BY 1, 3") +
         s.query("SELECT proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                 "WHERE n.nspname = 'public' ORDER BY 1") +
         s.query("SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY 1");
}

TEST_F(PostgresLedgerTest, MigrationsAppliedTwiceChangeNothing) {
  const MigrationReport first = must(PostgresLedger::migrate(url()));
  std::vector<std::int32_t> all;
  for (std::int32_t v = 1; v <= PostgresLedger::schema_version(); ++v) all.push_back(v);
  EXPECT_EQ(first.applied, all);
  EXPECT_EQ(first.version, PostgresLedger::schema_version());
  Sql s = sql();
  const std::string before = schema_of(s);
  EXPECT_NE(before.find("journal_keys"), std::string::npos);

  const MigrationReport second = must(PostgresLedger::migrate(url()));
  EXPECT_TRUE(second.applied.empty());
  EXPECT_EQ(second.version, PostgresLedger::schema_version());
  EXPECT_EQ(schema_of(s), before);
}

TEST_F(PostgresLedgerTest, ConcurrentMigratorsApplyEachMigrationOnce) {
  std::vector<Result<MigrationReport>> reports(4, make_error(ErrorCode::kIo, "not run"));
  {
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < reports.size(); ++i) {
      threads.emplace_back([&, i] { reports[i] = PostgresLedger::migrate(url()); });
    }
    for (auto& t : threads) t.join();
  }
  std::size_t applied = 0;
  for (const auto& r : reports) {
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    applied += r->applied.size();
  }
  EXPECT_EQ(applied, static_cast<std::size_t>(PostgresLedger::schema_version()));
  Sql s = sql();
  EXPECT_EQ(s.count("SELECT count(*) FROM schema_migrations"), PostgresLedger::schema_version());
}

TEST_F(PostgresLedgerTest, OpenRefusesAnUnmigratedOrNewerDatabase) {
  auto r = PostgresLedger::open(url());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kFailedPrecondition) << r.error().to_string();
  EXPECT_NE(r.error().message.find("settled migrate"), std::string::npos) << r.error().message;

  must(PostgresLedger::migrate(url()));
  ASSERT_TRUE(PostgresLedger::open(url()).ok());
  Sql s = sql();
  s.query("INSERT INTO schema_migrations (version, name, checksum) VALUES (999, 'future', 'x')");
  r = PostgresLedger::open(url());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kFailedPrecondition) << r.error().to_string();
  EXPECT_NE(r.error().message.find("999"), std::string::npos) << r.error().message;
  EXPECT_FALSE(PostgresLedger::migrate(url()).ok());
}

// --- COPY staging ----------------------------------------------------------------------

TEST_F(PostgresLedgerTest, DuplicateAndConflictAreToldApartWithinOneCopyChunk) {
  const auto m = merchant("m1");
  auto ledger = open();
  ASSERT_EQ(must(ledger->post(std::vector<model::Journal>{capture(m, "a", 1000, day(2)),
                                                          capture(m, "b", 2000, day(2))},
                              {})),
            (std::vector<PostOutcome>{PostOutcome::kPosted, PostOutcome::kPosted}));
  // One chunk: a new journal, a redelivery, a changed redelivery, and a new
  // identity repeated with a change inside the call.
  const std::vector<model::Journal> call = {
      capture(m, "c", 3000, day(3)), capture(m, "a", 1000, day(2)), capture(m, "b", 2001, day(2)),
      capture(m, "d", 4000, day(3)), capture(m, "d", 4444, day(3)), capture(m, "d", 4000, day(3))};
  EXPECT_EQ(must(ledger->post(call, {})),
            (std::vector<PostOutcome>{PostOutcome::kPosted, PostOutcome::kDuplicate,
                                      PostOutcome::kConflict, PostOutcome::kPosted,
                                      PostOutcome::kConflict, PostOutcome::kDuplicate}));
  Sql s = sql();
  EXPECT_EQ(s.count("SELECT count(*) FROM journal_keys"), 4);
  EXPECT_EQ(s.count("SELECT count(*) FROM journals"), 4);
  EXPECT_EQ(s.count("SELECT amount FROM journals WHERE ref = 'b'"), 2000);
  EXPECT_EQ(s.count("SELECT balance FROM accounts WHERE name = 'platform:clearing'"), 10000);
  // The staging table is empty after the call, also on that connection.
  EXPECT_EQ(must(ledger->post(std::vector<model::Journal>{capture(m, "c", 3000, day(3))}, {})),
            std::vector<PostOutcome>{PostOutcome::kDuplicate});
}

// A post by a second ledger (another process's pool) that races on the same
// identities: every identity is stored once, and each side's verdicts add up.
TEST_F(PostgresLedgerTest, TwoPoolsRacingOnTheSameIdentitiesStoreEachOnce) {
  const auto m = merchant("m1");
  auto a = open();
  auto b = open();
  std::vector<model::Journal> call;
  for (int i = 0; i < 2000; ++i) call.push_back(capture(m, "e" + std::to_string(i), 100 + i, day(2 + i % 4)));
  std::vector<PostOutcome> out_a;
  std::vector<PostOutcome> out_b;
  std::thread ta([&] { out_a = must(a->post(call, {})); });
  std::thread tb([&] { out_b = must(b->post(call, {})); });
  ta.join();
  tb.join();
  ASSERT_EQ(out_a.size(), call.size());
  ASSERT_EQ(out_b.size(), call.size());
  for (std::size_t i = 0; i < call.size(); ++i) {
    const int posted = (out_a[i] == PostOutcome::kPosted ? 1 : 0) + (out_b[i] == PostOutcome::kPosted ? 1 : 0);
    EXPECT_EQ(posted, 1) << i;
    EXPECT_NE(out_a[i], PostOutcome::kConflict);
    EXPECT_NE(out_b[i], PostOutcome::kConflict);
  }
  Sql s = sql();
  EXPECT_EQ(s.count("SELECT count(*) FROM journals"), 2000);
  EXPECT_EQ(s.count("SELECT postings FROM accounts WHERE name = 'platform:clearing'"), 2000);
}

// --- fencing ------------------------------------------------------------------------------

TEST_F(PostgresLedgerTest, StaleFencingTokenIsRefusedByConcurrentClosers) {
  const auto m = merchant("m1", 1000, 1);
  auto setup = open();
  must(setup->post(std::vector<model::Journal>{capture(m, "c1", 10000, day(2))}, {}));
  const model::BatchKey key{m.id, day(2), "USD"};
  const auto outcome = must(rules::settle_batch(m, key, must(setup->settling_totals(key)), 0, {}));
  const auto journals = rules::batch_journals(outcome.summary);

  // Two workers, each with its own pool: the older lease (token 1) lost the
  // batch to a newer one (token 2) before it tried to close.
  auto old_worker = open();
  auto new_worker = open();
  const std::uint64_t t1 = must(old_worker->next_fencing_token());
  const std::uint64_t t2 = must(new_worker->next_fencing_token());
  ASSERT_LT(t1, t2);
  must(old_worker->register_fence(key, t1));
  must(new_worker->register_fence(key, t2));
  auto stale = old_worker->close_batch(outcome.summary, outcome.released, journals, t1);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error().code, ErrorCode::kFenced) << stale.error().to_string();
  EXPECT_TRUE(must(setup->closed_batches(BatchQuery{})).empty());

  // Many closers at once, tokens from the sequence: exactly one closes, the
  // highest token is never fenced, nothing is written twice.
  std::vector<std::uint64_t> tokens;
  for (int i = 0; i < 8; ++i) tokens.push_back(must(setup->next_fencing_token()));
  std::vector<std::unique_ptr<PostgresLedger>> workers;
  for (std::size_t i = 0; i < tokens.size(); ++i) workers.push_back(open({.pool_size = 1}));
  std::vector<std::optional<CloseOutcome>> closed(tokens.size());
  std::vector<ErrorCode> refused(tokens.size(), ErrorCode::kIo);
  {
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      threads.emplace_back([&, i] {
        if (!workers[i]->register_fence(key, tokens[i]).ok()) {
          refused[i] = ErrorCode::kFenced;
          return;
        }
        auto r = workers[i]->close_batch(outcome.summary, outcome.released, journals, tokens[i]);
        if (r.ok()) {
          closed[i] = *r;
        } else {
          refused[i] = r.error().code;
        }
      });
    }
    for (auto& t : threads) t.join();
  }
  int kClosed = 0;
  std::uint64_t closer = 0;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (closed[i]) {
      if (*closed[i] == CloseOutcome::kClosed) {
        ++kClosed;
        closer = tokens[i];
      }
    } else {
      EXPECT_EQ(refused[i], ErrorCode::kFenced) << "token " << tokens[i];
      EXPECT_NE(tokens[i], tokens.back()) << "the highest token was fenced";
    }
  }
  EXPECT_EQ(kClosed, 1);
  Sql s = sql();
  EXPECT_EQ(s.count("SELECT count(*) FROM batches"), 1);
  EXPECT_EQ(s.count("SELECT fencing_token FROM batches"), static_cast<std::int64_t>(closer));
  EXPECT_EQ(s.count("SELECT token FROM batch_fences"), static_cast<std::int64_t>(tokens.back()));
  EXPECT_EQ(s.count("SELECT count(*) FROM journals WHERE kind = 'payout'"), 1);
  for (const TrialBalance& t : must(setup->trial_balance())) EXPECT_EQ(t.net, 0);
}

TEST_F(PostgresLedgerTest, FencingTokensIncreaseAcrossPoolsAndReopen) {
  std::uint64_t last = 0;
  for (int round = 0; round < 3; ++round) {
    auto ledger = open();
    for (int i = 0; i < 5; ++i) {
      const std::uint64_t t = must(ledger->next_fencing_token());
      EXPECT_GT(t, last);
      last = t;
    }
  }
}

// --- partitions ---------------------------------------------------------------------------

std::string dump_postings(Ledger& l) {
  PostingQuery q;
  q.limit = 1'000'000;
  std::string out;
  for (const PostingRow& p : must(l.postings(q))) {
    out += p.merchant_id + " " + p.ref + " " + p.account + " " + std::to_string(p.amount) + " " +
           format_date(p.settle_date) + "\n";
  }
  return out;
}

TEST_F(PostgresLedgerTest, PartitionsEnsureArchiveAndRestoreKeepPostingsQueryable) {
  auto ledger = open();
  Sql s = sql();
  // Ahead of time: 2nd..6th, each day with its hash partitions.
  EXPECT_EQ(must(ledger->ensure_partitions(day(2), day(6))).size(), 5U);
  EXPECT_TRUE(must(ledger->ensure_partitions(day(2), day(6))).empty());
  EXPECT_EQ(s.count("SELECT count(*) FROM pg_inherits WHERE inhparent = 'journals_p20260302'::regclass"),
            s.count("SELECT value FROM ledger_settings WHERE name = 'hash_partitions'"));

  const auto m1 = merchant("m1");
  const auto m2 = merchant("m2");
  std::vector<model::Journal> journals;
  for (unsigned d = 2; d <= 7; ++d) {  // the 7th is created on demand
    for (int i = 0; i < 20; ++i) {
      journals.push_back(capture(i % 2 == 0 ? m1 : m2, "e" + std::to_string(d) + "_" + std::to_string(i),
                                 1000 + i, day(d)));
    }
  }
  must(ledger->post(journals, {}));
  EXPECT_EQ(must(ledger->partition_days()).size(), 6U);
  const std::string all_postings = dump_postings(*ledger);
  const auto trial = must(ledger->trial_balance());
  const auto balances = must(ledger->balances(std::nullopt));

  settle::testing::TempDir dir("settle-pg-archive");
  const auto archived = must(ledger->archive_partitions(day(4), dir.path()));
  ASSERT_EQ(archived.size(), 2U);
  EXPECT_EQ(archived[0].day, day(2));
  EXPECT_EQ(archived[1].day, day(3));
  for (const ArchivedDay& a : archived) {
    EXPECT_EQ(a.rows, 20);
    EXPECT_TRUE(fs::exists(a.file)) << a.file;
    EXPECT_GT(fs::file_size(a.file), 0U);
  }
  // Gone from the live table, queryable in the archive schema.
  EXPECT_EQ(must(ledger->partition_days()).front(), day(4));
  EXPECT_EQ(s.count("SELECT count(*) FROM journals WHERE settle_date < '2026-03-04'"), 0);
  EXPECT_EQ(s.count("SELECT count(*) FROM ledger_archive.journals_p20260302"), 20);
  EXPECT_EQ(s.count("SELECT count(*) FROM ledger_archive.journals_p20260303 WHERE merchant_id = 'm1'"), 10);
  PostingQuery live;
  live.settle_to = day(3);
  EXPECT_TRUE(must(ledger->postings(live)).empty());
  // The trial balance and the balances do not change with an archive.
  const auto trial_after = must(ledger->trial_balance());
  ASSERT_EQ(trial_after.size(), trial.size());
  for (std::size_t i = 0; i < trial.size(); ++i) {
    EXPECT_EQ(trial_after[i].debits, trial[i].debits);
    EXPECT_EQ(trial_after[i].credits, trial[i].credits);
    EXPECT_EQ(trial_after[i].net, 0);
  }
  EXPECT_EQ(must(ledger->balances(std::nullopt)).size(), balances.size());

  // An archived day keeps its identities: a redelivery is a duplicate; a new
  // journal for the day is refused until the day is restored.
  EXPECT_EQ(must(ledger->post(std::vector<model::Journal>{journals[0]}, {})),
            std::vector<PostOutcome>{PostOutcome::kDuplicate});
  auto refused = ledger->post(std::vector<model::Journal>{capture(m1, "new_on_2", 5, day(2))}, {});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kFailedPrecondition) << refused.error().to_string();
  EXPECT_NE(refused.error().message.find("archived"), std::string::npos) << refused.error().message;
  EXPECT_TRUE(must(ledger->ensure_partitions(day(1), day(3))).size() == 1U);  // only the 1st

  // The 2nd comes back from the archive schema; the 3rd, whose archive table
  // an operator dropped, from its export file.
  must(ledger->restore_partition(day(2)));
  s.query("DROP TABLE ledger_archive.journals_p20260303");
  must(ledger->restore_partition(day(3)));
  EXPECT_EQ(dump_postings(*ledger), all_postings);
  const auto trial_restored = must(ledger->trial_balance());
  ASSERT_EQ(trial_restored.size(), trial.size());
  for (std::size_t i = 0; i < trial.size(); ++i) {
    EXPECT_EQ(trial_restored[i].debits, trial[i].debits);
    EXPECT_EQ(trial_restored[i].net, 0);
  }
  EXPECT_EQ(s.count("SELECT count(*) FROM archived_days"), 0);
  EXPECT_EQ(s.count("SELECT count(*) FROM archived_totals"), 0);
  // Writable again.
  EXPECT_EQ(must(ledger->post(std::vector<model::Journal>{capture(m1, "new_on_2", 5, day(2))}, {})),
            std::vector<PostOutcome>{PostOutcome::kPosted});
  EXPECT_FALSE(ledger->restore_partition(day(2)).ok());
}

}  // namespace
}  // namespace settle::ledger
