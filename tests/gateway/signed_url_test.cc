// Pre-signed upload URLs: every signed field is covered, expiry is exact,
// and anything that is not a URL the gateway issued is refused with a reason.
#include "gateway/signed_url.h"

#include <gtest/gtest.h>

#include <set>

namespace settle::gateway {
namespace {

constexpr std::string_view kSecret = "test-secret-0123456789";
const SignedUpload kUpload{"up_0123456789abcdef0123456789abcdef", "m-eur", 1'800'000'000, 1'048'576};

std::string url() { return signed_upload_url(kSecret, kUpload); }

std::string replace(std::string s, const std::string& from, const std::string& to) {
  const auto at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from << " in " << s;
  return s.replace(at, from.size(), to);
}

TEST(SignedUrl, AnIssuedUrlVerifiesToItsFields) {
  auto u = verify_upload_url(kSecret, "PUT", url(), kUpload.expires - 1);
  ASSERT_TRUE(u.ok()) << u.error().message;
  EXPECT_EQ(u->upload_id, kUpload.upload_id);
  EXPECT_EQ(u->merchant_id, "m-eur");
  EXPECT_EQ(u->expires, kUpload.expires);
  EXPECT_EQ(u->max_bytes, kUpload.max_bytes);
  EXPECT_EQ(upload_signing_input(kUpload),
            "PUT\n/v1/uploads/up_0123456789abcdef0123456789abcdef\nm-eur\n1800000000\n1048576");
}

TEST(SignedUrl, AlteringAnySignedFieldBreaksTheSignature) {
  const std::string good = url();
  const std::vector<std::string> altered = {
      replace(good, "up_0123456789abcdef0123456789abcdef", "up_1123456789abcdef0123456789abcdef"),
      replace(good, "merchant_id=m-eur", "merchant_id=m-jpy"),
      replace(good, "expires=1800000000", "expires=1800000001"),
      replace(good, "max_bytes=1048576", "max_bytes=1048577"),
  };
  for (const std::string& target : altered) {
    auto u = verify_upload_url(kSecret, "PUT", target, 0);
    ASSERT_FALSE(u.ok()) << target;
    EXPECT_EQ(u.error().code, ErrorCode::kFailedPrecondition) << target;
    EXPECT_NE(u.error().message.find("signature does not match"), std::string::npos) << u.error().message;
  }
  // The signature itself: every hex digit position matters.
  const std::size_t sig = good.find("signature=") + 10;
  for (std::size_t i = sig; i < good.size(); i += 7) {
    std::string t = good;
    t[i] = t[i] == '0' ? '1' : '0';
    auto u = verify_upload_url(kSecret, "PUT", t, 0);
    ASSERT_FALSE(u.ok()) << t;
    EXPECT_EQ(u.error().code, ErrorCode::kFailedPrecondition);
  }
  auto other = verify_upload_url("another-secret-0123456789", "PUT", good, 0);
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().code, ErrorCode::kFailedPrecondition);
}

TEST(SignedUrl, TheMethodIsSigned) {
  auto u = verify_upload_url(kSecret, "POST", url(), 0);
  ASSERT_FALSE(u.ok());
  EXPECT_NE(u.error().message.find("PUT"), std::string::npos);
}

TEST(SignedUrl, AUrlIsValidUntilTheSecondItExpires) {
  EXPECT_TRUE(verify_upload_url(kSecret, "PUT", url(), kUpload.expires - 1).ok());
  auto u = verify_upload_url(kSecret, "PUT", url(), kUpload.expires);
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(u.error().message.find("expired 0 s ago"), std::string::npos) << u.error().message;
  u = verify_upload_url(kSecret, "PUT", url(), kUpload.expires + 90);
  ASSERT_FALSE(u.ok());
  EXPECT_NE(u.error().message.find("expired 90 s ago"), std::string::npos) << u.error().message;
}

TEST(SignedUrl, TargetsThatAreNotIssuedUrlsAreMalformedWithAReason) {
  const std::string good = url();
  const std::string sig = good.substr(good.find("signature="));
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/v1/uploads/up_0123456789abcdef0123456789abcdef", "no signature"},
      {"/v1/uploads/up_zz?merchant_id=m-eur&expires=1&max_bytes=1&" + sig, "upload id"},
      {"/v1/other/x?a=b", "not an upload URL"},
      {replace(good, "&expires=1800000000", ""), "lacks 'expires'"},
      {good + "&expires=1800000000", "repeats 'expires'"},
      {good + "&extra=1", "unknown parameter 'extra'"},
      {good + "&flag", "has no value"},
      {replace(good, "expires=1800000000", "expires=01800000000"), "Unix time"},
      {replace(good, "max_bytes=1048576", "max_bytes=-1"), "byte count"},
      {replace(good, "max_bytes=1048576", "max_bytes=99999999999999999999"), "byte count"},
      {replace(good, "merchant_id=m-eur", "merchant_id=m%2Deur"), "merchant_id is malformed"},
      {good.substr(0, good.size() - 1), "64 hex digits"},
  };
  for (const auto& [target, reason] : cases) {
    auto u = verify_upload_url(kSecret, "PUT", target, 0);
    ASSERT_FALSE(u.ok()) << target;
    EXPECT_EQ(u.error().code, ErrorCode::kInvalidArgument) << target;
    EXPECT_NE(u.error().message.find(reason), std::string::npos) << target << ": " << u.error().message;
  }
}

TEST(SignedUrl, UploadIdsAndSecretsAreFreshRandomHex) {
  std::set<std::string> ids;
  for (int i = 0; i < 100; ++i) {
    auto id = new_upload_id();
    ASSERT_TRUE(id.ok());
    EXPECT_TRUE(is_upload_id(*id)) << *id;
    ids.insert(*id);
  }
  EXPECT_EQ(ids.size(), 100u);
  auto a = random_upload_secret();
  auto b = random_upload_secret();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->size(), 64u);
  EXPECT_NE(*a, *b);
  EXPECT_FALSE(is_upload_id("up_0123456789ABCDEF0123456789abcdef"));
}

}  // namespace
}  // namespace settle::gateway
