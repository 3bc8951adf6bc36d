// GroupAppender: callers do not wait for the bus, completions run only once
// the records are durable, concurrent callers share one append, and a stop
// appends what was queued.
#include "gateway/group_appender.h"

#include <gtest/gtest.h>
#include <sched.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "bus/file_log_bus.h"
#include "support/forwarding_bus.h"
#include "support/process.h"

namespace settle::gateway {
namespace {

// The embedded bus, with a gate that can hold append() before it starts:
// the test sees what callers and completions do while an append is running.
class GatedBus : public testing::ForwardingBus {
 public:
  explicit GatedBus(bus::Bus& inner) : ForwardingBus(inner) {}

  void close_gate() {
    std::lock_guard lock(mu_);
    open_ = false;
  }
  void open_gate() {
    {
      std::lock_guard lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  // Waits until an append() is held at the closed gate.
  void wait_held() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return held_ > 0; });
  }
  int appends() const { return appends_.load(); }

  Result<std::vector<bus::Position>> append(std::string_view t, std::span<const bus::Record> r) override {
    {
      std::unique_lock lock(mu_);
      ++held_;
      cv_.notify_all();
      cv_.wait(lock, [&] { return open_; });
      --held_;
    }
    ++appends_;
    return ForwardingBus::append(t, r);
  }
 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;
  int held_ = 0;
  std::atomic<int> appends_{0};
};

std::vector<bus::Record> records(int n, const std::string& prefix) {
  std::vector<bus::Record> out;
  for (int i = 0; i < n; ++i) out.push_back(bus::Record{prefix + std::to_string(i), "v", {}, 1});
  return out;
}

// Counts completions and keeps their results.
struct Completions {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Status> results;

  GroupAppender::Done add() {
    return [this](const Status& st) {
      std::lock_guard lock(mu);
      results.push_back(st);
      cv.notify_all();
    };
  }
  std::size_t count() {
    std::lock_guard lock(mu);
    return results.size();
  }
  void wait_for(std::size_t n) {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return results.size() >= n; });
  }
};

class GroupAppenderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bus::FileLogOptions o;
    o.dir = dir_.path() / "bus";
    auto opened = bus::FileLogBus::open(o);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    file_bus_ = std::move(opened).value();
    ASSERT_TRUE(file_bus_->create_topic({"events", 1, false}).ok());
    bus_ = std::make_unique<GatedBus>(*file_bus_);
  }
  std::int64_t on_bus() { return *file_bus_->end_offset("events", 0); }

  testing::TempDir dir_{"group-appender"};
  std::unique_ptr<bus::FileLogBus> file_bus_;
  std::unique_ptr<GatedBus> bus_;
};

TEST_F(GroupAppenderTest, ACallerReturnsAtOnceAndItsCompletionRunsOnlyOnceTheRecordsAreOnTheBus) {
  GroupAppender appender(*bus_, "events");
  Completions done;
  bus_->close_gate();
  appender.append_async(records(3, "a"), done.add());  // returns while the append is held
  bus_->wait_held();
  EXPECT_EQ(done.count(), 0u);
  EXPECT_EQ(on_bus(), 0);
  bus_->open_gate();
  done.wait_for(1);
  EXPECT_TRUE(done.results[0].ok());
  EXPECT_EQ(on_bus(), 3);  // durable before the completion ran
}

TEST_F(GroupAppenderTest, CallersArrivingDuringAnAppendShareTheNextOne) {
  GroupAppender appender(*bus_, "events");
  Completions done;
  bus_->close_gate();
  appender.append_async(records(1, "first"), done.add());
  bus_->wait_held();
  for (int i = 0; i < 5; ++i) appender.append_async(records(2, "q" + std::to_string(i) + "-"), done.add());
  bus_->open_gate();
  done.wait_for(6);
  EXPECT_EQ(bus_->appends(), 2);  // the first alone, then the five queued behind it together
  EXPECT_EQ(on_bus(), 11);
  for (const Status& st : done.results) EXPECT_TRUE(st.ok());
}

