#include "model/event_json.h"

#include <fmt/format.h>
#include <simdjson.h>
#include <xxhash.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace settle::model {
namespace {

constexpr std::size_t kEventIdMax = 128;
constexpr std::size_t kMetadataKeysMax = 50;
constexpr std::size_t kMetadataKeyCharsMax = 40;
constexpr std::size_t kMetadataValueCharsMax = 500;

Error field_error(std::string_view field, std::string_view why) {
  return make_error(ErrorCode::kInvalidArgument, fmt::format("field '{}': {}", field, why));
}

// Whether `s` has more than `max` characters (code points). simdjson has
// validated the UTF-8, so they are the bytes that do not continue a code
// point; they are counted only when the bytes are over `max`, since a
// character is at least one byte (counting every metadata value byte by byte
// was a tenth of a bulk upload's CPU).
bool more_chars_than(std::string_view s, std::size_t max) {
  if (s.size() <= max) return false;
  const auto chars = static_cast<std::size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
  return chars > max;
}

Result<std::string_view> get_string(simdjson::ondemand::value& v, std::string_view field) {
  std::string_view s;
  if (v.get_string().get(s) != simdjson::SUCCESS) return field_error(field, "must be a string");
  return s;
}

}  // namespace

Status validate_merchant_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return field_error("merchant_id", "must be 1-64 characters");
  for (char c : id) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) return field_error("merchant_id", "may contain only A-Z a-z 0-9 _ -");
  }
  return ok_status();
}

struct EventParser::Impl {
  simdjson::ondemand::parser parser;
  std::string buffer;
};

EventParser::EventParser() : impl_(std::make_unique<Impl>()) {}
EventParser::~EventParser() = default;

Result<Event> EventParser::parse(std::string_view json) {
  Event ev;
  SETTLE_TRY(parse_into(json, ev));
  return ev;
}

