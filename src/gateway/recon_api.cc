#include "gateway/recon_api.h"

#include <fmt/format.h>

#include <charconv>
#include <chrono>
#include <nlohmann/json.hpp>

#include "reconcile/reconcile.h"

namespace settle::gateway {
namespace {

using nlohmann::ordered_json;

Response json_response(unsigned status, const ordered_json& j) {
  return Response{status, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), {}};
}

Timestamp wall_now() {
  return Timestamp{std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count()};
}

// An integer query parameter in [lo, hi]; a detail when it is not one.
std::int64_t int_param(const std::map<std::string, std::string>& query, const std::string& name, std::int64_t fallback,
                       std::int64_t lo, std::int64_t hi, std::vector<Detail>& details) {
  auto it = query.find(name);
  if (it == query.end() || it->second.empty()) return fallback;
  std::int64_t v = 0;
  const std::string& s = it->second;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < lo || v > hi) {
    details.push_back({name, fmt::format("must be an integer {}-{}", lo, hi)});
    return fallback;
  }
  return v;
}

std::string param(const std::map<std::string, std::string>& query, const std::string& name) {
  auto it = query.find(name);
  return it == query.end() ? std::string() : it->second;
}

void put_finding(ordered_json& j, const reconcile::Finding& f) {
  j["reason"] = reconcile::reason_name(f.reason);
  j["subject"] = f.subject;
  j["merchant_id"] = f.merchant_id;
  j["currency"] = f.currency;
  j["expected"] = f.expected;
  j["actual"] = f.actual;
  j["drift"] = f.drift;
  j["our_ref"] = f.our_ref;
  j["their_ref"] = f.their_ref;
  j["detail"] = f.detail;
}

ordered_json finding_json(const reconcile::Finding& f) {
  ordered_json j;
  put_finding(j, f);
  return j;
}

ordered_json discrepancy_json(const reconcile::Discrepancy& d, Timestamp now) {
  const std::int64_t age = reconcile::age_days(d, now);
  ordered_json j;
  j["id"] = d.id;
  j["state"] = reconcile::state_name(d.state);
  put_finding(j, d.finding);
  j["comment"] = d.comment;
  j["statement_key"] = d.statement_key;
  j["run_id"] = d.run_id;
  j["created_at"] = format_rfc3339(d.created_at);
  j["updated_at"] = format_rfc3339(d.updated_at);
  j["age_days"] = age;
  j["aging_bucket"] = reconcile::aging_bucket(age);
  return j;
}

ordered_json drift_rows_json(const std::vector<reconcile::DriftRow>& rows) {
  ordered_json arr = ordered_json::array();
  for (const reconcile::DriftRow& r : rows) {
    ordered_json x;
    x["currency"] = r.currency;
    x["merchant_id"] = r.merchant_id.empty() ? ordered_json(nullptr) : ordered_json(r.merchant_id);
    x["count"] = r.count;
    x["amount"] = r.amount;
    arr.push_back(std::move(x));
  }
  return arr;
}

Response store_error(const Error& e) {
  switch (e.code) {
    case ErrorCode::kNotFound: return error_response(404, "not_found", e.message);
    case ErrorCode::kFailedPrecondition: return error_response(409, "conflict", e.message);
    case ErrorCode::kInvalidArgument: return error_response(422, "validation_failed", e.message);
    default: return error_response(503, "unavailable", e.message);
  }
}

}  // namespace

bool is_recon_route(std::string_view route_path) {
  return route_path == "/v1/statements" || route_path == "/v1/discrepancies" ||
         route_path == "/v1/discrepancies/{id}/acknowledge" || route_path == "/v1/discrepancies/{id}/resolve" ||
         route_path == "/v1/drift";
}

Response ReconApi::handle(const Request& request, std::string_view route_path, const std::vector<std::string>& params,
                          const std::map<std::string, std::string>& query) {
  if (route_path == "/v1/statements") return post_statement(request, query);
  if (route_path == "/v1/discrepancies") return list(query);
  if (route_path == "/v1/discrepancies/{id}/acknowledge") return transition(request, params.at(0), false);
  if (route_path == "/v1/discrepancies/{id}/resolve") return transition(request, params.at(0), true);
  if (route_path == "/v1/drift") return drift(query);
  return error_response(500, "internal", "no handler");
}

