// Statement parsers on the real public samples in ../shared/statements and on
// files written here from the public specs (camt.053 001.02/.04/.08 layouts,
// MT940 with multi-line :86:, CRLF and LF, a statement split over two files,
// BAI2 with continuations and funds types, an acquirer CSV), and on malformed
// ones: the error names the line or XPath.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "reconcile/acquirer_csv_parser.h"
#include "reconcile/bai2_parser.h"
#include "reconcile/camt053_parser.h"
#include "reconcile/mt940_parser.h"
#include "reconcile/reconcile.h"

namespace settle::reconcile {
namespace {

namespace fs = std::filesystem;
const fs::path kStatements = fs::path(SETTLE_SOURCE_DIR) / ".." / "shared" / "statements";

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string crlf(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\n') out += '\r';
    out += c;
  }
  return out;
}

// ---------------------------------------------------------------- real files

TEST(RealStatements, EveryCamt053SampleParsesButTheOneWithCurrencyXXX) {
  ASSERT_TRUE(fs::exists(kStatements / "camt053")) << kStatements;
  int parsed = 0;
  for (const auto& e : fs::directory_iterator(kStatements / "camt053")) {
    auto r = parse_camt053(slurp(e.path()));
    if (e.path().filename() == "kedder_ch_gcamp6.xml") {
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(r.error().message,
                "camt.053 /Document/BkToCstmrStmt/Stmt[1]/Bal[1]/Amt/@Ccy: expected an ISO 4217 currency, found 'XXX'");
      continue;
    }
    ASSERT_TRUE(r.ok()) << e.path() << ": " << r.error().message;
    ++parsed;
  }
  EXPECT_EQ(parsed, 23);
}

TEST(RealStatements, Camt053GermanV02EntriesCarryAmountsSignsDatesAndEndToEndIds) {
  auto r = parse_camt053(slurp(kStatements / "camt053/viafintech_de_valid_example.xml"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 1u);
  const BankStatement& s = r->front();
  EXPECT_EQ(s.account, "DE14740618130000033626");
  EXPECT_EQ(s.opening->amount, 3306);
  EXPECT_EQ(s.closing->amount, 2306);
  ASSERT_EQ(s.entries.size(), 4u);
  const BankEntry& e = s.entries[0];
  EXPECT_EQ(e.amount, -200);
  EXPECT_EQ(e.currency, "EUR");
  EXPECT_EQ(e.status, "BOOK");
  EXPECT_EQ(format_date(*e.booking_date), "2013-12-27");
  EXPECT_EQ(e.bank_ref, "2013122710583450000");
  ASSERT_EQ(e.transactions.size(), 1u);
  EXPECT_EQ(e.transactions[0].end_to_end_id, "EndToEndReference");
  Minor sum = s.opening->amount;
  for (const BankEntry& x : s.entries) sum += x.amount;
  EXPECT_EQ(sum, s.closing->amount);  // the sample's balances agree with its entries
}

TEST(RealStatements, Camt053PostFinanceBatchBookingsSplitIntoTransactionsThatAddUp) {
  auto r = parse_camt053(slurp(kStatements /
                               "camt053/postfinance_ch_camt.053_P_CH0309000000250090342_380000000_0_2016053100163801.xml"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  int batches = 0;
  for (const BankEntry& e : r->front().entries) {
    if (e.transactions.size() < 2) continue;
    Minor sum = 0;
    bool all = true;
    for (const BankTransaction& t : e.transactions) {
      all = all && t.amount.has_value();
      if (t.amount) sum += *t.amount;
    }
    if (!all) continue;
    ++batches;
    EXPECT_EQ(sum, e.amount) << e.location;
  }
  EXPECT_GE(batches, 2);
}

TEST(RealStatements, Mt940SamplesParseOrFailOnTheirOwnInconsistencies) {
  // Fixtures whose balances do not add up, or with impossible dates or a
  // withdrawn currency: each gets a clear error naming its line.
  const std::map<std::string, std::string> failing = {
      {"postfinance_ch.txt", "mt940 line 28: :62F: closing balance 159.60 is not opening 229.20 + entries -69.80"},
      {"deutsche_bank_de_mt940-deutsche_bank.txt", "mt940 line 4: :60F: expected an ISO 4217 currency after the date, found 'DEM'"},
      {"sparkasse_de_sparkasse2_RD.txt", "mt940 line 8: :62F: closing balance 931304.50 is not opening 931052.29"},
      {"sparkasse_de_sparkasse3_RC.txt", "mt940 line 8: :62F: closing balance 931304.50 is not opening 931052.29"},
      {"cmxl_de_mt940-iso8859-1.txt", "mt940 line 15: :62F: expected the balance date as YYMMDD, found '021131'"},
      {"cmxl_in_mt940-headers.txt", "mt940 line 8: :61: expected the value date as YYMMDD, found '362268'"},
      {"abnamro_nl_structured.txt", "mt940 line 16: :62F: closing balance 9980.90 is not opening 10000.90"},
      {"ing_nl_ing-dos.txt", "mt940 line 26: :62F: closing balance 3.47 is not opening 0.00"},
      {"rabobank_nl_sample_multicurrency.sta", "mt940 line 6: :62F: closing balance 2145.00 is not opening 0.00"},
      {"hsbc_hk_sample.sta", "mt940 line 10: :62F: closing balance 0.00 is not opening 0.00 + entries -20000.00"},
  };
  int parsed = 0;
  for (const auto& e : fs::directory_iterator(kStatements / "mt940")) {
    auto r = parse_mt940(slurp(e.path()));
    const std::string name = e.path().filename().string();
    if (auto f = failing.find(name); f != failing.end()) {
      ASSERT_FALSE(r.ok()) << name;
      EXPECT_TRUE(r.error().message.starts_with(f->second)) << name << ": " << r.error().message;
      continue;
    }
    ASSERT_TRUE(r.ok()) << name << ": " << r.error().message;
    ++parsed;
  }
  EXPECT_EQ(parsed, 15);
}

TEST(RealStatements, Mt940DanskeBankCrlfStatementsBalanceEntryByEntry) {
  auto r = parse_mt940(slurp(kStatements / "mt940/danskebank_dk_MT940_DK_Example.sta"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  const BankStatement& s = r->front();
  EXPECT_EQ(s.account, "DABADKKK/1234567890");
  EXPECT_EQ(s.currency, "DKK");
  EXPECT_EQ(s.opening->amount, 247892670);
  EXPECT_EQ(s.closing->amount, 165409516);
  ASSERT_EQ(s.entries.size(), 7u);
  EXPECT_EQ(s.entries[0].amount, -82941978);  // "DK829419,78": debit, funds code K
  EXPECT_EQ(s.entries[1].amount, -221400);
  EXPECT_EQ(format_date(*s.entries[1].value_date), "2009-10-01");
  EXPECT_EQ(format_date(*s.entries[1].booking_date), "2009-09-30");
  EXPECT_EQ(s.entries[5].amount, 200000);
  // The :86: after the sixth entry runs over four lines.
  EXPECT_EQ(s.entries[5].info, "DB faktura 1234567\nTestkunde\nHOLMENS KANAL 2-12\n1192  KOBENHAVN H");
}

TEST(RealStatements, AcquirerAdyenReportParsesSettledAndRefundedLinesWithFeesInMinorUnits) {
  auto m = builtin_mapping("adyen");
  ASSERT_TRUE(m.ok());
  AcquirerParseStats stats;
  auto r = parse_acquirer_csv(slurp(kStatements / "acquirer/adyen_settlement_detail_report_batch_380.csv"), *m, {}, &stats);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->lines.size(), 226u);
  EXPECT_EQ(stats.skipped_lines, 2);  // the Fee and MerchantPayout lines
  const AcquirerLine& l = r->lines[0];
  EXPECT_EQ(l.merchant_id, "YOURCOMPANY_ACCOUNT");
  EXPECT_EQ(l.reference, "CM1000028854");
  EXPECT_EQ(l.type, "capture");
  EXPECT_EQ(l.gross, 3145);
  EXPECT_EQ(l.fee, 16 + 5 + 9);
  EXPECT_EQ(l.net, 3115);
  EXPECT_EQ(l.line, 2);
  int refunds = 0;
  for (const AcquirerLine& x : r->lines) refunds += x.type == "refund";
  EXPECT_EQ(refunds, 6);
}

TEST(RealStatements, AcquirerAdyenSmashPigLayoutsParseWithTheSameMapping) {
  auto m = builtin_mapping("adyen");
  for (const char* f : {"adyen_smashpig_settlement_detail_report_refund.csv",
                        "adyen_smashpig_settlement_detail_report_chargeback.csv",
                        "adyen_smashpig_settlement_detail_report_chargeback_reversed.csv",
                        "adyen_smashpig_settlement_detail_report_donation-ach.csv",
                        "adyen_smashpig_settlement_detail_report_emptynetcredit.csv",
                        "adyen_smashpig_settlement_detail_report_deposit_correction.csv",
                        "adyen_smashpig_settlement_detail_report_invoice_deduction.csv"}) {
    auto r = parse_acquirer_csv(slurp(kStatements / "acquirer" / f), *m);
    EXPECT_TRUE(r.ok()) << f << ": " << r.error().message;
  }
}

TEST(RealStatements, AcquirerStripeReportNeedsAMerchantAndTakesNegativeRefundsAsMagnitudes) {
  auto m = builtin_mapping("stripe");
  const std::string text = slurp(kStatements / "acquirer/stripe_smashpig_settlement_report.csv");
  auto no_merchant = parse_acquirer_csv(text, *m);
  ASSERT_FALSE(no_merchant.ok());
  EXPECT_NE(no_merchant.error().message.find("has no merchant column"), std::string::npos);
  auto r = parse_acquirer_csv(text, *m, "m-stripe");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_GE(r->lines.size(), 2u);
  EXPECT_EQ(r->lines[0].gross, 2500);
  EXPECT_EQ(r->lines[0].fee, 95);
  EXPECT_EQ(r->lines[1].type, "refund");
  EXPECT_EQ(r->lines[1].gross, 1000);
}

TEST(RealStatements, Bai2SamplesParseWithEveryControlTotalOrFailOnTheirOwnInconsistencies) {
  ASSERT_TRUE(fs::exists(kStatements / "bai2")) << kStatements;
  int parsed = 0;
  for (const auto& e : fs::directory_iterator(kStatements / "bai2")) {
    auto r = parse_bai2(slurp(e.path()));
    const std::string name = e.path().filename().string();
    if (name == "moov_sample4-continuations-newline-delimited.txt") {
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(r.error().message, "bai2 line 22: 49: account control total -1260161341762 does not match the sum "
                                   "of the amounts it covers, 7999960");
      continue;
    }
    if (name == "moov_sample5-issue113.txt") {
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(r.error().message, "bai2 line 63: expected a record code and ',' (e.g. '88,'), found '88:'");
      continue;
    }
    ASSERT_TRUE(r.ok()) << name << ": " << r.error().message;
    EXPECT_FALSE(r->empty()) << name;
    ++parsed;
  }
  EXPECT_EQ(parsed, 6);
}

TEST(RealStatements, Bai2CitiDetailCarriesBothReferencesAndItsContinuedText) {
  auto r = parse_bai2(slurp(kStatements / "bai2/moj_citi_example.bai2"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 1u);
  const BankStatement& s = r->front();
  EXPECT_EQ(s.id, "00131100/77777777/2015-07-15");
  EXPECT_EQ(s.account, "77777777");
  EXPECT_EQ(s.currency, "GBP");
  EXPECT_EQ(s.opening->amount, 10000);  // 100.00 GBP
  EXPECT_EQ(s.closing->amount, 10000);
  ASSERT_EQ(s.entries.size(), 1u);
  const BankEntry& e = s.entries[0];
  EXPECT_EQ(e.amount, 1);  // type 191 (incoming money transfer): a credit of 0.01
  EXPECT_EQ(e.status, "BOOK");
  EXPECT_EQ(e.bank_ref, "1234567890");
  EXPECT_EQ(e.entry_ref, "RP12312312312312");
  EXPECT_EQ(e.booking_date, date_from_civil(2015, 7, 15));
  EXPECT_EQ(e.value_date, date_from_civil(2015, 7, 15));  // funds type V
  EXPECT_TRUE(e.info.starts_with("FR:FP SIP INCOMING ENDT:20150715 TRID:RP12312312312312")) << e.info;
  EXPECT_TRUE(e.info.ends_with("BO:11111111 BO1:DOE JO")) << e.info;
  EXPECT_EQ(e.location, "line 4");
}

TEST(RealStatements, Bai2TypeCodesGiveTheDirectionAndGroupsTheirOwnDates) {
  auto one = parse_bai2(slurp(kStatements / "bai2/moov_sample1.txt"));
  ASSERT_TRUE(one.ok()) << one.error().message;
  ASSERT_EQ(one->size(), 2u);
  const BankStatement& s = one->front();
  EXPECT_EQ(s.currency, "CAD");
  ASSERT_EQ(s.entries.size(), 11u);
  EXPECT_EQ(s.entries[0].amount, -2500);    // 409: a debit
  EXPECT_EQ(s.entries[0].info, "RETURNED CHEQUE");
  EXPECT_EQ(s.entries[3].amount, 203500);   // 108: a credit
  Minor net = 0;
  for (const BankEntry& e : s.entries) net += e.amount;
  EXPECT_EQ(net, 0);  // 88,100 total credits 2085.00 = 400 total debits 2085.00

  auto svb = parse_bai2(slurp(kStatements / "bai2/moj_svb_us_example.bai2"));
  ASSERT_TRUE(svb.ok()) << svb.error().message;
  ASSERT_EQ(svb->size(), 2u);  // one account reported in two groups (days)
  EXPECT_EQ((*svb)[0].from, date_from_civil(2022, 2, 1));
  EXPECT_EQ((*svb)[1].from, date_from_civil(2022, 2, 2));
  EXPECT_EQ((*svb)[1].opening->amount, 35217175);
  EXPECT_EQ((*svb)[1].closing->amount, 36122975);
  EXPECT_EQ((*svb)[1].entries.at(0).amount, 905800);
  EXPECT_EQ((*svb)[1].entries.at(0).bank_ref, "150675");
  EXPECT_EQ((*svb)[1].entries.at(0).info, "SOME PAYMENT ACH OFFSET");

  auto three = parse_bai2(slurp(kStatements / "bai2/moov_sample3.txt"));  // several records per line
  ASSERT_TRUE(three.ok()) << three.error().message;
  EXPECT_EQ(three->size(), 15u);
  EXPECT_EQ(three->front().entries.at(1).amount, 500);
  EXPECT_EQ(three->front().entries.at(1).info, "TRANSFER   MSPBNA BANK        PPD");
}

TEST(RealStatements, AutoDetectionNamesTheFormatOfEverySample) {
  for (const auto& [dir, fmt] : {std::pair{"camt053", StatementFormat::kCamt053}, {"mt940", StatementFormat::kMt940},
                                 {"acquirer", StatementFormat::kAcquirerCsv}, {"bai2", StatementFormat::kBai2}}) {
    for (const auto& e : fs::directory_iterator(kStatements / dir)) {
      auto r = detect_format(slurp(e.path()));
      ASSERT_TRUE(r.ok()) << e.path() << ": " << r.error().message;
      EXPECT_EQ(*r, fmt) << e.path();
    }
  }
}

// ------------------------------------------------------------------- BAI2

// Written from the BAI2 specification: two groups (JPY, exponent 0; KWD,
// exponent 3), an 03 summary continued over an 88 with funds types S and D,
// a 16 with funds type V whose references come on an 88 and whose text goes
// on over two more, two records on one line, a non-monetary 890.
constexpr std::string_view kBai2 =
    "01,BANKJP,SETTLE,260330,2200,77,80,,2/\n"
    "02,SETTLE,BANKJP,1,260330,2359,JPY,2/\n"
    "03,ACC-JP-1,,010,+100000,,,015,94000,,,100,4000,2,S,1000,2000,1000,400,10000,1,D,2,0,5000,1,5000/\n"
    "88,045,94000,,/\n"
    "16,495,7000,V,260330,1200/\n"
    "88,BANK-1,PO-20260329-JPY-0123456789abcdef,/\n"
    "88,SETTLEMENT PAYOUT\n"
    "88,MERCHANT m-jp/\n"
    "16,142,4000,0,BANK-2,,ACH CREDIT, TWO PARTS/ 16,475,3000,,BANK-3,CHQ 17,/\n"
    "16,890,0,,,,BALANCE NOTE/\n"
    "49,+316000,10/\n"
    "98,+316000,1,12/\n"
    "02,SETTLE,BANKKW,1,260331,,KWD,2/\n"
    "03,ACC-KW-1,,010,1000,,,015,-4/\n"
    "16,699,1004,,BANK-4,PO-20260330-KWD-fedcba9876543210,/\n"
    "49,2000,3/\n"
    "98,2000,1,5/\n"
    "99,318000,2,19/\n";

TEST(Bai2, AmountsAreMinorUnitsAndTypeCodesGiveTheSign) {
  auto r = parse_bai2(kBai2);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 2u);
  const BankStatement& jp = (*r)[0];
  EXPECT_EQ(jp.id, "77/ACC-JP-1/2026-03-30");
  EXPECT_EQ(jp.currency, "JPY");
  EXPECT_EQ(jp.opening->amount, 100000);  // JPY has no minor unit: 100,000 yen
  EXPECT_EQ(jp.closing->amount, 94000);
  ASSERT_EQ(jp.entries.size(), 4u);
  EXPECT_EQ(jp.entries[0].amount, -7000);  // 495 outgoing wire: a debit
  EXPECT_EQ(jp.entries[0].bank_ref, "BANK-1");
  EXPECT_EQ(jp.entries[0].entry_ref, "PO-20260329-JPY-0123456789abcdef");
  EXPECT_EQ(jp.entries[0].info, "SETTLEMENT PAYOUT MERCHANT m-jp");
  EXPECT_EQ(jp.entries[0].value_date, date_from_civil(2026, 3, 30));
  EXPECT_EQ(jp.entries[0].location, "line 5");
  EXPECT_EQ(jp.entries[1].amount, 4000);
  EXPECT_EQ(jp.entries[1].info, "ACH CREDIT, TWO PARTS");
  EXPECT_EQ(jp.entries[2].amount, -3000);
  EXPECT_EQ(jp.entries[2].entry_ref, "CHQ 17");
  EXPECT_EQ(jp.entries[2].location, "line 9");
  EXPECT_EQ(jp.entries[3].status, "INFO");
  const BankStatement& kw = (*r)[1];
  EXPECT_EQ(kw.currency, "KWD");
  EXPECT_EQ(kw.closing->amount, -4);  // -0.004 KWD
  EXPECT_EQ(kw.entries.at(0).amount, -1004);  // 1.004 KWD
  EXPECT_EQ(kw.from, date_from_civil(2026, 3, 31));
}

TEST(Bai2, CrlfReadsTheSameAsLfAndAutoDetectionFindsIt) {
  auto lf = parse_bai2(kBai2);
  auto cr = parse_bai2(crlf(kBai2));
  ASSERT_TRUE(lf.ok() && cr.ok()) << (cr.ok() ? "" : cr.error().message);
  ASSERT_EQ(lf->size(), cr->size());
  for (std::size_t i = 0; i < lf->size(); ++i) {
    ASSERT_EQ((*lf)[i].entries.size(), (*cr)[i].entries.size());
    for (std::size_t j = 0; j < (*lf)[i].entries.size(); ++j) {
      EXPECT_EQ((*lf)[i].entries[j].amount, (*cr)[i].entries[j].amount);
      EXPECT_EQ((*lf)[i].entries[j].info, (*cr)[i].entries[j].info);
    }
  }
  EXPECT_EQ(*detect_format(kBai2), StatementFormat::kBai2);
  EXPECT_EQ(*parse_format_name("bai2"), StatementFormat::kBai2);
  RunOptions o;
  auto p = parse_statement({std::string(kBai2)}, o);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->format, StatementFormat::kBai2);
  EXPECT_EQ(p->bank.size(), 2u);
}

TEST(Bai2, MalformedFilesNameTheLineTheRecordAndWhatWasExpected) {
  const std::string good(kBai2);
  auto with = [&](std::string_view from, std::string_view to) {
    std::string s = good;
    const std::size_t i = s.find(from);
    EXPECT_NE(i, std::string::npos) << from;
    return s.replace(i, from.size(), to);
  };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {with("16,142,4000,", "16,142,40.00,"),
       "bai2 line 9: 16: amount '40.00' is not digits (BAI2 amounts have no decimal point: minor units)"},
      {with("49,+316000,10/", "49,+316001,10/"),
       "bai2 line 11: 49: account control total 316001 does not match the sum of the amounts it covers, 316000"},
      {with("49,+316000,10/", "49,+316000,9/"), "bai2 line 11: 49: number of records 9 does not match the 10 found"},
      {with("98,+316000,1,12/", "98,+316000,2,12/"),
       "bai2 line 12: 98: number of accounts 2 does not match the 1 found"},
      {with("99,318000,2,19/", "99,318000,2,18/"), "bai2 line 18: 99: number of records 18 does not match the 19 found"},
      {with("99,318000,2,19/", "99,318001,2,19/"),
       "bai2 line 18: 99: file control total 318001 does not match the sum of the amounts it covers, 318000"},
      {with("16,142,4000,0,", "16,142,4000,X,"),
       "bai2 line 9: 16: funds type must be 0, 1, 2, S, V, D, Z or blank, found 'X'"},
      {with("16,890,", "16,750,"),
       "bai2 line 10: 16: type code 750 is not a transaction code (credits 100-399 and 920-959, debits 400-699 and "
       "960-999, 890 non-monetary)"},
      {with("02,SETTLE,BANKJP,1,260330,", "02,SETTLE,BANKJP,1,260332,"),
       "bai2 line 2: 02: as-of date: '260332' is not a date YYMMDD"},
      {with("2200,77,80,,2/", "2200,77,80,,3/"), "bai2 line 1: 01: version '3' is not 2 (only BAI2 files are read)"},
      {with(",KWD,2/", ",XYZ,2/"), "bai2 line 14: 03: currency 'XYZ' is not an ISO 4217 currency"},
      {with("03,ACC-KW-1", "17,ACC-KW-1"),
       "bai2 line 14: unknown record code '17' (expected 01, 02, 03, 16, 88, 49, 98 or 99)"},
      {with("03,ACC-KW-1,,010,1000,,,015,-4/\n", ""),
       "bai2 line 14: expected an 03 account identifier or the 98 group trailer, found a 16 record"},
      {good + "16,142,1,,,,/\n", "bai2 line 19: expected nothing after the 99 file trailer, found a 16 record"},
      {good.substr(0, good.find("49,2000")), "bai2 line 15: the file ends inside an account (expected the 49 account trailer)"},
      {"88,X/\n" + good, "bai2 line 1: 88: a continuation with no record before it"},
      {"HEADER\n" + good, "bai2 line 1: expected the 01 file header, found 'HEADER'"},
      {"", "bai2: empty file (expected the 01 file header)"},
  };
  for (const auto& [text, message] : cases) {
    auto r = parse_bai2(text);
    ASSERT_FALSE(r.ok()) << message;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(r.error().message, message);
  }
}

// ------------------------------------------------------ written from the spec

// camt.053.001.08 (a Dutch bank's layout): Sts/Cd, one entry carrying three
// transactions with their own amounts, a reversal, a pending entry.
constexpr std::string_view kCamtV08 = R"(<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">
 <BkToCstmrStmt>
  <GrpHdr><MsgId>STMT-2026-03-30</MsgId><CreDtTm>2026-03-30T21:00:00+02:00</CreDtTm></GrpHdr>
  <Stmt>
   <Id>NL-0001-20260330</Id>
   <FrToDt><FrDtTm>2026-03-30T00:00:00+02:00</FrDtTm><ToDtTm>2026-03-30T23:59:59+02:00</ToDtTm></FrToDt>
   <Acct><Id><IBAN>NL91ABNA0417164300</IBAN></Id><Ccy>EUR</Ccy></Acct>
   <Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">1000.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2026-03-30</Dt></Dt></Bal>
   <Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">700.50</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2026-03-30</Dt></Dt></Bal>
   <Ntry>
    <Amt Ccy="EUR">300.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>
    <BookgDt><DtTm>2026-03-30T10:00:00+02:00</DtTm></BookgDt><ValDt><Dt>2026-03-30</Dt></ValDt>
    <AcctSvcrRef>BANK-REF-1</AcctSvcrRef>
    <NtryDtls><Btch><NbOfTxs>3</NbOfTxs></Btch>
     <TxDtls><Refs><EndToEndId>PO-20260329-EUR-0123456789abcdef</EndToEndId></Refs><Amt Ccy="EUR">100.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><RmtInf><Ustrd>Settlement m1</Ustrd><Ustrd>batch 2026-03-29</Ustrd></RmtInf></TxDtls>
     <TxDtls><Refs><EndToEndId>NOTPROVIDED</EndToEndId><TxId>TX-2</TxId></Refs><Amt Ccy="EUR">150.00</Amt><CdtDbtInd>DBIT</CdtDbtInd></TxDtls>
     <TxDtls><Refs><EndToEndId>E2E-3</EndToEndId></Refs><Amt Ccy="EUR">50.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><RmtInf><Strd><CdtrRefInf><Ref>RF18539007547034</Ref></CdtrRefInf></Strd></RmtInf></TxDtls>
    </NtryDtls>
   </Ntry>
   <Ntry>
    <Amt Ccy="EUR">0.50</Amt><CdtDbtInd>CRDT</CdtDbtInd><RvslInd>true</RvslInd><Sts><Cd>BOOK</Cd></Sts>
    <BookgDt><Dt>2026-03-30</Dt></BookgDt><AcctSvcrRef>BANK-REF-2</AcctSvcrRef>
   </Ntry>
   <Ntry>
    <Amt Ccy="EUR">9.99</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>PDNG</Cd></Sts><BookgDt><Dt>2026-03-31</Dt></BookgDt>
   </Ntry>
  </Stmt>
 </BkToCstmrStmt>
</Document>)";

TEST(Camt053, Version08BatchEntryKeepsEachTransactionsAmountAndReferences) {
  auto r = parse_camt053(kCamtV08);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const BankStatement& s = r->front();
  EXPECT_EQ(s.id, "NL-0001-20260330");
  EXPECT_EQ(format_date(*s.from), "2026-03-30");
  EXPECT_EQ(format_date(*s.to), "2026-03-30");
  ASSERT_EQ(s.entries.size(), 3u);
  const BankEntry& b = s.entries[0];
  EXPECT_EQ(b.amount, -30000);
  EXPECT_EQ(format_date(*b.booking_date), "2026-03-30");
  ASSERT_EQ(b.transactions.size(), 3u);
  EXPECT_EQ(b.transactions[0].end_to_end_id, "PO-20260329-EUR-0123456789abcdef");
  EXPECT_EQ(*b.transactions[0].amount, -10000);
  EXPECT_EQ(b.transactions[0].remittance, "Settlement m1 batch 2026-03-29");
  EXPECT_EQ(b.transactions[0].location, "/Document/BkToCstmrStmt/Stmt[1]/Ntry[1]/NtryDtls[1]/TxDtls[1]");
  EXPECT_EQ(b.transactions[1].end_to_end_id, "");  // NOTPROVIDED
  EXPECT_EQ(b.transactions[1].reference, "TX-2");
  EXPECT_EQ(b.transactions[2].remittance, "RF18539007547034");
  EXPECT_TRUE(s.entries[1].reversal);
  EXPECT_EQ(s.entries[1].amount, 50);
  EXPECT_EQ(s.entries[2].status, "PDNG");
}

// camt.053.001.02 (a German bank's layout): Sts as text, the transaction
// amount under AmtDtls/TxAmt, three-decimal currency.
TEST(Camt053, Version02ReadsTxAmtAndAThreeDecimalCurrency) {
  const std::string xml = R"(<?xml version="1.0"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt><GrpHdr><MsgId>1</MsgId></GrpHdr>
<Stmt><Id>KW-1</Id><Acct><Id><Othr><Id>KW-ACCT</Id></Othr></Id><Ccy>KWD</Ccy></Acct>
<Ntry><Amt Ccy="KWD">12.345</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>2026-01-02</Dt></BookgDt>
<NtryDtls><TxDtls><Refs><EndToEndId>X1</EndToEndId></Refs><AmtDtls><TxAmt><Amt Ccy="KWD">12.345</Amt></TxAmt></AmtDtls></TxDtls></NtryDtls></Ntry>
</Stmt></BkToCstmrStmt></Document>)";
  auto r = parse_camt053(xml);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const BankEntry& e = r->front().entries.at(0);
  EXPECT_EQ(e.amount, -12345);
  EXPECT_EQ(*e.transactions.at(0).amount, -12345);
  EXPECT_EQ(r->front().account, "KW-ACCT");
}

TEST(Camt053, MalformedDocumentsNameTheXPathAndWhatWasExpected) {
  auto with_entry = [](std::string_view ntry) {
    return std::string(R"(<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.04"><BkToCstmrStmt><Stmt><Id>S</Id>)") +
           "<Ntry><Amt Ccy=\"EUR\">1.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts></Ntry>" + std::string(ntry) +
           "</Stmt></BkToCstmrStmt></Document>";
  };
  struct Case {
    std::string xml;
    std::string error;
  };
  const std::vector<Case> cases = {
      {with_entry("<Ntry><Amt Ccy=\"EUR\">1.00</Amt><CdtDbtInd>X</CdtDbtInd></Ntry>"),
       "camt.053 /Document/BkToCstmrStmt/Stmt[1]/Ntry[2]/CdtDbtInd: expected CRDT or DBIT, found 'X'"},
      {with_entry("<Ntry><Amt>1.00</Amt><CdtDbtInd>CRDT</CdtDbtInd></Ntry>"),
       "camt.053 /Document/BkToCstmrStmt/Stmt[1]/Ntry[2]/Amt: expected a Ccy attribute (ISO 4217 code)"},
      {with_entry("<Ntry><Amt Ccy=\"EUR\">1.005</Amt><CdtDbtInd>CRDT</CdtDbtInd></Ntry>"),
       "camt.053 /Document/BkToCstmrStmt/Stmt[1]/Ntry[2]/Amt: '1.005' has more decimals than the currency's 2 (not "
       "exact in minor units)"},
      {with_entry("<Ntry><Amt Ccy=\"EUR\">1,00x</Amt><CdtDbtInd>CRDT</CdtDbtInd></Ntry>"),
       "camt.053 /Document/BkToCstmrStmt/Stmt[1]/Ntry[2]/Amt: '1,00x' is not an amount (unexpected 'x'; expected "
       "digits with an optional '.' or ',' decimal mark)"},
      {with_entry("<Ntry><CdtDbtInd>CRDT</CdtDbtInd></Ntry>"),
       "camt.053 /Document/BkToCstmrStmt/Stmt[1]/Ntry[2]/Amt: expected an amount element with a Ccy attribute"},
      {with_entry("<Ntry><Amt Ccy=\"EUR\">1</Amt><CdtDbtInd>CRDT</CdtDbtInd><BookgDt><Dt>2026-13-01</Dt></BookgDt></Ntry>"),
       "camt.053 /Document/BkToCstmrStmt/Stmt[1]/Ntry[2]/BookgDt/Dt: expected a date YYYY-MM-DD, found '2026-13-01'"},
      {with_entry("<Ntry><Amt Ccy=\"EUR\">1</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>MAYBE</Sts></Ntry>"),
       "camt.053 /Document/BkToCstmrStmt/Stmt[1]/Ntry[2]/Sts: expected BOOK, PDNG, INFO or FUTR, found 'MAYBE'"},
      {R"(<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"><CstmrCdtTrfInitn/></Document>)",
       "camt.053 /Document: expected a camt.053 namespace, found 'urn:iso:std:iso:20022:tech:xsd:pain.001.001.09'"},
      {R"(<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt></BkToCstmrStmt></Document>)",
       "camt.053 /Document/BkToCstmrStmt: expected at least one Stmt element"},
  };
  for (const Case& c : cases) {
    auto r = parse_camt053(c.xml);
    ASSERT_FALSE(r.ok()) << c.error;
    EXPECT_EQ(r.error().message, c.error);
  }
  auto broken = parse_camt053("<Document><BkToCstmrStmt>");
  ASSERT_FALSE(broken.ok());
  EXPECT_TRUE(broken.error().message.starts_with("camt.053: not well-formed XML: line 1:")) << broken.error().message;
}

