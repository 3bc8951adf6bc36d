// The ledger port's contract (src/ledger/ledger.h), for any implementation.
#include "ledger_contract.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "common/time.h"
#include "model/batch.h"
#include "model/event.h"
#include "model/journal.h"
#include "model/merchant.h"
#include "rules/rules.h"

namespace settle::model {
// Readable failures: a summary prints as its report row plus the fees per type.
inline void PrintTo(const BatchSummary& s, std::ostream* os) {
  *os << rules::report_row(s) << " fees[" << s.totals.to_string() << "]";
}
}  // namespace settle::model

namespace settle::ledger {

void PrintTo(const LedgerFactory& factory, std::ostream* os) { *os << factory.name; }

std::string ledger_factory_name(const ::testing::TestParamInfo<LedgerFactory>& info) {
  return info.param.name;
}

void LedgerContract::SetUp() {
  std::string dir = (std::filesystem::temp_directory_path() / "settle-ledger-XXXXXX").string();
  ASSERT_NE(::mkdtemp(dir.data()), nullptr) << "cannot create a scratch directory";
  scratch_ = dir;
  ledger_ = GetParam().open(scratch_);
  ASSERT_NE(ledger_, nullptr) << "the factory could not open a ledger in " << scratch_;
}

void LedgerContract::TearDown() {
  ledger_.reset();
  if (!scratch_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(scratch_, ec);
  }
}

void LedgerContract::reopen() {
  ledger_.reset();
  ledger_ = GetParam().open(scratch_);
  ASSERT_NE(ledger_, nullptr) << "the factory could not reopen the ledger in " << scratch_;
}

namespace {

using model::BatchKey;
using model::BatchSummary;
using model::ControlTotals;
using model::Event;
using model::EventType;
using model::Journal;
using model::Merchant;

// Test plumbing: an unexpected error fails the test with its message
// (GoogleTest reports the exception) instead of aborting the binary.
template <typename T>
T must(Result<T> r) {
  if (!r.ok()) throw std::runtime_error("unexpected error: " + r.error().to_string());
  return std::move(r).value();
}

void must(const Status& s) {
  if (!s.ok()) throw std::runtime_error("unexpected error: " + s.error().to_string());
}

// Days of March 2026.
Date day(unsigned d) { return date_from_civil(2026, 3, d); }

// Fees: capture 2.9% + 30, refund 15, chargeback 1500, reversal free. UTC,
// cut-off midnight, paid the next day.
Merchant merchant(const std::string& id, std::int64_t reserve_bps = 0, int reserve_days = 0) {
  Merchant m;
  m.id = MerchantId(id);
  m.delay_days = 1;
  m.fees[static_cast<std::size_t>(EventType::kCapture)] = {290, 30};
  m.fees[static_cast<std::size_t>(EventType::kRefund)] = {0, 15};
  m.fees[static_cast<std::size_t>(EventType::kChargeback)] = {0, 1500};
  m.fees[static_cast<std::size_t>(EventType::kChargebackReversal)] = {0, 0};
  m.reserve_bps = reserve_bps;
  m.reserve_days = reserve_days;
  return m;
}

Event event(const Merchant& m, const std::string& id, EventType type, Minor amount, Date on,
            const std::string& currency = "USD") {
  Event e;
  e.merchant_id = m.id;
  e.event_id = EventId(id);
  e.type = type;
  e.amount = amount;
  e.currency = currency;
  e.occurred_at = Timestamp{static_cast<std::int64_t>(on.days) * kNsPerDay + 12 * 3600 * kNsPerSecond};
  return e;
}

// The event's journal, settling in its own batch, or late in `late_into`.
Journal journal(const Merchant& m, const Event& e, std::optional<Date> late_into = std::nullopt) {
  const Date batch_date = rules::batch_date_of(m, e.occurred_at);
  return must(rules::event_journal(e, m, batch_date, late_into.value_or(batch_date),
                                   late_into.has_value()));
}

Journal capture(const Merchant& m, const std::string& id, Minor amount, Date on,
                const std::string& currency = "USD") {
  return journal(m, event(m, id, EventType::kCapture, amount, on, currency));
}

std::vector<PostOutcome> post(Ledger& l, const std::vector<Journal>& journals,
                              const std::vector<Checkpoint>& checkpoints = {}) {
  return must(l.post(journals, checkpoints));
}

// What a settlement worker does: totals recomputed by the ledger, the batch
// settled per the rules on the ledger's history, and closed.
rules::BatchOutcome settle(Ledger& l, const Merchant& m, Date d, const std::string& currency = "USD",
                           std::uint64_t token = 1) {
  const BatchKey key{m.id, d, currency};
  const ControlTotals totals = must(l.settling_totals(key));
  const BatchHistory history = must(l.batch_history(m.id.view(), currency));
  std::vector<rules::HeldReserve> holds;
  for (const auto& h : history.unreleased) holds.push_back({h.batch_date, h.amount});
  rules::BatchOutcome out = must(rules::settle_batch(m, key, totals, history.carry_out, holds));
  const std::vector<Journal> journals = rules::batch_journals(out.summary);
  const CloseOutcome closed = must(l.close_batch(out.summary, out.released, journals, token));
  EXPECT_EQ(closed, CloseOutcome::kClosed) << key.to_string();
  return out;
}

// The balance of an account (0 when it has no postings).
Minor balance(Ledger& l, const std::string& account, const std::string& currency = "USD") {
  for (const Balance& b : must(l.balances(std::nullopt))) {
    if (b.account == account && b.currency == currency) return b.balance;
  }
  return 0;
}

std::vector<PostingRow> all_postings(Ledger& l) {
  PostingQuery q;
  q.limit = 10'000'000;
  return must(l.postings(q));
}

// Everything a client can read back, as text: a refused call must leave it
// exactly as it was.
std::string dump(Ledger& l) {
  std::ostringstream o;
  for (const Balance& b : must(l.balances(std::nullopt))) {
    o << "balance " << b.account << ' ' << b.currency << ' ' << b.balance << ' ' << b.postings
      << '\n';
  }
  for (const TrialBalance& t : must(l.trial_balance())) {
    o << "trial " << t.currency << ' ' << t.debits << ' ' << t.credits << ' ' << t.net << '\n';
  }
  for (const BatchSummary& s : must(l.closed_batches(BatchQuery{}))) {
    o << "batch " << rules::report_row(s) << ' ' << s.totals.to_string() << '\n';
  }
  for (const PostingRow& p : all_postings(l)) {
    o << "posting " << p.merchant_id << ' ' << p.ref << ' ' << p.kind << ' ' << p.account << ' '
      << p.currency << ' ' << p.amount << ' ' << format_date(p.batch_date) << ' '
      << format_date(p.settle_date) << ' ' << p.late << '\n';
  }
  return o.str();
}

// The §6 consequences, over the closed batches of one merchant and currency,
// when every posted event of theirs is in a closed batch.
void expect_consequences(Ledger& l, const Merchant& m, const std::string& currency) {
  const auto batches = must(l.closed_batches(BatchQuery{m.id.str(), std::nullopt, std::nullopt}));
  Minor held = 0;
  Minor released = 0;
  Minor last_carry = 0;
  for (const BatchSummary& s : batches) {
    if (s.key.currency != currency) continue;
    held += s.reserve_held;
    released += s.reserve_released;
    last_carry = s.carry_out;
  }
  EXPECT_EQ(balance(l, "merchant:" + m.id.str() + ":payable", currency), -last_carry);
  EXPECT_EQ(balance(l, "merchant:" + m.id.str() + ":reserve", currency), -(held - released));
}

Minor total_payouts(Ledger& l, const std::string& currency) {
  Minor sum = 0;
  for (const BatchSummary& s : must(l.closed_batches(BatchQuery{}))) {
    if (s.key.currency == currency) sum += s.payout;
  }
  return sum;
}

void expect_balanced(Ledger& l) {
  for (const TrialBalance& t : must(l.trial_balance())) {
    EXPECT_EQ(t.net, 0) << t.currency;
    EXPECT_EQ(t.debits, -t.credits) << t.currency;
    EXPECT_GE(t.debits, 0) << t.currency;
  }
}

bool has_code(const Error& e, ErrorCode code) { return e.code == code; }

}  // namespace

// --- post -------------------------------------------------------------------

TEST_P(LedgerContract, NewJournalIsPostedAndItsLegsAppearInBalances) {
  const Merchant m = merchant("m1");
  const Journal j = capture(m, "pay_1", 10000, day(2));  // fee 290 + 30
  EXPECT_EQ(post(ledger(), {j}), std::vector<PostOutcome>{PostOutcome::kPosted});

  EXPECT_EQ(balance(ledger(), "platform:clearing"), 10000);
  EXPECT_EQ(balance(ledger(), "merchant:m1:payable"), -9680);
  EXPECT_EQ(balance(ledger(), "platform:fees"), -320);
  const auto balances = must(ledger().balances(std::nullopt));
  ASSERT_EQ(balances.size(), 3U);
  for (const Balance& b : balances) {
    EXPECT_EQ(b.postings, 1) << b.account;
    EXPECT_EQ(b.currency, "USD");
  }

  const auto rows = all_postings(ledger());
  ASSERT_EQ(rows.size(), 3U);
  const std::vector<std::pair<std::string, Minor>> legs = {
      {"platform:clearing", 10000}, {"merchant:m1:payable", -9680}, {"platform:fees", -320}};
  for (std::size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i].account, legs[i].first);
    EXPECT_EQ(rows[i].amount, legs[i].second);
    EXPECT_EQ(rows[i].merchant_id, "m1");
    EXPECT_EQ(rows[i].ref, "pay_1");
    EXPECT_EQ(rows[i].kind, "capture");
    EXPECT_EQ(rows[i].currency, "USD");
    EXPECT_EQ(rows[i].batch_date, day(2));
    EXPECT_EQ(rows[i].settle_date, day(2));
    EXPECT_FALSE(rows[i].late);
  }
  expect_balanced(ledger());
}