Response ReconApi::post_statement(const Request& request, const std::map<std::string, std::string>& query) {
  std::vector<Detail> details;
  reconcile::RunOptions ro;
  ro.now = wall_now();
  const std::string format = param(query, "format");
  if (!format.empty() && format != "auto") {
    auto f = reconcile::parse_format_name(format);
    if (f.ok()) {
      ro.format = *f;
    } else {
      details.push_back({"format", "must be auto, camt053, mt940, bai2 or acquirer_csv"});
    }
  }
  const std::string mapping = param(query, "mapping");
  auto m = reconcile::builtin_mapping(mapping.empty() ? "default" : mapping);
  if (m.ok()) {
    ro.csv_mapping = *m;
  } else {
    details.push_back({"mapping", "must be default, adyen or stripe"});
  }
  ro.merchant_id = param(query, "merchant_id");
  const std::int64_t settle_days = int_param(query, "settle_days", 2, 0, 365, details);
  if (!details.empty()) return error_response(422, "validation_failed", "bad query parameters", details);
  const Date today{static_cast<std::int32_t>(ro.now.ns / kNsPerDay)};
  ro.match.due_through = today.plus_days(-static_cast<std::int32_t>(settle_days));
  if (request.body.empty()) {
    return error_response(400, "invalid_statement", "the body is empty: send the statement file",
                          {{"body", "empty"}});
  }
  auto r = reconcile::run(ledger_, store_, {request.body}, ro);
  if (!r.ok()) {
    if (r.error().code == ErrorCode::kInvalidArgument) {
      return error_response(400, "invalid_statement", r.error().message, {{"body", r.error().message}});
    }
    return error_response(503, "unavailable", r.error().message);
  }
  const reconcile::RunOutcome& o = r->outcome;
  ordered_json j;
  j["run_id"] = o.run_id;
  j["duplicate"] = o.duplicate_statement;
  j["statement_key"] = r->statement_key;
  j["statement_ids"] = r->statement_ids;
  j["format"] = reconcile::format_name(r->format);
  j["items"] = r->items;
  j["matches"] = o.duplicate_statement ? 0 : r->matches.size();
  ordered_json findings = ordered_json::array();
  if (!o.duplicate_statement) {
    for (const reconcile::Finding& f : r->findings) findings.push_back(finding_json(f));
  }
  j["findings"] = std::move(findings);
  j["new_discrepancies"] = o.opened;
  j["new_discrepancy_ids"] = o.opened_ids;
  j["auto_resolved"] = o.auto_resolved;
  j["open_count"] = o.drift.open_count;
  j["drift"] = drift_rows_json(o.drift.rows);
  return json_response(200, j);
}

Response ReconApi::list(const std::map<std::string, std::string>& query) {
  std::vector<Detail> details;
  reconcile::DiscrepancyQuery q;
  const Timestamp now = wall_now();
  if (const std::string s = param(query, "state"); !s.empty()) {
    auto st = reconcile::parse_state(s);
    if (st.ok()) {
      q.state = *st;
    } else {
      details.push_back({"state", "must be open, acknowledged or resolved"});
    }
  }
  if (const std::string m = param(query, "merchant_id"); !m.empty()) q.merchant_id = m;
  if (const std::string s = param(query, "reason"); !s.empty()) {
    auto reason = reconcile::parse_reason(s);
    if (reason.ok()) {
      q.reason = *reason;
    } else {
      details.push_back({"reason", reason.error().message});
    }
  }
  const std::int64_t older = int_param(query, "older_than_days", -1, 0, 36500, details);
  if (older >= 0) q.created_before = Timestamp{now.ns - older * kNsPerDay};
  q.limit = static_cast<std::size_t>(int_param(query, "limit", 100, 1, 10000, details));
  if (!details.empty()) return error_response(422, "validation_failed", "bad query parameters", details);
  auto list = store_.discrepancies(q);
  if (!list.ok()) return store_error(list.error());
  ordered_json arr = ordered_json::array();
  ordered_json aging;
  for (const char* b : {"0-1d", "1-3d", "3-7d", "7-30d", ">30d"}) aging[b] = 0;
  for (const reconcile::Discrepancy& d : *list) {
    ordered_json x = discrepancy_json(d, now);
    aging[x["aging_bucket"].get<std::string>()] = aging[x["aging_bucket"].get<std::string>()].get<int>() + 1;
    arr.push_back(std::move(x));
  }
  ordered_json j;
  j["discrepancies"] = std::move(arr);
  j["aging"] = std::move(aging);
  return json_response(200, j);
}

Response ReconApi::transition(const Request& request, std::string_view id_text, bool resolve) {
  std::int64_t id = 0;
  auto [p, ec] = std::from_chars(id_text.data(), id_text.data() + id_text.size(), id);
  if (ec != std::errc() || p != id_text.data() + id_text.size() || id <= 0) {
    return error_response(404, "not_found", fmt::format("no discrepancy '{}' (ids are positive integers)", id_text));
  }
  Result<reconcile::Discrepancy> r = make_error(ErrorCode::kIo, "not run");
  if (resolve) {
    const ordered_json body = ordered_json::parse(request.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
      return error_response(400, "malformed_json", "the body must be a JSON object: {\"comment\": \"...\"}");
    }
    auto it = body.find("comment");
    if (it == body.end() || !it->is_string() || it->get<std::string>().empty()) {
      return error_response(422, "validation_failed", "a comment is required to resolve a discrepancy",
                            {{"comment", "required: a non-empty string"}});
    }
    r = store_.resolve(id, it->get<std::string>(), wall_now());
  } else {
    r = store_.acknowledge(id, wall_now());
  }
  if (!r.ok()) return store_error(r.error());
  return json_response(200, discrepancy_json(*r, wall_now()));
}

Response ReconApi::drift(const std::map<std::string, std::string>& query) {
  std::vector<Detail> details;
  const std::int64_t last = int_param(query, "last", 30, 1, 10000, details);
  if (!details.empty()) return error_response(422, "validation_failed", "bad query parameters", details);
  auto samples = store_.drift(static_cast<std::size_t>(last));
  if (!samples.ok()) return store_error(samples.error());
  ordered_json arr = ordered_json::array();
  for (const reconcile::DriftSample& s : *samples) {
    ordered_json x;
    x["run_id"] = s.run_id;
    x["at"] = format_rfc3339(s.at);
    x["open_count"] = s.open_count;
    x["rows"] = drift_rows_json(s.rows);
    arr.push_back(std::move(x));
  }
  ordered_json j;
  j["samples"] = std::move(arr);
  return json_response(200, j);
}

}  // namespace settle::gateway