TEST(Camt053, ExternalEntitiesAreNeverExpanded) {
  const std::string xml = R"(<?xml version="1.0"?>
<!DOCTYPE Document [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt><Stmt><Id>&x;</Id></Stmt></BkToCstmrStmt></Document>)";
  auto r = parse_camt053(xml);
  if (r.ok()) {
    EXPECT_EQ(r->front().id.find("root:"), std::string::npos);
  }
}

// MT940 written from the SWIFT spec: two statements, multi-line :86:,
// supplementary details, a reversal, a funds code.
constexpr std::string_view kMt940 =
    ":20:STMT-0330\n"
    ":25:NL91ABNA0417164300\n"
    ":28C:00089/1\n"
    ":60F:C260329EUR1000,00\n"
    ":61:2603300330D100,00NTRFPO-20260329-EUR//B-1\n"
    "SUPPLEMENTARY\n"
    ":86:/EREF/PO-20260329-EUR-0123456789abcdef/REMI/Settlement m1\n"
    "batch 2026-03-29\n"
    "third line\n"
    ":61:2603300330RD0,50NCHGNONREF\n"
    ":86:Fee reversal\n"
    ":61:260330C25,5NMSCREF-3\n"
    ":62F:C260330EUR926,00\n"
    "-\n"
    ":20:STMT-0331\n"
    ":25:NL91ABNA0417164300\n"
    ":28C:00090/1\n"
    ":60F:C260330EUR926,00\n"
    ":62F:C260331EUR926,00\n"
    "-\n";

