// End to end: `settled recon watch` (the recon role) on an inbox. Statements
// dropped there are reconciled once and moved to done/, a malformed one goes
// to failed/ with its reason, a payout whose payout date + settle days has
// not passed is not raised as missing yet, and a second pass changes nothing.
#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "support/cli.h"

namespace settle {
namespace {

namespace fs = std::filesystem;

using testing::CliRun;
using testing::slurp;

std::size_t lines(const std::string& s) { return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n')); }

struct Tx {
  std::string e2e, amount;
};

// The payouts of a pain.001 file: EndToEndId and amount.
std::vector<Tx> pain_transactions(const std::string& xml) {
  std::vector<Tx> out;
  for (std::size_t p = xml.find("<EndToEndId>"); p != std::string::npos; p = xml.find("<EndToEndId>", p + 1)) {
    Tx t;
    t.e2e = xml.substr(p + 12, xml.find("</EndToEndId>", p) - p - 12);
    const std::size_t a = xml.find("\">", xml.find("<InstdAmt", p)) + 2;
    t.amount = xml.substr(a, xml.find("</InstdAmt>", a) - a);
    out.push_back(t);
  }
  return out;
}

std::string camt053(const std::string& id, const std::string& from, const std::string& to, const std::vector<Tx>& txs) {
  std::string x = R"(<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt>
<GrpHdr><MsgId>)" + id + "</MsgId><CreDtTm>" + to + R"(T22:00:00Z</CreDtTm></GrpHdr>
<Stmt><Id>)" + id + "</Id><FrToDt><FrDtTm>" + from + "T00:00:00Z</FrDtTm><ToDtTm>" + to +
                  R"(T23:59:59Z</ToDtTm></FrToDt>
<Acct><Id><IBAN>DE89370400440532013000</IBAN></Id><Ccy>EUR</Ccy></Acct>
)";
  int n = 0;
  for (const Tx& t : txs) {
    x += "<Ntry><Amt Ccy=\"EUR\">" + t.amount + "</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>" +
         "<BookgDt><Dt>" + from + "</Dt></BookgDt><ValDt><Dt>" + from + "</Dt></ValDt><AcctSvcrRef>" + id + "-" +
         std::to_string(++n) + "</AcctSvcrRef><NtryDtls><TxDtls><Refs><EndToEndId>" + t.e2e +
         "</EndToEndId></Refs><Amt Ccy=\"EUR\">" + t.amount + "</Amt></TxDtls></NtryDtls></Ntry>\n";
  }
  return x + "</Stmt></BkToCstmrStmt></Document>\n";
}

class ReconWatch : public testing::CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    data_ = dir_ / "data";
    inbox_ = dir_ / "inbox";
    fs::create_directories(inbox_);
  }
  fs::path write(const fs::path& p, const std::string& text) { return testing::write_file(p, text); }
  CliRun watch_once(const std::string& today) {
    return settled("recon watch --once --data-dir " + data_.string() + " --inbox " + inbox_.string() + " --today " +
                   today);
  }
  std::string discrepancies() { return settled("recon discrepancies --data-dir " + data_.string()).out; }

  // Two EUR merchants, captures on 2026-03-26, paid out on 2026-03-27.
  std::vector<Tx> settle_two_payouts() {
    const fs::path m = write(dir_ / "m.json", R"([{"merchant_id":"a","timezone":"UTC","delay_days":1},
{"merchant_id":"b","timezone":"UTC","delay_days":1}])");
    const fs::path e = write(dir_ / "e.ndjson",
                             R"({"event_id":"e1","merchant_id":"a","type":"capture","amount":12000,"currency":"EUR","occurred_at":"2026-03-26T10:00:00Z"}
{"event_id":"e2","merchant_id":"b","type":"capture","amount":34500,"currency":"EUR","occurred_at":"2026-03-26T11:00:00Z"}
)");
    const CliRun s = settled("settle --quiet --merchants " + m.string() + " --events " + e.string() +
                             " --through 2026-03-27 --data-dir " + data_.string());
    EXPECT_EQ(s.exit_code, 0) << s.err;
    const CliRun ex = settled("payouts export --data-dir " + data_.string() + " --date 2026-03-27 --out " +
                              (dir_ / "pain.xml").string());
    EXPECT_EQ(ex.exit_code, 0) << ex.err;
    return pain_transactions(slurp(dir_ / "pain.xml"));
  }

  fs::path data_, inbox_;
};

