// `settled migrate` and `settled partitions ...` against a real PostgreSQL 15:
// what an operator runs, with the exit statuses and output they see.
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/postgres_server.h"
#include "support/process.h"

namespace {

namespace fs = std::filesystem;
using settle::testing::PostgresServer;

struct CliRun {
  int code;
  std::string output;
};

CliRun settled(std::vector<std::string> args) {
  args.insert(args.begin(), SETTLED_BIN);
  CliRun r;
  r.code = settle::testing::run({.argv = args, .env = {}, .run_as = {}, .log = {}, .cwd = {}}, &r.output);
  return r;
}

std::string query(const std::string& conninfo, const std::string& sql) {
  PGconn* pg = PQconnectdb(conninfo.c_str());
  PGresult* r = PQexec(pg, sql.c_str());
  std::string out;
  if (PQresultStatus(r) == PGRES_TUPLES_OK) {
    for (int i = 0; i < PQntuples(r); ++i) out += std::string(PQgetvalue(r, i, 0)) + "\n";
  } else {
    out = "error: " + std::string(PQresultErrorMessage(r));
  }
  PQclear(r);
  PQfinish(pg);
  return out;
}

TEST(PostgresCli, MigrateIsIdempotentAndPartitionsEnsureArchiveRestoreRoundTrip) {
  PostgresServer& server = PostgresServer::shared();
  server.create_database("cli_ledger");
  const std::string url = server.url("cli_ledger");

  CliRun r = settled({"partitions", "list", "--ledger", url});
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("settled migrate"), std::string::npos) << r.output;

  r = settled({"migrate", "--ledger", url});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("applied migration 0001"), std::string::npos) << r.output;
  r = settled({"migrate", "--ledger", url});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("nothing to apply"), std::string::npos) << r.output;

  r = settled({"partitions", "ensure", "--ledger", url, "--from", "2026-03-01", "--days-ahead", "2"});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("3 created"), std::string::npos) << r.output;
  r = settled({"partitions", "list", "--ledger", url});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(r.output, "2026-03-01\n2026-03-02\n2026-03-03\n");

  // A journal on the 1st, written as psql would, to see it travel.
  const std::string conninfo = server.conninfo("cli_ledger");
  ASSERT_EQ(query(conninfo,
                  "INSERT INTO journals (merchant_id, ref, kind, currency, batch_date, settle_date, "
                  "late, amount, fee, digest, leg1_account, leg1_amount, leg2_account, leg2_amount) "
                  "VALUES ('m1', 'e1', 'adjustment', 'USD', '2026-03-01', '2026-03-01', false, 5, 0, "
                  "'\\x00112233445566778899aabbccddeeff', 4, 5, 0, -5) RETURNING ref"),
            "e1\n");

  settle::testing::TempDir dir("settle-cli-archive");
  r = settled({"partitions", "archive", "--ledger", url, "--before", "2026-03-02", "--dir",
               dir.path().string()});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("archived 2026-03-01: 1 journals"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(dir.path() / "journals_p20260301.copy"));
  EXPECT_EQ(query(conninfo, "SELECT ref FROM ledger_archive.journals_p20260301"), "e1\n");
  EXPECT_EQ(settled({"partitions", "list", "--ledger", url}).output, "2026-03-02\n2026-03-03\n");

  r = settled({"partitions", "restore", "--ledger", url, "--date", "2026-03-01"});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(query(conninfo, "SELECT ref FROM journals WHERE settle_date = '2026-03-01'"), "e1\n");
  EXPECT_EQ(settled({"partitions", "list", "--ledger", url}).output,
            "2026-03-01\n2026-03-02\n2026-03-03\n");

  r = settled({"partitions", "archive", "--ledger", url, "--before", "not-a-date", "--dir",
               dir.path().string()});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--before"), std::string::npos) << r.output;
}

}  // namespace