Status EventParser::parse_into(std::string_view json, Event& ev) {
  using namespace simdjson;
  std::string& buf = impl_->buffer;
  buf.assign(json);
  buf.resize(json.size() + SIMDJSON_PADDING, '\0');
  ondemand::document doc;
  if (impl_->parser.iterate(buf.data(), json.size(), buf.size()).get(doc) != SUCCESS) {
    return make_error(ErrorCode::kInvalidArgument, "not valid JSON");
  }
  ondemand::object obj;
  if (doc.get_object().get(obj) != SUCCESS) {
    ondemand::json_type type;
    const bool array = doc.type().get(type) == SUCCESS && type == ondemand::json_type::array;
    return make_error(ErrorCode::kInvalidArgument,
                      array ? "not a JSON object (an array)" : "not valid JSON (expected an object)");
  }

  ev.type = EventType::kCapture;
  ev.amount = 0;
  ev.currency.clear();
  ev.occurred_at = Timestamp{};
  ev.metadata.clear();
  unsigned seen = 0;
  enum : unsigned { kId = 1, kMerchant = 2, kType = 4, kAmount = 8, kCurrency = 16, kAt = 32, kMeta = 64 };
  auto once = [&seen](unsigned bit, std::string_view field) -> Status {
    if (seen & bit) return field_error(field, "appears more than once");
    seen |= bit;
    return ok_status();
  };

  for (auto field_result : obj) {
    ondemand::field field;
    if (std::move(field_result).get(field) != SUCCESS) {
      return make_error(ErrorCode::kInvalidArgument, "not valid JSON");
    }
    std::string_view key;
    if (field.unescaped_key().get(key) != SUCCESS) {
      return make_error(ErrorCode::kInvalidArgument, "not valid JSON (bad key)");
    }
    ondemand::value v = field.value();
    if (key == "event_id") {
      SETTLE_TRY(once(kId, key));
      SETTLE_ASSIGN_OR_RETURN(std::string_view s, get_string(v, key));
      if (s.empty() || s.size() > kEventIdMax) return field_error(key, "must be 1-128 characters");
      for (char c : s) {
        if (c < 0x20 || c > 0x7E) return field_error(key, "must be printable ASCII");
      }
      ev.event_id.assign(s);
    } else if (key == "merchant_id") {
      SETTLE_TRY(once(kMerchant, key));
      SETTLE_ASSIGN_OR_RETURN(std::string_view s, get_string(v, key));
      SETTLE_TRY(validate_merchant_id(s));
      ev.merchant_id.assign(s);
    } else if (key == "type") {
      SETTLE_TRY(once(kType, key));
      SETTLE_ASSIGN_OR_RETURN(std::string_view s, get_string(v, key));
      auto t = event_type_from_name(s);
      if (!t) {
        return field_error(key, fmt::format("'{}' is not one of capture, refund, chargeback, "
                                            "chargeback_reversal, adjustment", s));
      }
      ev.type = *t;
    } else if (key == "amount") {
      SETTLE_TRY(once(kAmount, key));
      ondemand::number_type nt;
      ondemand::json_type jt;
      if (v.type().get(jt) != SUCCESS || jt != ondemand::json_type::number) {
        return field_error(key, "must be an integer number of minor units");
      }
      if (v.get_number_type().get(nt) != SUCCESS) {
        return field_error(key, "must be an integer number of minor units");
      }
      if (nt == ondemand::number_type::floating_point_number) {
        return field_error(key, "must be an integer number of minor units, not a decimal");
      }
      std::int64_t amount = 0;
      if (nt != ondemand::number_type::signed_integer || v.get_int64().get(amount) != SUCCESS) {
        return field_error(key, "does not fit a signed 64-bit integer");
      }
      ev.amount = amount;
    } else if (key == "currency") {
      SETTLE_TRY(once(kCurrency, key));
      SETTLE_ASSIGN_OR_RETURN(std::string_view s, get_string(v, key));
      auto c = find_currency(s);
      if (!c.ok()) return field_error(key, c.error().message);
      ev.currency.assign(s);
    } else if (key == "occurred_at") {
      SETTLE_TRY(once(kAt, key));
      SETTLE_ASSIGN_OR_RETURN(std::string_view s, get_string(v, key));
      auto ts = parse_rfc3339(s);
      if (!ts.ok()) return field_error(key, ts.error().message);
      ev.occurred_at = *ts;
    } else if (key == "metadata") {
      SETTLE_TRY(once(kMeta, key));
      ondemand::object meta;
      if (v.get_object().get(meta) != SUCCESS) return field_error(key, "must be an object of strings");
      for (auto mf : meta) {
        ondemand::field m;
        std::string_view mk;
        std::string_view mv;
        if (std::move(mf).get(m) != SUCCESS || m.unescaped_key().get(mk) != SUCCESS) {
          return field_error(key, "not valid JSON");
        }
        std::string mk_copy(mk);  // the key's buffer is reused by the next value
        if (m.value().get_string().get(mv) != SUCCESS) {
          return field_error(fmt::format("metadata.{}", mk_copy), "must be a string");
        }
        if (ev.metadata.size() == kMetadataKeysMax) return field_error(key, "has more than 50 keys");
        if (mk_copy.empty() || more_chars_than(mk_copy, kMetadataKeyCharsMax)) {
          return field_error(key, fmt::format("key '{}' must be 1-40 characters", mk_copy));
        }
        if (more_chars_than(mv, kMetadataValueCharsMax)) {
          return field_error(fmt::format("metadata.{}", mk_copy), "must be at most 500 characters");
        }
        ev.metadata.emplace_back(std::move(mk_copy), std::string(mv));
      }
      std::sort(ev.metadata.begin(), ev.metadata.end());
      for (std::size_t i = 1; i < ev.metadata.size(); ++i) {
        if (ev.metadata[i].first == ev.metadata[i - 1].first) {
          return field_error(key, fmt::format("key '{}' appears more than once", ev.metadata[i].first));
        }
      }
    } else {
      return field_error(key, "is not a known field");
    }
  }
  // At the end of the document current_location() reports OUT_OF_BOUNDS; any
  // other answer means text follows the object.
  if (doc.current_location().error() != simdjson::OUT_OF_BOUNDS) {
    return make_error(ErrorCode::kInvalidArgument, "unexpected text after the JSON object");
  }

  const std::pair<unsigned, const char*> required[] = {
      {kId, "event_id"}, {kMerchant, "merchant_id"}, {kType, "type"},
      {kAmount, "amount"}, {kCurrency, "currency"}, {kAt, "occurred_at"}};
  for (const auto& [bit, name] : required) {
    if (!(seen & bit)) return field_error(name, "is required");
  }
  if (ev.type == EventType::kAdjustment) {
    if (ev.amount == 0) return field_error("amount", "must not be 0 for an adjustment");
  } else if (ev.amount <= 0) {
    return field_error("amount", fmt::format("must be > 0 for a {}", event_type_name(ev.type)));
  }
  return ok_status();
}

