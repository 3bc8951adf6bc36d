// SETTLEMENT_RULES §2 (Event): strict JSON validation, every error naming its
// field; the canonical form and digest that decide "identical content" for
// duplicates.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

#include "model/event_json.h"

namespace settle::model {
namespace {

// 2026-11-23T18:00:00Z: day 20780 x 86400 + 64800 = 1795456800 s.
constexpr std::int64_t k20261123T1800Z = 1'795'456'800'000'000'000;

// A valid event with one field replaced or removed. `fields` are the JSON
// members in order; an empty value drops the member.
struct Fields {
  std::string event_id = R"("evt-1")";
  std::string merchant_id = R"("m1")";
  std::string type = R"("capture")";
  std::string amount = "10000";
  std::string currency = R"("USD")";
  std::string occurred_at = R"("2026-11-23T18:00:00Z")";
  std::string metadata;  // none by default

  std::string json() const {
    std::string out = "{";
    auto add = [&](const char* name, const std::string& v) {
      if (v.empty()) return;
      if (out.size() > 1) out += ',';
      out += '"';
      out += name;
      out += "\":";
      out += v;
    };
    add("event_id", event_id);
    add("merchant_id", merchant_id);
    add("type", type);
    add("amount", amount);
    add("currency", currency);
    add("occurred_at", occurred_at);
    add("metadata", metadata);
    out += '}';
    return out;
  }
};

Result<Event> parse(const std::string& json) {
  EventParser parser;
  return parser.parse(json);
}

Event parse_ok(const std::string& json) {
  Result<Event> r = parse(json);
  EXPECT_TRUE(r.ok()) << json << "\n" << r.error().to_string();
  return r.ok() ? std::move(r).value() : Event{};
}

// The error is kInvalidArgument and its message names the field as "field 'x'".
void expect_field_error(const std::string& json, const std::string& field) {
  const Result<Event> r = parse(json);
  ASSERT_FALSE(r.ok()) << json;
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message.find("field '" + field + "'"), std::string::npos)
      << "expected the error to name '" << field << "': " << r.error().message;
}

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

std::string repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

// metadata with n keys "k0".."k{n-1}", each value "v".
std::string metadata_with_keys(int n) {
  std::string out = "{";
  for (int i = 0; i < n; ++i) {
    if (i) out += ',';
    out += "\"k" + std::to_string(i) + "\":\"v\"";
  }
  return out + "}";
}

TEST(EventJson, ValidEventParsesEveryField) {
  Fields f;
  f.metadata = R"({"order":"42","note":"\u00fcber"})";
  const Event e = parse_ok(f.json());
  EXPECT_EQ(e.event_id, EventId("evt-1"));
  EXPECT_EQ(e.merchant_id, MerchantId("m1"));
  EXPECT_EQ(e.type, EventType::kCapture);
  EXPECT_EQ(e.amount, 10000);
  EXPECT_EQ(e.currency, "USD");
  EXPECT_EQ(e.occurred_at.ns, k20261123T1800Z);
  // Sorted by key; the escape decoded to UTF-8 (u-umlaut is C3 BC).
  ASSERT_EQ(e.metadata.size(), 2u);
  EXPECT_EQ(e.metadata[0], (std::pair<std::string, std::string>{"note", "\xC3\xBC" "ber"}));
  EXPECT_EQ(e.metadata[1], (std::pair<std::string, std::string>{"order", "42"}));
}

TEST(EventJson, ParseIntoAReusedEventLeavesNothingOfThePreviousOne) {
  EventParser parser;
  Event e;
  Fields first;
  first.event_id = quoted("a-rather-long-event-id-that-needs-the-heap");
  first.type = R"("refund")";
  first.metadata = R"({"order":"42"})";
  ASSERT_TRUE(parser.parse_into(first.json(), e).ok());
  ASSERT_EQ(e.metadata.size(), 1u);

  Fields second;
  second.currency = R"("EUR")";
  second.occurred_at = R"("2026-11-23T18:00:00Z")";
  ASSERT_TRUE(parser.parse_into(second.json(), e).ok());
  EXPECT_EQ(e.event_id, EventId("evt-1"));
  EXPECT_EQ(e.type, EventType::kCapture);
  EXPECT_EQ(e.currency, "EUR");
  EXPECT_TRUE(e.metadata.empty()) << "the first event's metadata leaked into the second";
  EXPECT_EQ(canonical_event_json(e), canonical_event_json(parse_ok(second.json())));

  // A failed parse into it reports the error; a good one after it is whole.
  Fields missing;
  missing.type.clear();
  EXPECT_FALSE(parser.parse_into(missing.json(), e).ok());
  ASSERT_TRUE(parser.parse_into(first.json(), e).ok());
  EXPECT_EQ(canonical_event_json(e), canonical_event_json(parse_ok(first.json())));
  EXPECT_EQ(canonical_digest(e), digest_of(canonical_event_json(e)));
}

TEST(EventJson, EveryTypeNameParses) {
  const std::pair<const char*, EventType> types[] = {
      {"capture", EventType::kCapture},
      {"refund", EventType::kRefund},
      {"chargeback", EventType::kChargeback},
      {"chargeback_reversal", EventType::kChargebackReversal},
      {"adjustment", EventType::kAdjustment}};
  for (const auto& [name, type] : types) {
    Fields f;
    f.type = quoted(name);
    EXPECT_EQ(parse_ok(f.json()).type, type) << name;
  }
}

TEST(EventJson, OccurredAtWithAnOffsetIsStoredAsTheUtcInstant) {
  Fields f;
  f.occurred_at = R"("2026-11-24T03:00:00.5+09:00")";  // 18:00:00.5Z on the 23rd
  EXPECT_EQ(parse_ok(f.json()).occurred_at.ns, k20261123T1800Z + 500'000'000);
}

TEST(EventJson, EachMissingRequiredFieldIsNamed) {
  {
    Fields f;
    f.event_id.clear();
    expect_field_error(f.json(), "event_id");
  }
  {
    Fields f;
    f.merchant_id.clear();
    expect_field_error(f.json(), "merchant_id");
  }
  {
    Fields f;
    f.type.clear();
    expect_field_error(f.json(), "type");
  }
  {
    Fields f;
    f.amount.clear();
    expect_field_error(f.json(), "amount");
  }
  {
    Fields f;
    f.currency.clear();
    expect_field_error(f.json(), "currency");
  }
  {
    Fields f;
    f.occurred_at.clear();
    expect_field_error(f.json(), "occurred_at");
  }
  expect_field_error("{}", "event_id");
}

TEST(EventJson, MetadataIsOptional) {
  const Event e = parse_ok(Fields{}.json());
  EXPECT_TRUE(e.metadata.empty());
}

TEST(EventJson, UnknownFieldIsNamed) {
  std::string json = Fields{}.json();
  json.insert(json.size() - 1, R"(,"amount_cents":1)");
  expect_field_error(json, "amount_cents");
  // Field names are case-sensitive.
  json = Fields{}.json();
  json.insert(json.size() - 1, R"(,"Amount":1)");
  expect_field_error(json, "Amount");
}

TEST(EventJson, AmountAsAStringIsAWrongType) {
  Fields f;
  f.amount = R"("10000")";
  expect_field_error(f.json(), "amount");
}

TEST(EventJson, AmountWithAFractionOrExponentIsRejected) {
  for (const char* amount : {"10.5", "1e3", "1E3", "1.0", "100.00", "-0.0"}) {
    Fields f;
    f.amount = amount;
    expect_field_error(f.json(), "amount");
  }
}

TEST(EventJson, AmountBeyondInt64IsRejected) {
  for (const char* amount : {"9223372036854775808", "-9223372036854775809",
                             "18446744073709551616", "99999999999999999999999"}) {
    Fields f;
    f.amount = amount;
    expect_field_error(f.json(), "amount");
  }
}

TEST(EventJson, AmountOfOtherJsonTypesOrNotJsonNumbersIsRejected) {
  for (const char* amount :
       {"true", "null", "[1]", "{}", "0100", "+5", "NaN", "Infinity", "0x10"}) {
    Fields f;
    f.amount = amount;
    expect_field_error(f.json(), "amount");
  }
}

TEST(EventJson, AmountAtTheInt64LimitsParses) {
  Fields f;
  f.amount = "9223372036854775807";
  EXPECT_EQ(parse_ok(f.json()).amount, std::numeric_limits<std::int64_t>::max());
  f.type = R"("adjustment")";
  f.amount = "-9223372036854775808";
  EXPECT_EQ(parse_ok(f.json()).amount, std::numeric_limits<std::int64_t>::min());
}

TEST(EventJson, AmountMustBePositiveForEveryTypeButAdjustment) {
  for (const char* type : {"capture", "refund", "chargeback", "chargeback_reversal"}) {
    for (const char* amount : {"0", "-1", "-10000"}) {
      Fields f;
      f.type = quoted(type);
      f.amount = amount;
      expect_field_error(f.json(), "amount");
    }
    Fields f;
    f.type = quoted(type);
    f.amount = "1";
    EXPECT_EQ(parse_ok(f.json()).amount, 1);
  }
}

TEST(EventJson, AdjustmentMayBeNegativeButNotZero) {
  Fields f;
  f.type = R"("adjustment")";
  f.amount = "-500";
  EXPECT_EQ(parse_ok(f.json()).amount, -500);
  f.amount = "500";
  EXPECT_EQ(parse_ok(f.json()).amount, 500);
  f.amount = "0";
  expect_field_error(f.json(), "amount");
  f.amount = "-0";
  expect_field_error(f.json(), "amount");
}

TEST(EventJson, UnknownTypeIsNamed) {
  for (const char* type : {R"("purchase")", R"("Capture")", R"("")", "1"}) {
    Fields f;
    f.type = type;
    expect_field_error(f.json(), "type");
  }
}

TEST(EventJson, UnknownCurrencyIsRejected) {
  for (const char* currency : {R"("XXX")", R"("usd")", R"("US")", R"("")", "840"}) {
    Fields f;
    f.currency = currency;
    expect_field_error(f.json(), "currency");
  }
  Fields f;
  f.currency = R"("KWD")";
  EXPECT_EQ(parse_ok(f.json()).currency, "KWD");
}

TEST(EventJson, NonRfc3339OccurredAtIsNamed) {
  for (const char* at : {R"("2026-11-23T18:00:00")", R"("2026-02-29T00:00:00Z")",
                         R"("2026-11-23 18:00:00Z")", "1795456800", R"("")"}) {
    Fields f;
    f.occurred_at = at;
    expect_field_error(f.json(), "occurred_at");
  }
}

TEST(EventJson, EventIdIsOneTo128Characters) {
  Fields f;
  f.event_id = R"("")";
  expect_field_error(f.json(), "event_id");
  f.event_id = quoted(std::string(128, 'a'));
  EXPECT_EQ(parse_ok(f.json()).event_id.str().size(), 128u);
  f.event_id = quoted(std::string(129, 'a'));
  expect_field_error(f.json(), "event_id");
}

TEST(EventJson, EventIdMustBePrintableAscii) {
  for (const char* id : {R"("a\u0001b")", R"("tab\there")", R"("del\u007f")", R"("caf\u00e9")",
                         "\"caf\xC3\xA9\""}) {
    Fields f;
    f.event_id = id;
    expect_field_error(f.json(), "event_id");
  }
  // Space and punctuation are printable ASCII.
  Fields f;
  f.event_id = R"("ord #42 / \"x\" ~")";
  EXPECT_EQ(parse_ok(f.json()).event_id.str(), "ord #42 / \"x\" ~");
  f.event_id = "42";
  expect_field_error(f.json(), "event_id");
}

TEST(EventJson, MerchantIdIsOneTo64LettersDigitsUnderscoresOrDashes) {
  for (const char* id : {R"("m 1")", R"("m.1")", R"("m/1")", R"("m:1")", R"("")",
                         "\"m\xC3\xA9\""}) {
    Fields f;
    f.merchant_id = id;
    expect_field_error(f.json(), "merchant_id");
  }
  Fields f;
  f.merchant_id = quoted("Az09_-" + std::string(58, 'x'));  // 64 characters
  EXPECT_EQ(parse_ok(f.json()).merchant_id.str().size(), 64u);
  f.merchant_id = quoted(std::string(65, 'x'));
  expect_field_error(f.json(), "merchant_id");
}

TEST(EventJson, MetadataValueMustBeAString) {
  Fields f;
  f.metadata = R"({"order":42})";
  expect_field_error(f.json(), "metadata.order");
  f.metadata = R"({"order":null})";
  expect_field_error(f.json(), "metadata.order");
  f.metadata = R"({"order":{"id":"42"}})";
  expect_field_error(f.json(), "metadata.order");
  f.metadata = R"(["order"])";
  expect_field_error(f.json(), "metadata");
  f.metadata = R"("order=42")";
  expect_field_error(f.json(), "metadata");
}

TEST(EventJson, MetadataOfFiftyKeysIsFineFiftyOneIsNot) {
  Fields f;
  f.metadata = metadata_with_keys(50);
  EXPECT_EQ(parse_ok(f.json()).metadata.size(), 50u);
  f.metadata = metadata_with_keys(51);
  expect_field_error(f.json(), "metadata");
}

TEST(EventJson, MetadataKeyOfFortyCharactersIsFineFortyOneIsNot) {
  Fields f;
  f.metadata = "{" + quoted(std::string(40, 'k')) + ":\"v\"}";
  EXPECT_EQ(parse_ok(f.json()).metadata.at(0).first.size(), 40u);
  f.metadata = "{" + quoted(std::string(41, 'k')) + ":\"v\"}";
  expect_field_error(f.json(), "metadata");
  // 40 two-byte characters (80 bytes) are 40 characters.
  f.metadata = "{" + quoted(repeat("\xC3\xA9", 40)) + ":\"v\"}";
  EXPECT_EQ(parse_ok(f.json()).metadata.size(), 1u);
  // 41 of them (82 bytes) are one too many.
  f.metadata = "{" + quoted(repeat("\xC3\xA9", 41)) + ":\"v\"}";
  expect_field_error(f.json(), "metadata");
}

TEST(EventJson, MetadataValueOfFiveHundredCharactersIsFineFiveHundredOneIsNot) {
  Fields f;
  f.metadata = R"({"note":)" + quoted(std::string(500, 'v')) + "}";
  EXPECT_EQ(parse_ok(f.json()).metadata.at(0).second.size(), 500u);
  f.metadata = R"({"note":)" + quoted(std::string(501, 'v')) + "}";
  expect_field_error(f.json(), "metadata.note");
}

TEST(EventJson, MetadataLengthsCountUtf8CharactersNotBytes) {
  Fields f;
  // 500 x U+00E9 (2 bytes) = 1000 bytes, 500 characters: fine.
  f.metadata = R"({"note":)" + quoted(repeat("\xC3\xA9", 500)) + "}";
  EXPECT_EQ(parse_ok(f.json()).metadata.at(0).second.size(), 1000u);
  // 500 x U+20AC (3 bytes) and 500 x U+1F600 (4 bytes): fine.
  f.metadata = R"({"note":)" + quoted(repeat("\xE2\x82\xAC", 500)) + "}";
  EXPECT_TRUE(parse(f.json()).ok());
  f.metadata = R"({"note":)" + quoted(repeat("\xF0\x9F\x98\x80", 500)) + "}";
  EXPECT_TRUE(parse(f.json()).ok());
  // The same written as \u escapes (a surrogate pair each): still 500 characters.
  f.metadata = R"({"note":)" + quoted(repeat(R"(\ud83d\ude00)", 500)) + "}";
  EXPECT_TRUE(parse(f.json()).ok());
  // 501 characters: rejected.
  f.metadata = R"({"note":)" + quoted(repeat("\xC3\xA9", 501)) + "}";
  expect_field_error(f.json(), "metadata.note");
}

TEST(EventJson, DuplicateMetadataKeyIsRejected) {
  Fields f;
  f.metadata = R"({"a":"1","b":"2","a":"3"})";
  expect_field_error(f.json(), "metadata");
}

TEST(EventJson, DuplicateFieldIsRejected) {
  std::string json = Fields{}.json();
  json.insert(json.size() - 1, R"(,"amount":10000)");
  expect_field_error(json, "amount");
  // The same name written with an escape is the same field.
  json = Fields{}.json();
  json.insert(json.size() - 1, R"(,"amo\u0075nt":10000)");
  expect_field_error(json, "amount");
  json = Fields{}.json();
  json.insert(json.size() - 1, R"(,"event_id":"evt-2")");
  expect_field_error(json, "event_id");
}

TEST(EventJson, NotAnObjectIsRejected) {
  for (const char* json : {"[]", "42", R"("capture")", "null", "", "   ", "{", "[{}]"}) {
    const Result<Event> r = parse(json);
    ASSERT_FALSE(r.ok()) << "'" << json << "'";
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  }
}

TEST(EventJson, TrailingTextIsRejected) {
  const std::string valid = Fields{}.json();
  for (const char* tail : {" x", "{}", " 1", "}", ",", " []", R"( "x")"}) {
    const Result<Event> r = parse(valid + tail);
    EXPECT_FALSE(r.ok()) << "accepted trailing '" << tail << "'";
  }
  // Whitespace is not text.
  EXPECT_TRUE(parse(valid + " \n\t\r\n").ok());
  EXPECT_TRUE(parse(" \n" + valid).ok());
}

TEST(EventJson, InvalidUtf8IsRejected) {
  Fields f;
  f.metadata = "{\"note\":\"caf\xC3\"}";  // a lead byte without its continuation
  EXPECT_FALSE(parse(f.json()).ok());
  f.metadata = "{\"note\":\"\xFF\"}";
  EXPECT_FALSE(parse(f.json()).ok());
}

TEST(EventJson, ParserIsReusableAfterAnError) {
  EventParser parser;
  EXPECT_FALSE(parser.parse("{").ok());
  Fields f;
  f.amount = "0";
  EXPECT_FALSE(parser.parse(f.json()).ok());
  const Result<Event> r = parser.parse(Fields{}.json());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->amount, 10000);
}

