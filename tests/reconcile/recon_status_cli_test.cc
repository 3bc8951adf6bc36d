// Statuses from the reconciliation commands: `settled recon run` and `recon
// resolve` publish them on the Kafka bus --bus names (the Kafka mock), and on
// a data directory's embedded bus when no process holds it; while one does
// (a running `settled all`), they say so and point to the gateway's recon API.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "bus/file_log_bus.h"
#include "bus/kafka_bus.h"
#include "model/status_update.h"
#include "processor/topics.h"
#include "support/cli.h"
#include "support/kafka_mock.h"

namespace settle {
namespace {

namespace fs = std::filesystem;

using model::StatusKind;
using model::StatusUpdate;
using testing::CliRun;

// A bank statement over March without the fixture's EUR payout (68.20, due
// 2026-03-29): one missing_in_statement discrepancy for m-eur's batch of
// 2026-03-28.
constexpr const char* kStatement = R"(<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt>
<GrpHdr><MsgId>ST-1</MsgId><CreDtTm>2026-04-05T22:00:00Z</CreDtTm></GrpHdr>
<Stmt><Id>ST-1</Id><FrToDt><FrDtTm>2026-03-01T00:00:00Z</FrDtTm><ToDtTm>2026-04-05T23:59:59Z</ToDtTm></FrToDt>
<Acct><Id><IBAN>DE89370400440532013000</IBAN></Id><Ccy>EUR</Ccy></Acct>
</Stmt></BkToCstmrStmt></Document>
)";

class ReconStatusCli : public testing::CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    data_ = dir() / "data";
    const fs::path fx = testing::e2e_fixtures() / "basic";
    const CliRun s = settled("settle --quiet --merchants " + (fx / "merchants.json").string() + " --events " +
                             (fx / "events.ndjson").string() + " --through 2026-03-29 --data-dir " + data_.string());
    ASSERT_EQ(s.exit_code, 0) << s.err;
    statement_ = write("statement.xml", kStatement);
  }

  CliRun recon_run(const std::string& extra = {}) {
    return settled("recon run --data-dir " + data_.string() + " --statement " + statement_.string() +
                   " --today 2026-04-05 " + extra);
  }

  // Every status update on `bus` from the per-partition offsets in `from`
  // (updated), waiting up to 10 s for at least `want`.
  static std::vector<StatusUpdate> statuses(bus::Bus& bus, std::vector<std::int64_t>& from, std::size_t want) {
    std::vector<StatusUpdate> out;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
      for (std::size_t p = 0; p < from.size(); ++p) {
        auto recs = bus.read(processor::kStatusTopic, static_cast<std::int32_t>(p), from[p], 1000);
        if (!recs.ok()) continue;
        for (const bus::StoredRecord& r : *recs) {
          auto u = model::parse_status_json(r.value);
          EXPECT_TRUE(u.ok()) << r.value;
          if (u.ok()) out.push_back(*u);
          from[p] = r.offset + 1;
        }
      }
      if (out.size() >= want || std::chrono::steady_clock::now() > deadline) return out;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  static const StatusUpdate* find(const std::vector<StatusUpdate>& us, StatusKind kind) {
    for (const StatusUpdate& u : us) {
      if (u.kind == kind) return &u;
    }
    return nullptr;
  }

  // The discrepancy of the run and the merchant's open count after it.
  static void expect_discrepancy(const std::vector<StatusUpdate>& us, const std::string& state, std::int64_t open) {
    const StatusUpdate* b = find(us, StatusKind::kBatchDiscrepancy);
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(b->merchant_id, "m-eur");
    ASSERT_TRUE(b->batch.has_value());
    EXPECT_EQ(b->batch->to_string(), "m-eur/2026-03-28/EUR");
    EXPECT_EQ(b->payout, 6820);
    ASSERT_EQ(b->discrepancies.size(), 1u);
    EXPECT_EQ(b->discrepancies[0].reason, "missing_in_statement");
    EXPECT_EQ(b->discrepancies[0].state, state);
    const StatusUpdate* m = find(us, StatusKind::kMerchantDiscrepancies);
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(m->merchant_id, "m-eur");
    EXPECT_EQ(m->open_discrepancies, open);
  }

  fs::path data_;
  fs::path statement_;
};

