// The reconciliation routes of the HTTP gateway end to end: the real
// `settled gateway` process on a data directory `settled settle` left,
// driven over loopback. A BAI2 statement that books one payout by its
// reference and one debit we never sent is uploaded, listed, acknowledged and
// resolved; merchant keys get 403; a malformed statement gets 400 with its line.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "gateway_fixture.h"
#include "http_client.h"

namespace settle::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A BAI2 file for JPY account JP-1 as of 2026-03-30: one debit of 8750 with
// customer reference `reference`, one of 500 we know nothing of.
std::string bai2(const std::string& reference, const std::string& first_amount = "8750") {
  return "01,BANKJP,SETTLE,260330,2200,1,80,,2/\n"
         "02,SETTLE,BANKJP,1,260330,2359,JPY,2/\n"
         "03,JP-1,,010,100000,,,015,90750,,/\n"
         "16,495," + first_amount + ",,B-1," + reference + ",PAYOUT/\n"
         "16,495,500,,B-2,UNKNOWN-1,FEE?/\n"
         "49,200000,4/\n"
         "98,200000,1,6/\n"
         "99,200000,1,8/\n";
}

class ReconApi : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    dir_ = new TempDir("gateway-recon");
    data_ = dir_->path() / "data";
    settle_basic_fixture(data_);
    admin_ = create_key(data_, dir_->path());
    merchant_ = create_key(data_, dir_->path(), "m-jpy");
    // The JPY payout due on 2026-03-30 (m-jpy's batch of the 28th: 8750 yen).
    const std::string csv = settled_stdout({"payouts", "export", "--data-dir", data_.string(), "--date", "2026-03-30",
                                            "--format", "csv"},
                                           dir_->path());
    const std::size_t row = csv.find('\n') + 1;
    reference_ = csv.substr(row, csv.find(',', row) - row);
    ASSERT_TRUE(reference_.starts_with("PO-20260328-JPY-")) << csv;
    ASSERT_NE(csv.find(",m-jpy,2026-03-28,JPY,8750,2026-03-30"), std::string::npos) << csv;
    gateway_ = new GatewayProcess(data_);
    port_ = gateway_->port();
  }
  static void TearDownTestSuite() {
    delete gateway_;
    delete dir_;
  }

 protected:
  static HttpResult call(const std::string& method, const std::string& target, const std::string& key,
                         const std::string& body = {}, const std::string& type = "application/json") {
    return http_request(port_, method, target, body, {{"Authorization", "Bearer " + key}, {"Content-Type", type}});
  }
  static json body(const HttpResult& r) { return json::parse(r.body); }

  static inline TempDir* dir_ = nullptr;
  static inline GatewayProcess* gateway_ = nullptr;
  static inline fs::path data_;
  static inline std::string admin_, merchant_, reference_;
  static inline int port_ = 0;
};