// --- canonical form and digest ---------------------------------------------------

TEST(CanonicalEventJson, FixedFieldOrderUtcTimeAndSortedMetadata) {
  Fields f;
  f.occurred_at = R"("2026-11-23T19:00:00.250+01:00")";
  f.metadata = R"({"z":"last","a":"first \"q\""})";
  EXPECT_EQ(canonical_event_json(parse_ok(f.json())),
            R"({"event_id":"evt-1","merchant_id":"m1","type":"capture","amount":10000,)"
            R"("currency":"USD","occurred_at":"2026-11-23T18:00:00.250Z",)"
            R"("metadata":{"a":"first \"q\"","z":"last"}})");
}

TEST(CanonicalEventJson, NoMetadataMemberWithoutMetadata) {
  EXPECT_EQ(canonical_event_json(parse_ok(Fields{}.json())),
            R"({"event_id":"evt-1","merchant_id":"m1","type":"capture","amount":10000,)"
            R"("currency":"USD","occurred_at":"2026-11-23T18:00:00Z"})");
}

TEST(CanonicalEventJson, AssignReplacesWhatTheBufferHeld) {
  Fields f;
  f.metadata = R"({"k":"v"})";
  std::string buffer(300, 'x');
  assign_canonical_event_json(buffer, parse_ok(f.json()));
  EXPECT_EQ(buffer, canonical_event_json(parse_ok(f.json())));
  assign_canonical_event_json(buffer, parse_ok(Fields{}.json()));
  EXPECT_EQ(buffer, canonical_event_json(parse_ok(Fields{}.json())));
}

