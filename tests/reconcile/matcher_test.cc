// Matching scenarios: every reason code, tolerance edges (at and one past),
// one-to-many and many-to-one sums, per-merchant and per-currency settings.
#include <gtest/gtest.h>

#include <algorithm>

#include "reconcile/matcher.h"

namespace settle::reconcile {
namespace {

Date d(const char* s) { return *parse_date(s); }

Payout payout(const std::string& merchant, const char* batch, const std::string& cur, Minor amount, const char* pay) {
  Payout p;
  p.merchant_id = merchant;
  p.batch_date = d(batch);
  p.currency = cur;
  p.amount = amount;
  p.payout_date = d(pay);
  p.reference = payout_reference(merchant, p.batch_date, cur);
  return p;
}

BankEntry debit(const std::string& cur, Minor amount, const char* booked, const std::string& e2e = {}) {
  BankEntry e;
  e.currency = cur;
  e.amount = -amount;
  e.booking_date = d(booked);
  e.location = "Ntry[" + std::to_string(amount) + "]";
  if (!e2e.empty()) {
    BankTransaction t;
    t.end_to_end_id = e2e;
    t.location = e.location + "/TxDtls[1]";
    e.transactions.push_back(t);
  }
  return e;
}

BankStatement statement(std::vector<BankEntry> entries, const char* from = "2026-03-30", const char* to = "2026-03-31") {
  BankStatement s;
  s.id = "S1";
  s.currency = "EUR";
  s.from = d(from);
  s.to = d(to);
  s.entries = std::move(entries);
  return s;
}

std::vector<std::string> reasons(const MatchResult& r) {
  std::vector<std::string> out;
  for (const Finding& f : r.findings) out.emplace_back(reason_name(f.reason));
  std::sort(out.begin(), out.end());
  return out;
}

const Match* rule(const MatchResult& r, const std::string& name) {
  for (const Match& m : r.matches) {
    if (m.rule == name) return &m;
  }
  return nullptr;
}

TEST(PayoutReference, IsStableShortAndDistinctPerBatchIdentity) {
  const std::string a = payout_reference("m1", d("2026-03-29"), "EUR");
  EXPECT_EQ(a, payout_reference("m1", d("2026-03-29"), "EUR"));
  EXPECT_EQ(a.size(), 32u);
  EXPECT_TRUE(a.starts_with("PO-20260329-EUR-")) << a;
  EXPECT_NE(a, payout_reference("m2", d("2026-03-29"), "EUR"));
  EXPECT_NE(a, payout_reference("m1", d("2026-03-30"), "EUR"));
  EXPECT_NE(a, payout_reference("m1", d("2026-03-29"), "USD"));
  EXPECT_EQ(find_payout_reference("/EREF/" + a + "/REMI/x"), a);
  EXPECT_EQ(find_payout_reference("PO-2026-EUR-nothex"), "");
}

TEST(BankMatching, ExactReferenceMatchesWithFullConfidence) {
  const std::vector<Payout> ps = {payout("m1", "2026-03-29", "EUR", 10000, "2026-03-30")};
  auto r = match_bank({statement({debit("EUR", 10000, "2026-03-30", ps[0].reference)})}, ps, {}, MatchConfig{});
  EXPECT_TRUE(r.findings.empty());
  ASSERT_NE(rule(r, "exact_reference"), nullptr);
  EXPECT_EQ(rule(r, "exact_reference")->confidence, 100);
  EXPECT_EQ(r.matched_subjects, std::vector<std::string>{"payout:" + ps[0].reference});
}

TEST(BankMatching, AmountToleranceIsInclusiveAtItsEdgeAndPerCurrency) {
  const std::vector<Payout> ps = {payout("m1", "2026-03-29", "EUR", 10000, "2026-03-30")};
  MatchConfig c;
  c.by_currency["EUR"] = Tolerance{5, 2};
  auto at_edge = match_bank({statement({debit("EUR", 10005, "2026-03-30", ps[0].reference)})}, ps, {}, c);
  EXPECT_TRUE(at_edge.findings.empty());
  auto past = match_bank({statement({debit("EUR", 10006, "2026-03-30", ps[0].reference)})}, ps, {}, c);
  ASSERT_EQ(reasons(past), std::vector<std::string>{"amount_mismatch"});
  EXPECT_EQ(past.findings[0].expected, 10000);
  EXPECT_EQ(past.findings[0].actual, 10006);
  EXPECT_EQ(past.findings[0].drift, 6);
  EXPECT_EQ(past.findings[0].merchant_id, "m1");
}

TEST(BankMatching, DateWindowIsInclusiveAtItsEdgeAndPerMerchant) {
  const std::vector<Payout> ps = {payout("m1", "2026-03-29", "EUR", 10000, "2026-03-30")};
  MatchConfig c;
  c.defaults.window_days = 0;
  c.by_merchant["m1"] = Tolerance{0, 3};
  auto inside = match_bank({statement({debit("EUR", 10000, "2026-04-02", ps[0].reference)}, "2026-03-30", "2026-04-02")},
                           ps, {}, c);
  EXPECT_TRUE(inside.findings.empty());
  auto outside = match_bank({statement({debit("EUR", 10000, "2026-04-03", ps[0].reference)}, "2026-03-30", "2026-04-03")},
                            ps, {}, c);
  ASSERT_EQ(reasons(outside), std::vector<std::string>{"outside_date_window"});
  EXPECT_EQ(outside.findings[0].drift, 0);  // the money arrived, late
}

TEST(BankMatching, AReferenceBookedInAnotherCurrencyIsACurrencyMismatch) {
  const std::vector<Payout> ps = {payout("m1", "2026-03-29", "EUR", 10000, "2026-03-30")};
  auto r = match_bank({statement({debit("USD", 10000, "2026-03-30", ps[0].reference)})}, ps, {}, MatchConfig{});
  EXPECT_EQ(reasons(r), std::vector<std::string>{"currency_mismatch"});
}

TEST(BankMatching, WithoutAReferenceAmountAndDateFindTheUniquePayout) {
  const std::vector<Payout> ps = {payout("m1", "2026-03-29", "EUR", 10000, "2026-03-30"),
                                  payout("m2", "2026-03-29", "EUR", 20000, "2026-03-30")};
  auto r = match_bank({statement({debit("EUR", 20000, "2026-03-31"), debit("EUR", 10000, "2026-03-30")})}, ps, {},
                      MatchConfig{});
  EXPECT_TRUE(r.findings.empty()) << r.findings.size();
  int n = 0;
  for (const Match& m : r.matches) {
    EXPECT_EQ(m.rule, "amount_date");
    EXPECT_GE(m.confidence, 75);
    ++n;
  }
  EXPECT_EQ(n, 2);
}

TEST(BankMatching, OneBankEntryPayingSeveralPayoutsIsOneToMany) {
  const std::vector<Payout> ps = {payout("m1", "2026-03-29", "EUR", 10000, "2026-03-30"),
                                  payout("m2", "2026-03-29", "EUR", 2550, "2026-03-30"),
                                  payout("m3", "2026-03-29", "EUR", 99999, "2026-03-30")};
  auto r = match_bank({statement({debit("EUR", 12550, "2026-03-30"), debit("EUR", 99999, "2026-03-30")})}, ps, {},
                      MatchConfig{});
  EXPECT_TRUE(r.findings.empty());
  const Match* m = rule(r, "one_to_many");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->ours.size(), 2u);
  EXPECT_EQ(m->confidence, 60);
}

TEST(BankMatching, SeveralBankEntriesPayingOnePayoutAreManyToOne) {
  const std::vector<Payout> ps = {payout("m1", "2026-03-29", "EUR", 10000, "2026-03-30")};
  auto r = match_bank({statement({debit("EUR", 6000, "2026-03-30"), debit("EUR", 3000, "2026-03-31"),
                                  debit("EUR", 1000, "2026-03-31")})},
                      ps, {}, MatchConfig{});
  EXPECT_TRUE(r.findings.empty());
  const Match* m = rule(r, "many_to_one");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->theirs.size(), 3u);
}

