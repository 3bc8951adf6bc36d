// Pre-signed uploads: POST /v1/uploads hands out a signed URL (signed_url.h),
// a PUT to it streams an NDJSON or CSV body through the bulk ingestion
// (bulk.h) as the URL's merchant, and GET /v1/uploads/{id} tells its state.
//
// State lives in the idempotency store, so every gateway process sharing the
// store (Redis) sees it, under three keys written once each with
// put_if_absent:
//   upload|ID         the upload as issued (merchant, expiry, max size)
//   upload-claim|ID   the single-use claim a PUT takes before reading the body
//   upload-result|ID  the outcome (done or failed, counts, errors)
// state: result ? its state : claim ? receiving : pending. Each lives until
// the URL expires plus idempotency_ttl, so a URL cannot be replayed while it
// is valid.
#include <fmt/format.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "common/time.h"
#include "gateway/api.h"
#include "gateway/bulk.h"
#include "gateway/signed_url.h"
#include "model/event_json.h"
#include "observability/trace.h"

namespace settle::gateway {
namespace {

using nlohmann::ordered_json;

std::string dump(const ordered_json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

std::int64_t now_unix_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string rfc3339(std::int64_t unix_s) {
  const std::time_t t = static_cast<std::time_t>(unix_s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string meta_key(std::string_view id) { return fmt::format("upload|{}", id); }
std::string claim_key(std::string_view id) { return fmt::format("upload-claim|{}", id); }
std::string result_key(std::string_view id) { return fmt::format("upload-result|{}", id); }

std::chrono::milliseconds keep_for(std::int64_t expires, std::chrono::milliseconds retention) {
  const std::int64_t left = std::max<std::int64_t>(0, expires - now_unix_s());
  return std::chrono::seconds(left) + retention;
}

bool is_json_type(std::string_view content_type) {
  std::string ct(content_type.substr(0, content_type.find(';')));
  for (char& c : ct) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ct.find("application/json") != std::string::npos;
}

bool may_access(const KeyInfo& key, std::string_view merchant) {
  return key.scope == Scope::kAdmin || key.merchant_id == merchant;
}

Response forbidden_url(std::string_view why) { return error_response(403, "upload_url_refused", why); }

}  // namespace

Response Api::post_upload(const Request& req, const KeyInfo& key) {
  if (!is_json_type(req.content_type) && !req.body.empty()) {
    return error_response(415, "unsupported_media_type", "POST /v1/uploads takes application/json (or no body)");
  }
  nlohmann::json j = nlohmann::json::object();
  if (!req.body.empty()) {
    j = nlohmann::json::parse(req.body, nullptr, false);
    if (j.is_discarded()) return error_response(400, "malformed_json", "the body is not valid JSON");
    if (!j.is_object()) return error_response(422, "validation_failed", "the body must be a JSON object");
  }
  std::vector<Detail> details;
  for (const auto& [k, v] : j.items()) {
    if (k != "merchant_id" && k != "max_bytes" && k != "expires_in_s") details.push_back({k, "is not a known field"});
  }
  std::string merchant;
  if (auto it = j.find("merchant_id"); it != j.end()) {
    if (!it->is_string()) {
      details.push_back({"merchant_id", "must be a string"});
    } else {
      merchant = it->get<std::string>();
      if (auto st = model::validate_merchant_id(merchant); !st.ok()) details.push_back(detail_of(st.error().message, ""));
    }
  } else if ((key.scope == Scope::kAdmin)) {
    details.push_back({"merchant_id", "is required with an admin key (the merchant the upload is for)"});
  } else {
    merchant = key.merchant_id;
  }
  std::uint64_t max_bytes = options_.upload_max_bytes;
  if (auto it = j.find("max_bytes"); it != j.end()) {
    if (!it->is_number_unsigned() || it->get<std::uint64_t>() == 0 ||
        it->get<std::uint64_t>() > options_.upload_max_bytes) {
      details.push_back({"max_bytes", fmt::format("must be an integer 1-{}", options_.upload_max_bytes)});
    } else {
      max_bytes = it->get<std::uint64_t>();
    }
  }
  std::int64_t expires_in = options_.upload_expiry.count();
  if (auto it = j.find("expires_in_s"); it != j.end()) {
    if (!it->is_number_unsigned() || it->get<std::uint64_t>() == 0 ||
        it->get<std::uint64_t>() > static_cast<std::uint64_t>(options_.upload_expiry_max.count())) {
      details.push_back({"expires_in_s", fmt::format("must be an integer 1-{}", options_.upload_expiry_max.count())});
    } else {
      expires_in = it->get<std::int64_t>();
    }
  }
  if (!details.empty()) return error_response(422, "validation_failed", "the upload request is invalid", details);
  if (!may_access(key, merchant)) {
    return error_response(403, "forbidden", fmt::format("this key may not write merchant '{}'", merchant),
                          {Detail{"merchant_id", fmt::format("this key may not write merchant '{}'", merchant)}});
  }
  if (!has_merchant(merchant)) {
    return error_response(422, "validation_failed", "unknown merchant",
                          {Detail{"merchant_id", fmt::format("unknown merchant '{}'", merchant)}});
  }
  auto id = new_upload_id();
  if (!id.ok()) return error_response(503, "unavailable", id.error().message);
  SignedUpload u{*id, merchant, now_unix_s() + expires_in, max_bytes};
  ordered_json meta;
  meta["merchant_id"] = u.merchant_id;
  meta["expires"] = u.expires;
  meta["max_bytes"] = u.max_bytes;
  meta["created_at"] = rfc3339(now_unix_s());
  auto put = store_.put_if_absent(meta_key(u.upload_id), dump(meta), keep_for(u.expires, options_.idempotency_ttl));
  if (!put.ok()) return error_response(503, "unavailable", put.error().message);
  ordered_json out;
  out["upload_id"] = u.upload_id;
  out["merchant_id"] = u.merchant_id;
  out["method"] = "PUT";
  out["url"] = signed_upload_url(options_.upload_secret, u);
  out["expires_at"] = rfc3339(u.expires);
  out["max_bytes"] = u.max_bytes;
  out["state"] = "pending";
  return Response{201, dump(out), {}};
}

Api::BulkStart Api::begin_upload(const Request& request) {
  auto u = verify_upload_url(options_.upload_secret, request.method, request.target, now_unix_s());
  if (!u.ok()) {
    if (u.error().code == ErrorCode::kFailedPrecondition) return {nullptr, forbidden_url(u.error().message)};
    return {nullptr, error_response(403, "upload_url_refused", u.error().message)};
  }
  const std::string ct = [&] {
    std::string c(request.content_type.substr(0, request.content_type.find(';')));
    for (char& ch : c) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return c;
  }();
  BulkUpload::Format format;
  if (ct.find("application/x-ndjson") != std::string::npos || ct.find("application/jsonl") != std::string::npos) {
    format = BulkUpload::Format::kNdjson;
  } else if (ct.find("text/csv") != std::string::npos) {
    format = BulkUpload::Format::kCsv;
  } else {
    return {nullptr, error_response(415, "unsupported_media_type", "an upload takes application/x-ndjson or text/csv")};
  }
  // Refused before the claim, so the URL stays usable for a body that fits.
  if (request.content_length && *request.content_length > u->max_bytes) {
    return {nullptr,
            error_response(413, "payload_too_large",
                           fmt::format("the body has {} bytes; this upload takes at most {}", *request.content_length,
                                       u->max_bytes))};
  }
  const auto ttl = keep_for(u->expires, options_.idempotency_ttl);
  auto claim = store_.put_if_absent(claim_key(u->upload_id), u->merchant_id, ttl);
  if (!claim.ok()) return {nullptr, error_response(503, "unavailable", claim.error().message)};
  if (!claim->inserted) {
    return {nullptr, forbidden_url(fmt::format("upload {} was already used; an upload URL takes one PUT", u->upload_id))};
  }
  KeyInfo as{};
  as.key_id = "upload:" + u->upload_id;
  as.scope = Scope::kMerchant;
  as.merchant_id = u->merchant_id;
  auto upload = std::make_unique<BulkUpload>(*this, as, format, BulkUpload::Idempotency{},
                                             observability::continue_or_start(request.traceparent));
  upload->on_end([this, id = u->upload_id, merchant = u->merchant_id, ttl](const BulkUpload& b, const Response& r) {
    ordered_json rec;
    rec["merchant_id"] = merchant;
    rec["state"] = r.status == 202 ? "done" : "failed";
    rec["lines"] = b.lines();
    rec["accepted"] = b.accepted();
    rec["duplicates"] = b.duplicates();
    rec["rejected"] = b.rejected();
    rec["errors"] = ordered_json::parse("[" + b.errors_json() + "]", nullptr, false);
    rec["errors_omitted"] = b.errors_omitted();
    if (r.status != 202) {
      auto e = ordered_json::parse(r.body, nullptr, false);
      if (e.is_object() && e.contains("error")) rec["error"] = e["error"];
    }
    (void)store_.put_if_absent(result_key(id), dump(rec), ttl);  // a lost record leaves it `receiving`
  });
  return {std::move(upload), Response{}, u->max_bytes};
}

Response Api::get_upload(const KeyInfo& key, std::string_view upload_id) {
  if (!is_upload_id(upload_id)) return error_response(404, "not_found", fmt::format("no upload '{}'", upload_id));
  auto meta = store_.get(meta_key(upload_id));
  if (!meta.ok()) return error_response(503, "unavailable", meta.error().message);
  auto claim = store_.get(claim_key(upload_id));
  if (!claim.ok()) return error_response(503, "unavailable", claim.error().message);
  auto result = store_.get(result_key(upload_id));
  if (!result.ok()) return error_response(503, "unavailable", result.error().message);
  if (!meta->has_value() && !claim->has_value() && !result->has_value()) {
    return error_response(404, "not_found", fmt::format("no upload '{}'", upload_id));
  }
  ordered_json out;
  out["upload_id"] = upload_id;
  ordered_json m = meta->has_value() ? ordered_json::parse(**meta, nullptr, false) : ordered_json::object();
  ordered_json r = result->has_value() ? ordered_json::parse(**result, nullptr, false) : ordered_json::object();
  std::string merchant = m.value("merchant_id", r.value("merchant_id", claim->value_or("")));
  if (!may_access(key, merchant)) {
    return error_response(403, "forbidden", fmt::format("this key may not read merchant '{}'", merchant));
  }
  out["merchant_id"] = merchant;
  out["state"] = result->has_value() ? r.value("state", "failed") : claim->has_value() ? "receiving" : "pending";
  if (m.contains("expires")) out["expires_at"] = rfc3339(m["expires"].get<std::int64_t>());
  if (m.contains("max_bytes")) out["max_bytes"] = m["max_bytes"];
  if (m.contains("created_at")) out["created_at"] = m["created_at"];
  for (const char* k : {"lines", "accepted", "duplicates", "rejected", "errors_omitted"}) {
    out[k] = r.value(k, std::int64_t{0});
  }
  out["errors"] = r.contains("errors") ? r["errors"] : ordered_json::array();
  if (r.contains("error")) out["error"] = r["error"];
  return Response{200, dump(out), {}};
}

}  // namespace settle::gateway
