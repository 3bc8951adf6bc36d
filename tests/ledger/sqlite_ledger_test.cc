// SqliteLedger: the port's contract suite, plus what only the SQLite ledger
// promises (its schema file, its version check, the SQL a finance engineer
// sees, its in-memory caches surviving a failed transaction).
#include "ledger/sqlite_ledger.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "ledger_contract.h"
#include "model/merchant.h"
#include "rules/rules.h"

namespace settle::ledger {
namespace {

namespace fs = std::filesystem;

LedgerFactory sqlite_factory(std::string name, Synchronous synchronous, std::int64_t cache_kib) {
  return LedgerFactory{
      std::move(name), [synchronous, cache_kib](const std::string& scratch) {
        SqliteLedgerOptions options;
        options.path = fs::path(scratch) / "ledger.db";
        options.synchronous = synchronous;
        options.cache_kib = cache_kib;
        auto opened = SqliteLedger::open(options);
        if (!opened.ok()) {
          ADD_FAILURE() << opened.error().to_string();
          return std::unique_ptr<Ledger>();
        }
        return std::unique_ptr<Ledger>(std::move(opened).value());
      }};
}

INSTANTIATE_TEST_SUITE_P(Sqlite, LedgerContract,
                         ::testing::Values(sqlite_factory("Full", Synchronous::kFull, 262144),
                                           sqlite_factory("NormalSmallCache", Synchronous::kNormal,
                                                          256)),
                         ledger_factory_name);

// A second, plain connection to the same file: what an operator with the
// sqlite3 shell sees and can do.
class RawDb {
 public:
  explicit RawDb(const fs::path& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
        SQLITE_OK) {
      throw std::runtime_error("cannot open " + path.string());
    }
    sqlite3_busy_timeout(db_, 5000);
  }
  ~RawDb() { sqlite3_close_v2(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  // SQLITE_OK or the error code; the message in last_error().
  int exec(const std::string& sql) {
    char* msg = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &msg);
    last_error_ = msg != nullptr ? msg : "";
    sqlite3_free(msg);
    return rc;
  }
  std::string last_error() const { return last_error_; }

  // The first column of every row, as text.
  std::vector<std::string> column(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) {
      throw std::runtime_error(sqlite3_errmsg(db_));
    }
    std::vector<std::string> out;
    while (sqlite3_step(s) == SQLITE_ROW) {
      const unsigned char* t = sqlite3_column_text(s, 0);
      out.emplace_back(t != nullptr ? reinterpret_cast<const char*>(t) : "NULL");
    }
    sqlite3_finalize(s);
    return out;
  }
  std::string one(const std::string& sql) {
    const auto c = column(sql);
    if (c.size() != 1) throw std::runtime_error("expected one row from " + sql);
    return c[0];
  }

 private:
  sqlite3* db_ = nullptr;
  std::string last_error_;
};

model::Merchant merchant(const std::string& id) {
  model::Merchant m;
  m.id = MerchantId(id);
  m.fees[0] = {290, 30};
  return m;
}

model::Journal capture(const std::string& merchant_id, const std::string& id, Minor amount,
                       const std::string& currency = "USD") {
  const model::Merchant m = merchant(merchant_id);
  model::Event e;
  e.merchant_id = m.id;
  e.event_id = EventId(id);
  e.type = model::EventType::kCapture;
  e.amount = amount;
  e.currency = currency;
  e.occurred_at = parse_rfc3339("2026-03-02T12:00:00.5Z").value();
  const Date d = rules::batch_date_of(m, e.occurred_at);
  auto j = rules::event_journal(e, m, d, d, false);
  if (!j.ok()) throw std::runtime_error(j.error().to_string());
  return std::move(j).value();
}

template <class T>
T must(Result<T> r) {
  if (!r.ok()) throw std::runtime_error(r.error().to_string());
  return std::move(r).value();
}

class SqliteLedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string dir = (fs::temp_directory_path() / "settle-sqlite-XXXXXX").string();
    ASSERT_NE(::mkdtemp(dir.data()), nullptr);
    dir_ = dir;
    options_.path = dir_ / "ledger.db";
    options_.synchronous = Synchronous::kNormal;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::unique_ptr<SqliteLedger> open() {
    auto r = SqliteLedger::open(options_);
    if (!r.ok()) throw std::runtime_error(r.error().to_string());
    return std::move(r).value();
  }

