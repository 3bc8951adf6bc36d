#include "gateway/keys.h"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

#include "common/time.h"
#include "model/event_json.h"

namespace settle::gateway {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::seconds kMissReloadInterval{1};

std::string hex(const unsigned char* bytes, std::size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[bytes[i] >> 4];
    out[2 * i + 1] = kDigits[bytes[i] & 0xF];
  }
  return out;
}

std::string record_json(const KeyInfo& k) {
  nlohmann::json j;
  j["key_id"] = k.key_id;
  j["scope"] = std::string(scope_name(k.scope));
  if (k.scope == Scope::kMerchant) j["merchant_id"] = k.merchant_id;
  j["created_at"] = k.created_at;
  j["revoked"] = k.revoked;
  return j.dump();
}

Result<KeyInfo> parse_record(std::string_view hash, std::string_view json) {
  auto j = nlohmann::json::parse(json, nullptr, false);
  auto bad = [&](std::string_view why) {
    return make_error(ErrorCode::kCorruption, fmt::format("topic '{}': key {}: {}", kKeysTopic, hash, why));
  };
  if (!j.is_object()) return bad("not a JSON object");
  KeyInfo k;
  if (!j.contains("key_id") || !j["key_id"].is_string()) return bad("no key_id");
  k.key_id = j["key_id"].get<std::string>();
  const std::string scope = j.value("scope", "");
  if (scope == "admin") {
    k.scope = Scope::kAdmin;
  } else if (scope == "merchant") {
    k.scope = Scope::kMerchant;
    if (!j.contains("merchant_id") || !j["merchant_id"].is_string()) return bad("no merchant_id");
    k.merchant_id = j["merchant_id"].get<std::string>();
  } else {
    return bad("unknown scope");
  }
  k.created_at = j.value("created_at", "");
  k.revoked = j.value("revoked", false);
  return k;
}

}  // namespace

std::string_view scope_name(Scope scope) { return scope == Scope::kAdmin ? "admin" : "merchant"; }

std::string sha256_hex(std::string_view bytes) {
  // Fetched once: with EVP_sha256() OpenSSL 3 looks the implementation up in
  // its provider store (a lock and a search) on every digest, which cost more
  // than hashing the key of every request.
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  SETTLE_ASSERT(sha256 != nullptr, "EVP_MD_fetch(SHA256) failed");
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  const int rc = EVP_Digest(bytes.data(), bytes.size(), digest, &len, sha256, nullptr);
  SETTLE_ASSERT(rc == 1, "EVP_Digest(sha256) failed");
  return hex(digest, len);
}

Result<std::unique_ptr<KeyRing>> KeyRing::open(bus::Bus& bus, std::chrono::milliseconds refresh_interval) {
  SETTLE_TRY(bus.create_topic({kKeysTopic, 1, true}));
  std::unique_ptr<KeyRing> ring(new KeyRing(bus, refresh_interval));
  std::lock_guard lock(ring->mu_);
  SETTLE_TRY(ring->reload_locked());
  return ring;
}

Status KeyRing::reload_locked() {
  SETTLE_ASSIGN_OR_RETURN(auto values, bus_.latest_values(kKeysTopic));
  std::unordered_map<std::string, KeyInfo> next;
  for (const auto& [hash, json] : values) {
    SETTLE_ASSIGN_OR_RETURN(KeyInfo k, parse_record(hash, json));
    next.emplace(hash, std::move(k));
  }
  by_hash_ = std::move(next);
  loaded_at_ = Clock::now();
  return ok_status();
}

Result<CreatedKey> KeyRing::create(Scope scope, std::string_view merchant_id) {
  if (scope == Scope::kMerchant) SETTLE_TRY(model::validate_merchant_id(merchant_id));
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) {
    return make_error(ErrorCode::kUnavailable, "RAND_bytes could not produce a key");
  }
  CreatedKey out;
  out.secret = "sk_" + hex(raw, sizeof raw);
  const std::string hash = sha256_hex(out.secret);
  out.info.key_id = "key_" + hash.substr(0, 16);
  out.info.scope = scope;
  if (scope == Scope::kMerchant) out.info.merchant_id = std::string(merchant_id);
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  out.info.created_at = format_rfc3339(Timestamp{now_ms * 1'000'000});
  const bus::Record record{hash, record_json(out.info), {}, 0};
  SETTLE_TRY(bus_.append(kKeysTopic, std::span(&record, 1)));
  std::lock_guard lock(mu_);
  by_hash_[hash] = out.info;
  return out;
}

Result<KeyInfo> KeyRing::revoke(std::string_view key_id) {
  std::lock_guard lock(mu_);
  SETTLE_TRY(reload_locked());
  for (auto& [hash, info] : by_hash_) {
    if (info.key_id != key_id) continue;
    if (info.revoked) return info;
    KeyInfo next = info;
    next.revoked = true;
    const bus::Record record{hash, record_json(next), {}, 0};
    SETTLE_TRY(bus_.append(kKeysTopic, std::span(&record, 1)));
    info = next;
    return next;
  }
  return make_error(ErrorCode::kNotFound, fmt::format("no key with id '{}'", key_id));
}

Result<std::optional<KeyInfo>> KeyRing::authenticate(std::string_view secret) {
  if (secret.size() != 67 || secret.substr(0, 3) != "sk_") return std::optional<KeyInfo>{};
  // The hash of the secret this thread hashed last: a connection's requests
  // (and most clients') carry one key, and hashing it again was 3% of the
  // gateway's CPU under single-event load. It is a pure function of the
  // secret, so whether the key is known or revoked is still decided below,
  // from the ring; the secret itself is already in this process's memory.
  thread_local std::string last_secret;
  thread_local std::string last_hash;
  if (secret != last_secret) {
    last_hash = sha256_hex(secret);
    last_secret.assign(secret);
  }
  const std::string& hash = last_hash;
  std::lock_guard lock(mu_);
  const auto now = Clock::now();
  auto it = by_hash_.find(hash);
  const bool stale = now - loaded_at_ >= refresh_interval_;
  const bool miss_reload = it == by_hash_.end() && now - loaded_at_ >= kMissReloadInterval;
  if (stale || miss_reload) {
    SETTLE_TRY(reload_locked());
    it = by_hash_.find(hash);
  }
  if (it == by_hash_.end() || it->second.revoked) return std::optional<KeyInfo>{};
  return std::optional<KeyInfo>(it->second);
}

Result<std::vector<KeyInfo>> KeyRing::list() {
  std::lock_guard lock(mu_);
  SETTLE_TRY(reload_locked());
  std::vector<KeyInfo> out;
  out.reserve(by_hash_.size());
  for (const auto& [hash, info] : by_hash_) out.push_back(info);
  std::sort(out.begin(), out.end(), [](const KeyInfo& a, const KeyInfo& b) { return a.key_id < b.key_id; });
  return out;
}

}  // namespace settle::gateway