TEST(BankMatching, MissingDuplicateAndUnknownItemsAreFindings) {
  const std::vector<Payout> ps = {payout("m1", "2026-03-29", "EUR", 10000, "2026-03-30"),
                                  payout("m2", "2026-03-29", "EUR", 777, "2026-03-30"),
                                  payout("m3", "2026-03-29", "EUR", 555, "2026-04-05")};  // after the period
  auto r = match_bank({statement({debit("EUR", 10000, "2026-03-30", ps[0].reference),
                                  debit("EUR", 10000, "2026-03-30", ps[0].reference), debit("EUR", 4242, "2026-03-30")})},
                      ps, {}, MatchConfig{});
  EXPECT_EQ(reasons(r), (std::vector<std::string>{"duplicate_in_statement", "missing_in_ledger", "missing_in_statement"}));
  for (const Finding& f : r.findings) {
    if (f.reason == Reason::kMissingInStatement) {
      EXPECT_EQ(f.merchant_id, "m2");
      EXPECT_EQ(f.drift, 777);
    }
    if (f.reason == Reason::kMissingInLedger) {
      EXPECT_EQ(f.drift, 4242);
    }
    if (f.reason == Reason::kDuplicateInStatement) {
      EXPECT_EQ(f.drift, 10000);
    }
  }
}