TEST_P(LedgerContract, RepostingSameIdentityAndDigestIsDuplicateAndChangesNoBalance) {
  const Merchant m = merchant("m1");
  const Event e = event(m, "pay_1", EventType::kCapture, 10000, day(2));
  ASSERT_EQ(post(ledger(), {journal(m, e)}), std::vector<PostOutcome>{PostOutcome::kPosted});
  const std::string before = dump(ledger());

  // Rebuilt from the same event: a redelivery.
  EXPECT_EQ(post(ledger(), {journal(m, e)}), std::vector<PostOutcome>{PostOutcome::kDuplicate});
  EXPECT_EQ(dump(ledger()), before);
  EXPECT_EQ(balance(ledger(), "platform:clearing"), 10000);
}

TEST_P(LedgerContract, SameIdentityWithDifferentDigestIsConflictAndStoredJournalIsUnchanged) {
  const Merchant m = merchant("m1");
  ASSERT_EQ(post(ledger(), {capture(m, "pay_1", 10000, day(2))}),
            std::vector<PostOutcome>{PostOutcome::kPosted});
  const std::string before = dump(ledger());

  const Journal changed = capture(m, "pay_1", 20000, day(2));
  EXPECT_EQ(post(ledger(), {changed}), std::vector<PostOutcome>{PostOutcome::kConflict});
  EXPECT_EQ(dump(ledger()), before);
  EXPECT_EQ(balance(ledger(), "platform:clearing"), 10000);

  // A conflict refuses that journal only; the rest of the call is posted.
  EXPECT_EQ(post(ledger(), {changed, capture(m, "pay_2", 500, day(2))}),
            (std::vector<PostOutcome>{PostOutcome::kConflict, PostOutcome::kPosted}));
  EXPECT_EQ(balance(ledger(), "platform:clearing"), 10500);
  PostingQuery q;
  q.account = "platform:clearing";
  const auto rows = must(ledger().postings(q));
  ASSERT_EQ(rows.size(), 2U);
  EXPECT_EQ(rows[0].ref, "pay_1");
  EXPECT_EQ(rows[0].amount, 10000);
}

TEST_P(LedgerContract, DuplicateIdentitiesWithinOneCallFirstWins) {
  const Merchant m = merchant("m1");
  const Journal z = capture(m, "zz_last_in_key_order", 300, day(2));
  const Journal a = capture(m, "aa_first_in_key_order", 1000, day(2));
  const Journal a_changed = capture(m, "aa_first_in_key_order", 7000, day(2));
  const auto out = post(ledger(), {z, a_changed, a, a_changed, z});
  EXPECT_EQ(out, (std::vector<PostOutcome>{PostOutcome::kPosted, PostOutcome::kPosted,
                                           PostOutcome::kConflict, PostOutcome::kDuplicate,
                                           PostOutcome::kDuplicate}));
  EXPECT_EQ(balance(ledger(), "platform:clearing"), 7300);
  for (const Balance& b : must(ledger().balances(std::nullopt))) EXPECT_EQ(b.postings, 2) << b.account;
}

TEST_P(LedgerContract, UnbalancedJournalFailsTheWholeCallAndWritesNothing) {
  const Merchant m = merchant("m1");
  Journal bad = capture(m, "pay_bad", 10000, day(2));
  bad.legs[0].amount += 1;
  const Checkpoint cp{"processor", 0, 42, "state"};
  const auto r = ledger().post(std::vector<Journal>{capture(m, "pay_good", 500, day(2)), bad},
                               std::vector<Checkpoint>{cp});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(has_code(r.error(), ErrorCode::kInvalidArgument)) << r.error().to_string();
  EXPECT_NE(r.error().message.find("pay_bad"), std::string::npos) << r.error().message;
  EXPECT_EQ(dump(ledger()), "");
  EXPECT_EQ(must(ledger().checkpoint("processor", 0)), std::nullopt);
}

TEST_P(LedgerContract, ZeroAmountLegFailsTheWholeCallAndWritesNothing) {
  const Merchant m = merchant("m1");
  ASSERT_EQ(post(ledger(), {capture(m, "pay_1", 10000, day(2))}),
            std::vector<PostOutcome>{PostOutcome::kPosted});
  const std::string before = dump(ledger());
  Journal bad = capture(m, "pay_zero", 10000, day(2));
  ASSERT_EQ(bad.leg_count, 3);
  bad.legs[1].amount = -bad.legs[0].amount;  // still sums to zero...
  bad.legs[2].amount = 0;                     // ...but a leg moves nothing
  const auto r = ledger().post(std::vector<Journal>{capture(m, "pay_2", 1, day(2)), bad}, {});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(has_code(r.error(), ErrorCode::kInvalidArgument)) << r.error().to_string();
  EXPECT_EQ(dump(ledger()), before);
}