TEST_F(GroupAppenderTest, StoppingAppendsEverythingQueuedAndRunsEveryCompletion) {
  Completions done;
  {
    GroupAppender appender(*bus_, "events");
    bus_->close_gate();
    appender.append_async(records(1, "held"), done.add());
    bus_->wait_held();
    for (int i = 0; i < 20; ++i) appender.append_async(records(1, "s" + std::to_string(i)), done.add());
    bus_->open_gate();
  }  // the destructor waits for the queue
  EXPECT_EQ(done.count(), 21u);
  EXPECT_EQ(on_bus(), 21);
}

TEST_F(GroupAppenderTest, DrainWaitsForTheAppendsQueuedBeforeIt) {
  GroupAppender appender(*bus_, "events");
  Completions done;
  for (int i = 0; i < 10; ++i) appender.append_async(records(1, "d" + std::to_string(i)), done.add());
  appender.drain();
  EXPECT_EQ(done.count(), 10u);
  EXPECT_EQ(on_bus(), 10);
}

TEST_F(GroupAppenderTest, AFailedAppendIsEveryCallersInItsGroup) {
  GroupAppender appender(*bus_, "no-such-topic");
  Completions done;
  bus_->close_gate();
  appender.append_async(records(1, "x"), done.add());
  bus_->wait_held();
  appender.append_async(records(1, "y"), done.add());
  appender.append_async(records(1, "z"), done.add());
  bus_->open_gate();
  done.wait_for(3);
  for (const Status& st : done.results) EXPECT_FALSE(st.ok());
  std::vector<bus::Record> more = records(1, "w");
  EXPECT_FALSE(appender.append(more).ok());  // the blocking form says the same
}

TEST_F(GroupAppenderTest, TheCommitterIsABatchThreadSoWakingItPreemptsNoCaller) {
  GroupAppender appender(*bus_, "events");
  std::atomic<int> policy{-1};
  Completions done;
  auto note = done.add();
  appender.append_async(records(1, "p"), [&policy, note](const Status& st) {
    policy = sched_getscheduler(0);  // completions run on the committer thread
    note(st);
  });
  done.wait_for(1);
  EXPECT_TRUE(done.results[0].ok());
  EXPECT_EQ(policy.load(), SCHED_BATCH);
  EXPECT_EQ(sched_getscheduler(0), SCHED_OTHER) << "the caller's thread keeps its policy";
}

TEST_F(GroupAppenderTest, WithALingerWhatArrivesWithinItJoinsOneAppend) {
  using namespace std::chrono_literals;
  const auto linger = 300ms;
  GroupAppender appender(*bus_, "events", 16384, {}, linger);
  Completions done;
  const auto start = std::chrono::steady_clock::now();
  appender.append_async(records(1, "first"), done.add());
  done.wait_for(1);  // the first append does not wait: none came before it
  EXPECT_LT(std::chrono::steady_clock::now() - start, linger);
  for (int i = 0; i < 5; ++i) {
    appender.append_async(records(1, "l" + std::to_string(i)), done.add());
    std::this_thread::sleep_for(10ms);
  }
  done.wait_for(6);
  EXPECT_GE(std::chrono::steady_clock::now() - start, linger) << "the second append waited for the linger";
  EXPECT_EQ(bus_->appends(), 2) << "the five callers within the linger shared one append";
  EXPECT_EQ(on_bus(), 6);
}

TEST_F(GroupAppenderTest, DrainDoesNotWaitForTheLinger) {
  using namespace std::chrono_literals;
  GroupAppender appender(*bus_, "events", 16384, {}, std::chrono::milliseconds(60'000));
  Completions done;
  appender.append_async(records(1, "a"), done.add());
  done.wait_for(1);
  appender.append_async(records(1, "b"), done.add());  // would wait a minute
  const auto start = std::chrono::steady_clock::now();
  appender.drain();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  EXPECT_EQ(done.count(), 2u);
  EXPECT_EQ(on_bus(), 2);
}

}  // namespace
}  // namespace settle::gateway