TEST(Mt940, MultiLineDetailsReversalsAndBalancesReadTheSameWithLfAndCrlf) {
  for (const std::string& text : {std::string(kMt940), crlf(kMt940)}) {
    auto r = parse_mt940(text);
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_EQ(r->size(), 2u);
    const BankStatement& s = (*r)[0];
    EXPECT_EQ(s.id, "STMT-0330/00089/1");
    ASSERT_EQ(s.entries.size(), 3u);
    EXPECT_EQ(s.entries[0].amount, -10000);
    EXPECT_EQ(s.entries[0].entry_ref, "PO-20260329-EUR");
    EXPECT_EQ(s.entries[0].bank_ref, "B-1");
    EXPECT_EQ(s.entries[0].info,
              "SUPPLEMENTARY\n/EREF/PO-20260329-EUR-0123456789abcdef/REMI/Settlement m1\nbatch 2026-03-29\nthird line");
    EXPECT_TRUE(s.entries[1].reversal);
    EXPECT_EQ(s.entries[1].amount, 50);  // RD: a reversed debit books as a credit
    EXPECT_EQ(s.entries[2].amount, 2550);
    EXPECT_EQ(s.entries[2].location, "line 12");
    EXPECT_EQ((*r)[1].entries.size(), 0u);
  }
}

