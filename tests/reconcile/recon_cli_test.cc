// End to end: settle a seeded workload with `settled settle --data-dir`,
// export the day's payouts as pain.001, build a bank statement (camt.053)
// and an acquirer report from them with injected faults (a missing payout,
// a wrong amount, a duplicate entry, a fee mismatch), run `settled recon
// run`, and find exactly those discrepancies and a drift equal to their sum.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "model/merchant_json.h"
#include "rules/rules.h"
#include "support/cli.h"
#include "support/postgres_server.h"

namespace settle {
namespace {

namespace fs = std::filesystem;

using testing::CliRun;
using testing::slurp;

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

struct PainTx {
  std::string e2e, currency, amount;  // amount as written (major units)
};

// The CdtTrfTxInf blocks of a pain.001 file.
std::vector<PainTx> pain_transactions(const std::string& xml) {
  std::vector<PainTx> out;
  auto between = [](const std::string& s, const std::string& a, const std::string& b, std::size_t from) {
    const std::size_t i = s.find(a, from);
    if (i == std::string::npos) return std::string();
    const std::size_t j = s.find(b, i + a.size());
    return s.substr(i + a.size(), j - i - a.size());
  };
  for (std::size_t p = xml.find("<CdtTrfTxInf>"); p != std::string::npos; p = xml.find("<CdtTrfTxInf>", p + 1)) {
    PainTx t;
    t.e2e = between(xml, "<EndToEndId>", "</EndToEndId>", p);
    t.currency = between(xml, "<InstdAmt Ccy=\"", "\"", p);
    t.amount = between(xml, "\">", "</InstdAmt>", xml.find("<InstdAmt", p));
    out.push_back(t);
  }
  return out;
}

Minor to_minor(const std::string& major) {  // "123.45" -> 12345 (EUR)
  const std::size_t dot = major.find('.');
  return std::stoll(major.substr(0, dot)) * 100 + (dot == std::string::npos ? 0 : std::stoll(major.substr(dot + 1)));
}

std::string to_major(Minor m) { return format_minor(m, 2); }

class ReconCli : public testing::CliTest {};

std::string camt053(const std::string& id, const std::string& date, const std::vector<PainTx>& txs) {
  std::string x = R"(<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt>
<GrpHdr><MsgId>)" + id + "</MsgId><CreDtTm>" + date + R"(T22:00:00Z</CreDtTm></GrpHdr>
<Stmt><Id>)" + id + "</Id><FrToDt><FrDtTm>" + date + "T00:00:00Z</FrDtTm><ToDtTm>" + date +
                  R"(T23:59:59Z</ToDtTm></FrToDt>
<Acct><Id><IBAN>DE89370400440532013000</IBAN></Id><Ccy>EUR</Ccy></Acct>
)";
  int n = 0;
  for (const PainTx& t : txs) {
    x += "<Ntry><Amt Ccy=\"" + t.currency + "\">" + t.amount + "</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>" +
         "<BookgDt><Dt>" + date + "</Dt></BookgDt><ValDt><Dt>" + date + "</Dt></ValDt><AcctSvcrRef>BANK-" +
         std::to_string(++n) + "</AcctSvcrRef><NtryDtls><TxDtls><Refs><EndToEndId>" + t.e2e +
         "</EndToEndId></Refs><Amt Ccy=\"" + t.currency + "\">" + t.amount +
         "</Amt><RmtInf><Ustrd>Settlement</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>\n";
  }
  return x + "</Stmt></BkToCstmrStmt></Document>\n";
}

