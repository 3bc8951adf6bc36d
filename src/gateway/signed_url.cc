#include "gateway/signed_url.h"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <charconv>

namespace settle::gateway {
namespace {

constexpr std::string_view kPrefix = "/v1/uploads/";

std::string hex(const unsigned char* d, std::size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[d[i] >> 4];
    out[2 * i + 1] = kDigits[d[i] & 0xF];
  }
  return out;
}

bool is_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// Merchant ids are [A-Za-z0-9_-] (model::validate_merchant_id); the URL
// carries them unescaped, so anything else is not a URL this gateway issued.
bool is_plain(std::string_view s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

template <typename T>
bool canonical_number(std::string_view s, T& out) {
  if (s.empty() || s.size() > 19 || (s.size() > 1 && s[0] == '0')) return false;
  if (!std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

Error bad(std::string message) { return make_error(ErrorCode::kInvalidArgument, std::move(message)); }
Error refused(std::string message) { return make_error(ErrorCode::kFailedPrecondition, std::move(message)); }

}  // namespace

Result<std::string> random_upload_secret() {
  unsigned char b[32];
  if (RAND_bytes(b, sizeof b) != 1) return make_error(ErrorCode::kUnavailable, "no random bytes for an upload secret");
  return hex(b, sizeof b);
}

Result<std::string> new_upload_id() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1) return make_error(ErrorCode::kUnavailable, "no random bytes for an upload id");
  return "up_" + hex(b, sizeof b);
}

bool is_upload_id(std::string_view id) { return id.size() == 35 && id.starts_with("up_") && is_hex(id.substr(3)); }

std::string upload_signing_input(const SignedUpload& u) {
  return fmt::format("PUT\n{}{}\n{}\n{}\n{}", kPrefix, u.upload_id, u.merchant_id, u.expires, u.max_bytes);
}

std::string upload_signature(std::string_view secret, const SignedUpload& u) {
  const std::string input = upload_signing_input(u);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), reinterpret_cast<const unsigned char*>(input.data()),
       input.size(), mac, &n);
  return hex(mac, n);
}

std::string signed_upload_url(std::string_view secret, const SignedUpload& u) {
  return fmt::format("{}{}?merchant_id={}&expires={}&max_bytes={}&signature={}", kPrefix, u.upload_id, u.merchant_id,
                     u.expires, u.max_bytes, upload_signature(secret, u));
}

Result<SignedUpload> verify_upload_url(std::string_view secret, std::string_view method, std::string_view target,
                                       std::int64_t now_unix_s) {
  if (method != "PUT") return bad(fmt::format("an upload URL takes PUT, not {}", method));
  const std::size_t q = target.find('?');
  const std::string_view path = target.substr(0, q);
  if (!path.starts_with(kPrefix)) return bad("not an upload URL (/v1/uploads/{upload_id}?...)");
  SignedUpload u;
  u.upload_id = std::string(path.substr(kPrefix.size()));
  if (!is_upload_id(u.upload_id)) return bad("the upload id in the URL is malformed");
  if (q == std::string_view::npos) return bad("the upload URL has no signature (merchant_id, expires, max_bytes, signature)");
  std::string_view rest = target.substr(q + 1);
  std::string_view merchant, expires, max_bytes, signature;
  bool seen[4] = {false, false, false, false};
  while (!rest.empty()) {
    const std::size_t amp = rest.find('&');
    const std::string_view part = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    const std::size_t eq = part.find('=');
    if (eq == std::string_view::npos) return bad(fmt::format("the upload URL's parameter '{}' has no value", part));
    const std::string_view name = part.substr(0, eq);
    const std::string_view value = part.substr(eq + 1);
    int slot = -1;
    std::string_view* into = nullptr;
    if (name == "merchant_id") {
      slot = 0;
      into = &merchant;
    } else if (name == "expires") {
      slot = 1;
      into = &expires;
    } else if (name == "max_bytes") {
      slot = 2;
      into = &max_bytes;
    } else if (name == "signature") {
      slot = 3;
      into = &signature;
    } else {
      return bad(fmt::format("the upload URL has an unknown parameter '{}'", name));
    }
    if (seen[slot]) return bad(fmt::format("the upload URL repeats '{}'", name));
    seen[slot] = true;
    *into = value;
  }
  for (int i = 0; i < 4; ++i) {
    if (!seen[i]) {
      static constexpr const char* kNames[] = {"merchant_id", "expires", "max_bytes", "signature"};
      return bad(fmt::format("the upload URL lacks '{}'", kNames[i]));
    }
  }
  if (!is_plain(merchant)) return bad("the upload URL's merchant_id is malformed");
  u.merchant_id = std::string(merchant);
  if (!canonical_number(expires, u.expires)) return bad("the upload URL's expires is not a Unix time in seconds");
  if (!canonical_number(max_bytes, u.max_bytes)) return bad("the upload URL's max_bytes is not a byte count");
  if (signature.size() != 64 || !is_hex(signature)) return bad("the upload URL's signature is not 64 hex digits");
  const std::string expected = upload_signature(secret, u);
  if (CRYPTO_memcmp(expected.data(), signature.data(), expected.size()) != 0) {
    return refused("the upload URL's signature does not match (the URL was altered or signed with another secret)");
  }
  if (now_unix_s >= u.expires) {
    return refused(fmt::format("the upload URL expired {} s ago", now_unix_s - u.expires));
  }
  return u;
}

}  // namespace settle::gateway