TEST(Mt940, AStatementSplitOverTwoFilesJoinsIntoOne) {
  const std::string part1 =
      ":20:SPLIT\n:25:ACC-1\n:28C:5/1\n:60F:C260330EUR100,00\n:61:2603300330D10,00NTRFA\n:62M:C260330EUR90,00\n-\n";
  const std::string part2 =
      ":20:SPLIT\n:25:ACC-1\n:28C:5/2\n:60M:C260330EUR90,00\n:61:2603300330D20,00NTRFB\n:62F:C260330EUR70,00\n-\n";
  RunOptions o;
  auto r = parse_statement({part1, crlf(part2)}, o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->format, StatementFormat::kMt940);
  ASSERT_EQ(r->bank.size(), 1u);
  EXPECT_EQ(r->bank[0].entries.size(), 2u);
  EXPECT_EQ(r->bank[0].opening->amount, 10000);
  EXPECT_EQ(r->bank[0].closing->amount, 7000);
  EXPECT_TRUE(r->bank[0].closing_is_final);

  const std::string gap =
      ":20:SPLIT\n:25:ACC-1\n:28C:5/2\n:60M:C260330EUR95,00\n:61:2603300330D25,00NTRFB\n:62F:C260330EUR70,00\n-\n";
  auto bad = parse_statement({part1, gap}, o);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("does not equal the intermediate closing balance"), std::string::npos)
      << bad.error().message;
}