TEST_F(ReconStatusCli, RunAndResolvePublishTheirStatusesOnTheKafkaBusTheyAreGiven) {
  testing::KafkaMock mock;  // its own cluster: the status topic's name is fixed
  auto kafka = bus::KafkaBus::open(mock.url());
  ASSERT_TRUE(kafka.ok()) << kafka.error().message;
  ASSERT_TRUE((*kafka)->create_topic({processor::kStatusTopic, 2, false}).ok());
  std::vector<std::int64_t> from(2, 0);

  const CliRun run = recon_run("--bus '" + mock.url() + "'");
  ASSERT_EQ(run.exit_code, 1) << run.out << run.err;  // findings
  EXPECT_NE(run.err.find("settled recon run: 2 status updates published"), std::string::npos) << run.err;
  expect_discrepancy(statuses(**kafka, from, 2), "open", 1);

  const CliRun res =
      settled("recon resolve 1 --comment 'paid late' --data-dir " + data_.string() + " --bus '" + mock.url() + "'");
  ASSERT_EQ(res.exit_code, 0) << res.err;
  EXPECT_NE(res.err.find("2 status updates published"), std::string::npos) << res.err;
  expect_discrepancy(statuses(**kafka, from, 2), "resolved", 0);
}

TEST_F(ReconStatusCli, OnTheEmbeddedBusTheyPublishUnlessARunningProcessHoldsIt) {
  const CliRun run = recon_run();
  ASSERT_EQ(run.exit_code, 1) << run.err;
  EXPECT_NE(run.err.find("2 status updates published"), std::string::npos) << run.err;
  {
    // What `settled all` does on this data directory: hold its bus.
    bus::FileLogOptions o;
    o.dir = data_ / "bus";
    auto held = bus::FileLogBus::open(o);
    ASSERT_TRUE(held.ok()) << held.error().message;
    std::vector<std::int64_t> from(static_cast<std::size_t>(*(*held)->partition_count(processor::kStatusTopic)), 0);
    expect_discrepancy(statuses(**held, from, 2), "open", 1);

    const CliRun ack = settled("recon ack 1 --data-dir " + data_.string());
    ASSERT_EQ(ack.exit_code, 0) << ack.err;  // the acknowledgement stands
    EXPECT_NE(ack.out.find("discrepancy 1: acknowledged"), std::string::npos) << ack.out;
    EXPECT_NE(ack.err.find("no status updates published"), std::string::npos) << ack.err;
    EXPECT_NE(ack.err.find("settled all"), std::string::npos) << ack.err;
    EXPECT_NE(ack.err.find("POST /v1/discrepancies/{id}/acknowledge"), std::string::npos) << ack.err;
    EXPECT_TRUE(statuses(**held, from, 0).empty());
  }
  // Given back: resolving publishes again.
  const CliRun res = settled("recon resolve 1 --comment 'paid late' --data-dir " + data_.string());
  ASSERT_EQ(res.exit_code, 0) << res.err;
  EXPECT_NE(res.err.find("2 status updates published"), std::string::npos) << res.err;
}

TEST_F(ReconStatusCli, ABusThatIsNotKafkaIsRefusedBeforeAnythingIsRecorded) {
  const CliRun run = recon_run("--bus redis://127.0.0.1:1");
  EXPECT_EQ(run.exit_code, 2) << run.err;
  EXPECT_NE(run.err.find("--bus: expected kafka://"), std::string::npos) << run.err;
  const CliRun list = settled("recon discrepancies --data-dir " + data_.string());
  EXPECT_EQ(list.out.find("missing_in_statement"), std::string::npos) << list.out;
}

}  // namespace
}  // namespace settle
