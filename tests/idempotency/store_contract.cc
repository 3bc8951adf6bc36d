#include "store_contract.h"

#include <atomic>
#include <cstdint>
#include <latch>
#include <optional>
#include <set>
#include <source_location>
#include <string_view>
#include <thread>
#include <vector>

namespace settle::idempotency {

void PrintTo(const StoreFactory& factory, std::ostream* os) { *os << factory.name; }

void PrintTo(const Lease& lease, std::ostream* os) {
  *os << "Lease{" << lease.key << ", token " << lease.token << "}";
}

std::string store_factory_name(const ::testing::TestParamInfo<StoreFactory>& info) {
  return info.param.name;
}

void StoreContract::SetUp() {
  store_ = GetParam().make();
  ASSERT_NE(store_, nullptr) << GetParam().name << ": factory made no store";
}

namespace {

using std::chrono::milliseconds;

// Long enough that a store on real time can check "still there" before it
// expires; kPastTtl gives expiry a margin for coarse server clocks.
constexpr milliseconds kTtl{300};
constexpr milliseconds kPastTtl = kTtl + milliseconds(100);
// For races: nothing may expire while threads compete.
constexpr milliseconds kLongTtl{60'000};

constexpr int kRaceThreads = 8;

// The value of a Result, or a test failure at the caller's line and a default
// value, so that one broken call does not crash the whole suite.
template <typename T>
T must(Result<T> r, std::source_location loc = std::source_location::current()) {
  if (r.ok()) return std::move(r).value();
  ADD_FAILURE_AT(loc.file_name(), static_cast<int>(loc.line())) << r.error().to_string();
  return T{};
}

// Keys are prefixed with the test's name so that a store shared between tests
// (one Redis server) cannot leak state from one case into another.
std::string key(std::string_view name) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return std::string(info->test_suite_name()) + "." + info->name() + ":" + std::string(name);
}

TEST_P(StoreContract, FirstPutInsertsSecondReturnsExistingAndDoesNotOverwrite) {
  const std::string k = key("request");
  const PutOutcome first = must(store_->put_if_absent(k, "response-1", kTtl));
  EXPECT_TRUE(first.inserted);

  const PutOutcome second = must(store_->put_if_absent(k, "response-2", kTtl));
  EXPECT_FALSE(second.inserted);
  EXPECT_EQ(second.existing, "response-1");
  EXPECT_EQ(must(store_->get(k)), std::optional<std::string>("response-1"));
}

TEST_P(StoreContract, GetOfMissingKeyReturnsNothing) {
  EXPECT_EQ(must(store_->get(key("never-written"))), std::nullopt);
}

TEST_P(StoreContract, KeysAreIndependent) {
  EXPECT_TRUE(must(store_->put_if_absent(key("a"), "1", kTtl)).inserted);
  EXPECT_TRUE(must(store_->put_if_absent(key("b"), "2", kTtl)).inserted);
  EXPECT_EQ(must(store_->get(key("a"))), std::optional<std::string>("1"));
  EXPECT_EQ(must(store_->get(key("b"))), std::optional<std::string>("2"));
}

TEST_P(StoreContract, ValuesAreBinarySafe) {
  const std::string value("a\0b\xff\n", 5);
  EXPECT_TRUE(must(store_->put_if_absent(key("bytes"), value, kTtl)).inserted);
  EXPECT_EQ(must(store_->get(key("bytes"))), std::optional<std::string>(value));
  EXPECT_EQ(must(store_->put_if_absent(key("bytes"), "other", kTtl)).existing, value);
}

TEST_P(StoreContract, GetAfterTtlExpiryReturnsNothingAndPutSucceedsAgain) {
  const std::string k = key("request");
  ASSERT_TRUE(must(store_->put_if_absent(k, "old", kTtl)).inserted);
  advance(kPastTtl);

  EXPECT_EQ(must(store_->get(k)), std::nullopt);
  const PutOutcome again = must(store_->put_if_absent(k, "new", kTtl));
  EXPECT_TRUE(again.inserted);
  EXPECT_EQ(must(store_->get(k)), std::optional<std::string>("new"));
}

TEST_P(StoreContract, PutOnExpiredKeyWithoutGetInsertsTheNewValue) {
  const std::string k = key("request");
  ASSERT_TRUE(must(store_->put_if_absent(k, "old", kTtl)).inserted);
  advance(kPastTtl);

  EXPECT_TRUE(must(store_->put_if_absent(k, "new", kTtl)).inserted);
  EXPECT_EQ(must(store_->get(k)), std::optional<std::string>("new"));
}

TEST_P(StoreContract, RejectedPutDoesNotRefreshTheTtl) {
  const std::string k = key("request");
  ASSERT_TRUE(must(store_->put_if_absent(k, "first", kTtl)).inserted);
  advance(kTtl / 2);
  ASSERT_FALSE(must(store_->put_if_absent(k, "second", kTtl)).inserted);
  advance(kTtl / 2 + milliseconds(100));

  EXPECT_EQ(must(store_->get(k)), std::nullopt);
}

TEST_P(StoreContract, DeleteIfEqualDeletesOnlyOnEqualValue) {
  const std::string k = key("request");
  ASSERT_TRUE(must(store_->put_if_absent(k, "mine", kTtl)).inserted);

  EXPECT_FALSE(must(store_->delete_if_equal(k, "theirs")));
  EXPECT_EQ(must(store_->get(k)), std::optional<std::string>("mine"));

  EXPECT_TRUE(must(store_->delete_if_equal(k, "mine")));
  EXPECT_EQ(must(store_->get(k)), std::nullopt);
  EXPECT_TRUE(must(store_->put_if_absent(k, "next", kTtl)).inserted);
}

TEST_P(StoreContract, DeleteIfEqualOfMissingOrExpiredKeyDeletesNothing) {
  EXPECT_FALSE(must(store_->delete_if_equal(key("missing"), "x")));

  const std::string k = key("expiring");
  ASSERT_TRUE(must(store_->put_if_absent(k, "x", kTtl)).inserted);
  advance(kPastTtl);
  EXPECT_FALSE(must(store_->delete_if_equal(k, "x")));
}

TEST_P(StoreContract, ReplaceIfEqualReplacesOnlyTheExpectedLiveValue) {
  const std::string k = key("claim");
  ASSERT_TRUE(must(store_->put_if_absent(k, "digest", kTtl)).inserted);
  EXPECT_FALSE(must(store_->replace_if_equal(k, "other", "digest+bus", kTtl)));
  EXPECT_EQ(must(store_->get(k)), std::optional<std::string>("digest"));
  EXPECT_TRUE(must(store_->replace_if_equal(k, "digest", "digest+bus", kTtl)));
  EXPECT_EQ(must(store_->get(k)), std::optional<std::string>("digest+bus"));
  EXPECT_FALSE(must(store_->put_if_absent(k, "digest", kTtl)).inserted) << "still a live key";

  EXPECT_FALSE(must(store_->replace_if_equal(key("missing"), "x", "y", kTtl)));
  EXPECT_EQ(must(store_->get(key("missing"))), std::nullopt) << "an absent key is not created";
  const auto bad = store_->replace_if_equal(k, "digest+bus", "z", milliseconds(0));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
}

// Lengths around 48 bytes (the in-process store keeps values up to that
// inside the entry, longer ones apart): a value read back, compared and
// replaced is the one written, whichever side of the boundary either is on.
TEST_P(StoreContract, ValuesOfAnyLengthAreReadComparedAndReplacedWhole) {
  const std::vector<std::size_t> lengths = {0, 1, 32, 36, 47, 48, 49, 64, 1000};
  for (std::size_t from : lengths) {
    for (std::size_t to : lengths) {
      const std::string k = key("len-" + std::to_string(from) + "-" + std::to_string(to));
      const std::string first(from, 'a');
      std::string second(to, 'b');
      if (!second.empty()) second.back() = 'c';
      ASSERT_TRUE(must(store_->put_if_absent(k, first, kTtl)).inserted);
      EXPECT_EQ(must(store_->put_if_absent(k, "other", kTtl)).existing, first) << from;
      EXPECT_FALSE(must(store_->replace_if_equal(k, first + "x", second, kTtl))) << from << " -> " << to;
      ASSERT_TRUE(must(store_->replace_if_equal(k, first, second, kTtl))) << from << " -> " << to;
      EXPECT_EQ(must(store_->get(k)), std::optional<std::string>(second)) << from << " -> " << to;
      if (first != second) {
        EXPECT_FALSE(must(store_->delete_if_equal(k, first))) << "the old value no longer matches";
      }
      EXPECT_TRUE(must(store_->delete_if_equal(k, second))) << from << " -> " << to;
    }
  }
}

TEST_P(StoreContract, ReplaceIfEqualSetsANewTtlAndNeverRevivesAnExpiredKey) {
  const std::string renewed = key("renewed");
  const std::string lapsed = key("lapsed");
  ASSERT_TRUE(must(store_->put_if_absent(renewed, "a", kTtl)).inserted);
  ASSERT_TRUE(must(store_->put_if_absent(lapsed, "a", kTtl)).inserted);
  advance(kTtl / 2);
  ASSERT_TRUE(must(store_->replace_if_equal(renewed, "a", "b", kTtl)));
  advance(kTtl / 2 + milliseconds(100));
  EXPECT_EQ(must(store_->get(renewed)), std::optional<std::string>("b")) << "the replacement's ttl counts";
  EXPECT_FALSE(must(store_->replace_if_equal(lapsed, "a", "b", kTtl)));
  EXPECT_EQ(must(store_->get(lapsed)), std::nullopt);
}

TEST_P(StoreContract, ReplaceManyAnswersEachItemInOrder) {
  ASSERT_TRUE(must(store_->put_if_absent(key("a"), "1", kTtl)).inserted);
  ASSERT_TRUE(must(store_->put_if_absent(key("b"), "2", kTtl)).inserted);
  const std::string binary("$3\r\nv\0\xff\r\n", 9);
  const std::vector<std::string> keys = {key("a"), key("b"), key("missing"), key("a")};
  const std::vector<ReplaceRequest> items = {
      {keys[0], "1", binary}, {keys[1], "wrong", "x"}, {keys[2], "1", "x"}, {keys[3], binary, "3"}};
  const std::vector<bool> replaced = must(store_->replace_if_equal_many(items, kTtl));
  EXPECT_EQ(replaced, (std::vector<bool>{true, false, false, true})) << "the repeated key sees its earlier item";
  EXPECT_EQ(must(store_->get(key("a"))), std::optional<std::string>("3"));
  EXPECT_EQ(must(store_->get(key("b"))), std::optional<std::string>("2"));
  EXPECT_EQ(must(store_->get(key("missing"))), std::nullopt);
  EXPECT_TRUE(must(store_->replace_if_equal_many({}, kTtl)).empty());

  // More items than a pipeline chunk: each answer stays with its item.
  std::vector<std::string> many_keys;
  for (int i = 0; i < 2500; ++i) many_keys.push_back(key("m" + std::to_string(i)));
  std::vector<PutRequest> puts;
  for (int i = 0; i < 2500; i += 2) puts.push_back({many_keys[static_cast<std::size_t>(i)], "v"});
  ASSERT_EQ(must(store_->put_if_absent_many(puts, kTtl)).size(), puts.size());
  std::vector<ReplaceRequest> many;
  for (const std::string& k : many_keys) many.push_back({k, "v", "w"});
  const std::vector<bool> answers = must(store_->replace_if_equal_many(many, kTtl));
  ASSERT_EQ(answers.size(), many.size());
  for (std::size_t i = 0; i < answers.size(); ++i) ASSERT_EQ(answers[i], i % 2 == 0) << "item " << i;
}

TEST_P(StoreContract, NonPositiveTtlIsInvalidArgument) {
  for (const milliseconds ttl : {milliseconds(0), milliseconds(-5)}) {
    const auto put = store_->put_if_absent(key("k"), "v", ttl);
    ASSERT_FALSE(put.ok());
    EXPECT_EQ(put.error().code, ErrorCode::kInvalidArgument);

    const auto lock = store_->try_lock(key("lock"), ttl);
    ASSERT_FALSE(lock.ok());
    EXPECT_EQ(lock.error().code, ErrorCode::kInvalidArgument);
  }
  EXPECT_EQ(must(store_->get(key("k"))), std::nullopt);

  const std::optional<Lease> lease = must(store_->try_lock(key("held"), kTtl));
  ASSERT_TRUE(lease.has_value());
  const auto extended = store_->extend(*lease, milliseconds(0));
  ASSERT_FALSE(extended.ok());
  EXPECT_EQ(extended.error().code, ErrorCode::kInvalidArgument);
}

TEST_P(StoreContract, LockIsExclusiveUntilUnlock) {
  const std::string k = key("task");
  const std::optional<Lease> first = must(store_->try_lock(k, kTtl));
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->key, k);
  EXPECT_GT(first->token, 0u);

