// The reconciliation routes of the API (admin keys only; api.cc routes them
// here after authentication and answers 403 to merchant keys):
//
//   POST /v1/statements?format=auto|camt053|mt940|bai2|acquirer_csv
//        [&mapping=default|adyen|stripe&merchant_id=M&settle_days=2]
//        body: the statement file; runs reconcile::run() as `settled recon run`
//        does and answers the run's summary (duplicate, matches, findings,
//        new discrepancies, auto-resolved, drift). A statement that does not
//        parse is 400 invalid_statement with the parser's line or XPath.
//   GET  /v1/discrepancies?state=&merchant_id=&reason=&older_than_days=&limit=
//        tasks with their age and aging bucket, and the aging summary.
//   POST /v1/discrepancies/{id}/acknowledge
//   POST /v1/discrepancies/{id}/resolve      body {"comment": "..."} (required)
//   GET  /v1/drift?last=30
//
// Thread safety: handle() may be called from any number of threads (the
// store and ledger serialize what they must).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/api.h"
#include "ledger/ledger.h"
#include "reconcile/recon_store.h"

namespace settle::gateway {

// True for the paths (route templates) ReconApi serves.
bool is_recon_route(std::string_view route_path);

class ReconApi {
 public:
  ReconApi(ledger::Ledger& ledger, reconcile::ReconStore& store) : ledger_(ledger), store_(store) {}

  // `route_path` is the matched template (e.g. "/v1/discrepancies/{id}/resolve"),
  // `params` its placeholders' values, `query` the decoded query string.
  Response handle(const Request& request, std::string_view route_path, const std::vector<std::string>& params,
                  const std::map<std::string, std::string>& query);

 private:
  Response post_statement(const Request& request, const std::map<std::string, std::string>& query);
  Response list(const std::map<std::string, std::string>& query);
  Response transition(const Request& request, std::string_view id, bool resolve);
  Response drift(const std::map<std::string, std::string>& query);

  ledger::Ledger& ledger_;
  reconcile::ReconStore& store_;
};

}  // namespace settle::gateway