TEST(Mt940, MalformedStatementsNameTheLineAndTag) {
  struct Case {
    std::string text;
    std::string error;
  };
  const std::vector<Case> cases = {
      {":20:X\n:25:A\n:60F:C260330EUR10,00\n:61:2603300330X5,00NTRF\n:62F:C260330EUR5,00\n",
       "mt940 line 4: :61: expected a mark C, D, RC or RD after the dates, found 'X5'"},
      {":20:X\n:25:A\n:60F:C260330EUR10,00\n:61:2602300330D5,00NTRF\n:62F:C260330EUR5,00\n",
       "mt940 line 4: :61: expected the value date as YYMMDD, found '260230' (no such date)"},
      {":20:X\n:25:A\n:60F:C260330EUR10,00\n:61:2603300330D5,001NTRF\n:62F:C260330EUR5,00\n",
       "mt940 line 4: :61: amount: '5,001' has more decimals than the currency's 2 (not exact in minor units)"},
      {":20:X\n:25:A\n:60F:C260330EUR10,00\n:61:2603300330D5,00NTRF\n:62F:C260330EUR6,00\n",
       "mt940 line 5: :62F: closing balance 6.00 is not opening 10.00 + entries -5.00 = 5.00 (EUR X)"},
      {":20:X\n:25:A\n:60F:X260330EUR10,00\n", "mt940 line 3: :60F: expected a balance starting with C or D, found 'X260330EUR10,00'"},
      {":20:X\n:25:A\n:61:2603300330D5,00NTRF\n", "mt940 line 3: :61: expected an opening balance :60F: or :60M: before the first entry"},
      {":20:X\n:25:A\n:60F:C260330EUR10,00\n:61:2603300330D5,00NTRF\n", "mt940 line 4: :62F: expected a closing balance :62F: or :62M: before the statement ends"},
      {":20:X\n:60F:C260330EUR10,00\n:62F:C260330USD10,00\n", "mt940 line 3: :62F: expected the currency of the opening balance (EUR), found USD"},
      {":25:A\n", "mt940 line 1: :25: expected :20: to start a statement first"},
      {"nothing here\n", "mt940: no statement (no :20: tag) in the file"},
  };
  for (const Case& c : cases) {
    auto r = parse_mt940(c.text);
    ASSERT_FALSE(r.ok()) << c.error;
    EXPECT_EQ(r.error().message, c.error);
  }
}

