// API keys: random secrets (256 bits from OpenSSL's RAND_bytes) shown once at
// creation and stored only as their SHA-256 hash, on the compacted `keys`
// topic of the bus (key = hash, value = the key's record as JSON). Keeping
// them on the bus makes them work the same on the embedded log and on Kafka
// without another store; revoking appends the record again with
// "revoked":true, so the latest value (what compaction keeps) says so.
//
// A merchant key sees and writes only its merchant; an admin key manages
// merchants and keys and reads everything.
//
// Thread safety: every method may be called from any thread. Lookups are
// served from a cache that is reloaded from the topic on a miss (at most once
// per second) and every `refresh_interval`, so a key created or revoked by
// another process is seen within that interval.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "bus/bus.h"
#include "common/result.h"

namespace settle::gateway {

inline constexpr const char* kKeysTopic = "keys";  // compacted, key = SHA-256 of the secret (hex)

enum class Scope : std::uint8_t { kMerchant, kAdmin };
std::string_view scope_name(Scope scope);

struct KeyInfo {
  std::string key_id;       // public handle: "key_" + the first 16 hex digits of the hash
  Scope scope = Scope::kMerchant;
  std::string merchant_id;  // kMerchant only
  std::string created_at;   // RFC 3339
  bool revoked = false;
};

struct CreatedKey {
  std::string secret;  // "sk_" + 64 hex digits; never stored
  KeyInfo info;
};

// SHA-256 of `bytes`, as 64 lowercase hex digits.
std::string sha256_hex(std::string_view bytes);

class KeyRing {
 public:
  // Creates the topic when missing.
  static Result<std::unique_ptr<KeyRing>> open(bus::Bus& bus,
                                               std::chrono::milliseconds refresh_interval = std::chrono::seconds(5));

  // A new key; kInvalidArgument for a merchant scope with a bad merchant id.
  Result<CreatedKey> create(Scope scope, std::string_view merchant_id);
  // kNotFound when no key has this id; revoking a revoked key is a no-op.
  Result<KeyInfo> revoke(std::string_view key_id);
  // The key a secret names, or nullopt when it is unknown or revoked.
  Result<std::optional<KeyInfo>> authenticate(std::string_view secret);
  // Every key (revoked ones too), sorted by key id.
  Result<std::vector<KeyInfo>> list();

 private:
  KeyRing(bus::Bus& bus, std::chrono::milliseconds refresh_interval)
      : bus_(bus), refresh_interval_(refresh_interval) {}
  Status reload_locked();

  bus::Bus& bus_;
  std::chrono::milliseconds refresh_interval_;
  std::mutex mu_;
  std::unordered_map<std::string, KeyInfo> by_hash_;
  std::chrono::steady_clock::time_point loaded_at_{};
};

}  // namespace settle::gateway