TEST_F(ReconWatch, InboxFilesAreReconciledOnceMovedToDoneAndAMalformedOneGoesToFailedWithItsReason) {
  const std::vector<Tx> txs = settle_two_payouts();
  ASSERT_EQ(txs.size(), 2u);
  write(inbox_ / "stmt-0327.xml", camt053("STMT-0327", "2026-03-27", "2026-03-27", txs));
  write(inbox_ / "bad.sta", ":20:X\n:25:A\n:60F:C260301EUR1,00\n:61:2603010301X1,00NTRF\n:62F:C260301EUR0,00\n");

  const CliRun w = watch_once("2026-04-10");
  EXPECT_EQ(w.exit_code, 0) << w.out << w.err;
  EXPECT_NE(w.out.find("stmt-0327.xml: run 1: camt053 STMT-0327: 2 items, 2 matches, 0 findings"), std::string::npos)
      << w.out;
  EXPECT_NE(w.out.find("bad.sta: failed: mt940 line 4"), std::string::npos) << w.out;
  EXPECT_TRUE(fs::exists(inbox_ / "done" / "stmt-0327.xml"));
  EXPECT_FALSE(fs::exists(inbox_ / "stmt-0327.xml"));
  EXPECT_TRUE(fs::exists(inbox_ / "failed" / "bad.sta"));
  EXPECT_NE(slurp(inbox_ / "failed" / "bad.sta.error").find("mt940 line 4: :61: expected a mark C, D, RC or RD"),
            std::string::npos);
  EXPECT_EQ(lines(discrepancies()), 1u);

  // A second pass on the empty inbox, and the same statement dropped again,
  // change nothing.
  const std::string drift = settled("recon drift --data-dir " + data_.string()).out;
  const CliRun again = watch_once("2026-04-10");
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out, "");
  fs::copy_file(inbox_ / "done" / "stmt-0327.xml", inbox_ / "stmt-0327.xml");
  const CliRun dup = watch_once("2026-04-10");
  EXPECT_NE(dup.out.find("stmt-0327.xml: statement STMT-0327 was reconciled by run 1 already"), std::string::npos)
      << dup.out;
  EXPECT_TRUE(fs::exists(inbox_ / "done" / "stmt-0327.xml.1"));
  EXPECT_EQ(settled("recon drift --data-dir " + data_.string()).out, drift);
  EXPECT_EQ(lines(discrepancies()), 1u);
}

TEST_F(ReconWatch, APayoutIsRaisedAsMissingOnlyOnceItsPayoutDatePlusSettleDaysHasPassed) {
  const std::vector<Tx> txs = settle_two_payouts();
  ASSERT_EQ(txs.size(), 2u);
  // The statement of the 27th lacks txs[0]; on the 28th it is not due yet
  // (2026-03-27 + 2 days = the 29th).
  write(inbox_ / "a.xml", camt053("STMT-A", "2026-03-27", "2026-03-27", {txs[1]}));
  const CliRun early = watch_once("2026-03-28");
  EXPECT_EQ(early.exit_code, 0) << early.err;
  EXPECT_NE(early.out.find("1 items, 1 matches, 0 findings"), std::string::npos) << early.out;
  EXPECT_EQ(lines(discrepancies()), 1u);
  EXPECT_EQ(watch_once("2026-03-28").out, "");

  // The bank's statement for the 27th to the 29th still lacks it; on the
  // 29th it is due and raised.
  write(inbox_ / "b.xml", camt053("STMT-B", "2026-03-27", "2026-03-29", {}));
  const CliRun due = watch_once("2026-03-29");
  EXPECT_NE(due.out.find("0 items, 0 matches, 1 findings (1 new discrepancies"), std::string::npos) << due.out;
  const std::string list = discrepancies();
  EXPECT_EQ(lines(list), 2u) << list;
  EXPECT_NE(list.find("missing_in_statement"), std::string::npos) << list;
  EXPECT_NE(list.find(txs[0].e2e), std::string::npos) << list;
  // Another pass changes nothing.
  EXPECT_EQ(watch_once("2026-03-30").out, "");
  EXPECT_EQ(discrepancies(), list);
}

TEST_F(ReconWatch, WithoutOnceItRunsUntilSigtermAndExitsZero) {
  settle_two_payouts();
  const std::string cmd = "exec " + std::string(SETTLED_BIN) + " recon watch --interval-ms 50 --data-dir " +
                          data_.string() + " --inbox " + inbox_.string() + " >" + (dir_ / "w.out").string() + " 2>&1";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  write(inbox_ / ".x.xml.part", camt053("STMT-C", "2026-03-27", "2026-03-27", {}));
  fs::rename(inbox_ / ".x.xml.part", inbox_ / "x.xml");
  for (int i = 0; i < 200 && !fs::exists(inbox_ / "done" / "x.xml"); ++i) ::usleep(50'000);
  EXPECT_TRUE(fs::exists(inbox_ / "done" / "x.xml")) << slurp(dir_ / "w.out");
  ::kill(pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << slurp(dir_ / "w.out");
}

}  // namespace
}  // namespace settle
