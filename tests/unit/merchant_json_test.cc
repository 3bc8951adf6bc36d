// SETTLEMENT_RULES §2 (Merchant): defaults, strict fields with errors that
// name them, and lists of merchants as a JSON array or NDJSON.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "model/merchant_json.h"

namespace settle::model {
namespace {

Merchant parse_ok(const std::string& json) {
  Result<Merchant> r = parse_merchant_json(json);
  EXPECT_TRUE(r.ok()) << json << "\n" << r.error().to_string();
  return r.ok() ? std::move(r).value() : Merchant{};
}

void expect_field_error(const std::string& json, const std::string& field) {
  const Result<Merchant> r = parse_merchant_json(json);
  ASSERT_FALSE(r.ok()) << json;
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message.find("field '" + field + "'"), std::string::npos)
      << "expected the error to name '" << field << "': " << r.error().message;
}

// {"merchant_id":"m1", <extra>}
std::string with(const std::string& extra) { return R"({"merchant_id":"m1",)" + extra + "}"; }

const FeeSchedule& fee(const Merchant& m, EventType t) { return m.fee_for(t); }

TEST(MerchantJson, DefaultsAreUtcMidnightDelayOneNoFeesNoReserve) {
  const Merchant m = parse_ok(R"({"merchant_id":"m1"})");
  EXPECT_EQ(m.id, MerchantId("m1"));
  EXPECT_EQ(m.timezone.name(), "UTC");
  EXPECT_EQ(m.cutoff_minutes, 0);
  EXPECT_EQ(m.delay_days, 1);
  for (EventType t : {EventType::kCapture, EventType::kRefund, EventType::kChargeback,
                      EventType::kChargebackReversal}) {
    EXPECT_EQ(fee(m, t), (FeeSchedule{0, 0}));
  }
  EXPECT_EQ(m.reserve_bps, 0);
  EXPECT_EQ(m.reserve_days, 0);
}

TEST(MerchantJson, EveryField) {
  const Merchant m = parse_ok(R"({
    "merchant_id": "shop_7-B",
    "timezone": "Europe/Berlin",
    "cutoff": "18:30",
    "delay_days": 3,
    "fees": {
      "capture": {"bps": 290, "fixed": 30},
      "refund": {"fixed": 25},
      "chargeback": {"bps": 100, "fixed": 1500},
      "chargeback_reversal": {"bps": 50}
    },
    "reserve_bps": 1000,
    "reserve_days": 7
  })");
  EXPECT_EQ(m.id, MerchantId("shop_7-B"));
  EXPECT_EQ(m.timezone.name(), "Europe/Berlin");
  EXPECT_EQ(m.cutoff_minutes, 1110);  // 18 x 60 + 30
  EXPECT_EQ(m.delay_days, 3);
  EXPECT_EQ(fee(m, EventType::kCapture), (FeeSchedule{290, 30}));
  EXPECT_EQ(fee(m, EventType::kRefund), (FeeSchedule{0, 25}));  // missing bps is 0
  EXPECT_EQ(fee(m, EventType::kChargeback), (FeeSchedule{100, 1500}));
  EXPECT_EQ(fee(m, EventType::kChargebackReversal), (FeeSchedule{50, 0}));
  EXPECT_EQ(m.reserve_bps, 1000);
  EXPECT_EQ(m.reserve_days, 7);
}

TEST(MerchantJson, DelayZeroIsAllowed) {
  EXPECT_EQ(parse_ok(with(R"("delay_days":0)")).delay_days, 0);
}

TEST(MerchantJson, MissingMerchantIdIsNamed) {
  expect_field_error(R"({"timezone":"UTC"})", "merchant_id");
  expect_field_error(R"({})", "merchant_id");
}

TEST(MerchantJson, BadMerchantIdIsNamed) {
  for (const char* id : {R"("")", R"("m 1")", R"("m.1")", "7"}) {
    expect_field_error(std::string(R"({"merchant_id":)") + id + "}", "merchant_id");
  }
  expect_field_error(R"({"merchant_id":")" + std::string(65, 'm') + "\"}", "merchant_id");
  EXPECT_EQ(parse_ok(R"({"merchant_id":")" + std::string(64, 'm') + "\"}").id.str().size(), 64u);
}

TEST(MerchantJson, UnknownFieldIsNamed) {
  expect_field_error(with(R"("payout_delay":2)"), "payout_delay");
  expect_field_error(with(R"("fees":{"capture":{"bps":1,"percent":2}})"), "fees.capture.percent");
}

TEST(MerchantJson, UnknownTimezoneIsNamed) {
  for (const char* tz : {R"("Mars/Base")", R"("")", R"("europe/berlin")", "1"}) {
    expect_field_error(with(std::string(R"("timezone":)") + tz), "timezone");
  }
  EXPECT_EQ(parse_ok(with(R"("timezone":"Australia/Lord_Howe")")).timezone.name(),
            "Australia/Lord_Howe");
}

