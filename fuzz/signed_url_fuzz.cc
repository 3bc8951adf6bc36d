// libFuzzer target: the pre-signed upload URL verifier (gateway/signed_url.h).
// Two properties: (1) an arbitrary target never verifies unless it carries
// the true signature of the fields it verified to; (2) a URL signed from
// fields drawn from the input verifies, and changing any one of its bytes
// makes it refused.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "gateway/signed_url.h"

namespace {
constexpr std::string_view kSecret = "fuzz-upload-secret-0123456789";
constexpr std::int64_t kNow = 1'900'000'000;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace settle::gateway;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto any = verify_upload_url(kSecret, "PUT", text, kNow);
  if (any.ok()) {
    if (text.find("signature=" + upload_signature(kSecret, *any)) == std::string_view::npos) __builtin_trap();
    if (any->expires <= kNow) __builtin_trap();
  } else if (any.error().message.empty()) {
    __builtin_trap();
  }

  if (size < 12) return 0;
  static constexpr char kHex[] = "0123456789abcdef";
  SignedUpload u;
  u.upload_id = "up_";
  for (int i = 0; i < 32; ++i) u.upload_id += kHex[(data[(4 + i / 2) % size] >> (i % 2 ? 0 : 4)) & 0xF];
  static constexpr const char* kMerchants[] = {"m-eur", "m_1", "M", "merchant-with-a-longer-id_0123456789"};
  u.merchant_id = kMerchants[data[3] % 4];
  u.expires = kNow + 1 + data[2];
  u.max_bytes = 1 + (static_cast<std::uint64_t>(data[4]) << (data[5] % 40));
  const std::string url = signed_upload_url(kSecret, u);
  auto good = verify_upload_url(kSecret, "PUT", url, kNow);
  if (!good.ok() || good->upload_id != u.upload_id || good->merchant_id != u.merchant_id ||
      good->expires != u.expires || good->max_bytes != u.max_bytes) {
    __builtin_trap();
  }
  std::string altered = url;
  const std::size_t at = (static_cast<std::size_t>(data[0]) << 8 | data[1]) % altered.size();
  altered[at] = static_cast<char>(altered[at] ^ (data[6] | 1));
  if (verify_upload_url(kSecret, "PUT", altered, kNow).ok()) __builtin_trap();
  if (verify_upload_url(kSecret, "PUT", url, u.expires).ok()) __builtin_trap();  // expired
  return 0;
}
