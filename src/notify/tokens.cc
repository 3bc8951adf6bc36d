#include "notify/tokens.h"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <charconv>

#include "common/assert.h"

namespace settle::notify {
namespace {

std::string hex(const unsigned char* p, std::size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (std::size_t i = 0; i < n; ++i) {
    out += kDigits[p[i] >> 4];
    out += kDigits[p[i] & 15];
  }
  return out;
}

std::string mac(std::string_view secret, std::string_view payload) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  const unsigned char* r = HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
                                reinterpret_cast<const unsigned char*>(payload.data()), payload.size(), md, &len);
  SETTLE_ASSERT(r != nullptr, "HMAC-SHA256 failed");
  return hex(md, len);
}

bool valid_merchant(std::string_view m) {
  if (m.empty() || m.size() > 64) return false;
  for (char c : m) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  }
  return true;
}

}  // namespace

std::string random_token_secret() {
  unsigned char b[32];
  SETTLE_ASSERT(RAND_bytes(b, sizeof b) == 1, "RAND_bytes failed");
  return hex(b, sizeof b);
}

std::string issue_token(std::string_view secret, const TokenClaims& c) {
  SETTLE_ASSERT(c.admin || valid_merchant(c.merchant_id), "a merchant token names a merchant");
  const std::string payload =
      fmt::format("{}.{}.{}", c.admin ? "admin" : "merchant", c.merchant_id.empty() ? "*" : c.merchant_id, c.expires_ms);
  return payload + "." + mac(secret, payload);
}

Result<TokenClaims> check_token(std::string_view secret, std::string_view token, std::int64_t now_ms) {
  auto refuse = [](std::string_view why) {
    return make_error(ErrorCode::kFailedPrecondition, fmt::format("stream token refused: {}", why));
  };
  const auto last = token.rfind('.');
  if (last == std::string_view::npos) return refuse("malformed");
  const std::string_view payload = token.substr(0, last), sig = token.substr(last + 1);
  const std::string want = mac(secret, payload);
  if (sig.size() != want.size() || CRYPTO_memcmp(sig.data(), want.data(), want.size()) != 0) {
    return refuse("bad signature (not issued by this deployment)");
  }
  const auto a = payload.find('.'), b = payload.rfind('.');
  if (a == std::string_view::npos || a == b) return refuse("malformed");
  TokenClaims c;
  const std::string_view scope = payload.substr(0, a), merchant = payload.substr(a + 1, b - a - 1),
                         exp = payload.substr(b + 1);
  if (scope != "admin" && scope != "merchant") return refuse("unknown scope");
  c.admin = scope == "admin";
  if (merchant != "*") c.merchant_id = std::string(merchant);
  if (!c.admin && c.merchant_id.empty()) return refuse("a merchant token without a merchant");
  auto [p, ec] = std::from_chars(exp.data(), exp.data() + exp.size(), c.expires_ms);
  if (ec != std::errc() || p != exp.data() + exp.size()) return refuse("malformed expiry");
  if (now_ms >= c.expires_ms) return refuse("expired");
  return c;
}

}  // namespace settle::notify