TEST(CanonicalEventJson, FieldOrderDoesNotChangeTheContent) {
  const std::string a = Fields{}.json();
  const std::string b =
      R"({"occurred_at":"2026-11-23T18:00:00Z","currency":"USD","amount":10000,)"
      R"("type":"capture","merchant_id":"m1","event_id":"evt-1"})";
  const std::string ca = canonical_event_json(parse_ok(a));
  EXPECT_EQ(ca, canonical_event_json(parse_ok(b)));
  EXPECT_EQ(digest_of(ca), digest_of(canonical_event_json(parse_ok(b))));
}

TEST(CanonicalEventJson, EquivalentOffsetTimestampGivesTheSameDigest) {
  Fields z;
  Fields offset;
  offset.occurred_at = R"("2026-11-23T13:00:00-05:00")";  // = 18:00Z
  Fields lower;
  lower.occurred_at = R"("2026-11-23t18:00:00.000z")";
  const Digest d = digest_of(canonical_event_json(parse_ok(z.json())));
  EXPECT_EQ(d, digest_of(canonical_event_json(parse_ok(offset.json()))));
  EXPECT_EQ(d, digest_of(canonical_event_json(parse_ok(lower.json()))));
}

TEST(CanonicalEventJson, MetadataOrderAndEscapesDoNotChangeTheContent) {
  Fields a;
  a.metadata = R"({"x":"1","y":"\u00fc"})";
  Fields b;
  b.metadata = "{\"y\":\"\xC3\xBC\",\"x\":\"1\"}";
  EXPECT_EQ(canonical_event_json(parse_ok(a.json())), canonical_event_json(parse_ok(b.json())));
}