  fs::path dir_;
  SqliteLedgerOptions options_;
};

TEST_F(SqliteLedgerTest, SchemaFileAndCompiledInSchemaAreIdentical) {
  std::ifstream in(fs::path(SETTLE_SOURCE_DIR) / "src/ledger/schema_sqlite.sql", std::ios::binary);
  ASSERT_TRUE(in) << "cannot read schema_sqlite.sql";
  std::stringstream file;
  file << in.rdbuf();
  EXPECT_EQ(SqliteLedger::schema_sql(), file.str())
      << "the build is stale: re-run CMake so that it embeds schema_sqlite.sql again";
}

TEST_F(SqliteLedgerTest, NewFileGetsTheSchemaInWalMode) {
  open();
  RawDb raw(options_.path);
  EXPECT_EQ(raw.one("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(raw.one("SELECT version FROM schema_version"),
            std::to_string(SqliteLedger::kSchemaVersion));
  EXPECT_EQ(raw.column("SELECT name FROM sqlite_schema WHERE type IN ('table', 'view') "
                       "ORDER BY name"),
            (std::vector<std::string>{"accounts", "batch_fences", "batches", "checkpoints",
                                      "journals", "postings", "schema_version", "settling"}));
  EXPECT_EQ(raw.one("SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'journals' "
                    "AND sql IS NOT NULL"),
            "0")
      << "journals has only its unique index: a batch's totals come from the settling table";
}

// What version 2 was: no settling table, an index to sum a batch's journals.
void make_version_2(RawDb& raw) {
  ASSERT_EQ(raw.exec("DROP TABLE settling"), SQLITE_OK) << raw.last_error();
  ASSERT_EQ(raw.exec("CREATE INDEX journals_settling ON journals (merchant_id, currency, settle_date)"), SQLITE_OK)
      << raw.last_error();
  ASSERT_EQ(raw.exec("UPDATE schema_version SET version = 2"), SQLITE_OK);
}

TEST_F(SqliteLedgerTest, SettlingTotalsCountInsertedJournalsOnlyAndARefusedCallLeavesThemUnchanged) {
  auto l = open();
  const model::Journal a = capture("m1", "a", 1000);
  const model::Journal b = capture("m1", "b", 2500);
  ASSERT_TRUE(l->post(std::vector<model::Journal>{a, b, a}, {}).ok());
  // A redelivery, a conflict (same id, other amount) and one new journal.
  const auto r = l->post(std::vector<model::Journal>{b, capture("m1", "a", 7), capture("m1", "c", 100)}, {});
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(*r, (std::vector<PostOutcome>{PostOutcome::kDuplicate, PostOutcome::kConflict, PostOutcome::kPosted}));
  const model::BatchKey key{a.merchant_id, a.settle_date, "USD"};
  const model::TypeTotals t = must(l->settling_totals(key)).of(model::EventType::kCapture);
  EXPECT_EQ(t.count, 3);
  EXPECT_EQ(t.amount, 3600);
  EXPECT_EQ(t.fees, a.fee + b.fee + capture("m1", "c", 100).fee);
  // A call refused half-way (a checkpoint fenced) adds nothing.
  ASSERT_TRUE(l->post({}, std::vector<Checkpoint>{{"p", 0, 1, "", 1}}).ok());
  EXPECT_FALSE(l->post(std::vector<model::Journal>{capture("m1", "d", 5)}, std::vector<Checkpoint>{{"p", 0, 2, "", 1}})
                   .ok());
  EXPECT_EQ(must(l->settling_totals(key)).of(model::EventType::kCapture), t);
  RawDb raw(options_.path);
  EXPECT_EQ(raw.one("SELECT count(*) FROM journals"), "3");
}

TEST_F(SqliteLedgerTest, ALedgerOfSchemaVersion2IsUpgradedWithItsSettlingTotalsSummedFromItsJournals) {
  model::ControlTotals before, other;
  const model::Journal a = capture("m1", "a", 1000);
  const model::BatchKey key{a.merchant_id, a.settle_date, "USD"};
  const model::BatchKey eur{a.merchant_id, a.settle_date, "EUR"};
  {
    auto l = open();
    ASSERT_TRUE(l->post(std::vector<model::Journal>{a, capture("m1", "b", 250), capture("m1", "c", 99, "EUR")}, {}).ok());
    before = must(l->settling_totals(key));
    other = must(l->settling_totals(eur));
  }
  {
    RawDb raw(options_.path);
    make_version_2(raw);
  }
  auto l = open();
  EXPECT_EQ(must(l->settling_totals(key)), before);
  EXPECT_EQ(must(l->settling_totals(eur)), other);
  EXPECT_EQ(before.of(model::EventType::kCapture).count, 2);
  ASSERT_TRUE(l->post(std::vector<model::Journal>{capture("m1", "d", 1)}, {}).ok());
  EXPECT_EQ(must(l->settling_totals(key)).of(model::EventType::kCapture).amount, 1251);
  RawDb raw(options_.path);
  EXPECT_EQ(raw.one("SELECT max(version) FROM schema_version"), "3");
  EXPECT_EQ(raw.one("SELECT count(*) FROM sqlite_schema WHERE name = 'journals_settling'"), "0");
}

TEST_F(SqliteLedgerTest, ReopeningAFileOfAnotherSchemaVersionIsAClearError) {
  open();
  {
    RawDb raw(options_.path);
    ASSERT_EQ(raw.exec("UPDATE schema_version SET version = 99"), SQLITE_OK);
  }
  auto r = SqliteLedger::open(options_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(r.error().message.find("schema version 99"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find(options_.path.string()), std::string::npos) << r.error().message;
}

TEST_F(SqliteLedgerTest, ALedgerOfSchemaVersion1IsUpgradedInPlaceAndKeepsItsCheckpoints) {
  {
    auto l = open();
    ASSERT_TRUE(l->post({}, std::vector<Checkpoint>{{"processor", 0, 7, "state", 1}}).ok());
  }
  {
    // What a version 1 file was: version 2 without checkpoints.version.
    RawDb raw(options_.path);
    make_version_2(raw);
    ASSERT_EQ(raw.exec("ALTER TABLE checkpoints DROP COLUMN version"), SQLITE_OK) << raw.last_error();
    ASSERT_EQ(raw.exec("UPDATE schema_version SET version = 1"), SQLITE_OK);
  }
  auto l = open();
  auto cp = l->checkpoint("processor", 0);
  ASSERT_TRUE(cp.ok() && cp->has_value());
  EXPECT_EQ(**cp, (Checkpoint{"processor", 0, 7, "state", 0})) << "existing rows are version 0";
  EXPECT_FALSE(l->post({}, std::vector<Checkpoint>{{"processor", 0, 8, "next", 2}}).ok());
  EXPECT_TRUE(l->post({}, std::vector<Checkpoint>{{"processor", 0, 8, "next", 1}}).ok());
  RawDb raw(options_.path);
  EXPECT_EQ(raw.one("SELECT max(version) FROM schema_version"), "3");
}

TEST_F(SqliteLedgerTest, ADatabaseThatIsNotALedgerIsRefused) {
  {
    RawDb raw(options_.path);
    ASSERT_EQ(raw.exec("CREATE TABLE something_else (x INTEGER)"), SQLITE_OK);
  }
  auto r = SqliteLedger::open(options_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kFailedPrecondition) << r.error().to_string();
  RawDb raw(options_.path);
  EXPECT_EQ(raw.one("SELECT count(*) FROM sqlite_schema"), "1") << "it must stay untouched";
}

TEST_F(SqliteLedgerTest, AFileThatIsNotADatabaseIsCorruption) {
  {
    std::ofstream out(options_.path);
    out << "merchant_id,batch_date\nthis is a CSV file, not a database, and it is long enough "
           "for SQLite to read a header from it................................................\n";
  }
  auto r = SqliteLedger::open(options_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kCorruption) << r.error().to_string();
  EXPECT_NE(r.error().message.find(options_.path.string()), std::string::npos);
}

TEST_F(SqliteLedgerTest, AMissingDirectoryIsAnIoErrorAndBadOptionsAreRefused) {
  options_.path = dir_ / "no" / "such" / "ledger.db";
  auto r = SqliteLedger::open(options_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kIo) << r.error().to_string();
  EXPECT_NE(r.error().message.find("no/such/ledger.db"), std::string::npos) << r.error().message;

  EXPECT_EQ(SqliteLedger::open(SqliteLedgerOptions{}).error().code, ErrorCode::kInvalidArgument);
  options_.path = dir_ / "ledger.db";
  options_.cache_kib = 0;
  EXPECT_EQ(SqliteLedger::open(options_).error().code, ErrorCode::kInvalidArgument);
  options_.cache_kib = 1024;
  options_.background_checkpoint_bytes = options_.checkpoint_wal_bytes + 1;
  EXPECT_EQ(SqliteLedger::open(options_).error().code, ErrorCode::kInvalidArgument);
  options_.background_checkpoint_bytes = 0;
  EXPECT_EQ(SqliteLedger::open(options_).error().code, ErrorCode::kInvalidArgument);
}

TEST_F(SqliteLedgerTest, SqlUsersSeeOnePostingPerLegAndBalancesThatMatchThem) {
  auto ledger = open();
  ASSERT_TRUE(ledger->post(std::vector<model::Journal>{capture("m1", "a", 10000),
                                                       capture("m1", "b", 31),  // fee = amount
                                                       capture("m2", "c", 500, "EUR")},
                           {})
                  .ok());
  RawDb raw(options_.path);
  EXPECT_EQ(raw.one("SELECT count(*) FROM journals"), "3");
  EXPECT_EQ(raw.one("SELECT count(*) FROM postings"), "8");  // b has no payable leg
  EXPECT_EQ(raw.one("SELECT count(*) FROM journals WHERE leg3_account IS NULL"), "1");
  // Each account's running balance is the sum of its postings.
  EXPECT_EQ(raw.one("SELECT count(*) FROM accounts AS a WHERE a.balance <> "
                    "(SELECT sum(p.amount) FROM postings AS p WHERE p.account_id = a.account_id) "
                    "OR a.postings <> "
                    "(SELECT count(*) FROM postings AS p WHERE p.account_id = a.account_id)"),
            "0");
  EXPECT_EQ(raw.one("SELECT occurred_at FROM journals WHERE ref = 'a'"), "2026-03-02T12:00:00.500Z");
  EXPECT_EQ(raw.one("SELECT batch_date || ' ' || settle_date || ' ' || late || ' ' || kind "
                    "FROM journals WHERE ref = 'c'"),
            "2026-03-02 2026-03-02 0 capture");
  EXPECT_EQ(raw.one("SELECT length(digest) FROM journals WHERE ref = 'a'"), "16");
  EXPECT_EQ(raw.one("SELECT coalesce(metadata, 'NULL') || coalesce(trace_id, 'NULL') "
                    "FROM journals WHERE ref = 'a'"),
            "NULLNULL");
}

TEST_F(SqliteLedgerTest, TheSchemaRefusesWhatTheLedgerRefuses) {
  auto ledger = open();
  ASSERT_TRUE(ledger->post(std::vector<model::Journal>{capture("m1", "a", 10000)}, {}).ok());
  RawDb raw(options_.path);
  // SQLite enforces foreign keys only on connections that ask for it.
  ASSERT_EQ(raw.exec("PRAGMA foreign_keys = ON"), SQLITE_OK);
  const std::string insert =
      "INSERT INTO journals (merchant_id, ref, kind, currency, batch_date, settle_date, late, "
      "occurred_at, amount, fee, digest, leg1_account, leg1_amount, leg2_account, leg2_amount) "
      "VALUES ('m1', 'x', 'capture', 'USD', '2026-03-02', '2026-03-02', 0, "
      "'2026-03-02T12:00:00Z', 100, 0, zeroblob(16), 1, ";
  EXPECT_EQ(raw.exec(insert + "100, 2, -99)"), SQLITE_CONSTRAINT) << "unbalanced";
  EXPECT_EQ(raw.exec(insert + "100, 2, 'a lot')"), SQLITE_CONSTRAINT) << "not an integer";
  EXPECT_EQ(raw.exec(insert + "100, 99, -100)"), SQLITE_CONSTRAINT) << "no such account";
  EXPECT_EQ(raw.exec(insert + "0, 2, 0)"), SQLITE_CONSTRAINT) << "zero legs";
  EXPECT_EQ(raw.exec("UPDATE journals SET kind = 'captured' WHERE ref = 'a'"), SQLITE_CONSTRAINT)
      << "no such kind";
  EXPECT_EQ(raw.exec("UPDATE accounts SET balance = balance + 9223372036854775807"),
            SQLITE_CONSTRAINT)
      << "an integer overflow is an error, not a REAL";
  EXPECT_EQ(raw.exec(insert + "100, 2, -100)"), SQLITE_OK) << raw.last_error();
}

TEST_F(SqliteLedgerTest, AFailedTransactionLeavesNoStaleAccountInTheCache) {
  auto ledger = open();
  {
    // Fails the insert of 'zz_boom' after 'aa_new' has created its JPY accounts.
    RawDb raw(options_.path);
    ASSERT_EQ(raw.exec("CREATE TRIGGER boom BEFORE INSERT ON journals WHEN NEW.ref = 'zz_boom' "
                       "BEGIN SELECT RAISE(ABORT, 'boom'); END"),
              SQLITE_OK);
  }
  const std::vector<model::Journal> call = {capture("m1", "aa_new", 1000, "JPY"),
                                            capture("m1", "zz_boom", 1000, "JPY")};
  const auto failed = ledger->post(call, {});
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.error().message.find("boom"), std::string::npos) << failed.error().message;
  {
    RawDb raw(options_.path);
    EXPECT_EQ(raw.one("SELECT count(*) FROM accounts"), "0");
    ASSERT_EQ(raw.exec("DROP TRIGGER boom"), SQLITE_OK);
  }
  // Had the cache kept the ids of the rolled-back accounts, these journals
  // would point at accounts that do not exist.
  const auto posted = ledger->post(call, {});
  ASSERT_TRUE(posted.ok()) << posted.error().to_string();
  const auto balances = ledger->balances(std::nullopt);
  ASSERT_TRUE(balances.ok());
  ASSERT_EQ(balances->size(), 3U);
  for (const Balance& b : *balances) EXPECT_EQ(b.postings, 2) << b.account;
}

TEST_F(SqliteLedgerTest, AJournalWhoseAccountIsGoneFailsTheCallAndWritesNothing) {
  // The ledger's connection does not enforce the legs' REFERENCES per row; it
  // checks each account a call touches. An account deleted behind its back
  // (its id still cached) must fail the call, as the foreign key would.
  auto ledger = open();
  ASSERT_TRUE(ledger->post(std::vector<model::Journal>{capture("m1", "a", 10000)}, {}).ok());
  {
    RawDb raw(options_.path);
    ASSERT_EQ(raw.exec("DELETE FROM accounts WHERE name = 'platform:fees'"), SQLITE_OK) << raw.last_error();
  }
  const auto r = ledger->post(std::vector<model::Journal>{capture("m1", "b", 20000)}, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kCorruption) << r.error().to_string();
  EXPECT_NE(r.error().message.find("does not exist"), std::string::npos) << r.error().message;
  RawDb raw(options_.path);
  EXPECT_EQ(raw.one("SELECT count(*) FROM journals"), "1");
  EXPECT_EQ(raw.one("SELECT group_concat(name, ',') FROM (SELECT name FROM accounts ORDER BY name)"),
            "merchant:m1:payable,platform:clearing");
}

TEST_F(SqliteLedgerTest, PostedJournalsPassSqlitesForeignKeyCheck) {
  auto ledger = open();
  std::vector<model::Journal> call;
  for (int i = 0; i < 300; ++i) {
    call.push_back(capture(i % 2 == 0 ? "m1" : "m2", "e" + std::to_string(i), 1000 + i, i % 3 == 0 ? "JPY" : "USD"));
  }
  ASSERT_TRUE(ledger->post(call, {}).ok());
  RawDb raw(options_.path);
  EXPECT_EQ(raw.one("SELECT count(*) FROM pragma_foreign_key_check"), "0");
  EXPECT_EQ(raw.one("SELECT count(*) FROM journals"), "300");
}

TEST_F(SqliteLedgerTest, ABalanceThatWouldLeaveInt64FailsTheCallAndWritesNothing) {
  auto ledger = open();
  model::Journal big = capture("m1", "big1", INT64_MAX);
  ASSERT_TRUE(ledger->post(std::vector<model::Journal>{big}, {}).ok());
  big.ref = "big2";
  const auto r = ledger->post(std::vector<model::Journal>{capture("m1", "small", 5), big}, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kOverflow) << r.error().to_string();
  RawDb raw(options_.path);
  EXPECT_EQ(raw.one("SELECT count(*) FROM journals"), "1");
}

TEST_F(SqliteLedgerTest, TwoLedgersOnOneFileSeeEachOthersCommits) {
  auto first = open();
  auto second = open();
  ASSERT_TRUE(first->post(std::vector<model::Journal>{capture("m1", "a", 100)}, {}).ok());
  const auto dup = second->post(std::vector<model::Journal>{capture("m1", "a", 100)}, {});
  ASSERT_TRUE(dup.ok()) << dup.error().to_string();
  EXPECT_EQ(dup->at(0), PostOutcome::kDuplicate);
  ASSERT_TRUE(second->post(std::vector<model::Journal>{capture("m1", "b", 100)}, {}).ok());
  const auto tb = first->trial_balance();
  ASSERT_TRUE(tb.ok());
  ASSERT_EQ(tb->size(), 1U);
  EXPECT_EQ(tb->at(0).debits, 200);
}

// Without the writer's own checkpoint the WAL would only grow while commits
// follow each other (the thread's checkpoints never catch up with them); with
// it the file stays near checkpoint_wal_bytes. The thread copies meanwhile.
TEST_F(SqliteLedgerTest, TheWalStaysNearItsCheckpointSizeAndTheThreadCheckpointsMeanwhile) {
  options_.checkpoint_wal_bytes = std::int64_t{1} << 20;
  options_.background_checkpoint_bytes = std::int64_t{256} << 10;
  const fs::path wal = options_.path.string() + "-wal";
  std::uintmax_t largest = 0;
  std::uintmax_t written = 0;
  {
    auto ledger = open();
    for (int call = 0; call < 40; ++call) {
      std::vector<model::Journal> journals;
      for (int i = 0; i < 500; ++i) journals.push_back(capture("m1", fmt::format("c{}-{}", call, i), 100 + i));
      const auto before = fs::file_size(wal);
      ASSERT_TRUE(ledger->post(journals, {}).ok());
      const auto after = fs::file_size(wal);
      written += after > before ? after - before : after;
      largest = std::max(largest, after);
    }
    // The thread runs at a lower priority: give it time on a busy machine.
    for (int i = 0; i < 1000 && ledger->background_checkpoints() == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_GT(ledger->background_checkpoints(), 0u);
  }
  EXPECT_GT(written, std::uintmax_t{8} << 20) << "the test must write well past the bound it checks";
  EXPECT_LT(largest, std::uintmax_t{4} << 20);
  EXPECT_FALSE(fs::exists(wal)) << "the last connection to close checkpoints and deletes the WAL";
  auto reopened = open();
  const auto tb = must(reopened->trial_balance());
  ASSERT_EQ(tb.size(), 1U);
  std::int64_t expected = 0;
  for (int i = 0; i < 500; ++i) expected += 100 + i;
  EXPECT_EQ(tb.at(0).debits, 40 * expected);
}

TEST_F(SqliteLedgerTest, AFailureInALargeCallNamesTheJournalAndWritesNothing) {
  auto ledger = open();
  {
    RawDb raw(options_.path);
    ASSERT_EQ(raw.exec("CREATE TRIGGER boom BEFORE INSERT ON journals WHEN NEW.ref = 'j0150' "
                       "BEGIN SELECT RAISE(ABORT, 'boom'); END"),
              SQLITE_OK);
  }
  std::vector<model::Journal> call;
  for (int i = 0; i < 300; ++i) {
    char ref[8];
    std::snprintf(ref, sizeof ref, "j%04d", i);
    call.push_back(capture("m1", ref, 100 + i));
  }
  const auto r = ledger->post(call, std::vector<Checkpoint>{{"p", 0, 1, "s"}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("m1/j0150"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("boom"), std::string::npos) << r.error().message;
  RawDb raw(options_.path);
  EXPECT_EQ(raw.one("SELECT count(*) FROM journals"), "0");
  EXPECT_EQ(raw.one("SELECT count(*) FROM checkpoints"), "0");
}

// The ledger formats dates and instants itself (snprintf was too slow for
// the ingest path); what it stores must be what common/time.h writes.
TEST_F(SqliteLedgerTest, StoredDatesAndInstantsAreWhatCommonTimeFormats) {
  auto ledger = open();
  std::vector<Timestamp> instants = {
      Timestamp{0},
      Timestamp{-1},
      parse_rfc3339("1969-12-31T23:59:59.999999999Z").value(),
      parse_rfc3339("1700-02-28T01:02:03Z").value(),
      parse_rfc3339("2000-02-29T12:00:00.5Z").value(),
      parse_rfc3339("2026-03-02T12:00:00.123456Z").value(),
      parse_rfc3339("2026-03-02T12:00:00.000000001Z").value(),
      parse_rfc3339("2261-12-31T23:59:59.999Z").value(),
  };
  std::uint64_t x = 88172645463325252ULL;
  for (int i = 0; i < 300; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::int64_t ns = static_cast<std::int64_t>(x % 9'000'000'000'000'000'000ULL) -
                      4'500'000'000'000'000'000;
    if (i % 3 == 0) ns -= ns % 1'000'000'000;  // whole seconds
    if (i % 3 == 1) ns -= ns % 1'000'000;      // milliseconds
    instants.push_back(Timestamp{ns});
  }
  std::vector<model::Journal> journals;
  for (std::size_t i = 0; i < instants.size(); ++i) {
    model::Journal j = capture("m1", "t" + std::to_string(i), 1000);
    j.occurred_at = instants[i];
    j.batch_date = Date{static_cast<std::int32_t>(instants[i].ns / kNsPerDay)};
    j.settle_date = j.batch_date.plus_days(static_cast<std::int32_t>(i % 3));
    journals.push_back(j);
  }
  ASSERT_TRUE(ledger->post(journals, {}).ok());
  RawDb raw(options_.path);
  const auto stored = raw.column(
      "SELECT occurred_at || ' ' || batch_date || ' ' || settle_date FROM journals "
      "ORDER BY CAST(substr(ref, 2) AS INTEGER)");
  ASSERT_EQ(stored.size(), journals.size());
  for (std::size_t i = 0; i < journals.size(); ++i) {
    EXPECT_EQ(stored[i], format_rfc3339(journals[i].occurred_at) + ' ' +
                             format_date(journals[i].batch_date) + ' ' +
                             format_date(journals[i].settle_date))
        << instants[i].ns;
  }
}

// 'YYYY-MM-DD' has four digits of year: other dates are refused (or, as a
// query bound, mean "no bound"), never formatted into something else.
TEST_F(SqliteLedgerTest, DatesOutsideTheYearsOneTo9999AreRefusedOrClamped) {
  auto ledger = open();
  model::Journal j = capture("m1", "far", 1000);
  j.settle_date = date_from_civil(10000, 1, 1);
  const auto r = ledger->post(std::vector<model::Journal>{j}, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << r.error().to_string();

  const Date far{3'000'000};
  const model::BatchKey key{MerchantId("m1"), far, "USD"};
  EXPECT_EQ(ledger->settling_totals(key).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(ledger->register_fence(key, 1).error().code, ErrorCode::kInvalidArgument);
  model::BatchSummary s;
  s.key = key;
  s.payout_date = far;
  EXPECT_EQ(ledger->close_batch(s, {}, {}, 1).error().code, ErrorCode::kInvalidArgument);
  s.key.batch_date = date_from_civil(2026, 3, 2);
  EXPECT_EQ(ledger->close_batch(s, {}, {}, 1).error().code, ErrorCode::kInvalidArgument);

  ASSERT_TRUE(ledger->post(std::vector<model::Journal>{capture("m1", "near", 1000)}, {}).ok());
  PostingQuery q;
  q.settle_from = Date{-3'000'000};
  q.settle_to = far;
  EXPECT_EQ(ledger->postings(q)->size(), 3U);
  s.payout_date = date_from_civil(2026, 3, 3);
  ASSERT_TRUE(ledger->close_batch(s, {}, {}, 1).ok());
  EXPECT_EQ(ledger->closed_batches(BatchQuery{std::nullopt, Date{-3'000'000}, far})->size(), 1U);
}


// A commit is in the WAL when post() returns: a process that dies right
// after (no destructor, no checkpoint) loses nothing.
TEST_F(SqliteLedgerTest, ACommitSurvivesAProcessThatDiesWithoutClosing) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto opened = SqliteLedger::open(options_);
    if (!opened.ok()) ::_exit(2);
    auto& ledger = *opened.value();
    const auto r = ledger.post(std::vector<model::Journal>{capture("m1", "a", 100)},
                               std::vector<Checkpoint>{{"p", 0, 7, "s"}});
    ::_exit(r.ok() ? 0 : 3);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  EXPECT_TRUE(fs::exists(fs::path(options_.path.string() + "-wal")));
  auto ledger = open();
  const auto cp = ledger->checkpoint("p", 0);
  ASSERT_TRUE(cp.ok());
  ASSERT_TRUE(cp->has_value());
  EXPECT_EQ((*cp)->next_offset, 7);
  EXPECT_EQ(ledger->trial_balance()->at(0).debits, 100);
}

}  // namespace
}  // namespace settle::ledger