// --------------------------------------------------------------- acquirer CSV

TEST(AcquirerCsv, DefaultLayoutReadsLinesAndTotalsWithQuotedCells) {
  const std::string csv =
      "record_type,merchant_id,reference,type,currency,gross,fee,net,batch_date,count\n"
      "transaction,m1,\"e,1\",capture,EUR,100.00,1.60,98.40,2026-03-28,\n"
      "transaction,m1,e2,refund,eur,-20,0.2,-20.20,2026-03-28,\n"
      "transaction,m2,\"multi\nline \"\"ref\"\"\",capture,JPY,500,5,495,2026-03-28,\n"
      "batch_total,m1,,,EUR,80.00,1.80,78.20,2026-03-28,2\n";
  auto r = parse_acquirer_csv(csv, CsvMapping{});
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->lines.size(), 3u);
  EXPECT_EQ(r->lines[0].reference, "e,1");
  EXPECT_EQ(r->lines[0].gross, 10000);
  EXPECT_EQ(r->lines[0].fee, 160);
  EXPECT_EQ(r->lines[1].gross, 2000);  // a refund is a magnitude; the type says which way
  EXPECT_EQ(r->lines[1].currency, "EUR");
  EXPECT_EQ(r->lines[2].reference, "multi\nline \"ref\"");
  EXPECT_EQ(r->lines[2].gross, 500);  // JPY has no minor digits
  ASSERT_EQ(r->totals.size(), 1u);
  EXPECT_EQ(r->totals[0].line, 6);  // the quoted newline makes record 4 span lines 4-5
  EXPECT_EQ(r->totals[0].count, 2);
  EXPECT_EQ(r->totals[0].gross, 8000);
}

