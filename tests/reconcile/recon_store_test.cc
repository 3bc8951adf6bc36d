// The ReconStore port on SQLite: statement identity, auto-resolution,
// dedup of open missing_* tasks, acknowledge/resolve, aging, drift.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "reconcile/sqlite_recon_store.h"

namespace settle::reconcile {
namespace {

namespace fs = std::filesystem;

class SqliteReconStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("recon-store-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "-" +
            std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto s = SqliteReconStore::open(dir_ / "ledger.db");
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_ = std::move(*s);
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }
  fs::path dir_;
  std::unique_ptr<SqliteReconStore> store_;
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

TEST_F(SqliteReconStoreTest, LoadingTheSameStatementTwiceChangesNothing) {
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

TEST_F(SqliteReconStoreTest, ALaterStatementThatBringsTheMissingItemResolvesTheTask) {
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

TEST_F(SqliteReconStoreTest, TasksMoveFromOpenToAcknowledgedToResolvedWithAComment) {
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

TEST_F(SqliteReconStoreTest, ListsFilterByStateMerchantReasonAndAge) {
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

TEST_F(SqliteReconStoreTest, DriftIsOneSamplePerRunPerCurrencyAndMerchantOverUnresolvedTasks) {
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

TEST_F(SqliteReconStoreTest, ReopeningTheDatabaseKeepsEverything) {
  ASSERT_TRUE(store_->record_run(run("k1", day(0), {finding(Reason::kFeeMismatch, "event:m1/e1", "m1", 1)})).ok());
  store_.reset();
  auto s = SqliteReconStore::open(dir_ / "ledger.db");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)->discrepancies({})->size(), 1u);
  EXPECT_TRUE((*s)->record_run(run("k1", day(1), {}))->duplicate_statement);
}

}  // namespace
}  // namespace settle::reconcile