TEST(MerchantJson, BadCutoffIsNamed) {
  for (const char* cutoff : {R"("24:00")", R"("7:00")", R"("18:60")", R"("18:00:00")", R"("")",
                             "1800"}) {
    expect_field_error(with(std::string(R"("cutoff":)") + cutoff), "cutoff");
  }
  EXPECT_EQ(parse_ok(with(R"("cutoff":"23:59")")).cutoff_minutes, 1439);
  EXPECT_EQ(parse_ok(with(R"("cutoff":"00:00")")).cutoff_minutes, 0);
}

TEST(MerchantJson, DelayDaysMustBeANonNegativeInteger) {
  for (const char* delay : {"-1", R"("1")", "1.5", "1.0", "null"}) {
    expect_field_error(with(std::string(R"("delay_days":)") + delay), "delay_days");
  }
}

TEST(MerchantJson, ReserveBpsWithoutReserveDaysIsRejected) {
  expect_field_error(with(R"("reserve_bps":1000)"), "reserve_days");
  expect_field_error(with(R"("reserve_bps":1000,"reserve_days":0)"), "reserve_days");
  const Merchant m = parse_ok(with(R"("reserve_bps":1000,"reserve_days":1)"));
  EXPECT_EQ(m.reserve_bps, 1000);
  EXPECT_EQ(m.reserve_days, 1);
}

TEST(MerchantJson, ReserveBpsIsZeroToTenThousand) {
  expect_field_error(with(R"("reserve_bps":10001,"reserve_days":1)"), "reserve_bps");
  expect_field_error(with(R"("reserve_bps":-1)"), "reserve_bps");
  expect_field_error(with(R"("reserve_bps":"1000","reserve_days":1)"), "reserve_bps");
  EXPECT_EQ(parse_ok(with(R"("reserve_bps":10000,"reserve_days":30)")).reserve_bps, 10000);
  // A hold period without a reserve is harmless.
  EXPECT_EQ(parse_ok(with(R"("reserve_bps":0,"reserve_days":5)")).reserve_bps, 0);
}

TEST(MerchantJson, FeesForAdjustmentAreRejected) {
  expect_field_error(with(R"("fees":{"adjustment":{"bps":0,"fixed":1}})"), "fees.adjustment");
  expect_field_error(with(R"("fees":{"purchase":{"bps":0,"fixed":1}})"), "fees.purchase");
}

TEST(MerchantJson, FeeFieldsMustBeNonNegativeIntegers) {
  expect_field_error(with(R"("fees":{"capture":{"bps":-1}})"), "fees.capture.bps");
  expect_field_error(with(R"("fees":{"capture":{"fixed":-30}})"), "fees.capture.fixed");
  expect_field_error(with(R"("fees":{"capture":{"bps":2.5}})"), "fees.capture.bps");
  expect_field_error(with(R"("fees":{"capture":{"fixed":"30"}})"), "fees.capture.fixed");
  expect_field_error(with(R"("fees":{"capture":{"fixed":9223372036854775808}})"),
                     "fees.capture.fixed");
  expect_field_error(with(R"("fees":{"capture":[290,30]})"), "fees.capture");
  expect_field_error(with(R"("fees":[])"), "fees");
  EXPECT_EQ(fee(parse_ok(with(R"("fees":{"capture":{"fixed":9223372036854775807}})")),
                EventType::kCapture)
                .fixed,
            9223372036854775807);
}

TEST(MerchantJson, DuplicateFieldIsRejected) {
  // Which value would win is not defined by JSON: rejected, as for events.
  expect_field_error(R"({"merchant_id":"m1","reserve_bps":1000,"reserve_days":2,"reserve_bps":0})",
                     "reserve_bps");
  expect_field_error(R"({"merchant_id":"m1","merchant_id":"m2"})", "merchant_id");
  expect_field_error(with(R"("fees":{"capture":{"bps":1,"bps":2}})"), "bps");
}

TEST(MerchantJson, NotAnObjectOrNotJsonIsRejected) {
  for (const char* text : {"[]", "42", R"("m1")", "", "{", R"({"merchant_id":"m1"} x)"}) {
    const Result<Merchant> r = parse_merchant_json(text);
    ASSERT_FALSE(r.ok()) << "'" << text << "'";
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  }
}

TEST(MerchantJson, SerializesToJsonThatParsesBackTheSame) {
  const Merchant m = parse_ok(R"({"merchant_id":"m9","timezone":"Asia/Kolkata","cutoff":"07:05",
      "delay_days":0,"fees":{"refund":{"bps":12,"fixed":34}},"reserve_bps":250,"reserve_days":3})");
  const Merchant again = parse_ok(merchant_json(m));
  EXPECT_EQ(again.id, m.id);
  EXPECT_EQ(again.timezone, m.timezone);
  EXPECT_EQ(again.cutoff_minutes, 425);
  EXPECT_EQ(again.delay_days, 0);
  EXPECT_EQ(again.fees, m.fees);
  EXPECT_EQ(fee(again, EventType::kRefund), (FeeSchedule{12, 34}));
  EXPECT_EQ(again.reserve_bps, 250);
  EXPECT_EQ(again.reserve_days, 3);
}