TEST_F(ReconApi, AStatementIsReconciledListedAcknowledgedAndResolvedOverHttp) {
  const HttpResult up = call("POST", "/v1/statements?format=auto", admin_, bai2(reference_), "text/plain");
  ASSERT_EQ(up.status, 200u) << up.body;
  const json run = body(up);
  EXPECT_FALSE(run["duplicate"].get<bool>());
  EXPECT_EQ(run["format"], "bai2");
  EXPECT_EQ(run["statement_ids"], "1/JP-1/2026-03-30");
  EXPECT_EQ(run["items"], 2);
  EXPECT_EQ(run["matches"], 1);  // the payout, by its reference
  ASSERT_EQ(run["findings"].size(), 1u) << run.dump();
  EXPECT_EQ(run["findings"][0]["reason"], "missing_in_ledger");
  EXPECT_EQ(run["findings"][0]["actual"], 500);
  EXPECT_EQ(run["new_discrepancies"], 1);
  EXPECT_EQ(run["open_count"], 1);
  bool total = false;
  for (const json& d : run["drift"]) {
    if (d["currency"] == "JPY" && d["merchant_id"].is_null()) {
      total = true;
      EXPECT_EQ(d["count"], 1);
      EXPECT_EQ(d["amount"], 500);
    }
  }
  EXPECT_TRUE(total) << run.dump();
  const std::int64_t id = run["new_discrepancy_ids"][0].get<std::int64_t>();

  // The same file again changes nothing.
  const HttpResult again = call("POST", "/v1/statements", admin_, bai2(reference_), "text/plain");
  ASSERT_EQ(again.status, 200u) << again.body;
  EXPECT_TRUE(body(again)["duplicate"].get<bool>());
  EXPECT_EQ(body(again)["run_id"], run["run_id"]);
  EXPECT_EQ(body(again)["new_discrepancies"], 0);

  HttpResult list = call("GET", "/v1/discrepancies?state=open&reason=missing_in_ledger", admin_);
  ASSERT_EQ(list.status, 200u) << list.body;
  json tasks = body(list)["discrepancies"];
  ASSERT_EQ(tasks.size(), 1u) << list.body;
  EXPECT_EQ(tasks[0]["id"], id);
  EXPECT_EQ(tasks[0]["subject"], "bank:1/JP-1/2026-03-30@line 5");  // the BAI2 16 record of the stray debit
  EXPECT_EQ(tasks[0]["detail"], "bank debit 500 JPY on 2026-03-30 matches no payout");
  EXPECT_EQ(tasks[0]["currency"], "JPY");
  EXPECT_EQ(tasks[0]["age_days"], 0);
  EXPECT_EQ(tasks[0]["aging_bucket"], "0-1d");
  EXPECT_EQ(body(list)["aging"]["0-1d"], 1);
  EXPECT_EQ(body(call("GET", "/v1/discrepancies?reason=amount_mismatch", admin_))["discrepancies"].size(), 0u);
  EXPECT_EQ(body(call("GET", "/v1/discrepancies?older_than_days=1", admin_))["discrepancies"].size(), 0u);
  EXPECT_EQ(call("GET", "/v1/discrepancies?state=closed", admin_).status, 422u);

  const HttpResult ack = call("POST", fmt::format("/v1/discrepancies/{}/acknowledge", id), admin_);
  ASSERT_EQ(ack.status, 200u) << ack.body;
  EXPECT_EQ(body(ack)["state"], "acknowledged");
  EXPECT_EQ(body(call("GET", "/v1/discrepancies?state=acknowledged", admin_))["discrepancies"].size(), 1u);

  const HttpResult no_comment = call("POST", fmt::format("/v1/discrepancies/{}/resolve", id), admin_, R"({})");
  EXPECT_EQ(no_comment.status, 422u) << no_comment.body;
  EXPECT_EQ(body(no_comment)["error"]["details"][0]["field"], "comment");
  const HttpResult res = call("POST", fmt::format("/v1/discrepancies/{}/resolve", id), admin_,
                              R"({"comment":"bank fee, booked by hand"})");
  ASSERT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(body(res)["state"], "resolved");
  EXPECT_EQ(body(res)["comment"], "bank fee, booked by hand");
  EXPECT_EQ(call("POST", fmt::format("/v1/discrepancies/{}/resolve", id), admin_, R"({"comment":"x"})").status, 409u);
  EXPECT_EQ(call("POST", "/v1/discrepancies/99999/acknowledge", admin_).status, 404u);

  const HttpResult drift = call("GET", "/v1/drift?last=5", admin_);
  ASSERT_EQ(drift.status, 200u) << drift.body;
  ASSERT_EQ(body(drift)["samples"].size(), 1u) << drift.body;  // the duplicate added no sample
  EXPECT_EQ(body(drift)["samples"][0]["open_count"], 1);
}

TEST_F(ReconApi, MerchantKeysAreForbiddenEveryReconciliationRoute) {
  for (const auto& [method, target] : std::vector<std::pair<std::string, std::string>>{
           {"POST", "/v1/statements"},
           {"GET", "/v1/discrepancies"},
           {"POST", "/v1/discrepancies/1/acknowledge"},
           {"POST", "/v1/discrepancies/1/resolve"},
           {"GET", "/v1/drift"}}) {
    const HttpResult r = call(method, target, merchant_, bai2(reference_), "text/plain");
    EXPECT_EQ(r.status, 403u) << method << " " << target << ": " << r.body;
    EXPECT_EQ(body(r)["error"]["code"], "forbidden");
  }
  EXPECT_EQ(http_request(port_, "GET", "/v1/drift").status, 401u);
}

TEST_F(ReconApi, AMalformedStatementIsRefusedSayingWhereAndNothingIsRecorded) {
  const std::size_t before = body(call("GET", "/v1/drift?last=100", admin_))["samples"].size();
  const HttpResult r = call("POST", "/v1/statements", admin_, bai2(reference_, "87.50"), "text/plain");
  ASSERT_EQ(r.status, 400u) << r.body;
  EXPECT_EQ(body(r)["error"]["code"], "invalid_statement");
  EXPECT_EQ(body(r)["error"]["message"],
            "bai2 line 4: 16: amount '87.50' is not digits (BAI2 amounts have no decimal point: minor units)");
  const HttpResult mt = call("POST", "/v1/statements?format=mt940", admin_, ":20:X\n:25:A\n:60F:C260301EUR1,00\n",
                             "text/plain");
  EXPECT_EQ(mt.status, 400u) << mt.body;
  EXPECT_NE(body(mt)["error"]["message"].get<std::string>().find("mt940"), std::string::npos) << mt.body;
  EXPECT_EQ(call("POST", "/v1/statements?format=pdf", admin_, "x", "text/plain").status, 422u);
  EXPECT_EQ(body(call("GET", "/v1/drift?last=100", admin_))["samples"].size(), before);
}

}  // namespace
}  // namespace settle::testing