TEST_F(ReconCli, InjectedFaultsBecomeExactlyTheirDiscrepanciesAndDriftIsTheirSum) {
  // Five EUR merchants in UTC (batch date = UTC date), payout the next day.
  std::vector<model::Merchant> merchants;
  std::string merchants_json = "[\n";
  for (int m = 0; m < 5; ++m) {
    const std::string j = R"({"merchant_id":"shop-)" + std::to_string(m) +
                          R"(","timezone":"UTC","delay_days":1,"fees":{"capture":{"bps":)" + std::to_string(120 + 10 * m) +
                          R"(,"fixed":10},"refund":{"bps":0,"fixed":20}}})";
    merchants.push_back(*model::parse_merchant_json(j));
    merchants_json += j + (m < 4 ? ",\n" : "\n]\n");
  }
  std::mt19937_64 rng(20261126);
  auto uni = [&](std::int64_t lo, std::int64_t hi) { return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng); };
  struct Ev {
    std::string id, merchant, type;
    Minor amount, fee;
    Date batch;
  };
  std::vector<Ev> events;
  std::string events_ndjson;
  const Date first = date_from_civil(2026, 3, 23);
  for (int i = 0; i < 600; ++i) {
    const std::size_t m = static_cast<std::size_t>(uni(0, 4));
    const Date day = first.plus_days(static_cast<std::int32_t>(uni(0, 4)));
    const bool refund = uni(0, 9) == 0;
    const Minor amount = refund ? uni(1, 500) : uni(500, 40000);
    Ev e{"ev-" + std::to_string(i), merchants[m].id.str(), refund ? "refund" : "capture", amount, 0, day};
    e.fee = *rules::event_fee(merchants[m], refund ? model::EventType::kRefund : model::EventType::kCapture, amount);
    const std::string at = format_rfc3339(Timestamp{day.days * kNsPerDay + uni(0, 86399) * kNsPerSecond});
    events_ndjson += R"({"event_id":")" + e.id + R"(","merchant_id":")" + e.merchant + R"(","type":")" + e.type +
                     R"(","amount":)" + std::to_string(amount) + R"(,"currency":"EUR","occurred_at":")" + at + "\"}\n";
    events.push_back(e);
  }
  const fs::path data = dir_ / "data";
  const CliRun s = settled("settle --quiet --merchants " + write("m.json", merchants_json).string() + " --events " +
                           write("e.ndjson", events_ndjson).string() + " --through 2026-03-27 --data-dir " + data.string());
  ASSERT_EQ(s.exit_code, 0) << s.err;

  // The payouts due on 2026-03-27 (batches of the 26th), as pain.001.
  const std::string pay_date = "2026-03-27";
  const CliRun ex = settled("payouts export --data-dir " + data.string() + " --date " + pay_date +
                            " --format pain.001 --out " + (dir_ / "pain.xml").string());
  ASSERT_EQ(ex.exit_code, 0) << ex.err;
  const std::string pain = slurp(dir_ / "pain.xml");
  ASSERT_NE(pain.find("urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"), std::string::npos);
  std::vector<PainTx> txs = pain_transactions(pain);
  ASSERT_EQ(txs.size(), 5u) << pain;
  ASSERT_NE(pain.find("<NbOfTxs>5</NbOfTxs>"), std::string::npos);
  const CliRun csv = settled("payouts export --data-dir " + data.string() + " --date " + pay_date + " --format csv");
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  EXPECT_EQ(split(csv.out, '\n').size(), 6u) << csv.out;
  EXPECT_NE(csv.out.find(txs[0].e2e), std::string::npos);

  // Bank statement with faults: txs[0] missing, txs[1] one euro more, txs[2] twice.
  const Minor missing = to_minor(txs[0].amount);
  const Minor duplicated = to_minor(txs[2].amount);
  std::vector<PainTx> booked = {txs[1], txs[2], txs[2], txs[3], txs[4]};
  booked[0].amount = to_major(to_minor(txs[1].amount) + 100);
  const fs::path camt = write("camt.xml", camt053("STMT-0327", pay_date, booked));
  const CliRun bank = settled("recon run --data-dir " + data.string() + " --statement " + camt.string());
  EXPECT_EQ(bank.exit_code, 1) << bank.out << bank.err;
  EXPECT_NE(bank.out.find("3 findings (3 new discrepancies"), std::string::npos) << bank.out;

  // Acquirer report for shop-1's batch of the 26th, built from its events;
  // the batch total is right, one line's fee is 5 cents high.
  std::string acq = "record_type,merchant_id,reference,type,currency,gross,fee,net,batch_date,count\n";
  Minor gross = 0, fees = 0;
  std::int64_t count = 0;
  std::string fee_ref;
  for (const Ev& e : events) {
    if (e.merchant != "shop-1" || format_date(e.batch) != "2026-03-26") continue;
    Minor fee = e.fee;
    if (fee_ref.empty() && e.type == "capture") {
      fee_ref = e.id;
      fee += 5;
    }
    acq += "transaction,shop-1," + e.id + "," + e.type + ",EUR," + to_major(e.amount) + "," + to_major(fee) + "," +
           to_major(e.type == "capture" ? e.amount - fee : -e.amount - fee) + ",2026-03-26,\n";
    gross += e.type == "capture" ? e.amount : -e.amount;
    fees += e.fee;
    ++count;
  }
  ASSERT_GT(count, 10);
  acq += "batch_total,shop-1,,,EUR," + to_major(gross) + "," + to_major(fees) + "," + to_major(gross - fees) +
         ",2026-03-26," + std::to_string(count) + "\n";
  const fs::path acq_file = write("acquirer.csv", acq);
  const CliRun ar = settled("recon run --data-dir " + data.string() + " --statement " + acq_file.string());
  EXPECT_EQ(ar.exit_code, 1) << ar.out << ar.err;
  EXPECT_NE(ar.out.find("1 findings (1 new discrepancies"), std::string::npos) << ar.out;

  // Exactly the four injected faults.
  const CliRun list = settled("recon discrepancies --data-dir " + data.string() + " --state open");
  ASSERT_EQ(list.exit_code, 0) << list.err;
  std::vector<std::string> rows = split(list.out, '\n');
  ASSERT_EQ(rows.size(), 5u) << list.out;
  std::map<std::string, std::string> by_reason;
  for (std::size_t i = 1; i < rows.size(); ++i) by_reason[split(rows[i], ',')[2]] = rows[i];
  ASSERT_EQ(by_reason.size(), 4u) << list.out;
  EXPECT_NE(by_reason["missing_in_statement"].find("payout:" + txs[0].e2e), std::string::npos);
  EXPECT_NE(by_reason["amount_mismatch"].find("payout:" + txs[1].e2e), std::string::npos);
  EXPECT_NE(by_reason["amount_mismatch"].find(",1.00,"), std::string::npos) << by_reason["amount_mismatch"];
  EXPECT_NE(by_reason["duplicate_in_statement"].find("payout:" + txs[2].e2e), std::string::npos);
  EXPECT_NE(by_reason["fee_mismatch"].find("event:shop-1/" + fee_ref), std::string::npos);
  EXPECT_NE(by_reason["fee_mismatch"].find(",0.05,"), std::string::npos) << by_reason["fee_mismatch"];
  EXPECT_NE(list.err.find("4 discrepancies; aging: 0-1d=4"), std::string::npos) << list.err;

  // Drift after the second run: the sum of the four.
  const Minor expected_drift = missing + 100 + duplicated + 5;
  const CliRun drift = settled("recon drift --data-dir " + data.string());
  ASSERT_EQ(drift.exit_code, 0) << drift.err;
  bool found = false;
  for (const std::string& row : split(drift.out, '\n')) {
    const std::vector<std::string> c = split(row, ',');
    if (c.size() == 7 && c[0] == "2" && c[3] == "EUR" && c[4] == "*") {
      found = true;
      EXPECT_EQ(c[2], "4");
      EXPECT_EQ(c[5], "4");
      EXPECT_EQ(c[6], to_major(expected_drift)) << drift.out;
    }
  }
  EXPECT_TRUE(found) << drift.out;

  // The same statement again changes nothing.
  const CliRun again = settled("recon run --data-dir " + data.string() + " --statement " + camt.string());
  EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_NE(again.out.find("reconciled by run 1 already"), std::string::npos) << again.out;
  EXPECT_EQ(split(settled("recon discrepancies --data-dir " + data.string()).out, '\n').size(), 5u);

  // A later statement brings the missing payout: its task resolves itself.
  // Booked two days late (inside the default window), on a day with no payouts due.
  const fs::path later = write("camt2.xml", camt053("STMT-0329", "2026-03-29", {txs[0]}));
  const CliRun l = settled("recon run --data-dir " + data.string() + " --statement " + later.string());
  EXPECT_EQ(l.exit_code, 0) << l.out << l.err;
  EXPECT_NE(l.out.find("1 resolved by this statement"), std::string::npos) << l.out;
  const CliRun resolved = settled("recon discrepancies --data-dir " + data.string() + " --state resolved");
  EXPECT_NE(resolved.out.find("missing_in_statement"), std::string::npos) << resolved.out;
  EXPECT_NE(resolved.out.find("resolved automatically"), std::string::npos) << resolved.out;

  // Acknowledge, then resolve with a comment; filters by reason and merchant.
  const std::string fee_id = split(by_reason["fee_mismatch"], ',')[0];
  EXPECT_EQ(settled("recon ack " + fee_id + " --data-dir " + data.string()).exit_code, 0);
  const CliRun ack_list = settled("recon discrepancies --data-dir " + data.string() + " --state acknowledged --merchant shop-1");
  EXPECT_EQ(split(ack_list.out, '\n').size(), 2u) << ack_list.out;
  const CliRun res = settled("recon resolve " + fee_id + " --comment \"acquirer credit note 77\" --data-dir " + data.string());
  EXPECT_EQ(res.exit_code, 0) << res.err;
  EXPECT_NE(settled("recon discrepancies --data-dir " + data.string() + " --reason fee_mismatch").out.find("acquirer credit note 77"),
            std::string::npos);
  EXPECT_EQ(settled("recon resolve " + fee_id + " --comment again --data-dir " + data.string()).exit_code, 2);
  EXPECT_EQ(split(settled("recon discrepancies --data-dir " + data.string() + " --older-than 1d").out, '\n').size(), 1u);
}