TEST(AcquirerCsv, AMappingFromJsonRenamesColumnsAndTypes) {
  auto m = parse_mapping_json(
      R"({"delimiter":";","record_type":"","merchant_id":"Shop","reference":"OrderRef","type":"Kind",)"
      R"("currency":"Cur","gross":["Credit","-Debit"],"fee":"Commission","net":[],"batch_date":"Booked",)"
      R"("count":"","types":{"Sale":"capture","Return":"refund"}})");
  ASSERT_TRUE(m.ok()) << m.error().message;
  const std::string csv =
      "Shop;OrderRef;Kind;Cur;Credit;Debit;Commission;Booked\n"
      "s1;o1;Sale;EUR;10,50;;0,10;2026-03-28 10:00\n"
      "s1;o2;Return;EUR;;3,00;0,05;2026-03-28 11:00\n"
      "s1;;Payout;EUR;;7,35;;2026-03-28 12:00\n";
  AcquirerParseStats stats;
  auto r = parse_acquirer_csv(csv, *m, {}, &stats);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->lines.size(), 2u);
  EXPECT_EQ(r->lines[0].gross, 1050);
  EXPECT_EQ(r->lines[1].gross, 300);
  EXPECT_EQ(r->lines[1].type, "refund");
  EXPECT_EQ(format_date(*r->lines[1].batch_date), "2026-03-28");
  EXPECT_EQ(stats.skipped_lines, 1);
  EXPECT_FALSE(parse_mapping_json(R"({"refrence":"x"})").ok());
  EXPECT_FALSE(parse_mapping_json(R"({"types":{"Sale":"purchase"}})").ok());
}

