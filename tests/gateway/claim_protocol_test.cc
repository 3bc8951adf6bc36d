// The gateway's per-event dedup protocol against a real embedded bus, ledger
// and in-process store: an event's claim holds its content's digest until
// the bus has the event, then the digest marked "on the bus"; only a marked
// claim makes a repeat a duplicate. A bare claim (a gateway that died
// between its claim and its append) lets the repeat be appended again, and
// the marks an earlier version kept under keys of their own still count.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bus/file_log_bus.h"
#include "gateway/api.h"
#include "idempotency/memory_store.h"
#include "ledger/sqlite_ledger.h"
#include "model/event_json.h"
#include "processor/topics.h"
#include "support/process.h"

namespace settle::gateway {
namespace {

constexpr std::string_view kOnBus = "|bus";
constexpr auto kTtl = std::chrono::hours(1);

class ClaimProtocol : public ::testing::Test {
 protected:
  void SetUp() override {
    bus::FileLogOptions bo;
    bo.dir = dir_.path() / "bus";
    bus_ = std::move(bus::FileLogBus::open(bo)).value();
    ASSERT_TRUE(bus_->create_topic({processor::kEventsTopic, 1, false}).ok());
    ledger::SqliteLedgerOptions lo;
    lo.path = dir_.path() / "ledger.db";
    ledger_ = std::move(ledger::SqliteLedger::open(lo)).value();
    auto api = Api::open(*bus_, *ledger_, store_);
    ASSERT_TRUE(api.ok()) << api.error().to_string();
    api_ = std::move(api).value();
  }

  static model::Event event(const std::string& id, int amount) {
    model::EventParser parser;
    return parser
        .parse(R"({"event_id":")" + id + R"(","merchant_id":"m1","type":"capture","amount":)" +
               std::to_string(amount) + R"(,"currency":"EUR","occurred_at":"2026-03-30T10:00:00Z"})")
        .value();
  }

  Verdict send(const model::Event& e) {
    auto verdicts = api_->claim_and_append({e}, "test");
    EXPECT_TRUE(verdicts.ok()) << verdicts.error().to_string();
    return verdicts.ok() ? verdicts->front() : Verdict::kConflict;
  }

  std::int64_t on_bus() { return bus_->end_offset(processor::kEventsTopic, 0).value(); }
  std::string claim(const std::string& id) { return store_.get("ev|m1|" + id).value().value_or(""); }