TEST(BankMatching, APayoutMatchedByAnEarlierStatementIsADuplicateWhenBookedAgain) {
  const std::vector<Payout> ps = {payout("m1", "2026-03-29", "EUR", 10000, "2026-03-30")};
  auto r = match_bank({statement({debit("EUR", 10000, "2026-03-31", ps[0].reference)})}, ps,
                      {"payout:" + ps[0].reference}, MatchConfig{});
  EXPECT_EQ(reasons(r), std::vector<std::string>{"duplicate_in_statement"});
}

TEST(BankMatching, CreditsAndPendingEntriesAreNotPayouts) {
  BankEntry credit = debit("EUR", 500, "2026-03-30");
  credit.amount = 500;
  BankEntry pending = debit("EUR", 600, "2026-03-30");
  pending.status = "PDNG";
  auto r = match_bank({statement({credit, pending})}, {}, {}, MatchConfig{});
  EXPECT_TRUE(r.findings.empty());
  EXPECT_EQ(r.items, 0);
}

LedgerEvent event(const std::string& ref, const std::string& type, Minor amount, Minor fee) {
  return LedgerEvent{"m1", ref, type, "EUR", amount, fee, d("2026-03-28"), d("2026-03-28")};
}

AcquirerLine line(const std::string& ref, const std::string& type, Minor gross, Minor fee, int n,
                  const std::string& cur = "EUR") {
  AcquirerLine l;
  l.merchant_id = "m1";
  l.reference = ref;
  l.type = type;
  l.currency = cur;
  l.gross = gross;
  l.fee = fee;
  l.net = gross - fee;
  l.batch_date = d("2026-03-28");
  l.line = n;
  return l;
}

model::BatchSummary batch(Minor captures, std::int64_t count, Minor fees) {
  model::BatchSummary b;
  b.key = model::BatchKey{MerchantId("m1"), d("2026-03-28"), "EUR"};
  b.totals.of(model::EventType::kCapture) = model::TypeTotals{count, captures, fees};
  return b;
}

