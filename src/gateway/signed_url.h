// Pre-signed upload URLs: what POST /v1/uploads hands out and what a PUT to
// the URL must carry. The URL is a path and query on the gateway,
//   /v1/uploads/{upload_id}?merchant_id=M&expires=UNIX_S&max_bytes=N&signature=HEX
// where signature is HMAC-SHA256 (OpenSSL), keyed with the gateway's upload
// secret, over the method, the path, the merchant, the expiry and the
// maximum size (upload_signing_input()). Changing any of them, or the
// signature, makes verify_upload_url() refuse the URL; so does a URL whose
// expiry has passed. Single use is the caller's business (the store claim).
//
// Pure functions without I/O; the clock is a parameter.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace settle::gateway {

struct SignedUpload {
  std::string upload_id;    // "up_" + 32 lowercase hex digits
  std::string merchant_id;
  std::int64_t expires = 0;  // Unix seconds; the URL is valid while now < expires
  std::uint64_t max_bytes = 0;
};

// A secret for a gateway that was given none: 256 random bits, hex.
Result<std::string> random_upload_secret();
// A fresh upload id (128 random bits).
Result<std::string> new_upload_id();
bool is_upload_id(std::string_view id);

// The bytes the signature covers: "PUT\n/v1/uploads/ID\nMERCHANT\nEXPIRES\nMAX_BYTES".
std::string upload_signing_input(const SignedUpload& u);
// Lowercase hex HMAC-SHA256 of upload_signing_input(u) under secret.
std::string upload_signature(std::string_view secret, const SignedUpload& u);
// The URL (path and query) for u.
std::string signed_upload_url(std::string_view secret, const SignedUpload& u);

// Checks a request's method and target (path and query) against the secret
// and the time now_unix_s. kInvalidArgument when the target is not an upload
// URL at all (missing or repeated parameters, non-canonical numbers);
// kFailedPrecondition when it is one but the signature does not match (an
// altered field) or it has expired. The message says which.
Result<SignedUpload> verify_upload_url(std::string_view secret, std::string_view method, std::string_view target,
                                       std::int64_t now_unix_s);

}  // namespace settle::gateway
