// Reconciliation figures in a role's scrapes, read from the recon store at
// scrape time: the unexplained amount (drift) per currency and the
// discrepancy tasks still to be dealt with. Wired on the roles that can read
// the recon store: `settled all`, `settled gateway` (its recon API) and
// `settled recon watch`.
#pragma once

#include <memory>

#include "observability/metrics.h"
#include "reconcile/recon_store.h"

namespace settle::app {

// Registers the collector; it is scraped while the returned handle lives and
// keeps `store` alive as long as a scrape may use it.
//   settle_recon_drift_minor_units{currency}       sum of the open and
//       acknowledged tasks' drift (minor units of the currency)
//   settle_recon_open_discrepancies{state}         tasks open / acknowledged
// A store that cannot be read leaves both out of that scrape (no figure
// rather than a wrong one).
std::shared_ptr<void> add_recon_collector(observability::Metrics& metrics,
                                          std::shared_ptr<reconcile::ReconStore> store);

}  // namespace settle::app
