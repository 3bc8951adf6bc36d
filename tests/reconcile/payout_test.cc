// pain.001 output: structure read back with libxml2 XPath (GrpHdr counts and
// control sum, one PmtInf per currency, EndToEndId = payout reference,
// InstdAmt with the currency's exponent) and the CSV form.
#include <gtest/gtest.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include "reconcile/payout.h"

namespace settle::reconcile {
namespace {

Date d(const char* s) { return *parse_date(s); }

std::vector<Payout> sample() {
  std::vector<model::BatchSummary> batches(4);
  batches[0].key = model::BatchKey{MerchantId("m-eur"), d("2026-03-29"), "EUR"};
  batches[0].payout = 123456;
  batches[1].key = model::BatchKey{MerchantId("m-jpy"), d("2026-03-29"), "JPY"};
  batches[1].payout = 7000;
  batches[2].key = model::BatchKey{MerchantId("m-kwd"), d("2026-03-29"), "KWD"};
  batches[2].payout = 5;
  batches[3].key = model::BatchKey{MerchantId("m-zero"), d("2026-03-29"), "EUR"};
  batches[3].payout = 0;  // no payout, no instruction
  for (auto& b : batches) b.payout_date = d("2026-03-30");
  return payouts_of(batches);
}

std::string xpath(xmlDoc* doc, const std::string& expr) {
  xmlXPathContext* ctx = xmlXPathNewContext(doc);
  xmlXPathRegisterNs(ctx, reinterpret_cast<const xmlChar*>("p"),
                     reinterpret_cast<const xmlChar*>("urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"));
  xmlXPathObject* o = xmlXPathEvalExpression(reinterpret_cast<const xmlChar*>(expr.c_str()), ctx);
  std::string out;
  if (o != nullptr) {
    xmlChar* s = xmlXPathCastToString(o);
    out = reinterpret_cast<const char*>(s);
    xmlFree(s);
    xmlXPathFreeObject(o);
  }
  xmlXPathFreeContext(ctx);
  return out;
}

TEST(Pain001, GroupHeaderCountsAndSumsEveryPayoutAndEachCurrencyHasItsPaymentInfo) {
  const std::vector<Payout> ps = sample();
  ASSERT_EQ(ps.size(), 3u);
  Pain001Options o;
  o.created_at = *parse_rfc3339("2026-03-30T06:00:00Z");
  auto xml = write_pain001(ps, o);
  ASSERT_TRUE(xml.ok()) << xml.error().message;
  xmlDoc* doc = xmlReadMemory(xml->data(), static_cast<int>(xml->size()), "p.xml", nullptr, XML_PARSE_NONET);
  ASSERT_NE(doc, nullptr) << *xml;
  EXPECT_EQ(xpath(doc, "string(/p:Document/p:CstmrCdtTrfInitn/p:GrpHdr/p:MsgId)"), "SETTLE-PAYOUTS-20260330");
  EXPECT_EQ(xpath(doc, "string(/p:Document/p:CstmrCdtTrfInitn/p:GrpHdr/p:NbOfTxs)"), "3");
  // 1234.56 EUR + 7000 JPY + 0.005 KWD, as plain decimals.
  EXPECT_EQ(xpath(doc, "string(/p:Document/p:CstmrCdtTrfInitn/p:GrpHdr/p:CtrlSum)"), "8234.565");
  EXPECT_EQ(xpath(doc, "string(/p:Document/p:CstmrCdtTrfInitn/p:GrpHdr/p:CreDtTm)"), "2026-03-30T06:00:00Z");
  EXPECT_EQ(xpath(doc, "count(//p:PmtInf)"), "3");
  const std::string eur = "//p:PmtInf[p:DbtrAcct/p:Ccy='EUR']";
  EXPECT_EQ(xpath(doc, "string(" + eur + "/p:ReqdExctnDt/p:Dt)"), "2026-03-30");
  EXPECT_EQ(xpath(doc, "string(" + eur + "/p:CtrlSum)"), "1234.56");
  EXPECT_EQ(xpath(doc, "string(" + eur + "/p:PmtMtd)"), "TRF");
  EXPECT_EQ(xpath(doc, "string(" + eur + "/p:CdtTrfTxInf/p:PmtId/p:EndToEndId)"), ps[0].reference);
  EXPECT_EQ(xpath(doc, "string(" + eur + "/p:CdtTrfTxInf/p:Amt/p:InstdAmt)"), "1234.56");
  EXPECT_EQ(xpath(doc, "string(" + eur + "/p:CdtTrfTxInf/p:Amt/p:InstdAmt/@Ccy)"), "EUR");
  EXPECT_EQ(xpath(doc, "string(" + eur + "/p:CdtTrfTxInf/p:CdtrAcct/p:Id/p:Othr/p:Id)"), "MERCHANT:m-eur");
  EXPECT_EQ(xpath(doc, "string(//p:PmtInf[p:DbtrAcct/p:Ccy='JPY']/p:CdtTrfTxInf/p:Amt/p:InstdAmt)"), "7000");
  EXPECT_EQ(xpath(doc, "string(//p:PmtInf[p:DbtrAcct/p:Ccy='KWD']/p:CdtTrfTxInf/p:Amt/p:InstdAmt)"), "0.005");
  EXPECT_EQ(xpath(doc, "string(" + eur + "/p:DbtrAcct/p:Id/p:Othr/p:Id)"), "PLATFORM-SETTLEMENT-ACCOUNT");
  for (const Payout& p : ps) EXPECT_LE(p.reference.size(), 35u);
  xmlFreeDoc(doc);
}

TEST(Pain001, ADebtorIbanAndBicReplaceThePlaceholders) {
  Pain001Options o;
  o.debtor_iban = "DE89370400440532013000";
  o.debtor_bic = "COBADEFFXXX";
  auto xml = write_pain001(sample(), o);
  ASSERT_TRUE(xml.ok());
  EXPECT_NE(xml->find("<IBAN>DE89370400440532013000</IBAN>"), std::string::npos);
  EXPECT_NE(xml->find("<BICFI>COBADEFFXXX</BICFI>"), std::string::npos);
}

TEST(Pain001, PayoutsOfDifferentDatesAreRefused) {
  std::vector<Payout> ps = sample();
  ps[1].payout_date = d("2026-03-31");
  EXPECT_FALSE(write_pain001(ps, {}).ok());
}

TEST(PayoutsCsv, ListsEachPayoutWithItsReferenceInMajorUnits) {
  const std::string csv = write_payouts_csv(sample());
  EXPECT_TRUE(csv.starts_with("reference,merchant_id,batch_date,currency,amount,payout_date\n"));
  EXPECT_NE(csv.find(",m-eur,2026-03-29,EUR,1234.56,2026-03-30\n"), std::string::npos) << csv;
  EXPECT_NE(csv.find(",m-kwd,2026-03-29,KWD,0.005,2026-03-30\n"), std::string::npos) << csv;
}

}  // namespace
}  // namespace settle::reconcile
