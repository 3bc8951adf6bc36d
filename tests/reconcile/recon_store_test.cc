// The ReconStore port's contract, run on SqliteReconStore and on
// PostgresReconStore (against a PostgreSQL 15 the test starts, a migrated
// database per test): statement identity, auto-resolution, dedup of open
// missing_* tasks, acknowledge/resolve, aging, drift, reopening.
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "ledger/postgres_ledger.h"
#include "reconcile/postgres_recon_store.h"
#include "reconcile/sqlite_recon_store.h"
#include "support/postgres_server.h"

namespace settle::reconcile {
namespace {

namespace fs = std::filesystem;
using settle::testing::PostgresServer;

// Opens the store of a test's `scratch` name; opening the same name again
// reopens the same database.
struct StoreFactory {
  std::string name;
  std::function<Result<std::unique_ptr<ReconStore>>(const std::string& scratch)> open;
};

fs::path scratch_dir(const std::string& scratch) {
  return fs::temp_directory_path() / ("recon-store-" + scratch + "-" + std::to_string(::getpid()));
}

StoreFactory sqlite_factory() {
  return {"Sqlite", [](const std::string& scratch) -> Result<std::unique_ptr<ReconStore>> {
            fs::create_directories(scratch_dir(scratch));
            SETTLE_ASSIGN_OR_RETURN(auto s, SqliteReconStore::open(scratch_dir(scratch) / "ledger.db"));
            return std::unique_ptr<ReconStore>(std::move(s));
          }};
}

// "ALaterStatement..." -> "recon_alaterstatement..._<pid>", at most 63 bytes.
std::string database_for(const std::string& scratch) {
  std::string name = "recon_";
  for (char c : scratch) {
    if (std::isalnum(static_cast<unsigned char>(c)) != 0) name += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return name.substr(0, 50) + "_" + std::to_string(::getpid());
}

// Runs one statement on the server's maintenance database.
void admin_sql(const std::string& sql) {
  PGconn* pg = PQconnectdb(PostgresServer::shared().conninfo().c_str());
  PGresult* r = PQexec(pg, sql.c_str());
  const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK ||
                  (state != nullptr && std::string(state) == "42P04");  // exists: a reopen
  const std::string message = PQresultErrorMessage(r);
  PQclear(r);
  PQfinish(pg);
  if (!ok) throw std::runtime_error(sql + ": " + message);
}

// `db` as a copy of a database `settled migrate` brought to this build's
// schema, migrated once per process.
void create_migrated_database(const std::string& db) {
  static std::once_flag once;
  static std::string failure;
  PostgresServer& server = PostgresServer::shared();
  std::call_once(once, [&] {
    server.create_database("recon_template");
    auto migrated = ledger::PostgresLedger::migrate(server.url("recon_template"));
    if (!migrated.ok()) failure = migrated.error().to_string();
  });
  if (!failure.empty()) throw std::runtime_error("migrating the template: " + failure);
  admin_sql("CREATE DATABASE \"" + db + "\" TEMPLATE recon_template");
}

StoreFactory postgres_factory() {
  return {"Postgres", [](const std::string& scratch) -> Result<std::unique_ptr<ReconStore>> {
            const std::string db = database_for(scratch);
            create_migrated_database(db);
            SETTLE_ASSIGN_OR_RETURN(auto s, PostgresReconStore::open(PostgresServer::shared().url(db)));
            return std::unique_ptr<ReconStore>(std::move(s));
          }};
}

class ReconStoreContract : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override {
    scratch_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    scratch_ = scratch_.substr(0, scratch_.find('/'));
    fs::remove_all(scratch_dir(scratch_));
    store_ = reopen();
    ASSERT_NE(store_, nullptr);
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(scratch_dir(scratch_));
  }
  std::unique_ptr<ReconStore> reopen() {
    auto s = GetParam().open(scratch_);
    if (!s.ok()) {
      ADD_FAILURE() << s.error().to_string();
      return nullptr;
    }
    return std::move(s).value();
  }
  std::string scratch_;
  std::unique_ptr<ReconStore> store_;
};

Timestamp day(int n) { return Timestamp{(20'000 + n) * kNsPerDay}; }

Finding finding(Reason r, const std::string& subject, const std::string& merchant, Minor drift,
                const std::string& cur = "EUR") {
  Finding f;
  f.reason = r;
  f.subject = subject;
  f.merchant_id = merchant;
  f.currency = cur;
  f.drift = drift;
  f.detail = "d";
  return f;
}

RunRecord run(const std::string& key, Timestamp at, std::vector<Finding> findings,
              std::vector<std::string> matched = {}) {
  RunRecord r;
  r.statement_key = key;
  r.format = "camt053";
  r.statement_ids = key;
  r.at = at;
  r.findings = std::move(findings);
  r.matched_subjects = std::move(matched);
  for (const std::string& s : r.matched_subjects) r.matches.push_back(Match{"exact_reference", 100, {s}, {"x"}});
  return r;
}

TEST_P(ReconStoreContract, LoadingTheSameStatementTwiceChangesNothing) {
  auto a = store_->record_run(run("k1", day(0), {finding(Reason::kAmountMismatch, "payout:A", "m1", 5)}));
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_FALSE(a->duplicate_statement);
  EXPECT_EQ(a->opened, 1);
  auto b = store_->record_run(run("k1", day(1), {finding(Reason::kAmountMismatch, "payout:A", "m1", 5)}));
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->duplicate_statement);
  EXPECT_EQ(b->run_id, a->run_id);
  EXPECT_EQ(store_->discrepancies({})->size(), 1u);
  EXPECT_EQ(store_->drift(10)->size(), 1u);
}

TEST_P(ReconStoreContract, ALaterStatementThatBringsTheMissingItemResolvesTheTask) {
  ASSERT_TRUE(store_->record_run(run("k1", day(0), {finding(Reason::kMissingInStatement, "payout:A", "m1", 700)})).ok());
  // Still missing the next day: not opened twice.
  auto again = store_->record_run(run("k2", day(1), {finding(Reason::kMissingInStatement, "payout:A", "m1", 700)}));
  EXPECT_EQ(again->opened, 0);
  auto found = store_->record_run(run("k3", day(2), {}, {"payout:A"}));
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->auto_resolved, 1);
  auto all = store_->discrepancies({});
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ(all->front().state, TaskState::kResolved);
  EXPECT_NE(all->front().comment.find("resolved automatically"), std::string::npos);
  EXPECT_EQ(found->drift.open_count, 0);
  EXPECT_EQ(*store_->matched_subjects("payout:"), std::vector<std::string>{"payout:A"});
}

TEST_P(ReconStoreContract, TasksMoveFromOpenToAcknowledgedToResolvedWithAComment) {
  auto r = store_->record_run(run("k1", day(0), {finding(Reason::kFeeMismatch, "event:m1/e1", "m1", 1)}));
  const std::int64_t id = r->opened_ids.at(0);
  auto ack = store_->acknowledge(id, day(1));
  ASSERT_TRUE(ack.ok());
  EXPECT_EQ(ack->state, TaskState::kAcknowledged);
  EXPECT_FALSE(store_->resolve(id, "", day(2)).ok());
  auto res = store_->resolve(id, "acquirer credit note 17", day(2));
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->state, TaskState::kResolved);
  EXPECT_EQ(res->comment, "acquirer credit note 17");
  EXPECT_EQ(store_->acknowledge(id, day(3)).error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(store_->acknowledge(999, day(3)).error().code, ErrorCode::kNotFound);
}

TEST_P(ReconStoreContract, ListsFilterByStateMerchantReasonAndAge) {
  ASSERT_TRUE(store_->record_run(run("k1", day(0), {finding(Reason::kFeeMismatch, "event:m1/e1", "m1", 1),
                                                    finding(Reason::kAmountMismatch, "event:m2/e2", "m2", 2)}))
                  .ok());
  ASSERT_TRUE(store_->record_run(run("k2", day(5), {finding(Reason::kFeeMismatch, "event:m1/e3", "m1", 3)})).ok());
  DiscrepancyQuery q;
  q.merchant_id = "m1";
  EXPECT_EQ(store_->discrepancies(q)->size(), 2u);
  q.created_before = day(3);
  EXPECT_EQ(store_->discrepancies(q)->size(), 1u);
  DiscrepancyQuery r;
  r.reason = Reason::kAmountMismatch;
  r.state = TaskState::kOpen;
  ASSERT_EQ(store_->discrepancies(r)->size(), 1u);
  const Discrepancy d = store_->discrepancies(r)->front();
  EXPECT_EQ(age_days(d, day(8)), 8);
  EXPECT_EQ(aging_bucket(age_days(d, day(8))), "7-30d");
  EXPECT_EQ(aging_bucket(0), "0-1d");
  EXPECT_EQ(aging_bucket(2), "1-3d");
  EXPECT_EQ(aging_bucket(30), ">30d");
}

TEST_P(ReconStoreContract, DriftIsOneSamplePerRunPerCurrencyAndMerchantOverUnresolvedTasks) {
  ASSERT_TRUE(store_->record_run(run("k1", day(0), {finding(Reason::kMissingInStatement, "payout:A", "m1", 700),
                                                    finding(Reason::kAmountMismatch, "payout:B", "m2", 5),
                                                    finding(Reason::kMissingInLedger, "bank:x", "", 300),
                                                    finding(Reason::kFeeMismatch, "event:m1/e", "m1", 9, "JPY")}))
                  .ok());
  ASSERT_TRUE(store_->record_run(run("k2", day(1), {}, {"payout:A"})).ok());
  auto d = store_->drift(10);
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(d->size(), 2u);
  auto find = [](const DriftSample& s, const std::string& cur, const std::string& m) {
    for (const DriftRow& r : s.rows) {
      if (r.currency == cur && r.merchant_id == m) return r;
    }
    return DriftRow{cur, m, -1, -1};
  };
  const DriftSample& first = (*d)[0];
  EXPECT_EQ(first.open_count, 4);
  EXPECT_EQ(find(first, "EUR", "").amount, 1005);  // the currency's total includes the unknown merchant's 300
  EXPECT_EQ(find(first, "EUR", "").count, 3);
  EXPECT_EQ(find(first, "EUR", "m1").amount, 700);
  EXPECT_EQ(find(first, "JPY", "").amount, 9);
  const DriftSample& second = (*d)[1];
  EXPECT_EQ(second.open_count, 3);
  EXPECT_EQ(find(second, "EUR", "").amount, 305);
  EXPECT_EQ(find(second, "EUR", "m1").count, -1);  // no row: m1 has nothing unmatched in EUR
}

TEST_P(ReconStoreContract, ReopeningTheDatabaseKeepsEverything) {
  ASSERT_TRUE(store_->record_run(run("k1", day(0), {finding(Reason::kFeeMismatch, "event:m1/e1", "m1", 1)})).ok());
  store_.reset();
  store_ = reopen();
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(store_->discrepancies({})->size(), 1u);
  EXPECT_TRUE(store_->record_run(run("k1", day(1), {}))->duplicate_statement);
}

TEST_P(ReconStoreContract, SubjectsAndTextsRoundTripExactlyWhateverTheirCharacters) {
  const std::vector<std::string> odd = {"payout:a\"b", "payout:c\\d", "payout:{e,f}", "payout:g h", "payout:NULL",
                                        "payout:\u00e9t\u00e9"};
  Finding f = finding(Reason::kMissingInLedger, "bank:{\"x\\y\"}, z", "m'1", 42);
  f.detail = "line 3: \"quoted\", back\\slash";
  f.their_ref = "NULL";
  auto r = store_->record_run(run("k\"1", day(0), {f}, odd));
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto matched = store_->matched_subjects("payout:");
  ASSERT_TRUE(matched.ok()) << matched.error().message;
  std::vector<std::string> got = *matched, want = odd;
  std::sort(got.begin(), got.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want);
  EXPECT_TRUE(store_->matched_subjects("event:")->empty());
  auto list = store_->discrepancies({});
  ASSERT_EQ(list->size(), 1u);
  const Discrepancy& d = list->front();
  EXPECT_EQ(d.finding.subject, f.subject);
  EXPECT_EQ(d.finding.merchant_id, "m'1");
  EXPECT_EQ(d.finding.detail, f.detail);
  EXPECT_EQ(d.finding.their_ref, "NULL");
  EXPECT_EQ(d.statement_key, "k\"1");
  EXPECT_EQ(d.run_id, r->run_id);
  EXPECT_EQ(d.created_at, day(0));
  EXPECT_EQ(d.updated_at, day(0));
  auto ack = store_->acknowledge(d.id, Timestamp{day(1).ns + 123'456'000});
  ASSERT_TRUE(ack.ok());
  EXPECT_EQ(ack->created_at, day(0));
  EXPECT_EQ(ack->updated_at, (Timestamp{day(1).ns + 123'456'000}));
  EXPECT_TRUE(ack->comment.empty());
}

TEST_P(ReconStoreContract, ResolvingAnUnknownOrResolvedTaskFailsAndChangesNothing) {
  auto r = store_->record_run(run("k1", day(0), {finding(Reason::kAmountMismatch, "payout:A", "m1", 5)}));
  ASSERT_TRUE(r.ok());
  const std::int64_t id = r->opened_ids.at(0);
  EXPECT_EQ(store_->resolve(id + 100, "x", day(1)).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->resolve(id, "", day(1)).error().code, ErrorCode::kInvalidArgument);
  ASSERT_TRUE(store_->resolve(id, "first", day(1)).ok());
  EXPECT_EQ(store_->resolve(id, "second", day(2)).error().code, ErrorCode::kFailedPrecondition);
  const Discrepancy d = store_->discrepancies({})->front();
  EXPECT_EQ(d.comment, "first");
  EXPECT_EQ(d.updated_at, day(1));
}

TEST_P(ReconStoreContract, TwoProcessesLoadingTheSameStatementAtOnceRecordItOnce) {
  std::unique_ptr<ReconStore> other = reopen();
  ASSERT_NE(other, nullptr);
  for (int round = 0; round < 5; ++round) {
    const std::string key = "k" + std::to_string(round);
    const std::vector<Finding> findings = {finding(Reason::kMissingInStatement, "payout:P" + key, "m1", 10)};
    Result<RunOutcome> a = make_error(ErrorCode::kIo, "not run"), b = make_error(ErrorCode::kIo, "not run");
    std::thread ta([&] { a = store_->record_run(run(key, day(round), findings)); });
    std::thread tb([&] { b = other->record_run(run(key, day(round), findings)); });
    ta.join();
    tb.join();
    ASSERT_TRUE(a.ok()) << a.error().message;
    ASSERT_TRUE(b.ok()) << b.error().message;
    EXPECT_NE(a->duplicate_statement, b->duplicate_statement);
    EXPECT_EQ(a->run_id, b->run_id);
  }
  EXPECT_EQ(store_->discrepancies({})->size(), 5u);
  EXPECT_EQ(other->drift(100)->size(), 5u);
}

INSTANTIATE_TEST_SUITE_P(Stores, ReconStoreContract, ::testing::Values(sqlite_factory(), postgres_factory()),
                         [](const ::testing::TestParamInfo<StoreFactory>& p) { return p.param.name; });

// What only the PostgreSQL store promises: it names the missing migration.
TEST(PostgresReconStore, OpenRefusesADatabaseWithoutTheReconTablesAndSaysToMigrate) {
  const std::string db = database_for("unmigrated");
  admin_sql("CREATE DATABASE \"" + db + "\"");
  auto s = PostgresReconStore::open(PostgresServer::shared().url(db));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(s.error().message.find("settled migrate"), std::string::npos) << s.error().message;
  ASSERT_TRUE(ledger::PostgresLedger::migrate(PostgresServer::shared().url(db)).ok());
  EXPECT_TRUE(PostgresReconStore::open(PostgresServer::shared().url(db)).ok());
}

TEST(PostgresReconStore, AnUnreachableServerIsUnavailable) {
  auto s = PostgresReconStore::open("postgresql://postgres@127.0.0.1:1/none?connect_timeout=2");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable) << s.error().message;
}

}  // namespace
}  // namespace settle::reconcile
