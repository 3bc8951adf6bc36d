// Reconciliation on the status topic: what a run and a resolution publish
// (reconcile/recon_status.h), on a SQLite ledger with a closed batch, the
// SQLite recon store and the embedded bus.
#include <gtest/gtest.h>

#include <stdexcept>

#include "bus/file_log_bus.h"
#include "ledger/sqlite_ledger.h"
#include "model/status_update.h"
#include "reconcile/payout.h"
#include "reconcile/recon_status.h"
#include "reconcile/sqlite_recon_store.h"
#include "rules/rules.h"
#include "support/process.h"

namespace settle::reconcile {
namespace {

using model::StatusKind;
using model::StatusUpdate;

template <typename T>
T must(Result<T> r) {
  if (!r.ok()) throw std::runtime_error("unexpected error: " + r.error().to_string());
  return std::move(r).value();
}

Date day(unsigned d) { return date_from_civil(2026, 3, d); }

model::BatchSummary summary(const std::string& merchant, unsigned d, Minor payout) {
  model::BatchSummary s;
  s.key = model::BatchKey{MerchantId(merchant), day(d), "EUR"};
  s.totals.of(model::EventType::kCapture) = {1, payout, 0};
  s.net = payout;
  s.payout = payout;
  s.payout_date = day(d + 1);
  return s;
}

Discrepancy discrepancy(std::int64_t id, const std::string& merchant, const std::string& subject, TaskState state) {
  Discrepancy d;
  d.id = id;
  d.state = state;
  d.finding.reason = Reason::kMissingInStatement;
  d.finding.subject = subject;
  d.finding.merchant_id = merchant;
  d.finding.currency = "EUR";
  d.finding.drift = 500;
  return d;
}

const StatusUpdate* find(const std::vector<StatusUpdate>& us, StatusKind kind, const std::string& merchant) {
  for (const StatusUpdate& u : us) {
    if (u.kind == kind && u.merchant_id == merchant) return &u;
  }
  return nullptr;
}

TEST(ReconStatus, SubjectsNameTheirBatchThroughThePayoutReferenceOrTheBatchKey) {
  const std::vector<model::BatchSummary> batches = {summary("m/1", 2, 1000), summary("m2", 3, 0)};
  const auto by_ref = batch_of_subject("payout:" + payout_reference("m/1", day(2), "EUR"), batches);
  ASSERT_TRUE(by_ref.has_value());
  EXPECT_EQ(*by_ref, batches[0].key);
  const auto by_key = batch_of_subject("batch:m/1/2026-03-02/EUR", batches);  // a '/' in the merchant id
  ASSERT_TRUE(by_key.has_value());
  EXPECT_EQ(*by_key, batches[0].key);
  EXPECT_FALSE(batch_of_subject("payout:PO-20260303-EUR-0000000000000000", batches).has_value());
  EXPECT_FALSE(batch_of_subject("event:m2/e1", batches).has_value());
  EXPECT_FALSE(batch_of_subject("batch:m2/not-a-date/EUR", batches).has_value());
}

TEST(ReconStatus, ARunPublishesPaidOutReconciledAndDiscrepanciesWithTheBatchsPayout) {
  const std::vector<model::BatchSummary> batches = {summary("ma", 2, 1000), summary("ma", 3, 2000),
                                                    summary("mb", 2, 700)};
  const std::string ref = payout_reference("ma", day(2), "EUR");
  const std::vector<Match> matches = {Match{"exact_reference", 100, {"payout:" + ref}, {"STMT-1@Ntry[1]"}},
                                      Match{"batch_totals", 100, {"batch:mb/2026-03-02/EUR"}, {"line 3"}},
                                      Match{"event_reference", 100, {"event:mb/e1"}, {"line 2"}}};
  const Discrepancy opened = discrepancy(7, "ma", "batch:ma/2026-03-03/EUR", TaskState::kOpen);
  const Discrepancy other = discrepancy(3, "ma", "event:ma/e9", TaskState::kAcknowledged);
  const Discrepancy unplaced = discrepancy(8, "", "bank:STMT-1@Ntry[2]", TaskState::kOpen);
  const auto us = run_statuses(matches, {opened, unplaced}, {opened, other, unplaced}, batches, 1234);

  const StatusUpdate* paid = find(us, StatusKind::kBatchPaidOut, "ma");
  ASSERT_NE(paid, nullptr);
  EXPECT_EQ(paid->batch->batch_date, day(2));
  EXPECT_EQ(paid->payout, 1000);
  EXPECT_EQ(paid->payout_date, day(3));
  EXPECT_EQ(paid->at_ms, 1234);
  const StatusUpdate* rec = find(us, StatusKind::kBatchReconciled, "mb");
  ASSERT_NE(rec, nullptr);
  EXPECT_EQ(rec->payout, 700);
  const StatusUpdate* disc = find(us, StatusKind::kBatchDiscrepancy, "ma");
  ASSERT_NE(disc, nullptr);
  EXPECT_EQ(disc->batch->batch_date, day(3));
  EXPECT_EQ(disc->payout, 2000);  // the batch's state still says what it pays
  EXPECT_EQ(disc->open_discrepancies, 1);
  ASSERT_EQ(disc->discrepancies.size(), 1u);
  EXPECT_EQ(disc->discrepancies[0].id, 7);
  EXPECT_EQ(disc->discrepancies[0].reason, "missing_in_statement");
  EXPECT_EQ(disc->discrepancies[0].state, "open");
  // Per merchant touched: the open and acknowledged ones, event subjects too.
  const StatusUpdate* sum_a = find(us, StatusKind::kMerchantDiscrepancies, "ma");
  ASSERT_NE(sum_a, nullptr);
  EXPECT_EQ(sum_a->open_discrepancies, 2);
  const StatusUpdate* sum_b = find(us, StatusKind::kMerchantDiscrepancies, "mb");
  ASSERT_NE(sum_b, nullptr);
  EXPECT_EQ(sum_b->open_discrepancies, 0);
  // Money no merchant can be told about publishes nothing.
  for (const StatusUpdate& u : us) EXPECT_FALSE(u.merchant_id.empty());
  // Every update survives its JSON form (what the topic carries).
  for (const StatusUpdate& u : us) {
    const StatusUpdate back = must(model::parse_status_json(model::status_json(u)));
    EXPECT_EQ(back.kind, u.kind);
    EXPECT_EQ(back.discrepancies, u.discrepancies);
    EXPECT_EQ(back.open_discrepancies, u.open_discrepancies);
    EXPECT_EQ(back.payout, u.payout);
  }
}

class ReconStatusPublisherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ledger::SqliteLedgerOptions lo;
    lo.path = dir_.path() / "ledger.db";
    lo.cache_kib = 4096;
    ledger_ = must(ledger::SqliteLedger::open(lo));
    store_ = must(SqliteReconStore::open(dir_.path() / "ledger.db"));
    bus::FileLogOptions bo;
    bo.dir = dir_.path() / "bus";
    bo.fsync = bus::FsyncPolicy::kNone;
    bus_ = must(bus::FileLogBus::open(bo));
    ASSERT_TRUE(bus_->create_topic({"status", 1, false}).ok());
    // One closed batch of "ma" on the 2nd, paying 1000.
    model::Merchant m;
    m.id = MerchantId("ma");
    m.delay_days = 1;
    model::Event e;
    e.merchant_id = m.id;
    e.event_id = EventId("e1");
    e.type = model::EventType::kCapture;
    e.amount = 1000;
    e.currency = "EUR";
    e.occurred_at = Timestamp{static_cast<std::int64_t>(day(2).days) * kNsPerDay + 12 * 3600 * kNsPerSecond};
    const model::Journal j = must(rules::event_journal(e, m, day(2), day(2), false));
    must(ledger_->post(std::span(&j, 1), {}));
    key_ = model::BatchKey{m.id, day(2), "EUR"};
    const auto out = must(rules::settle_batch(m, key_, must(ledger_->settling_totals(key_)), 0, {}));
    const auto journals = rules::batch_journals(out.summary);
    must(ledger_->close_batch(out.summary, out.released, journals, 1));
    payout_ = out.summary.payout;
  }

