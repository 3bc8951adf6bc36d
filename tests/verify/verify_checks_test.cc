// verify::check over a small world built from the rules (merchant m1 with fees
// and a 10% reserve released after one day; two closed batches and one open),
// which must be clean; then each kind of break, made by hand, must be reported
// naming what broke, where, and both figures.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "model/journal.h"
#include "rules/rules.h"
#include "verify/checks.h"

namespace settle::verify {
namespace {

using model::BatchKey;
using model::EventType;

constexpr std::int32_t kDay1 = 20780;  // 2026-11-23

struct World {
  model::Merchant merchant;
  std::vector<model::Journal> journals;
  Input in;

  World() {
    merchant.id = MerchantId("m1");
    merchant.fees[0] = {100, 10};  // capture: 1% + 10
    merchant.fees[1] = {0, 20};    // refund: 20
    merchant.reserve_bps = 1000;
    merchant.reserve_days = 1;
    in.merchants.emplace("m1", merchant);
  }

  void event(const std::string& id, EventType type, Minor amount, std::int32_t day, std::int32_t settle_day,
             std::int32_t partition, std::int64_t offset) {
    model::Event e;
    e.merchant_id = MerchantId("m1");
    e.event_id = EventId(id);
    e.type = type;
    e.amount = amount;
    e.currency = "EUR";
    e.occurred_at = Timestamp{static_cast<std::int64_t>(day) * 86'400'000'000'000 + 3'600'000'000'000};
    auto j = rules::event_journal(e, merchant, Date{day}, Date{settle_day}, day != settle_day);
    EXPECT_TRUE(j.ok());
    journals.push_back(*j);
    in.accepted.push_back(AcceptedEvent{"m1", id, partition, offset});
  }

  // Closes batches day by day as the worker would.
  void close(std::int32_t day, Minor& carry, std::vector<rules::HeldReserve>& holds) {
    const BatchKey key{MerchantId("m1"), Date{day}, "EUR"};
    model::ControlTotals t;
    for (const auto& j : journals) {
      if (j.ref.starts_with("§") || j.settle_date != Date{day}) continue;
      ASSERT_TRUE(rules::add_to_totals(t, static_cast<EventType>(j.kind), j.amount, j.fee).ok());
    }
    auto out = rules::settle_batch(merchant, key, t, carry, holds);
    ASSERT_TRUE(out.ok());
    for (auto& j : rules::batch_journals(out->summary)) journals.push_back(j);
    std::erase_if(holds, [&](const rules::HeldReserve& h) {
      return std::find(out->released.begin(), out->released.end(), h.batch_date) != out->released.end();
    });
    if (out->summary.reserve_held > 0) holds.push_back({Date{day}, out->summary.reserve_held});
    carry = out->summary.carry_out;
    in.closed.push_back(out->summary);
  }

  // Postings, balances and trial balance from the journals.
  void derive() {
    in.postings.clear();
    std::map<std::pair<std::string, std::string>, Minor> bal;
    Minor debits = 0, credits = 0;
    for (const auto& j : journals) {
      for (std::uint8_t i = 0; i < j.leg_count; ++i) {
        ledger::PostingRow p;
        p.merchant_id = j.merchant_id.str();
        p.ref = j.ref;
        p.kind = std::string(model::journal_kind_name(j.kind));
        p.account = model::account_name(j.legs[i].account, p.merchant_id);
        p.currency = j.currency;
        p.amount = j.legs[i].amount;
        p.batch_date = j.batch_date;
        p.settle_date = j.settle_date;
        p.late = j.late;
        in.postings.push_back(p);
        bal[{p.account, p.currency}] += p.amount;
        (p.amount > 0 ? debits : credits) += p.amount;
      }
    }
    in.balances.clear();
    for (const auto& [k, v] : bal) in.balances.push_back(ledger::Balance{k.first, k.second, v, 1});
    in.trial = {ledger::TrialBalance{"EUR", debits, credits, debits + credits}};
  }