TEST_F(ReconCli, AMalformedStatementIsRefusedWithItsLineAndNothingIsRecorded) {
  const fs::path data = dir_ / "data";
  const CliRun s = settled("settle --quiet --merchants " +
                           write("m.json", R"([{"merchant_id":"m1","timezone":"UTC"}])").string() + " --events " +
                           write("e.ndjson", R"({"event_id":"e1","merchant_id":"m1","type":"capture","amount":100,"currency":"EUR","occurred_at":"2026-03-01T10:00:00Z"})" "\n").string() +
                           " --through 2026-03-01 --data-dir " + data.string());
  ASSERT_EQ(s.exit_code, 0) << s.err;
  const fs::path bad = write("bad.sta", ":20:X\n:25:A\n:60F:C260301EUR1,00\n:61:2603010301X1,00NTRF\n:62F:C260301EUR0,00\n");
  const CliRun r = settled("recon run --data-dir " + data.string() + " --statement " + bad.string());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("bad.sta: mt940 line 4: :61: expected a mark C, D, RC or RD"), std::string::npos) << r.err;
  EXPECT_EQ(settled("recon drift --data-dir " + data.string()).out, "run_id,at,open_count,currency,merchant_id,count,amount\n");
}

// Three UTC merchants' captures of 2026-03-26 settled onto a fresh PostgreSQL
// database; its URL.
std::string settle_on_postgres(ReconCli& t, const std::string& name) {
  testing::PostgresServer& pg = testing::PostgresServer::shared();
  const std::string db = name + "_" + std::to_string(::getpid());
  pg.create_database(db);
  const std::string url = pg.url(db);
  std::string merchants = "[", events;
  for (int m = 0; m < 3; ++m) {
    merchants += std::string(m > 0 ? "," : "") + R"({"merchant_id":"pg-)" + std::to_string(m) +
                 R"(","timezone":"UTC","delay_days":1,"fees":{"capture":{"bps":100,"fixed":0}}})";
    for (int i = 0; i < 4; ++i) {
      events += R"({"event_id":"pg-)" + std::to_string(m) + "-" + std::to_string(i) + R"(","merchant_id":"pg-)" +
                std::to_string(m) + R"(","type":"capture","amount":)" + std::to_string(1000 * (m + 1) + i) +
                R"(,"currency":"EUR","occurred_at":"2026-03-26T1)" + std::to_string(i) + ":00:00Z\"}\n";
    }
  }
  merchants += "]";
  const CliRun s = t.settled("settle --quiet --migrate --ledger " + url + " --data-dir " + (t.dir() / "bus").string() +
                             " --merchants " + t.write("m.json", merchants).string() + " --events " +
                             t.write("e.ndjson", events).string() + " --through 2026-03-26");
  EXPECT_EQ(s.exit_code, 0) << s.err;
  return url;
}

