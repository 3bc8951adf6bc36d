// Short-lived stream tokens for browsers (which cannot set an Authorization
// header on a WebSocket): POST /v1/stream/tokens exchanges a key for one,
// GET /v1/stream/status?token=... accepts it until it expires.
//
// A token is "<payload>.<mac>": payload = "<scope>.<merchant or *>.<expiry ms>"
// and mac = HMAC-SHA256(secret, payload) in hex. Nothing is stored, so any
// notify process with the same secret accepts it. Pure (no I/O, the clock is
// an argument).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace settle::notify {

struct TokenClaims {
  bool admin = false;
  std::string merchant_id;  // empty: every merchant (admin only)
  std::int64_t expires_ms = 0;
};

// A random 32-byte secret, hex.
std::string random_token_secret();
std::string issue_token(std::string_view secret, const TokenClaims& claims);
// The claims of a token made with `secret`, or kFailedPrecondition saying why
// (malformed, bad signature, expired at `now_ms`).
Result<TokenClaims> check_token(std::string_view secret, std::string_view token, std::int64_t now_ms);

}  // namespace settle::notify