  static World standard() {
    World w;
    w.event("e1", EventType::kCapture, 10'000, kDay1, kDay1, 0, 0);
    w.event("e2", EventType::kRefund, 2'500, kDay1, kDay1, 0, 1);
    w.event("e3", EventType::kCapture, 4'000, kDay1 + 1, kDay1 + 1, 0, 2);
    w.event("e4", EventType::kAdjustment, -20'000, kDay1 + 2, kDay1 + 2, 0, 3);
    w.event("e5", EventType::kCapture, 700, kDay1 + 3, kDay1 + 3, 0, 4);  // its batch stays open
    Minor carry = 0;
    std::vector<rules::HeldReserve> holds;
    w.close(kDay1, carry, holds);
    w.close(kDay1 + 1, carry, holds);
    w.close(kDay1 + 2, carry, holds);
    w.derive();
    return w;
  }
};

std::vector<std::string> kinds(const Findings& f) {
  std::vector<std::string> out;
  for (const auto& b : f.breaks) out.emplace_back(break_kind_name(b.kind));
  return out;
}

const Break* find(const Findings& f, BreakKind kind) {
  for (const auto& b : f.breaks) {
    if (b.kind == kind) return &b;
  }
  return nullptr;
}

std::string all(const Findings& f) {
  std::string out;
  for (const auto& b : f.breaks) out += format_break(b) + "\n";
  return out;
}

TEST(VerifyChecks, AWorldBuiltByTheRulesIsClean) {
  const World w = World::standard();
  // The third batch carries a debt: -20000 adjustment against small captures.
  ASSERT_LT(w.in.closed.back().carry_out, 0);
  const Findings f = check(w.in);
  EXPECT_TRUE(f.clean()) << all(f);
  EXPECT_EQ(f.records, 5);
  EXPECT_EQ(f.events, 5);
  EXPECT_EQ(f.posted, 5);
  EXPECT_EQ(f.journals, 5);
  EXPECT_EQ(f.batches, 3);
}

TEST(VerifyChecks, AnAcceptedEventThatWasNeverPostedIsMissingWithItsOffset) {
  World w = World::standard();
  w.in.accepted.push_back(AcceptedEvent{"m1", "e9", 2, 41});
  const Findings f = check(w.in);
  ASSERT_EQ(kinds(f), std::vector<std::string>{"missing"}) << all(f);
  EXPECT_EQ(f.breaks[0].where, "event m1/e9");
  EXPECT_NE(format_break(f.breaks[0]).find("events/2 offset 41"), std::string::npos) << all(f);
}

TEST(VerifyChecks, AnEventDeadLetteredAtEveryOffsetIsAccountedForNotMissing) {
  World w = World::standard();
  w.in.accepted.push_back(AcceptedEvent{"m1", "e9", 2, 41});
  w.in.accepted.push_back(AcceptedEvent{"m1", "e9", 2, 42});
  w.in.dead_letters.push_back(model::DeadLetter{"events", 2, 41, "m1", "e9", "unknown merchant", "{}", 0});
  EXPECT_EQ(kinds(check(w.in)), std::vector<std::string>{"missing"}) << "offset 42 is not dead-lettered";
  w.in.dead_letters.push_back(model::DeadLetter{"events", 2, 42, "m1", "e9", "unknown merchant", "{}", 0});
  const Findings f = check(w.in);
  EXPECT_TRUE(f.clean()) << all(f);
  EXPECT_EQ(f.dead_lettered, 1);
  EXPECT_EQ(f.posted, 5);
}

TEST(VerifyChecks, AnUnreadableRecordMustBeDeadLettered) {
  World w = World::standard();
  w.in.accepted.push_back(AcceptedEvent{"m1", "", 1, 7});
  const Findings f = check(w.in);
  ASSERT_EQ(kinds(f), std::vector<std::string>{"missing"}) << all(f);
  EXPECT_EQ(f.breaks[0].where, "events/1 offset 7");
  w.in.dead_letters.push_back(model::DeadLetter{"events", 1, 7, "m1", "", "not valid JSON", "{", 0});
  EXPECT_TRUE(check(w.in).clean());
}

TEST(VerifyChecks, AJournalStoredTwiceIsDoubledAndItsBatchNoLongerAddsUp) {
  World w = World::standard();
  w.journals.push_back(w.journals[0]);  // e1 again
  w.derive();
  const Findings f = check(w.in);
  const Break* d = find(f, BreakKind::kDoubled);
  ASSERT_NE(d, nullptr) << all(f);
  EXPECT_EQ(d->where, "event m1/e1");
  EXPECT_EQ(d->expected, "1");
  EXPECT_EQ(d->actual, "2");
  const Break* t = find(f, BreakKind::kBatchTotals);
  ASSERT_NE(t, nullptr) << all(f);
  EXPECT_EQ(t->where, "m1/2026-11-23/EUR");
  EXPECT_EQ(t->what, "captures_count");
  EXPECT_EQ(t->expected, "2");
  EXPECT_EQ(t->actual, "1");
}

TEST(VerifyChecks, AnEventSettlingInTwoBatchesIsReportedWithBothDates) {
  World w = World::standard();
  model::Journal again = w.journals[0];
  again.settle_date = Date{kDay1 + 3};
  again.late = true;
  w.journals.push_back(again);
  w.derive();
  const Findings f = check(w.in);
  const Break* b = find(f, BreakKind::kTwoBatches);
  ASSERT_NE(b, nullptr) << all(f);
  EXPECT_EQ(b->where, "event m1/e1");
  EXPECT_NE(b->note.find("2026-11-23, 2026-11-26"), std::string::npos) << b->note;
}

TEST(VerifyChecks, AJournalTheBusNeverCarriedIsReported) {
  World w = World::standard();
  w.in.accepted.erase(w.in.accepted.begin() + 4);  // e5, in the open batch
  const Findings f = check(w.in);
  ASSERT_EQ(kinds(f), std::vector<std::string>{"not-on-bus"}) << all(f);
  EXPECT_EQ(f.breaks[0].where, "event m1/e5");
}

TEST(VerifyChecks, ASummaryWhosePayoutDiffersFromTheRulesIsReportedWithBothFigures) {
  World w = World::standard();
  const Minor payout = w.in.closed[0].payout;
  w.in.closed[0].payout += 1;
  w.in.closed[0].net += 1;
  const Findings f = check(w.in);
  std::vector<std::string> what;
  for (const auto& b : f.breaks) {
    if (b.kind == BreakKind::kBatchRules) what.push_back(b.what);
  }
  EXPECT_EQ(what, (std::vector<std::string>{"net", "payout"})) << all(f);
  const Break* b = &f.breaks[0];
  for (const auto& x : f.breaks) {
    if (x.what == "payout") b = &x;
  }
  EXPECT_EQ(b->where, "m1/2026-11-23/EUR");
  EXPECT_EQ(b->expected, std::to_string(payout));
  EXPECT_EQ(b->actual, std::to_string(payout + 1));
  // Its payout journal and the platform's payouts no longer agree with it either.
  EXPECT_NE(find(f, BreakKind::kBatchJournal), nullptr) << all(f);
  EXPECT_NE(find(f, BreakKind::kPayouts), nullptr) << all(f);
}

TEST(VerifyChecks, AReleaseTheRulesDoNotGiveIsReported) {
  World w = World::standard();
  // Day 2 releases day 1's hold (reserve_days 1); claim it released nothing.
  ASSERT_GT(w.in.closed[1].reserve_released, 0);
  w.in.closed[1].reserve_released = 0;
  const Findings f = check(w.in);
  const Break* b = find(f, BreakKind::kBatchRules);
  ASSERT_NE(b, nullptr) << all(f);
  EXPECT_EQ(b->what, "reserve_released");
  EXPECT_NE(find(f, BreakKind::kReserve), nullptr) << all(f);
}

TEST(VerifyChecks, ATrialBalanceThatIsNotZeroIsReportedPerCurrency) {
  World w = World::standard();
  w.in.trial[0].net = 5;
  const Findings f = check(w.in);
  ASSERT_EQ(kinds(f), std::vector<std::string>{"trial-balance"}) << all(f);
  EXPECT_EQ(f.breaks[0].where, "EUR");
  EXPECT_EQ(f.breaks[0].actual, "5");
}

TEST(VerifyChecks, AnUnbalancedJournalIsReported) {
  World w = World::standard();
  w.journals[4].legs[0].amount += 3;  // e5's clearing leg
  w.derive();
  const Findings f = check(w.in);
  const Break* b = find(f, BreakKind::kUnbalanced);
  ASSERT_NE(b, nullptr) << all(f);
  EXPECT_EQ(b->where, "journal m1/e5");
  EXPECT_EQ(b->actual, "3");
}

TEST(VerifyChecks, PayableThatDoesNotMatchTheLatestCarryIsReported) {
  World w = World::standard();
  // A fee moved from the platform to the merchant in a closed batch: balanced,
  // but the batch's fees and the merchant's payable no longer agree.
  model::Journal& e3 = w.journals[2];
  for (std::uint8_t i = 0; i < e3.leg_count; ++i) {
    if (e3.legs[i].account == model::AccountRole::kMerchantPayable) e3.legs[i].amount -= 7;
    if (e3.legs[i].account == model::AccountRole::kPlatformFees) e3.legs[i].amount += 7;
  }
  w.derive();
  const Findings f = check(w.in);
  const Break* b = find(f, BreakKind::kPayable);
  ASSERT_NE(b, nullptr) << all(f);
  EXPECT_EQ(b->where, "merchant m1 EUR");
  EXPECT_EQ(std::stoll(b->actual) - std::stoll(b->expected), -7);
  EXPECT_NE(find(f, BreakKind::kBatchTotals), nullptr) << all(f);
}

TEST(VerifyChecks, AReserveBalanceThatDoesNotMatchTheBatchesIsReported) {
  World w = World::standard();
  for (auto& b : w.in.balances) {
    if (b.account == "merchant:m1:reserve") b.balance -= 1;
  }
  const Findings f = check(w.in);
  ASSERT_EQ(kinds(f), std::vector<std::string>{"reserve"}) << all(f);
}

TEST(VerifyChecks, AnEventStrandedBeforeTheLatestClosedBatchIsReported) {
  World w = World::standard();
  // Posted to settle on day 2 + 0.5... i.e. a date with no batch while day 3 is closed.
  model::Event e;
  e.merchant_id = MerchantId("m1");
  e.event_id = EventId("e6");
  e.type = EventType::kCapture;
  e.amount = 100;
  e.currency = "EUR";
  e.occurred_at = Timestamp{static_cast<std::int64_t>(kDay1 - 5) * 86'400'000'000'000};
  auto j = rules::event_journal(e, w.merchant, Date{kDay1 - 5}, Date{kDay1 - 5}, false);
  ASSERT_TRUE(j.ok());
  w.journals.push_back(*j);
  w.in.accepted.push_back(AcceptedEvent{"m1", "e6", 0, 5});
  w.derive();
  const Findings f = check(w.in);
  ASSERT_EQ(kinds(f), std::vector<std::string>{"stranded"}) << all(f);
  EXPECT_EQ(f.breaks[0].where, "m1/2026-11-18/EUR");
}

TEST(VerifyChecks, AClosedBatchOfAnUnknownMerchantCannotBeRecomputed) {
  World w = World::standard();
  w.in.merchants.clear();
  const Findings f = check(w.in);
  ASSERT_NE(find(f, BreakKind::kUnknownMerchant), nullptr) << all(f);
}

}  // namespace
}  // namespace settle::verify