// The same commands on a PostgreSQL ledger (--ledger URL): settle onto it,
// export, reconcile with a missing payout, list, acknowledge, resolve, drift.
TEST_F(ReconCli, ReconcilesAPostgresqlLedgerThroughTheSameCommands) {
  const std::string url = settle_on_postgres(*this, "recon_cli");
  ASSERT_FALSE(HasFailure());
  const CliRun ex = settled("payouts export --ledger " + url + " --date 2026-03-27 --out " + (dir_ / "pain.xml").string());
  ASSERT_EQ(ex.exit_code, 0) << ex.err;
  const std::vector<PainTx> txs = pain_transactions(slurp(dir_ / "pain.xml"));
  ASSERT_EQ(txs.size(), 3u);

  // The bank books two of the three payouts.
  const fs::path camt = write("camt.xml", camt053("PG-0327", "2026-03-27", {txs[1], txs[2]}));
  const CliRun bank = settled("recon run --ledger " + url + " --statement " + camt.string() + " --today 2026-03-30");
  EXPECT_EQ(bank.exit_code, 1) << bank.out << bank.err;
  EXPECT_NE(bank.out.find("2 matches, 1 findings (1 new discrepancies"), std::string::npos) << bank.out;
  EXPECT_NE(bank.out.find("drift EUR: 1 unmatched, " + txs[0].amount), std::string::npos) << bank.out;
  const CliRun again = settled("recon run --ledger " + url + " --statement " + camt.string() + " --today 2026-03-30");
  EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_NE(again.out.find("reconciled by run 1 already"), std::string::npos) << again.out;

  const CliRun list = settled("recon discrepancies --ledger " + url + " --state open");
  ASSERT_EQ(list.exit_code, 0) << list.err;
  const std::vector<std::string> rows = split(list.out, '\n');
  ASSERT_EQ(rows.size(), 2u) << list.out;
  EXPECT_NE(rows[1].find("missing_in_statement"), std::string::npos) << rows[1];
  EXPECT_NE(rows[1].find("payout:" + txs[0].e2e), std::string::npos) << rows[1];
  const std::string id = split(rows[1], ',')[0];
  EXPECT_EQ(settled("recon ack " + id + " --ledger " + url).exit_code, 0);
  EXPECT_EQ(split(settled("recon discrepancies --ledger " + url + " --state acknowledged").out, '\n').size(), 2u);
  const CliRun res = settled("recon resolve " + id + " --comment \"paid by hand\" --ledger " + url);
  EXPECT_EQ(res.exit_code, 0) << res.err;
  EXPECT_NE(settled("recon discrepancies --ledger " + url + " --state resolved").out.find("paid by hand"),
            std::string::npos);
  const CliRun drift = settled("recon drift --ledger " + url);
  ASSERT_EQ(drift.exit_code, 0) << drift.err;
  EXPECT_NE(drift.out.find(",EUR,*,1," + txs[0].amount + "\n"), std::string::npos) << drift.out;

  // A ledger is named once: a data directory or a URL.
  const CliRun both = settled("recon drift --ledger " + url + " --data-dir " + dir_.string());
  EXPECT_NE(both.exit_code, 0);
  EXPECT_NE(both.err.find("excludes"), std::string::npos) << both.err;
}