// Calls of thousands of journals, as an ingest worker makes them: new
// journals, redeliveries, conflicts and repeats within the call, in any order.
TEST_P(LedgerContract, LargeCallsMixingNewDuplicateAndConflictingJournals) {
  const Merchant m1 = merchant("m1");
  const Merchant m2 = merchant("m2");
  auto make = [&](int i, const std::string& prefix, Minor amount) {
    const Merchant& m = i % 2 == 0 ? m1 : m2;
    return capture(m, prefix + std::to_string(i), amount, day(2 + i % 3));
  };
  std::vector<Journal> first;
  for (int i = 0; i < 700; ++i) first.push_back(make(i, "e", 1000 + i));
  for (const PostOutcome o : post(ledger(), first)) ASSERT_EQ(o, PostOutcome::kPosted);

  std::vector<Journal> second;
  for (int i = 0; i < 700; ++i) {
    if (i % 3 == 0) second.push_back(first[static_cast<std::size_t>(i)]);  // redelivered
    if (i % 3 == 1) second.push_back(make(i, "e", 5));                     // changed
    second.push_back(make(i, "n", 500 + i));                                // new
  }
  for (int i = 0; i < 60; ++i) {
    second.push_back(make(i, "n", 500 + i));  // repeated within the call
    second.push_back(make(i, "n", 7));        // and changed within the call
    second.push_back(first[static_cast<std::size_t>(i)]);  // the stored one, after a change
  }
  // A fixed shuffle: key order and input order differ.
  std::uint64_t x = 0x9E3779B97F4A7C15ULL;
  for (std::size_t i = second.size() - 1; i > 0; --i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::swap(second[i], second[x % (i + 1)]);
  }

  // The contract, as a model: the first journal of an identity is stored;
  // any later one is a duplicate if its digest equals the stored one.
  std::map<std::pair<std::string, std::string>, model::Digest> stored;
  Minor clearing = 0;
  for (const Journal& j : first) {
    stored[{j.merchant_id.str(), j.ref}] = j.digest;
    clearing += j.amount;
  }
  std::vector<PostOutcome> expected;
  for (const Journal& j : second) {
    auto [it, inserted] = stored.try_emplace({j.merchant_id.str(), j.ref}, j.digest);
    if (inserted) {
      expected.push_back(PostOutcome::kPosted);
      clearing += j.amount;
    } else {
      expected.push_back(it->second == j.digest ? PostOutcome::kDuplicate
                                                 : PostOutcome::kConflict);
    }
  }
  EXPECT_EQ(post(ledger(), second), expected);
  EXPECT_EQ(balance(ledger(), "platform:clearing"), clearing);
  std::int64_t postings = 0;
  for (const Balance& b : must(ledger().balances(std::nullopt))) {
    if (b.account == "platform:clearing") postings = b.postings;
  }
  EXPECT_EQ(postings, static_cast<std::int64_t>(stored.size()));
  // Posting it all again changes nothing.
  const std::string before = dump(ledger());
  for (const PostOutcome o : post(ledger(), second)) EXPECT_NE(o, PostOutcome::kPosted);
  EXPECT_EQ(dump(ledger()), before);
  expect_balanced(ledger());
}

// --- checkpoints ----------------------------------------------------------------

TEST_P(LedgerContract, CheckpointIsSavedAtomicallyWithThePostingsAndSurvivesReopen) {
  const Merchant m = merchant("m1");
  EXPECT_EQ(must(ledger().checkpoint("processor", 3)), std::nullopt);
  const Checkpoint cp{"processor", 3, 17, std::string("opaque\0state\xff", 13)};
  ASSERT_EQ(post(ledger(), {capture(m, "pay_1", 10000, day(2))}, {cp}),
            std::vector<PostOutcome>{PostOutcome::kPosted});
  EXPECT_EQ(must(ledger().checkpoint("processor", 3)), cp);
  EXPECT_EQ(must(ledger().checkpoint("processor", 4)), std::nullopt);
  EXPECT_EQ(must(ledger().checkpoint("worker", 3)), std::nullopt);

  // A failed call moves neither the postings nor the checkpoint.
  Journal bad = capture(m, "pay_bad", 10000, day(2));
  bad.legs[2].amount -= 1;
  const Checkpoint later{"processor", 3, 99, "later"};
  EXPECT_FALSE(ledger().post(std::vector<Journal>{capture(m, "pay_2", 1, day(2)), bad},
                             std::vector<Checkpoint>{later})
                   .ok());
  EXPECT_EQ(must(ledger().checkpoint("processor", 3)), cp);

  reopen();
  EXPECT_EQ(must(ledger().checkpoint("processor", 3)), cp);
  EXPECT_EQ(balance(ledger(), "platform:clearing"), 10000);

  // A checkpoint alone (the input held nothing to post) replaces the old one.
  const Checkpoint empty_state{"processor", 3, 18, "", 2};
  EXPECT_TRUE(post(ledger(), {}, {empty_state, Checkpoint{"processor", 4, 1, "p4"}}).empty());
  EXPECT_EQ(must(ledger().checkpoint("processor", 3)), empty_state);
  EXPECT_EQ(must(ledger().checkpoint("processor", 4)), (Checkpoint{"processor", 4, 1, "p4"}));
}

TEST_P(LedgerContract, ACheckpointThatDoesNotFollowTheStoredVersionIsFencedAndNothingOfItsCallIsWritten) {
  const Merchant m = merchant("m1");
  // Two processors read version 1 of partition 5: the one that took the
  // partition over writes version 2 first.
  const Checkpoint read{"processor", 5, 10, "read", 1};
  post(ledger(), {}, {read});
  const Checkpoint successor{"processor", 5, 20, "successor", 2};
  ASSERT_EQ(post(ledger(), {capture(m, "pay_new_owner", 300, day(2))}, {successor}),
            std::vector<PostOutcome>{PostOutcome::kPosted});

  // The one that lost it writes version 2 too, with a journal: refused whole.
  const auto stale = ledger().post(std::vector<Journal>{capture(m, "pay_old_owner", 700, day(2))},
                                   std::vector<Checkpoint>{{"processor", 5, 15, "stale", 2}});
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error().code, ErrorCode::kFenced) << stale.error().to_string();
  EXPECT_NE(stale.error().message.find("processor/5"), std::string::npos) << stale.error().message;
  EXPECT_EQ(must(ledger().checkpoint("processor", 5)), successor);
  EXPECT_EQ(balance(ledger(), "platform:clearing"), 300) << "the refused call's journal is not posted";

  // Skipping a version, or a first write other than version 1, is refused too.
  const auto skipped = ledger().post({}, std::vector<Checkpoint>{{"processor", 5, 30, "skip", 4}});
  ASSERT_FALSE(skipped.ok());
  EXPECT_EQ(skipped.error().code, ErrorCode::kFenced);
  const auto first = ledger().post({}, std::vector<Checkpoint>{{"processor", 6, 1, "first", 2}});
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.error().code, ErrorCode::kFenced);
  EXPECT_EQ(must(ledger().checkpoint("processor", 6)), std::nullopt);

  // Two checkpoints in one call: one refused, neither written.
  const auto pair = ledger().post({}, std::vector<Checkpoint>{{"processor", 6, 1, "fine", 1},
                                                              {"processor", 5, 40, "stale", 2}});
  ASSERT_FALSE(pair.ok());
  EXPECT_EQ(must(ledger().checkpoint("processor", 6)), std::nullopt);

  // The successor of the stored version goes, and survives a reopen.
  const Checkpoint next{"processor", 5, 30, "next", 3};
  post(ledger(), {}, {next});
  reopen();
  EXPECT_EQ(must(ledger().checkpoint("processor", 5)), next);
}