  testing::TempDir dir_{"claim-protocol"};
  std::unique_ptr<bus::FileLogBus> bus_;
  std::unique_ptr<ledger::SqliteLedger> ledger_;
  idempotency::MemoryStore store_;
  std::unique_ptr<Api> api_;
};

TEST_F(ClaimProtocol, AnAcceptedEventIsOneStoreEntryMarkedOnTheBus) {
  const std::size_t before = store_.size();
  EXPECT_EQ(send(event("e1", 100)), Verdict::kAccepted);
  EXPECT_EQ(on_bus(), 1);
  EXPECT_EQ(store_.size(), before + 1) << "the mark replaces the claim's value, no second key";
  const std::string value = claim("e1");
  ASSERT_TRUE(value.ends_with(kOnBus)) << value;
  const std::string digest = value.substr(0, value.size() - kOnBus.size());
  EXPECT_GE(digest.size(), 32u);
  EXPECT_EQ(digest.find_first_not_of("0123456789abcdef"), std::string::npos) << "the content's digest in hex";

  EXPECT_EQ(send(event("e1", 100)), Verdict::kDuplicate);
  EXPECT_EQ(send(event("e1", 999)), Verdict::kConflict) << "a marked claim of other content";
  EXPECT_EQ(on_bus(), 1);
}

TEST_F(ClaimProtocol, ABareClaimLetsTheRepeatBeAppendedAgainAndMarksIt) {
  ASSERT_EQ(send(event("e2", 100)), Verdict::kAccepted);
  // As a gateway that died after its claim and before its append leaves it.
  const std::string marked = claim("e2");
  const std::string digest = marked.substr(0, marked.size() - kOnBus.size());
  ASSERT_TRUE(store_.replace_if_equal("ev|m1|e2", marked, digest, kTtl).value());

  EXPECT_EQ(send(event("e2", 100)), Verdict::kAccepted) << "the bus may never have had it";
  EXPECT_EQ(on_bus(), 2) << "appended again; the ledger's identity settles it once";
  EXPECT_EQ(claim("e2"), marked);
  EXPECT_EQ(send(event("e2", 100)), Verdict::kDuplicate);
  EXPECT_EQ(send(event("e2", 7)), Verdict::kConflict) << "a bare claim of other content";
  EXPECT_EQ(on_bus(), 2);
}

TEST_F(ClaimProtocol, AMarkUnderTheEarlierSeparateKeyStillMakesADuplicate) {
  ASSERT_EQ(send(event("e3", 100)), Verdict::kAccepted);
  const std::string marked = claim("e3");
  const std::string digest = marked.substr(0, marked.size() - kOnBus.size());
  // What a version before this one stored: a bare claim and a mark of its own.
  ASSERT_TRUE(store_.replace_if_equal("ev|m1|e3", marked, digest, kTtl).value());
  ASSERT_TRUE(store_.put_if_absent("evb|m1|e3", "1", kTtl).value().inserted);

  EXPECT_EQ(send(event("e3", 100)), Verdict::kDuplicate);
  EXPECT_EQ(on_bus(), 1);
}

TEST_F(ClaimProtocol, OneCallWithAnEventTwiceAppendsItOnce) {
  auto verdicts = api_->claim_and_append({event("e4", 100), event("e4", 100), event("e5", 1)}, "test");
  ASSERT_TRUE(verdicts.ok()) << verdicts.error().to_string();
  EXPECT_EQ(*verdicts, (std::vector<Verdict>{Verdict::kAccepted, Verdict::kDuplicate, Verdict::kAccepted}));
  EXPECT_EQ(on_bus(), 2);
  EXPECT_TRUE(claim("e4").ends_with(kOnBus));
  EXPECT_TRUE(claim("e5").ends_with(kOnBus));
}

// A Lane that keeps what is posted to it until the test runs it.
class HeldLane : public Lane {
 public:
  void post(std::function<void()> work) override {
    std::lock_guard lock(mu_);
    work_.push_back(std::move(work));
  }
  // Waits (up to 10 s) until something was posted; false if nothing was.
  bool wait_for_work() {
    for (int i = 0; i < 1000; ++i) {
      {
        std::lock_guard lock(mu_);
        if (!work_.empty()) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  std::size_t posts() {
    std::lock_guard lock(mu_);
    return work_.size();
  }
  void run() {
    std::vector<std::function<void()>> work;
    {
      std::lock_guard lock(mu_);
      work.swap(work_);
    }
    for (auto& w : work) w();
  }

 private:
  std::mutex mu_;
  std::vector<std::function<void()>> work_;
};

TEST_F(ClaimProtocol, WithALaneTheMarkAndTheVerdictWaitForTheLanesThread) {
  HeldLane lane;
  std::optional<Result<std::vector<Verdict>>> decided;
  api_->claim_and_append_async({event("e6", 100)}, "test", {},
                               [&decided](Result<std::vector<Verdict>> r) { decided = std::move(r); }, &lane);
  ASSERT_TRUE(lane.wait_for_work()) << "the committer hands the completion to the lane";
  EXPECT_EQ(lane.posts(), 1u);
  EXPECT_EQ(on_bus(), 1) << "durable before the lane hears of it";
  EXPECT_FALSE(decided.has_value()) << "nothing is decided on the committer's thread";
  EXPECT_FALSE(claim("e6").ends_with(kOnBus)) << "the mark too waits for the lane";

  lane.run();
  ASSERT_TRUE(decided.has_value());
  ASSERT_TRUE(decided->ok()) << decided->error().to_string();
  EXPECT_EQ(**decided, std::vector<Verdict>{Verdict::kAccepted});
  EXPECT_TRUE(claim("e6").ends_with(kOnBus));
  EXPECT_EQ(send(event("e6", 100)), Verdict::kDuplicate);
}

}  // namespace
}  // namespace settle::gateway