// The recon role on PostgreSQL: `recon watch --ledger URL` reconciles an
// inbox's statements once, moves them to done/ (failed/ with the reason).
TEST_F(ReconCli, TheReconRoleWatchesAnInboxOnAPostgresqlLedger) {
  const std::string url = settle_on_postgres(*this, "recon_watch");
  ASSERT_FALSE(HasFailure());
  const CliRun ex = settled("payouts export --ledger " + url + " --date 2026-03-27 --out " + (dir_ / "pain.xml").string());
  ASSERT_EQ(ex.exit_code, 0) << ex.err;
  const std::vector<PainTx> txs = pain_transactions(slurp(dir_ / "pain.xml"));
  ASSERT_EQ(txs.size(), 3u);
  const fs::path inbox = dir_ / "inbox";
  fs::create_directories(inbox);
  const std::string statement = camt053("PG-W-0327", "2026-03-27", txs);
  std::ofstream(inbox / "a.xml", std::ios::binary) << statement;
  std::ofstream(inbox / "b.sta", std::ios::binary)
      << ":20:X\n:25:A\n:60F:C260301EUR1,00\n:61:2603010301X1,00NTRF\n:62F:C260301EUR0,00\n";
  const std::string watch = "recon watch --ledger " + url + " --inbox " + inbox.string() + " --once --today 2026-03-30";
  const CliRun first = settled(watch);
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  EXPECT_NE(first.out.find("a.xml: run 1: camt053 PG-W-0327: 3 items, 3 matches, 0 findings"), std::string::npos)
      << first.out;
  EXPECT_NE(first.out.find("b.sta: failed: mt940 line 4"), std::string::npos) << first.out;
  EXPECT_TRUE(fs::exists(inbox / "done" / "a.xml"));
  EXPECT_TRUE(fs::exists(inbox / "failed" / "b.sta.error"));
  // Delivered again: nothing changes.
  std::ofstream(inbox / "a-again.xml", std::ios::binary) << statement;
  const CliRun second = settled(watch);
  ASSERT_EQ(second.exit_code, 0) << second.out << second.err;
  EXPECT_NE(second.out.find("a-again.xml: statement PG-W-0327 was reconciled by run 1 already"), std::string::npos)
      << second.out;
  EXPECT_EQ(settled("recon discrepancies --ledger " + url).out, settled("recon discrepancies --ledger " + url).out);
  EXPECT_EQ(split(settled("recon discrepancies --ledger " + url).out, '\n').size(), 1u);
}

}  // namespace
}  // namespace settle