TEST_P(LedgerContract, PostPipelinedSignalsItsCommitOnceAndTheCommitIsVisibleWhenSignalled) {
  const Merchant m = merchant("m1");
  const Checkpoint cp{"processor", 2, 40, "state", 1};
  int signals = 0;
  std::optional<Checkpoint> seen;
  std::int64_t clearing_seen = 0;
  // The hook may call the ledger: the next post of a pipelined caller does.
  const auto out = ledger().post_pipelined(
      std::vector<Journal>{capture(m, "pay_1", 10000, day(2)), capture(m, "pay_2", 2500, day(2))},
      std::vector<Checkpoint>{cp}, [&] {
        ++signals;
        seen = must(ledger().checkpoint("processor", 2));
        clearing_seen = balance(ledger(), "platform:clearing");
      });
  ASSERT_TRUE(out.ok()) << out.error().to_string();
  EXPECT_EQ(*out, (std::vector<PostOutcome>{PostOutcome::kPosted, PostOutcome::kPosted}));
  EXPECT_EQ(signals, 1);
  EXPECT_EQ(seen, cp) << "the checkpoint is committed when the hook runs";
  EXPECT_EQ(clearing_seen, 12500) << "and so are the postings";

  // A refused call does not signal, and writes nothing.
  signals = 0;
  const auto stale = ledger().post_pipelined(std::vector<Journal>{capture(m, "pay_3", 700, day(2))},
                                             std::vector<Checkpoint>{{"processor", 2, 41, "stale", 1}},
                                             [&] { ++signals; });
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error().code, ErrorCode::kFenced);
  EXPECT_EQ(signals, 0);
  EXPECT_EQ(balance(ledger(), "platform:clearing"), 12500);

  // What a pipelined post committed is durable once it returned.
  reopen();
  EXPECT_EQ(must(ledger().checkpoint("processor", 2)), cp);
  EXPECT_EQ(balance(ledger(), "platform:clearing"), 12500);
}