// --- lists ----------------------------------------------------------------------

TEST(MerchantList, JsonArray) {
  const Result<std::vector<Merchant>> r = parse_merchant_list(
      R"(  [{"merchant_id":"a","cutoff":"18:00"}, {"merchant_id":"b","delay_days":2}])",
      "merchants.json");
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].id, MerchantId("a"));
  EXPECT_EQ((*r)[0].cutoff_minutes, 1080);
  EXPECT_EQ((*r)[1].id, MerchantId("b"));
  EXPECT_EQ((*r)[1].delay_days, 2);
}

TEST(MerchantList, JsonArrayErrorNamesSourceElementAndField) {
  const Result<std::vector<Merchant>> r = parse_merchant_list(
      R"([{"merchant_id":"a"},{"merchant_id":"b"},{"merchant_id":"c","cutoff":"24:00"}])",
      "merchants.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message.find("merchants.json: element 3: field 'cutoff'"), std::string::npos)
      << r.error().message;
}

TEST(MerchantList, Ndjson) {
  const Result<std::vector<Merchant>> r = parse_merchant_list(
      "{\"merchant_id\":\"a\"}\n\n{\"merchant_id\":\"b\",\"timezone\":\"Asia/Tokyo\"}\r\n  \n",
      "merchants.ndjson");
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].id, MerchantId("a"));
  EXPECT_EQ((*r)[1].timezone.name(), "Asia/Tokyo");
}

TEST(MerchantList, NdjsonErrorNamesSourceLineAndField) {
  // Line numbers count blank lines: the bad merchant is on line 4.
  const Result<std::vector<Merchant>> r = parse_merchant_list(
      "{\"merchant_id\":\"a\"}\n{\"merchant_id\":\"b\"}\n\n"
      "{\"merchant_id\":\"c\",\"reserve_bps\":10001,\"reserve_days\":1}\n",
      "merchants.ndjson");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("merchants.ndjson: line 4: field 'reserve_bps'"),
            std::string::npos)
      << r.error().message;
  const Result<std::vector<Merchant>> bad_json =
      parse_merchant_list("{\"merchant_id\":\"a\"}\n{\"merchant_id\":\n", "m.ndjson");
  ASSERT_FALSE(bad_json.ok());
  EXPECT_NE(bad_json.error().message.find("m.ndjson: line 2"), std::string::npos)
      << bad_json.error().message;
}

TEST(MerchantList, DuplicateMerchantIdsAreRejected) {
  const Result<std::vector<Merchant>> array = parse_merchant_list(
      R"([{"merchant_id":"a"},{"merchant_id":"b"},{"merchant_id":"a","delay_days":5}])", "x.json");
  ASSERT_FALSE(array.ok());
  EXPECT_NE(array.error().message.find("element 3"), std::string::npos) << array.error().message;
  EXPECT_NE(array.error().message.find("'a'"), std::string::npos) << array.error().message;

  const Result<std::vector<Merchant>> nd =
      parse_merchant_list("{\"merchant_id\":\"a\"}\n{\"merchant_id\":\"a\"}\n", "x.ndjson");
  ASSERT_FALSE(nd.ok());
  EXPECT_NE(nd.error().message.find("line 2"), std::string::npos) << nd.error().message;
}

TEST(MerchantList, DuplicateFieldInAnArrayElementNamesTheElement) {
  const Result<std::vector<Merchant>> r = parse_merchant_list(
      R"([{"merchant_id":"a","fees":{"refund":{"bps":1}}}, 7, [1],
          {"merchant_id":"b","cutoff":"01:00","cutoff":"02:00"}])",
      "x.json");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("x.json: element 4: field 'cutoff'"), std::string::npos)
      << r.error().message;
}

TEST(MerchantList, ArrayElementThatIsNotAnObjectIsRejected) {
  const Result<std::vector<Merchant>> r =
      parse_merchant_list(R"([{"merchant_id":"a"}, "b"])", "x.json");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("element 2"), std::string::npos) << r.error().message;
  EXPECT_FALSE(parse_merchant_list("[{\"merchant_id\":\"a\"}", "x.json").ok());
}

TEST(MerchantList, EmptyInputIsAnEmptyList) {
  const Result<std::vector<Merchant>> ndjson = parse_merchant_list("", "x");
  ASSERT_TRUE(ndjson.ok());
  EXPECT_TRUE(ndjson->empty());
  const Result<std::vector<Merchant>> array = parse_merchant_list(" [ ] ", "x");
  ASSERT_TRUE(array.ok());
  EXPECT_TRUE(array->empty());
}

}  // namespace
}  // namespace settle::model