TEST(AcquirerMatching, LinesMatchEventsByReferenceAndCompareAmountAndFee) {
  const std::vector<LedgerEvent> ev = {event("e1", "capture", 10000, 160), event("e2", "capture", 5000, 85),
                                       event("e3", "capture", 3000, 55), event("e4", "capture", 100, 1),
                                       event("e5", "capture", 100, 1)};
  AcquirerReport rep;
  rep.lines = {line("e1", "capture", 10000, 160, 2), line("e2", "capture", 5001, 85, 3),
               line("e3", "capture", 3000, 56, 4),   line("e9", "capture", 700, 7, 5),
               line("e4", "capture", 100, 1, 6),     line("e4", "capture", 100, 1, 7),
               line("e5", "capture", 100, 1, 8, "USD")};
  rep.totals = {AcquirerBatchTotal{"m1", "EUR", d("2026-03-28"), 5, 18200, 302, 0, 9}};
  const std::vector<model::BatchSummary> batches = {batch(18200, 5, 302)};
  auto r = match_acquirer(rep, ev, batches, MatchConfig{});
  EXPECT_EQ(reasons(r), (std::vector<std::string>{"amount_mismatch", "currency_mismatch", "duplicate_in_statement",
                                                   "fee_mismatch", "missing_in_ledger"}));
  for (const Finding& f : r.findings) {
    if (f.reason == Reason::kFeeMismatch) {
      EXPECT_EQ(f.subject, "event:m1/e3");
      EXPECT_EQ(f.expected, 55);
      EXPECT_EQ(f.actual, 56);
      EXPECT_EQ(f.drift, 1);
      EXPECT_EQ(f.their_ref, "line 4");
    }
  }
  ASSERT_NE(rule(r, "batch_totals"), nullptr);
  EXPECT_EQ(rule(r, "batch_totals")->confidence, 100);
}

TEST(AcquirerMatching, AnEventOfACoveredBatchMissingFromTheReportIsMissingInStatement) {
  const std::vector<LedgerEvent> ev = {event("e1", "capture", 10000, 160), event("e2", "refund", 500, 0)};
  AcquirerReport rep;
  rep.lines = {line("e1", "capture", 10000, 160, 2)};
  auto r = match_acquirer(rep, ev, {}, MatchConfig{});
  ASSERT_EQ(reasons(r), std::vector<std::string>{"missing_in_statement"});
  EXPECT_EQ(r.findings[0].subject, "event:m1/e2");
}

TEST(AcquirerMatching, BatchTotalsDifferingFromOurControlTotalsAreFindings) {
  AcquirerReport rep;
  rep.totals = {AcquirerBatchTotal{"m1", "EUR", d("2026-03-28"), 1, 10000, 170, 0, 2},
                AcquirerBatchTotal{"m1", "EUR", d("2026-03-27"), 1, 10000, 160, 0, 3}};
  auto r = match_acquirer(rep, {}, {batch(10000, 1, 160)}, MatchConfig{});
  EXPECT_EQ(reasons(r), (std::vector<std::string>{"fee_mismatch", "missing_in_ledger"}));
  MatchConfig loose;
  loose.defaults.amount = 10;
  auto r2 = match_acquirer(rep, {}, {batch(10000, 1, 160)}, loose);
  EXPECT_EQ(reasons(r2), std::vector<std::string>{"missing_in_ledger"});
}

TEST(MatchConfigJson, MerchantSettingsWinOverCurrencyOverDefaults) {
  auto c = parse_match_config_json(
      R"({"amount":1,"window_days":2,"currencies":{"JPY":{"amount":100}},"merchants":{"m1":{"window_days":7}}})");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->tolerance("m2", "EUR"), (Tolerance{1, 2}));
  EXPECT_EQ(c->tolerance("m2", "JPY"), (Tolerance{100, 2}));
  EXPECT_EQ(c->tolerance("m1", "JPY"), (Tolerance{1, 7}));
  EXPECT_FALSE(parse_match_config_json(R"({"amount":-1})").ok());
  EXPECT_FALSE(parse_match_config_json(R"({"tolerance":1})").ok());
}

}  // namespace
}  // namespace settle::reconcile