TEST_P(LedgerContract, PipelinedPostsStartedOnEachOthersCommitAreAllAppliedInOrder) {
  // A caller's pattern: the next call starts on another thread once the
  // previous one has committed, while the previous one is made durable.
  const Merchant m = merchant("m1");
  constexpr int kCalls = 12;
  std::vector<std::thread> threads;
  std::vector<Result<std::vector<PostOutcome>>> results(kCalls, make_error(ErrorCode::kUnavailable, "not run"));
  std::vector<std::promise<void>> committed(kCalls);
  for (int i = 0; i < kCalls; ++i) {
    if (i > 0) committed[static_cast<std::size_t>(i - 1)].get_future().wait();
    threads.emplace_back([&, i] {
      const Checkpoint cp{"processor", 7, 100 + i, "s" + std::to_string(i), i + 1};
      results[static_cast<std::size_t>(i)] = ledger().post_pipelined(
          std::vector<Journal>{capture(m, "pay_p" + std::to_string(i), 100, day(2))}, std::vector<Checkpoint>{cp},
          [&committed, i] { committed[static_cast<std::size_t>(i)].set_value(); });
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kCalls; ++i) {
    ASSERT_TRUE(results[static_cast<std::size_t>(i)].ok()) << i << ": " << results[static_cast<std::size_t>(i)].error().to_string();
  }
  reopen();
  EXPECT_EQ(must(ledger().checkpoint("processor", 7)),
            (Checkpoint{"processor", 7, 100 + kCalls - 1, "s" + std::to_string(kCalls - 1), kCalls}));
  EXPECT_EQ(balance(ledger(), "platform:clearing"), 100 * kCalls);
}

// --- settling totals ------------------------------------------------------------

TEST_P(LedgerContract, SettlingTotalsCountOnlyJournalsSettlingInThatBatch) {
  const Merchant m = merchant("m1", 1000, 2);
  const Merchant other = merchant("m2");
  std::vector<Journal> journals = {
      capture(m, "c1", 10000, day(2)),
      journal(m, event(m, "r1", EventType::kRefund, 2000, day(2))),
      capture(m, "c2", 5000, day(3)),
      // Happened on the 2nd, arrived after that batch closed: settles on the 3rd.
      journal(m, event(m, "late1", EventType::kCapture, 7000, day(2)), day(3)),
      journal(m, event(m, "a1", EventType::kAdjustment, -300, day(3))),
      capture(m, "eur1", 999, day(2), "EUR"),
      capture(other, "c1", 4444, day(2)),
  };
  post(ledger(), journals);

  auto expected = [&](Date d) {
    ControlTotals t;
    for (const Journal& j : journals) {
      if (j.merchant_id == m.id && j.currency == "USD" && j.settle_date == d) {
        must(rules::add_to_totals(t, static_cast<EventType>(j.kind), j.amount, j.fee));
      }
    }
    return t;
  };
  const ControlTotals day2 = must(ledger().settling_totals({m.id, day(2), "USD"}));
  EXPECT_EQ(day2, expected(day(2)));
  EXPECT_EQ(day2.of(EventType::kCapture), (model::TypeTotals{1, 10000, 320}));
  EXPECT_EQ(day2.of(EventType::kRefund), (model::TypeTotals{1, 2000, 15}));

  const ControlTotals day3 = must(ledger().settling_totals({m.id, day(3), "USD"}));
  EXPECT_EQ(day3, expected(day(3)));
  EXPECT_EQ(day3.of(EventType::kCapture), (model::TypeTotals{2, 12000, 175 + 233}));
  EXPECT_EQ(day3.of(EventType::kAdjustment), (model::TypeTotals{1, -300, 0}));

  EXPECT_EQ(must(ledger().settling_totals({m.id, day(4), "USD"})), ControlTotals{});

  // The batch's own journals (the reserve hold, the payout) are not events.
  settle(ledger(), m, day(2));
  EXPECT_EQ(must(ledger().settling_totals({m.id, day(2), "USD"})), day2);
}

// --- close_batch ---------------------------------------------------------------

TEST_P(LedgerContract, CloseBatchWritesSummaryAndJournalsAndBalancesFollowTheRules) {
  const Merchant m = merchant("m1", 1000, 2);
  std::vector<BatchSummary> summaries;
  auto close_and_check = [&](Date d) {
    summaries.push_back(settle(ledger(), m, d).summary);
    EXPECT_EQ(must(ledger().closed_batches(BatchQuery{})), summaries);
    expect_consequences(ledger(), m, "USD");
    EXPECT_EQ(balance(ledger(), "platform:payouts"), -total_payouts(ledger(), "USD"));
    expect_balanced(ledger());
  };

  post(ledger(), {capture(m, "c1", 10000, day(2)), capture(m, "c2", 5000, day(2)),
                  journal(m, event(m, "r1", EventType::kRefund, 2000, day(2)))});
  close_and_check(day(2));
  EXPECT_EQ(summaries.back().reserve_held, 1500);
  EXPECT_EQ(summaries.back().payout, 15000 - 2000 - (320 + 175 + 15) - 1500);

  post(ledger(), {journal(m, event(m, "cb1", EventType::kChargeback, 20000, day(3)))});
  close_and_check(day(3));
  EXPECT_EQ(summaries.back().carry_out, -21500);
  EXPECT_EQ(summaries.back().payout, 0);

  post(ledger(), {journal(m, event(m, "late1", EventType::kCapture, 4000, day(2)), day(4)),
                  capture(m, "c3", 30000, day(4)),
                  journal(m, event(m, "adj1", EventType::kAdjustment, -100, day(4))),
                  journal(m, event(m, "rv1", EventType::kChargebackReversal, 20000, day(4)))});
  close_and_check(day(4));
  EXPECT_EQ(summaries.back().reserve_released, 1500);
  EXPECT_EQ(summaries.back().carried_in, -21500);
  EXPECT_GT(summaries.back().payout, 0);

  post(ledger(), {journal(m, event(m, "r2", EventType::kRefund, 50000, day(5)))});
  close_and_check(day(5));
  EXPECT_LT(summaries.back().carry_out, 0);

  // The batch journals are there, settling in their batch.
  PostingQuery q;
  q.account = "platform:payouts";
  const auto payouts = must(ledger().postings(q));
  ASSERT_EQ(payouts.size(), 2U);
  EXPECT_EQ(payouts[0].ref, "§batch:2026-03-02:USD:payout");
  EXPECT_EQ(payouts[0].kind, "payout");
  EXPECT_EQ(payouts[0].amount, -summaries[0].payout);
  EXPECT_EQ(payouts[0].settle_date, day(2));
  EXPECT_EQ(payouts[1].ref, "§batch:2026-03-04:USD:payout");
  q.account = "merchant:m1:reserve";
  const auto reserve = must(ledger().postings(q));
  ASSERT_EQ(reserve.size(), 3U);  // hold day 2, hold day 4, release on day 4
  EXPECT_EQ(reserve[0].kind, "reserve_hold");
  EXPECT_EQ(reserve[0].amount, -1500);
}

TEST_P(LedgerContract, DeferredClosesAreVisibleAtOnceFollowEachOtherAndSurviveAReopenAfterSync) {
  const Merchant m = merchant("m1", 1000, 1);  // a reserve held one day
  post(ledger(), {capture(m, "c1", 10000, day(2)), capture(m, "c2", 20000, day(3))});
  std::vector<rules::BatchOutcome> closed;
  for (const Date d : {day(2), day(3)}) {
    // Each close reads the history the previous deferred close left.
    const BatchKey key{m.id, d, "USD"};
    const BatchHistory history = must(ledger().batch_history(m.id.view(), "USD"));
    std::vector<rules::HeldReserve> holds;
    for (const auto& h : history.unreleased) holds.push_back({h.batch_date, h.amount});
    const rules::BatchOutcome out =
        must(rules::settle_batch(m, key, must(ledger().settling_totals(key)), history.carry_out, holds));
    EXPECT_EQ(must(ledger().close_batch_deferred(out.summary, out.released, rules::batch_journals(out.summary), 1)),
              CloseOutcome::kClosed);
    closed.push_back(out);
  }
  EXPECT_EQ(closed[1].summary.reserve_released, closed[0].summary.reserve_held)
      << "the second close saw the first one's hold";
  EXPECT_EQ(must(ledger().closed_batches(BatchQuery{})).size(), 2U);
  ASSERT_TRUE(ledger().sync().ok());
  reopen();
  const auto after = must(ledger().closed_batches(BatchQuery{}));
  ASSERT_EQ(after.size(), 2U);
  EXPECT_EQ(after[0], closed[0].summary);
  EXPECT_EQ(after[1], closed[1].summary);
  // Closing again is the same as with close_batch().
  EXPECT_EQ(must(ledger().close_batch_deferred(closed[1].summary, closed[1].released,
                                               rules::batch_journals(closed[1].summary), 2)),
            CloseOutcome::kAlreadyClosed);
  EXPECT_TRUE(ledger().sync().ok());
}

TEST_P(LedgerContract, ClosingAgainWithTheSameSummaryIsAlreadyClosed) {
  const Merchant m = merchant("m1", 1000, 1);
  post(ledger(), {capture(m, "c1", 10000, day(2))});
  const rules::BatchOutcome out = settle(ledger(), m, day(2));
  const std::string before = dump(ledger());
  const auto journals = rules::batch_journals(out.summary);
  EXPECT_EQ(must(ledger().close_batch(out.summary, out.released, journals, 1)),
            CloseOutcome::kAlreadyClosed);
  // A redelivered task may come with a newer owner's token.
  EXPECT_EQ(must(ledger().close_batch(out.summary, out.released, journals, 2)),
            CloseOutcome::kAlreadyClosed);
  EXPECT_EQ(dump(ledger()), before);
}

TEST_P(LedgerContract, ClosingAgainWithADifferentSummaryIsAConflict) {
  const Merchant m = merchant("m1");
  post(ledger(), {capture(m, "c1", 10000, day(2))});
  const rules::BatchOutcome out = settle(ledger(), m, day(2));
  const std::string before = dump(ledger());

  BatchSummary changed = out.summary;
  changed.net += 1;
  changed.payout += 1;
  const auto r = ledger().close_batch(changed, {}, rules::batch_journals(changed), 1);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(has_code(r.error(), ErrorCode::kConflict)) << r.error().to_string();

  BatchSummary other_fees = out.summary;
  other_fees.totals.of(EventType::kCapture).fees += 1;
  other_fees.totals.of(EventType::kRefund).fees -= 1;  // same total fees, split differently
  const auto r2 = ledger().close_batch(other_fees, {}, rules::batch_journals(other_fees), 1);
  ASSERT_FALSE(r2.ok());
  EXPECT_TRUE(has_code(r2.error(), ErrorCode::kConflict)) << r2.error().to_string();
  EXPECT_EQ(dump(ledger()), before);
}

TEST_P(LedgerContract, RegisteredHigherFenceMakesCloseBatchFencedAndWritesNothing) {
  const Merchant m = merchant("m1", 1000, 1);
  post(ledger(), {capture(m, "c1", 10000, day(2))});
  const BatchKey key{m.id, day(2), "USD"};
  must(ledger().register_fence(key, 5));
  const std::string before = dump(ledger());

  const ControlTotals totals = must(ledger().settling_totals(key));
  const auto out = must(rules::settle_batch(m, key, totals, 0, {}));
  const auto stale = ledger().close_batch(out.summary, out.released,
                                          rules::batch_journals(out.summary), 4);
  ASSERT_FALSE(stale.ok());
  EXPECT_TRUE(has_code(stale.error(), ErrorCode::kFenced)) << stale.error().to_string();
  EXPECT_EQ(dump(ledger()), before);
  EXPECT_EQ(must(ledger().batch_history("m1", "USD")).last_closed, std::nullopt);

  // The owner of the fence closes it.
  EXPECT_EQ(must(ledger().close_batch(out.summary, out.released,
                                      rules::batch_journals(out.summary), 5)),
            CloseOutcome::kClosed);
  // A stale owner is fenced even when the batch is closed.
  const auto late = ledger().close_batch(out.summary, out.released,
                                         rules::batch_journals(out.summary), 4);
  ASSERT_FALSE(late.ok());
  EXPECT_TRUE(has_code(late.error(), ErrorCode::kFenced)) << late.error().to_string();
}

TEST_P(LedgerContract, RegisterFenceRaisesButNeverLowersTheToken) {
  const BatchKey key{MerchantId("m1"), day(2), "USD"};
  must(ledger().register_fence(key, 7));
  const Status lower = ledger().register_fence(key, 3);
  ASSERT_FALSE(lower.ok());
  EXPECT_TRUE(has_code(lower.error(), ErrorCode::kFenced)) << lower.error().to_string();
  must(ledger().register_fence(key, 7));  // the same owner again
  must(ledger().register_fence(key, 9));
  EXPECT_FALSE(ledger().register_fence(key, 8).ok());
  // Fences are per batch.
  must(ledger().register_fence({MerchantId("m1"), day(3), "USD"}, 1));
  must(ledger().register_fence({MerchantId("m1"), day(2), "EUR"}, 1));
  reopen();
  EXPECT_FALSE(ledger().register_fence(key, 8).ok());
}

// --- history and order ----------------------------------------------------------

TEST_P(LedgerContract, BatchHistoryReturnsTheLastCarryAndUnreleasedHoldsAndReleaseMarksThem) {
  const Merchant m = merchant("m1", 1000, 2);
  BatchHistory h = must(ledger().batch_history("m1", "USD"));
  EXPECT_EQ(h.last_closed, std::nullopt);
  EXPECT_EQ(h.carry_out, 0);
  EXPECT_TRUE(h.unreleased.empty());

  post(ledger(), {capture(m, "c2", 10000, day(2)), capture(m, "c3", 20000, day(3)),
                  journal(m, event(m, "cb3", EventType::kChargeback, 40000, day(3))),
                  capture(m, "c4", 30000, day(4)), capture(m, "c4eur", 100, day(4), "EUR")});
  settle(ledger(), m, day(2));
  const auto s3 = settle(ledger(), m, day(3)).summary;
  ASSERT_LT(s3.carry_out, 0);
  h = must(ledger().batch_history("m1", "USD"));
  EXPECT_EQ(h.last_closed, day(3));
  EXPECT_EQ(h.carry_out, s3.carry_out);
  ASSERT_EQ(h.unreleased.size(), 2U);
  EXPECT_EQ(h.unreleased[0].batch_date, day(2));
  EXPECT_EQ(h.unreleased[0].amount, 1000);
  EXPECT_EQ(h.unreleased[1].batch_date, day(3));
  EXPECT_EQ(h.unreleased[1].amount, 2000);

  const auto out4 = settle(ledger(), m, day(4));
  EXPECT_EQ(out4.released, std::vector<Date>{day(2)});
  h = must(ledger().batch_history("m1", "USD"));
  EXPECT_EQ(h.last_closed, day(4));
  EXPECT_EQ(h.carry_out, out4.summary.carry_out);
  ASSERT_EQ(h.unreleased.size(), 2U);
  EXPECT_EQ(h.unreleased[0].batch_date, day(3));
  EXPECT_EQ(h.unreleased[1].batch_date, day(4));
  EXPECT_EQ(h.unreleased[1].amount, 3000);

  // Other currencies and merchants have their own history.
  EXPECT_EQ(must(ledger().batch_history("m1", "EUR")).last_closed, std::nullopt);
  EXPECT_EQ(must(ledger().batch_history("m2", "USD")).last_closed, std::nullopt);
}

TEST_P(LedgerContract, ClosingOutOfOrderIsRefused) {
  const Merchant m = merchant("m1");
  post(ledger(), {capture(m, "c2", 10000, day(2)), capture(m, "c3", 20000, day(3))});
  settle(ledger(), m, day(3));
  const std::string before = dump(ledger());

  const BatchKey key{m.id, day(2), "USD"};
  const auto out = must(rules::settle_batch(m, key, must(ledger().settling_totals(key)), 0, {}));
  const auto r = ledger().close_batch(out.summary, out.released, rules::batch_journals(out.summary), 1);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(has_code(r.error(), ErrorCode::kFailedPrecondition)) << r.error().to_string();
  EXPECT_EQ(dump(ledger()), before);
}

TEST_P(LedgerContract, ReleasingWhatIsNotAnUnreleasedHoldIsRefused) {
  const Merchant m = merchant("m1", 1000, 1);
  post(ledger(), {capture(m, "c2", 10000, day(2)), capture(m, "c4", 100, day(4)),
                  capture(m, "c5", 100, day(5))});
  settle(ledger(), m, day(2));
  const std::string before = dump(ledger());

  auto attempt = [&](Date d, std::vector<rules::HeldReserve> holds) {
    const BatchKey key{m.id, d, "USD"};
    const auto out = must(rules::settle_batch(m, key, must(ledger().settling_totals(key)),
                                              must(ledger().batch_history("m1", "USD")).carry_out,
                                              holds));
    return ledger().close_batch(out.summary, out.released, rules::batch_journals(out.summary), 1);
  };
  // The 3rd is no closed batch.
  auto r = attempt(day(4), {{day(3), 1000}});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(has_code(r.error(), ErrorCode::kFailedPrecondition)) << r.error().to_string();
  // The 2nd held 1000, not 999.
  r = attempt(day(4), {{day(2), 999}});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(has_code(r.error(), ErrorCode::kFailedPrecondition)) << r.error().to_string();
  EXPECT_EQ(dump(ledger()), before);

  // Released once by the 4th, it cannot be released again by the 5th.
  ASSERT_EQ(settle(ledger(), m, day(4)).released, std::vector<Date>{day(2)});
  const std::string after4 = dump(ledger());
  r = attempt(day(5), {{day(2), 1000}});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(has_code(r.error(), ErrorCode::kFailedPrecondition)) << r.error().to_string();
  EXPECT_EQ(dump(ledger()), after4);
}

// The port's guard against a worker that settled from a stale
// batch_history(): the carry must chain from one batch to the next.
TEST_P(LedgerContract, CarriedInThatIsNotThePreviousCarryOutIsRefused) {
  const Merchant m = merchant("m1");
  post(ledger(), {journal(m, event(m, "cb2", EventType::kChargeback, 10000, day(2))),
                  capture(m, "c3", 50000, day(3))});
  ASSERT_LT(settle(ledger(), m, day(2)).summary.carry_out, 0);
  const std::string before = dump(ledger());

  const BatchKey key{m.id, day(3), "USD"};
  const auto stale = must(rules::settle_batch(m, key, must(ledger().settling_totals(key)), 0, {}));
  const auto r = ledger().close_batch(stale.summary, stale.released,
                                      rules::batch_journals(stale.summary), 1);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(has_code(r.error(), ErrorCode::kFailedPrecondition)) << r.error().to_string();
  EXPECT_EQ(dump(ledger()), before);
}

TEST_P(LedgerContract, CloseBatchWhoseJournalConflictsWritesNothing) {
  const Merchant m = merchant("m1");
  // A journal that took a batch journal's identity (no event can: event ids
  // are printable ASCII and batch refs start with '§').
  post(ledger(), {capture(m, "§batch:2026-03-02:USD:payout", 10000, day(2))});
  const std::string before = dump(ledger());
  const BatchKey key{m.id, day(2), "USD"};
  const auto out = must(rules::settle_batch(m, key, must(ledger().settling_totals(key)), 0, {}));
  ASSERT_GT(out.summary.payout, 0);
  const auto r = ledger().close_batch(out.summary, out.released, rules::batch_journals(out.summary), 1);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(has_code(r.error(), ErrorCode::kConflict)) << r.error().to_string();
  EXPECT_EQ(dump(ledger()), before);
}

// --- queries --------------------------------------------------------------------

TEST_P(LedgerContract, ClosedBatchesRoundTripEveryFieldExactlyAndAreSorted) {
  // A summary with every field distinct, adjustment fees included (the rules
  // never charge them, but the ledger must not assume so).
  BatchSummary s;
  s.key = {MerchantId("m0"), day(9), "JPY"};
  std::int64_t v = 1;
  for (auto& t : s.totals.by_type) {
    t.count = v++;
    t.amount = 1000 * v++;
    t.fees = v++;
  }
  s.totals.of(EventType::kAdjustment).amount = -123456789012345;
  s.reserve_held = 77;
  s.reserve_released = 0;
  s.carried_in = 0;
  s.net = -9'000'000'000'000'000'000;
  s.payout = 0;
  s.carry_out = s.net;
  s.payout_date = day(12);
  EXPECT_EQ(must(ledger().close_batch(s, {}, {}, 3)), CloseOutcome::kClosed);

  // Batches closed out of sort order: m2 before m1, USD before EUR.
  const Merchant m1 = merchant("m1", 500, 1);
  const Merchant m2 = merchant("m2");
  post(ledger(), {capture(m2, "a", 100, day(2)), capture(m1, "b", 200, day(2), "USD"),
                  capture(m1, "c", 300, day(2), "EUR"), capture(m1, "d", 400, day(3), "USD"),
                  journal(m1, event(m1, "e", EventType::kRefund, 5000, day(3), "EUR"))});
  std::vector<BatchSummary> expected = {s};
  expected.push_back(settle(ledger(), m2, day(2)).summary);
  expected.push_back(settle(ledger(), m1, day(2), "USD").summary);
  expected.push_back(settle(ledger(), m1, day(3), "USD").summary);
  expected.push_back(settle(ledger(), m1, day(2), "EUR").summary);
  expected.push_back(settle(ledger(), m1, day(3), "EUR").summary);
  std::sort(expected.begin(), expected.end(),
            [](const BatchSummary& a, const BatchSummary& b) {
              return std::tie(a.key.merchant_id, a.key.currency, a.key.batch_date) <
                     std::tie(b.key.merchant_id, b.key.currency, b.key.batch_date);
            });
  EXPECT_EQ(must(ledger().closed_batches(BatchQuery{})), expected);

  std::vector<BatchSummary> m1_day3;
  for (const auto& e : expected) {
    if (e.key.merchant_id.str() == "m1" && e.key.batch_date == day(3)) m1_day3.push_back(e);
  }
  ASSERT_EQ(m1_day3.size(), 2U);
  EXPECT_EQ(must(ledger().closed_batches(BatchQuery{"m1", day(3), day(3)})), m1_day3);
  EXPECT_EQ(must(ledger().closed_batches(BatchQuery{std::nullopt, day(9), std::nullopt})),
            std::vector<BatchSummary>{s});
  EXPECT_EQ(must(ledger().closed_batches(BatchQuery{"m2", std::nullopt, day(1)})).size(), 0U);
  reopen();
  EXPECT_EQ(must(ledger().closed_batches(BatchQuery{})), expected);
}

TEST_P(LedgerContract, BalancesAreFilteredByMerchantAndSorted) {
  const Merchant m1 = merchant("m1", 1000, 1);
  const Merchant m10 = merchant("m10");
  const Merchant m2 = merchant("m2");
  post(ledger(), {capture(m1, "a", 10000, day(2)), capture(m1, "b", 700, day(2), "EUR"),
                  capture(m10, "c", 300, day(2)), capture(m2, "d", 400, day(2))});
  settle(ledger(), m1, day(2));

  const auto mine = must(ledger().balances("m1"));
  std::vector<std::pair<std::string, std::string>> names;
  for (const Balance& b : mine) names.emplace_back(b.account, b.currency);
  EXPECT_EQ(names, (std::vector<std::pair<std::string, std::string>>{
                       {"merchant:m1:payable", "EUR"},
                       {"merchant:m1:payable", "USD"},
                       {"merchant:m1:reserve", "USD"}}));
  EXPECT_EQ(mine[2].balance, -1000);
  EXPECT_EQ(mine[2].postings, 1);
  EXPECT_EQ(mine[1].postings, 3);  // capture, hold, payout

  const auto all = must(ledger().balances(std::nullopt));
  auto sorted = all;
  std::sort(sorted.begin(), sorted.end(), [](const Balance& a, const Balance& b) {
    return std::tie(a.account, a.currency) < std::tie(b.account, b.currency);
  });
  ASSERT_EQ(all.size(), sorted.size());
  for (std::size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].account, sorted[i].account);
    EXPECT_EQ(all[i].currency, sorted[i].currency);
  }
  EXPECT_EQ(must(ledger().balances("m10")).size(), 1U);
  EXPECT_TRUE(must(ledger().balances("m3")).empty());
}