namespace {

// Whether one of the eight bytes of `w` needs a JSON escape: below 0x20, '"'
// or a backslash. (x - 0x01..) & ~x & 0x80.. is non-zero exactly when a byte
// of x is zero, and with 0x20.. in place of 0x01.. when a byte is below 0x20;
// bytes from 0x80 up never count.
bool word_needs_escape(std::uint64_t w) {
  constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
  constexpr std::uint64_t kHigh = 0x8080808080808080ULL;
  const auto zero_byte = [](std::uint64_t x) { return (x - kOnes) & ~x & kHigh; };
  const std::uint64_t control = (w - kOnes * 0x20) & ~w & kHigh;
  return (control | zero_byte(w ^ (kOnes * '"')) | zero_byte(w ^ (kOnes * '\\'))) != 0;
}

#if defined(__SSE2__)
// How many of the 16 bytes at `p` come before the first one to escape (16
// when none is).
std::size_t plain_bytes_of_16(const char* p) {
  const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  // x <= 0x1F (unsigned) exactly when min(x, 0x1F) == x.
  const __m128i control = _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(0x1F)), x);
  const __m128i quote = _mm_cmpeq_epi8(x, _mm_set1_epi8('"'));
  const __m128i backslash = _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'));
  const auto hits =
      static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(control, _mm_or_si128(quote, backslash))));
  return hits == 0 ? 16 : static_cast<std::size_t>(__builtin_ctz(hits));
}
#endif

}  // namespace

void append_json_escaped(std::string& out, std::string_view s) {
  // Runs of characters that need no escape are appended whole: most values
  // have none, and a character at a time was a bulk upload's top item. The
  // scan looks at sixteen bytes at once (SSE2), then eight, and at each byte
  // only where one needs an escape.
  const auto plain = [](unsigned char c) { return c >= 0x20 && c != '"' && c != '\\'; };
  const std::size_t n = s.size();
  std::size_t run = 0;
  std::size_t i = 0;
  while (i < n) {
#if defined(__SSE2__)
    if (i + 16 <= n) {
      const std::size_t plain_run = plain_bytes_of_16(s.data() + i);
      i += plain_run;
      if (plain_run == 16) continue;
      // s[i] needs an escape: the byte loop below takes it.
    }
#endif
    if (i + 8 <= n) {
      std::uint64_t w;
      std::memcpy(&w, s.data() + i, sizeof w);
      if (!word_needs_escape(w)) {
        i += 8;
        continue;
      }
    }
    const std::size_t word_end = std::min(n, i + 8);
    for (; i < word_end; ++i) {
      const auto c = static_cast<unsigned char>(s[i]);
      if (plain(c)) continue;
      out.append(s.data() + run, i - run);
      run = i + 1;
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default: {
          static constexpr char kHex[] = "0123456789abcdef";
          const char u[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
          out.append(u, sizeof u);
        }
      }
    }
  }
  out.append(s.data() + run, n - run);
}

namespace {

void append_metadata_json(std::string& out, const Event& event) {
  out += '{';
  for (std::size_t i = 0; i < event.metadata.size(); ++i) {
    if (i) out += ',';
    out += '"';
    append_json_escaped(out, event.metadata[i].first);
    out += "\":\"";
    append_json_escaped(out, event.metadata[i].second);
    out += '"';
  }
  out += '}';
}

}  // namespace

std::string metadata_json(const Event& event) {
  std::string out;
  assign_metadata_json(out, event);
  return out;
}

void assign_metadata_json(std::string& out, const Event& event) {
  out.clear();
  if (!event.metadata.empty()) append_metadata_json(out, event);
}

std::string canonical_event_json(const Event& ev) {
  std::string out;
  out.reserve(192);
  assign_canonical_event_json(out, ev);
  return out;
}

void assign_canonical_event_json(std::string& out, const Event& ev) {
  out.clear();
  out += "{\"event_id\":\"";
  append_json_escaped(out, ev.event_id.view());
  out += "\",\"merchant_id\":\"";
  out += ev.merchant_id.view();
  out += "\",\"type\":\"";
  out += event_type_name(ev.type);
  out += "\",\"amount\":";
  const fmt::format_int amount(ev.amount);
  out.append(amount.data(), amount.size());
  out += ",\"currency\":\"";
  out += ev.currency;
  out += "\",\"occurred_at\":\"";
  char at[kRfc3339TextMax];
  out.append(at, put_rfc3339(at, ev.occurred_at));
  out += '"';
  if (!ev.metadata.empty()) {
    out += ",\"metadata\":";
    append_metadata_json(out, ev);
  }
  out += '}';
}

Digest canonical_digest(const Event& event) {
  thread_local std::string canonical;
  assign_canonical_event_json(canonical, event);
  return digest_of(canonical);
}

Digest digest_of(std::string_view bytes) {
  const XXH128_hash_t h = XXH3_128bits(bytes.data(), bytes.size());
  return Digest{h.high64, h.low64};
}

}  // namespace settle::model