TEST(AcquirerCsv, MalformedReportsNameTheLineAndColumn) {
  const std::string header = "record_type,merchant_id,reference,type,currency,gross,fee,net,batch_date,count\n";
  struct Case {
    std::string csv;
    std::string error;
  };
  const std::vector<Case> cases = {
      {header + "transaction,m1,e1,capture,EUR,12.x,0,0,2026-03-28,\n",
       "acquirer csv line 2: column 'gross': '12.x' is not an amount (unexpected 'x'; expected digits with an "
       "optional '.' or ',' decimal mark)"},
      {header + "transaction,m1,e1,capture,EUR,1,0,0,2026-03-28,\ntransaction,m1,e2,sale,EUR,1,0,0,2026-03-28,\n",
       "acquirer csv line 3: column 'type': expected capture, refund, chargeback, chargeback_reversal or adjustment, "
       "found 'sale'"},
      {header + "transaction,m1,e1,capture,ZZZ,1,0,0,2026-03-28,\n",
       "acquirer csv line 2: column 'currency': expected an ISO 4217 currency, found 'ZZZ'"},
      {header + "transaction,m1,e1,capture,EUR,1,0,0,28.03.2026,\n",
       "acquirer csv line 2: column 'batch_date': expected a date YYYY-MM-DD, found '28.03.2026'"},
      {header + "summary,m1,e1,capture,EUR,1,0,0,2026-03-28,\n",
       "acquirer csv line 2: column 'record_type': expected 'transaction' or 'batch_total', found 'summary'"},
      {header + "transaction,m1,\"e1,capture,EUR,1,0,0,2026-03-28,\n",
       "acquirer csv line 2: expected a closing '\"' for the quoted cell opened here"},
      {"merchant_id,reference\n", "acquirer csv line 1: expected a column 'record_type' in the header (mapping 'default')"},
      {header + "batch_total,m1,,,EUR,1,0,1,2026-03-28,two\n", "acquirer csv line 2: column 'count': expected a count, found 'two'"},
  };
  for (const Case& c : cases) {
    auto r = parse_acquirer_csv(c.csv, CsvMapping{});
    ASSERT_FALSE(r.ok()) << c.error;
    EXPECT_EQ(r.error().message, c.error);
  }
}

TEST(Amounts, DecimalsBecomeMinorUnitsExactlyWithTheCurrencysExponent) {
  EXPECT_EQ(*parse_decimal_minor("1234,56", 2, "x"), 123456);
  EXPECT_EQ(*parse_decimal_minor("0,", 2, "x"), 0);
  EXPECT_EQ(*parse_decimal_minor(".11", 2, "x"), 11);
  EXPECT_EQ(*parse_decimal_minor("-5", 3, "x"), -5000);
  EXPECT_EQ(*parse_decimal_minor("700", 0, "x"), 700);
  EXPECT_EQ(*parse_decimal_minor("12.50000", 2, "x"), 1250);  // trailing zeros beyond the exponent are exact
  EXPECT_EQ(*parse_decimal_minor("000000002145.00", 2, "x"), 214500);
  EXPECT_EQ(*parse_decimal_minor("92233720368547758.07", 2, "x"), INT64_MAX);
  EXPECT_FALSE(parse_decimal_minor("92233720368547758.08", 2, "x").ok());
  EXPECT_FALSE(parse_decimal_minor("1.2.3", 2, "x").ok());
  EXPECT_FALSE(parse_decimal_minor("", 2, "x").ok());
  EXPECT_FALSE(parse_decimal_minor("1e3", 2, "x").ok());
  EXPECT_FALSE(parse_decimal_minor("0.5", 0, "x").ok());
}

}  // namespace
}  // namespace settle::reconcile