  EXPECT_EQ(must(store_->try_lock(k, kTtl)), std::nullopt);
  EXPECT_TRUE(must(store_->unlock(*first)));

  const std::optional<Lease> second = must(store_->try_lock(k, kTtl));
  ASSERT_TRUE(second.has_value());
  EXPECT_GT(second->token, first->token);
  EXPECT_FALSE(must(store_->unlock(*first))) << "a released lease cannot be released again";
  EXPECT_TRUE(must(store_->unlock(*second)));
}

TEST_P(StoreContract, LockIsExclusiveUntilExpiry) {
  const std::string k = key("task");
  const std::optional<Lease> first = must(store_->try_lock(k, kTtl));
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(must(store_->try_lock(k, kTtl)), std::nullopt);

  advance(kPastTtl);
  const std::optional<Lease> second = must(store_->try_lock(k, kTtl));
  ASSERT_TRUE(second.has_value());
  EXPECT_GT(second->token, first->token);
}

TEST_P(StoreContract, TokensStrictlyIncreaseAcrossKeysAndRegrants) {
  const std::optional<Lease> a1 = must(store_->try_lock(key("a"), kTtl));
  const std::optional<Lease> b1 = must(store_->try_lock(key("b"), kTtl));
  ASSERT_TRUE(a1 && b1);
  EXPECT_GT(b1->token, a1->token);

  ASSERT_TRUE(must(store_->unlock(*a1)));
  const std::optional<Lease> a2 = must(store_->try_lock(key("a"), kTtl));
  ASSERT_TRUE(a2);
  EXPECT_GT(a2->token, b1->token);

  advance(kPastTtl);
  const std::optional<Lease> b2 = must(store_->try_lock(key("b"), kTtl));
  ASSERT_TRUE(b2);
  EXPECT_GT(b2->token, a2->token);
}

TEST_P(StoreContract, StaleLeaseCannotUnlockOrExtendAfterSomeoneElseTookTheKey) {
  const std::string k = key("task");
  const std::optional<Lease> stale = must(store_->try_lock(k, kTtl));
  ASSERT_TRUE(stale);
  advance(kPastTtl);
  const std::optional<Lease> current = must(store_->try_lock(k, kTtl));
  ASSERT_TRUE(current);
  ASSERT_GT(current->token, stale->token);

  EXPECT_FALSE(must(store_->extend(*stale, kTtl)));
  EXPECT_FALSE(must(store_->unlock(*stale)));

  // The current holder is untouched by both attempts.
  EXPECT_EQ(must(store_->try_lock(k, kTtl)), std::nullopt);
  EXPECT_TRUE(must(store_->extend(*current, kTtl)));
  EXPECT_TRUE(must(store_->unlock(*current)));
}

TEST_P(StoreContract, LapsedLeaseCannotBeExtendedEvenIfNobodyTookTheKey) {
  const std::string k = key("task");
  const std::optional<Lease> lapsed = must(store_->try_lock(k, kTtl));
  ASSERT_TRUE(lapsed);
  advance(kPastTtl);

  EXPECT_FALSE(must(store_->extend(*lapsed, kTtl)));
  EXPECT_FALSE(must(store_->unlock(*lapsed)));
  EXPECT_TRUE(must(store_->try_lock(k, kTtl)).has_value());
}

TEST_P(StoreContract, ExtendKeepsTheLeaseAlivePastItsOriginalTtl) {
  const std::string k = key("task");
  const std::optional<Lease> lease = must(store_->try_lock(k, kTtl));
  ASSERT_TRUE(lease);

  advance(kTtl * 2 / 3);
  ASSERT_TRUE(must(store_->extend(*lease, kTtl)));
  advance(kTtl * 2 / 3);  // past the original ttl, inside the extended one

  EXPECT_EQ(must(store_->try_lock(k, kTtl)), std::nullopt);
  EXPECT_TRUE(must(store_->extend(*lease, kTtl)));
  EXPECT_TRUE(must(store_->unlock(*lease)));
}

TEST_P(StoreContract, UnlockOrExtendWithAForeignLeaseChangesNothing) {
  const std::string k = key("task");
  const std::optional<Lease> held = must(store_->try_lock(k, kTtl));
  ASSERT_TRUE(held);

  const Lease forged{k, held->token + 1000};
  EXPECT_FALSE(must(store_->extend(forged, kTtl)));
  EXPECT_FALSE(must(store_->unlock(forged)));
  EXPECT_FALSE(must(store_->unlock(Lease{key("never-locked"), held->token})));

  EXPECT_EQ(must(store_->try_lock(k, kTtl)), std::nullopt);
  EXPECT_TRUE(must(store_->unlock(*held)));
}

std::vector<PutRequest> requests(const std::vector<std::string>& keys,
                                 const std::vector<std::string>& values) {
  std::vector<PutRequest> out;
  for (std::size_t i = 0; i < keys.size(); ++i) out.push_back(PutRequest{keys[i], values[i]});
  return out;
}

TEST_P(StoreContract, BatchClaimsInsertNewKeysAndReturnExistingValuesInOrder) {
  ASSERT_TRUE(must(store_->put_if_absent(key("seen"), "earlier", kTtl)).inserted);
  const std::vector<std::string> keys = {key("new-1"), key("seen"), key("new-2")};
  // Bytes a protocol could trip over: NUL, CR LF, a length-like prefix.
  const std::string binary("$3\r\nv\0\xff\r\n", 9);
  const std::vector<std::string> values = {"v1", "v-seen", binary};

  const std::vector<PutOutcome> outcomes =
      must(store_->put_if_absent_many(requests(keys, values), kTtl));
  ASSERT_EQ(outcomes.size(), 3u);
  EXPECT_TRUE(outcomes[0].inserted);
  EXPECT_FALSE(outcomes[1].inserted);
  EXPECT_EQ(outcomes[1].existing, "earlier");
  EXPECT_TRUE(outcomes[2].inserted);
  EXPECT_EQ(must(store_->get(key("new-1"))), std::optional<std::string>("v1"));
  EXPECT_EQ(must(store_->get(key("seen"))), std::optional<std::string>("earlier"));
  EXPECT_EQ(must(store_->get(key("new-2"))), std::optional<std::string>(binary));
  EXPECT_EQ(must(store_->put_if_absent_many(requests({key("new-2")}, {"again"}), kTtl)).at(0).existing,
            binary);
}

TEST_P(StoreContract, BatchWithARepeatedKeyAnswersLikeClaimsInOrder) {
  const std::vector<std::string> keys = {key("k"), key("other"), key("k")};
  const std::vector<std::string> values = {"first", "x", "second"};
  const std::vector<PutOutcome> outcomes =
      must(store_->put_if_absent_many(requests(keys, values), kTtl));
  ASSERT_EQ(outcomes.size(), 3u);
  EXPECT_TRUE(outcomes[0].inserted);
  EXPECT_TRUE(outcomes[1].inserted);
  EXPECT_FALSE(outcomes[2].inserted);
  EXPECT_EQ(outcomes[2].existing, "first");
}

TEST_P(StoreContract, EmptyBatchReturnsNoOutcomesAndBadTtlIsInvalidArgument) {
  EXPECT_TRUE(must(store_->put_if_absent_many({}, kTtl)).empty());
  const std::vector<std::string> keys = {key("k")};
  const std::vector<std::string> values = {"v"};
  for (const milliseconds ttl : {milliseconds(0), milliseconds(-1)}) {
    const auto r = store_->put_if_absent_many(requests(keys, values), ttl);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  }
  EXPECT_EQ(must(store_->get(key("k"))), std::nullopt);
}

TEST_P(StoreContract, BatchClaimsExpireAfterTheirTtl) {
  const std::vector<std::string> keys = {key("a"), key("b")};
  const std::vector<std::string> values = {"1", "2"};
  ASSERT_EQ(must(store_->put_if_absent_many(requests(keys, values), kTtl)).size(), 2u);
  advance(kPastTtl);
  EXPECT_EQ(must(store_->get(key("a"))), std::nullopt);
  const std::vector<PutOutcome> again =
      must(store_->put_if_absent_many(requests(keys, {"3", "4"}), kTtl));
  ASSERT_EQ(again.size(), 2u);
  EXPECT_TRUE(again[0].inserted && again[1].inserted);
  EXPECT_EQ(must(store_->get(key("b"))), std::optional<std::string>("4"));
}

TEST_P(StoreContract, LargeBatchesRacingOnTheSameKeysGiveEachKeyOneWinner) {
  // Bigger than any sensible pipeline depth, so an implementation that
  // splits a batch must keep each item's answer with its item.
  constexpr int kKeys = 3000;
  constexpr int kThreads = 4;
  std::vector<std::string> keys;
  for (int i = 0; i < kKeys; ++i) keys.push_back(key("evt-" + std::to_string(i)));
  std::vector<std::vector<PutOutcome>> outcomes(kThreads);
  std::vector<std::string> errors(kThreads);
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::string> values;
      for (int i = 0; i < kKeys; ++i) values.push_back("t" + std::to_string(t) + "-" + std::to_string(i));
      const std::vector<PutRequest> batch = requests(keys, values);
      start.arrive_and_wait();
      auto r = store_->put_if_absent_many(batch, kLongTtl);
      if (r.ok()) {
        outcomes[t] = std::move(r).value();
      } else {
        errors[t] = r.error().to_string();
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(errors[t], "") << "thread " << t;
    ASSERT_EQ(outcomes[t].size(), static_cast<std::size_t>(kKeys)) << "thread " << t;
  }
  for (int i = 0; i < kKeys; ++i) {
    int winner = -1;
    for (int t = 0; t < kThreads; ++t) {
      if (!outcomes[t][i].inserted) continue;
      ASSERT_EQ(winner, -1) << "two winners for key " << i;
      winner = t;
    }
    ASSERT_NE(winner, -1) << "no winner for key " << i;
    const std::string winner_value = "t" + std::to_string(winner) + "-" + std::to_string(i);
    for (int t = 0; t < kThreads; ++t) {
      if (t == winner) continue;
      ASSERT_EQ(outcomes[t][i].existing, winner_value) << "key " << i;
    }
  }
}

TEST_P(StoreContract, ManyThreadsRacingPutIfAbsentOnTheSameKeyExactlyOneWins) {
  constexpr int kRounds = 25;
  for (int round = 0; round < kRounds; ++round) {
    const std::string k = key("race-" + std::to_string(round));
    std::latch start(kRaceThreads);
    std::vector<PutOutcome> outcomes(kRaceThreads);
    std::vector<std::string> errors(kRaceThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kRaceThreads; ++t) {
      threads.emplace_back([&, t] {
        start.arrive_and_wait();
        auto r = store_->put_if_absent(k, "writer-" + std::to_string(t), kLongTtl);
        if (r.ok()) {
          outcomes[t] = std::move(r).value();
        } else {
          errors[t] = r.error().to_string();
        }
      });
    }
    for (auto& th : threads) th.join();

    int winners = 0;
    std::string winner_value;
    for (int t = 0; t < kRaceThreads; ++t) {
      ASSERT_EQ(errors[t], "") << "thread " << t;
      if (outcomes[t].inserted) {
        ++winners;
        winner_value = "writer-" + std::to_string(t);
      }
    }
    ASSERT_EQ(winners, 1) << "round " << round;
    for (int t = 0; t < kRaceThreads; ++t) {
      if (!outcomes[t].inserted) {
        EXPECT_EQ(outcomes[t].existing, winner_value) << "thread " << t;
      }
    }
    EXPECT_EQ(must(store_->get(k)), std::optional<std::string>(winner_value));
  }
}

TEST_P(StoreContract, ManyThreadsRacingTryLockAtMostOneHolderAtATime) {
  constexpr int kAttemptsPerThread = 200;
  const std::string k = key("task");
  std::atomic<int> holders{0};
  std::atomic<int> max_holders{0};
  std::atomic<int> grants{0};
  std::atomic<int> failed_calls{0};
  std::atomic<int> failed_unlocks{0};
  std::vector<std::vector<std::uint64_t>> tokens(kRaceThreads);
  std::latch start(kRaceThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kRaceThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < kAttemptsPerThread; ++i) {
        auto r = store_->try_lock(k, kLongTtl);
        if (!r.ok()) {
          failed_calls.fetch_add(1);
          continue;
        }
        if (!r.value().has_value()) continue;
        const Lease lease = *r.value();
        const int now_holding = holders.fetch_add(1) + 1;
        int seen = max_holders.load();
        while (now_holding > seen && !max_holders.compare_exchange_weak(seen, now_holding)) {
        }
        grants.fetch_add(1);
        tokens[t].push_back(lease.token);
        std::this_thread::yield();  // hold it for a moment so overlaps would show
        holders.fetch_sub(1);
        auto u = store_->unlock(lease);
        if (!u.ok() || !u.value()) failed_unlocks.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();

  EXPECT_EQ(failed_calls.load(), 0);
  EXPECT_EQ(failed_unlocks.load(), 0);
  EXPECT_EQ(max_holders.load(), 1);
  EXPECT_GT(grants.load(), 0);
  std::set<std::uint64_t> distinct;
  for (const auto& own : tokens) {
    // One thread's grants follow each other in time, so their tokens increase.
    for (std::size_t i = 1; i < own.size(); ++i) EXPECT_GT(own[i], own[i - 1]);
    distinct.insert(own.begin(), own.end());
  }
  EXPECT_EQ(distinct.size(), static_cast<std::size_t>(grants.load()));
}

TEST_P(StoreContract, ConcurrentGrantsOnDifferentKeysGetDistinctIncreasingTokens) {
  constexpr int kLocksPerThread = 100;
  const std::string prefix = key("");
  std::vector<std::vector<std::uint64_t>> tokens(kRaceThreads);
  std::atomic<int> failures{0};
  std::latch start(kRaceThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kRaceThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < kLocksPerThread; ++i) {
        auto r = store_->try_lock(prefix + std::to_string(t) + "-" + std::to_string(i), kLongTtl);
        if (!r.ok() || !r.value().has_value()) {
          failures.fetch_add(1);
          continue;
        }
        tokens[t].push_back(r.value()->token);
      }
    });
  }
  for (auto& th : threads) th.join();

  EXPECT_EQ(failures.load(), 0);
  std::set<std::uint64_t> distinct;
  for (const auto& own : tokens) {
    for (std::size_t i = 1; i < own.size(); ++i) EXPECT_GT(own[i], own[i - 1]);
    distinct.insert(own.begin(), own.end());
  }
  EXPECT_EQ(distinct.size(), static_cast<std::size_t>(kRaceThreads * kLocksPerThread));
}

}  // namespace
}  // namespace settle::idempotency
