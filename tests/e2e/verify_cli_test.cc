// `settled verify` end to end: a data directory left by `settled settle` is
// clean (exit 0); after the SQLite ledger is tampered with (sqlite3), verify
// exits 1 and names the break: the event, the batch and both figures.
#include <filesystem>
#include <string>

#include "support/cli.h"

namespace settle {
namespace {

namespace fs = std::filesystem;

const fs::path kFixtures = testing::e2e_fixtures();
using testing::CliRun;

class VerifyCli : public testing::CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    data_ = dir_ / "data";
    const fs::path f = kFixtures / "basic";
    const CliRun r = settled("settle --quiet --merchants " + (f / "merchants.json").string() + " --events " +
                             (f / "events.ndjson").string() + " --through 2026-03-30 --data-dir " + data_.string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  CliRun verify() { return settled("verify --data-dir " + data_.string()); }
  void sql(const std::string& statement) {
    const CliRun r = sh("sqlite3 " + (data_ / "ledger.db").string() + " \"" + statement + "\"");
    ASSERT_EQ(r.exit_code, 0) << statement << ": " << r.err;
  }

  fs::path data_;
};

TEST_F(VerifyCli, ADirectoryLeftBySettleIsClean) {
  const CliRun r = verify();
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("clean: no breaks"), std::string::npos) << r.out;
  // 11 lines, one exact duplicate: 10 distinct events, every one posted.
  EXPECT_NE(r.out.find("11 event records on the bus, 10 distinct events: 10 posted, 0 dead-lettered"),
            std::string::npos)
      << r.out;
}

TEST_F(VerifyCli, ADeletedJournalIsAMissingEventAndItsBatchNoLongerAddsUp) {
  sql("DELETE FROM journals WHERE merchant_id = 'm-eur' AND ref = 'e1'");
  const CliRun r = verify();
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("missing event m-eur/e1: journals in the ledger is 0, expected 1"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("batch-totals m-eur/2026-03-28/EUR: captures is 10000, expected 0"), std::string::npos)
      << r.out;
}

TEST_F(VerifyCli, AnAlteredPayoutIsReportedWithTheRulesFigure) {
  sql("UPDATE batches SET payout = payout + 100, net = net + 100 "
      "WHERE merchant_id = 'm-jpy' AND batch_date = '2026-03-29'");
  const CliRun r = verify();
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("batch-rules m-jpy/2026-03-29/JPY: payout is 1280, expected 1180"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("payouts JPY: platform:payouts balance is -9930, expected -10030"), std::string::npos)
      << r.out;
}

TEST_F(VerifyCli, AMissingDataDirectoryIsAUsageError) {
  const CliRun r = sh(std::string(SETTLED_BIN) + " verify --data-dir " + (dir_ / "nothing").string());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no ledger here"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace settle