TEST(JsonEscape, EscapesQuotesBackslashesAndControlCharactersBetweenPlainRuns) {
  std::string out = "prefix:";
  static constexpr char kInput[] = "a\"b\\c\n\r\t\b\fd\x01\x1f\0e\xC3\xBC f";  // holds a NUL
  append_json_escaped(out, std::string_view(kInput, sizeof kInput - 1));
  EXPECT_EQ(out, R"(prefix:a\"b\\c\n\r\t\b\fd\u0001\u001f\u0000e)" "\xC3\xBC f");
  std::string plain;
  append_json_escaped(plain, "no escapes here");
  EXPECT_EQ(plain, "no escapes here");
  std::string edges;
  append_json_escaped(edges, "\"\"");
  EXPECT_EQ(edges, R"(\"\")");
}

TEST(JsonEscape, FindsACharacterToEscapeAtEveryPlaceInABlockAndPassesUtf8Through) {
  // The scan takes sixteen bytes at a time, then eight, then one: put each
  // kind of character that needs an escape at each offset of a 41-byte
  // string, around plain ASCII (space and DEL, the neighbours of what is
  // escaped, included) and UTF-8 (bytes from 0x80, never escaped).
  const std::string base = "abc\xC3\xBC" "de fghij\x7Fklmnopqrstuvwxyz 0123456789";
  ASSERT_EQ(base.size(), 41u);
  const std::pair<char, std::string> kinds[] = {{'"', R"(\")"}, {'\\', R"(\\)"}, {'\n', R"(\n)"},
                                                {'\x1f', R"(\u001f)"}, {'\0', R"(\u0000)"}};
  for (const auto& [c, escaped] : kinds) {
    for (std::size_t at = 0; at < base.size(); ++at) {
      if ((static_cast<unsigned char>(base[at]) & 0xC0) == 0x80) continue;  // inside the 2-byte character
      std::string in = base;
      in[at] = c;
      if (at == 3) in.erase(4, 1);  // replaced the lead byte: drop its continuation
      std::string expected = in.substr(0, at) + escaped + in.substr(at + 1);
      std::string out;
      append_json_escaped(out, in);
      EXPECT_EQ(out, expected) << "character " << static_cast<int>(c) << " at " << at;
    }
  }
  std::string long_plain;
  append_json_escaped(long_plain, base + base);
  EXPECT_EQ(long_plain, base + base);
}