TEST_P(LedgerContract, TrialBalanceNetsToZeroPerCurrencyAfterAMixedWorkload) {
  std::map<std::string, Minor> debits;
  std::vector<Journal> all;
  const std::vector<std::string> currencies = {"USD", "EUR", "JPY"};
  std::vector<Merchant> merchants = {merchant("m1", 1000, 1), merchant("m2"),
                                     merchant("m3", 250, 2)};
  unsigned n = 0;
  for (unsigned d = 2; d <= 5; ++d) {
    std::vector<Journal> batch;
    for (const Merchant& m : merchants) {
      for (const std::string& c : currencies) {
        const std::string p = m.id.str() + c + std::to_string(d) + "_";
        batch.push_back(capture(m, p + "cap", 10000 + 37 * ++n, day(d), c));
        batch.push_back(journal(m, event(m, p + "ref", EventType::kRefund, 999 + n, day(d), c)));
        if (d % 2 == 0) {
          batch.push_back(journal(m, event(m, p + "cb", EventType::kChargeback, 30000, day(d), c)));
        } else {
          batch.push_back(
              journal(m, event(m, p + "rv", EventType::kChargebackReversal, 30000, day(d), c)));
        }
        batch.push_back(journal(m, event(m, p + "adj", EventType::kAdjustment,
                                         d % 2 == 0 ? -250 : 250, day(d), c)));
      }
    }
    post(ledger(), batch);
    all.insert(all.end(), batch.begin(), batch.end());
    for (const Merchant& m : merchants) {
      for (const std::string& c : currencies) {
        const auto out = settle(ledger(), m, day(d), c);
        for (const Journal& j : rules::batch_journals(out.summary)) all.push_back(j);
      }
    }
  }
  for (const Journal& j : all) {
    for (std::size_t i = 0; i < j.leg_count; ++i) {
      if (j.legs[i].amount > 0) debits[j.currency] += j.legs[i].amount;
    }
  }
  const auto tb = must(ledger().trial_balance());
  ASSERT_EQ(tb.size(), 3U);
  EXPECT_EQ(tb[0].currency, "EUR");
  EXPECT_EQ(tb[1].currency, "JPY");
  EXPECT_EQ(tb[2].currency, "USD");
  for (const TrialBalance& t : tb) {
    EXPECT_EQ(t.debits, debits[t.currency]) << t.currency;
    EXPECT_EQ(t.credits, -debits[t.currency]) << t.currency;
    EXPECT_EQ(t.net, 0) << t.currency;
  }
  // The accounts' running balances agree with the postings.
  std::map<std::string, Minor> by_currency;
  for (const Balance& b : must(ledger().balances(std::nullopt))) by_currency[b.currency] += b.balance;
  for (const auto& [currency, sum] : by_currency) EXPECT_EQ(sum, 0) << currency;
  for (const Merchant& m : merchants) {
    for (const std::string& c : currencies) expect_consequences(ledger(), m, c);
  }
  for (const std::string& c : currencies) {
    EXPECT_EQ(balance(ledger(), "platform:payouts", c), -total_payouts(ledger(), c)) << c;
  }
}