  std::vector<StatusUpdate> published() {
    std::vector<StatusUpdate> out;
    for (const auto& r : must(bus_->read("status", 0, 0, 1000))) out.push_back(must(model::parse_status_json(r.value)));
    return out;
  }

  testing::TempDir dir_{"settle-recon-status"};
  std::unique_ptr<ledger::SqliteLedger> ledger_;
  std::unique_ptr<SqliteReconStore> store_;
  std::unique_ptr<bus::FileLogBus> bus_;
  model::BatchKey key_;
  Minor payout_ = 0;
};

TEST_F(ReconStatusPublisherTest, ARunThenAResolutionArePublishedOnTheStatusTopic) {
  ReconStatusPublisher pub(*store_, *ledger_, *bus_, "status");
  RunRecord run;
  run.statement_key = "k1";
  run.format = "camt053";
  run.statement_ids = "STMT-1";
  run.at = Timestamp{static_cast<std::int64_t>(day(4).days) * kNsPerDay};
  run.items = 1;
  Finding f;
  f.reason = Reason::kAmountMismatch;
  f.subject = "payout:" + payout_reference("ma", day(2), "EUR");
  f.merchant_id = "ma";
  f.currency = "EUR";
  f.expected = payout_;
  f.actual = payout_ - 5;
  f.drift = 5;
  run.findings = {f};
  const RunOutcome outcome = must(pub.record_run(run));
  ASSERT_EQ(outcome.opened_ids.size(), 1u);

  auto us = published();
  const StatusUpdate* disc = find(us, StatusKind::kBatchDiscrepancy, "ma");
  ASSERT_NE(disc, nullptr);
  EXPECT_EQ(*disc->batch, key_);
  EXPECT_EQ(disc->payout, payout_);
  EXPECT_EQ(disc->open_discrepancies, 1);
  EXPECT_EQ(disc->discrepancies.at(0).reason, "amount_mismatch");
  const StatusUpdate* sum = find(us, StatusKind::kMerchantDiscrepancies, "ma");
  ASSERT_NE(sum, nullptr);
  EXPECT_EQ(sum->open_discrepancies, 1);

  // The same statement again changes nothing and publishes nothing.
  must(pub.record_run(run));
  EXPECT_EQ(published().size(), us.size());

  must(pub.resolve(outcome.opened_ids[0], "bank fee, booked", run.at));
  us = published();
  ASSERT_EQ(us.size(), 4u);
  EXPECT_EQ(us[2].kind, StatusKind::kBatchDiscrepancy);
  EXPECT_EQ(us[2].discrepancies.at(0).state, "resolved");
  EXPECT_EQ(us[2].open_discrepancies, 0);
  EXPECT_EQ(us[3].kind, StatusKind::kMerchantDiscrepancies);
  EXPECT_EQ(us[3].open_discrepancies, 0);
  EXPECT_EQ(pub.publish_failures(), 0);
}

TEST_F(ReconStatusPublisherTest, AStatusTopicThatIsMissingLosesNoReconciliationWrite) {
  ReconStatusPublisher pub(*store_, *ledger_, *bus_, "no-such-topic");
  RunRecord run;
  run.statement_key = "k2";
  run.format = "camt053";
  run.at = Timestamp{0};
  Finding f;
  f.reason = Reason::kMissingInLedger;
  f.subject = "batch:ma/2026-03-02/EUR";
  f.merchant_id = "ma";
  f.currency = "EUR";
  run.findings = {f};
  const RunOutcome outcome = must(pub.record_run(run));
  EXPECT_EQ(outcome.opened, 1);
  EXPECT_EQ(must(store_->discrepancies({})).size(), 1u);
  EXPECT_EQ(pub.publish_failures(), 1);
}

}  // namespace
}  // namespace settle::reconcile