TEST(CanonicalEventJson, DifferentMetadataGivesADifferentDigest) {
  Fields a;
  a.metadata = R"({"order":"42"})";
  Fields b;
  b.metadata = R"({"order":"43"})";
  Fields c;  // no metadata at all
  Fields d;
  d.metadata = R"({"order ":"42"})";
  const Digest da = digest_of(canonical_event_json(parse_ok(a.json())));
  EXPECT_NE(da, digest_of(canonical_event_json(parse_ok(b.json()))));
  EXPECT_NE(da, digest_of(canonical_event_json(parse_ok(c.json()))));
  EXPECT_NE(da, digest_of(canonical_event_json(parse_ok(d.json()))));
}

TEST(CanonicalEventJson, AnyOtherFieldChangesTheDigest) {
  const Digest base = digest_of(canonical_event_json(parse_ok(Fields{}.json())));
  Fields f;
  f.amount = "10001";
  EXPECT_NE(base, digest_of(canonical_event_json(parse_ok(f.json()))));
  f = Fields{};
  f.type = R"("chargeback_reversal")";
  EXPECT_NE(base, digest_of(canonical_event_json(parse_ok(f.json()))));
  f = Fields{};
  f.currency = R"("EUR")";
  EXPECT_NE(base, digest_of(canonical_event_json(parse_ok(f.json()))));
  f = Fields{};
  f.occurred_at = R"("2026-11-23T18:00:00.000000001Z")";
  EXPECT_NE(base, digest_of(canonical_event_json(parse_ok(f.json()))));
}

TEST(CanonicalEventJson, ParsesBackToTheSameEvent) {
  Fields f;
  f.event_id = R"("q\"b\\s/ ~")";
  f.metadata = R"({"ctl":"a\nb\u0001c\td","quote":"\"","bs":"\\","uni":"\u00e9\ud83d\ude00"})";
  const Event e = parse_ok(f.json());
  const std::string canonical = canonical_event_json(e);
  const Event again = parse_ok(canonical);
  EXPECT_EQ(again.event_id, e.event_id);
  EXPECT_EQ(again.metadata, e.metadata);
  EXPECT_EQ(canonical_event_json(again), canonical);
}

TEST(MetadataJson, EmptyWhenThereIsNone) {
  EXPECT_EQ(metadata_json(parse_ok(Fields{}.json())), "");
  Fields f;
  f.metadata = R"({"b":"2","a":"1"})";
  EXPECT_EQ(metadata_json(parse_ok(f.json())), R"({"a":"1","b":"2"})");
}

}  // namespace
}  // namespace settle::model