TEST_P(LedgerContract, PostingsQueryByAccountAndSettleDateRange) {
  const Merchant m1 = merchant("m1");
  const Merchant m2 = merchant("m2");
  // One call each, so the storage order is this order.
  post(ledger(), {capture(m1, "d2", 1000, day(2))});
  post(ledger(), {capture(m1, "d3", 2000, day(3))});
  post(ledger(), {capture(m2, "m2d3", 2500, day(3))});
  post(ledger(), {journal(m1, event(m1, "late", EventType::kCapture, 3000, day(2)), day(4))});
  post(ledger(), {journal(m1, event(m1, "d5", EventType::kRefund, 400, day(5)))});

  PostingQuery q;
  q.account = "merchant:m1:payable";
  q.settle_from = day(3);
  q.settle_to = day(4);
  auto rows = must(ledger().postings(q));
  ASSERT_EQ(rows.size(), 2U);
  EXPECT_EQ(rows[0].ref, "d3");
  EXPECT_EQ(rows[0].amount, -(2000 - 58 - 30));
  EXPECT_EQ(rows[1].ref, "late");
  EXPECT_EQ(rows[1].batch_date, day(2));
  EXPECT_EQ(rows[1].settle_date, day(4));
  EXPECT_TRUE(rows[1].late);
  for (const PostingRow& r : rows) {
    EXPECT_EQ(r.account, "merchant:m1:payable");
    EXPECT_EQ(r.merchant_id, "m1");
  }

  // A platform account, narrowed to one merchant's journals.
  PostingQuery fees;
  fees.account = "platform:fees";
  fees.merchant_id = "m1";
  rows = must(ledger().postings(fees));
  ASSERT_EQ(rows.size(), 4U);
  EXPECT_EQ(rows[3].ref, "d5");
  EXPECT_EQ(rows[3].kind, "refund");
  EXPECT_EQ(rows[3].amount, -15);

  // Everything of m2 on the 3rd, in leg order.
  PostingQuery m2q;
  m2q.merchant_id = "m2";
  m2q.settle_from = day(3);
  rows = must(ledger().postings(m2q));
  ASSERT_EQ(rows.size(), 3U);
  EXPECT_EQ(rows[0].account, "platform:clearing");
  EXPECT_EQ(rows[1].account, "merchant:m2:payable");
  EXPECT_EQ(rows[2].account, "platform:fees");

  // From a date only; and the limit keeps the first rows.
  PostingQuery from5;
  from5.settle_from = day(5);
  EXPECT_EQ(must(ledger().postings(from5)).size(), 3U);
  PostingQuery limited;
  limited.limit = 4;
  rows = must(ledger().postings(limited));
  ASSERT_EQ(rows.size(), 4U);
  EXPECT_EQ(rows[0].ref, "d2");
  EXPECT_EQ(rows[3].ref, "d3");
  PostingQuery none;
  none.account = "merchant:m9:payable";
  EXPECT_TRUE(must(ledger().postings(none)).empty());
}

// --- durability and concurrency -------------------------------------------------

TEST_P(LedgerContract, EverythingCommittedSurvivesReopen) {
  const Merchant m = merchant("m1", 1000, 1);
  post(ledger(), {capture(m, "c1", 10000, day(2))}, {Checkpoint{"processor", 0, 1, "s"}});
  const auto out = settle(ledger(), m, day(2), "USD", 7);
  must(ledger().register_fence({m.id, day(3), "USD"}, 9));
  const std::string before = dump(ledger());

  reopen();
  EXPECT_EQ(dump(ledger()), before);
  EXPECT_EQ(must(ledger().checkpoint("processor", 0)), (Checkpoint{"processor", 0, 1, "s"}));
  EXPECT_EQ(must(ledger().close_batch(out.summary, out.released,
                                      rules::batch_journals(out.summary), 7)),
            CloseOutcome::kAlreadyClosed);
  EXPECT_FALSE(ledger().register_fence({m.id, day(3), "USD"}, 8).ok());
  EXPECT_EQ(must(ledger().batch_history("m1", "USD")).unreleased.size(), 1U);
  // Still writable after reopening: accounts are found again, not duplicated.
  post(ledger(), {capture(m, "c2", 500, day(3))});
  EXPECT_EQ(balance(ledger(), "platform:clearing"), 10500);
}

TEST_P(LedgerContract, ConcurrentPostsFromManyThreadsAreEachAppliedOnce) {
  constexpr int kThreads = 4;
  constexpr int kCalls = 10;
  constexpr int kPerCall = 20;
  const Merchant m = merchant("m1");
  std::vector<std::vector<std::vector<Journal>>> work(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    for (int c = 0; c < kCalls; ++c) {
      std::vector<Journal> call;
      for (int i = 0; i < kPerCall; ++i) {
        call.push_back(capture(m, "t" + std::to_string(t) + "_" + std::to_string(c) + "_" +
                                      std::to_string(i),
                               100, day(2)));
      }
      // Every thread also delivers the same shared events.
      call.push_back(capture(m, "shared_" + std::to_string(c), 1000, day(2)));
      work[static_cast<std::size_t>(t)].push_back(std::move(call));
    }
  }
  std::vector<int> posted(kThreads, 0);
  std::vector<std::string> errors(kThreads);
  {
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        const auto ti = static_cast<std::size_t>(t);
        std::int64_t version = 0;
        for (const auto& call : work[ti]) {
          auto r = ledger().post(call, std::vector<Checkpoint>{{"p", t, 1, "x", ++version}});
          if (!r.ok()) {
            errors[ti] = r.error().to_string();
            return;
          }
          for (const PostOutcome o : *r) posted[ti] += o == PostOutcome::kPosted ? 1 : 0;
        }
      });
    }
    for (auto& th : threads) th.join();
  }
  for (const std::string& e : errors) EXPECT_EQ(e, "");
  int total = 0;
  for (const int p : posted) total += p;
  EXPECT_EQ(total, kThreads * kCalls * kPerCall + kCalls);
  EXPECT_EQ(balance(ledger(), "platform:clearing"),
            Minor{kThreads * kCalls * kPerCall * 100 + kCalls * 1000});
  expect_balanced(ledger());
}

}  // namespace settle::ledger
