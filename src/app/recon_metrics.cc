#include "app/recon_metrics.h"

#include <map>
#include <string>

namespace settle::app {

std::shared_ptr<void> add_recon_collector(observability::Metrics& metrics,
                                          std::shared_ptr<reconcile::ReconStore> store) {
  return metrics.add_collector([store = std::move(store)](std::vector<prometheus::MetricFamily>& out) {
    using observability::FamilyBuilder;
    using prometheus::MetricType;
    std::map<std::string, Minor> drift;  // by currency
    std::map<reconcile::TaskState, std::int64_t> count{{reconcile::TaskState::kOpen, 0},
                                                       {reconcile::TaskState::kAcknowledged, 0}};
    for (auto& [state, n] : count) {
      reconcile::DiscrepancyQuery q;
      q.state = state;
      q.limit = 1'000'000;
      auto tasks = store->discrepancies(q);
      if (!tasks.ok()) return;
      n = static_cast<std::int64_t>(tasks->size());
      for (const reconcile::Discrepancy& d : *tasks) drift[d.finding.currency] += d.finding.drift;
    }
    FamilyBuilder amounts("settle_recon_drift_minor_units",
                          "Unexplained amount of the open and acknowledged discrepancy tasks, per currency, in "
                          "minor units.",
                          MetricType::Gauge);
    for (const auto& [currency, amount] : drift) amounts.add({{"currency", currency}}, static_cast<double>(amount));
    out.push_back(amounts.build());
    FamilyBuilder open("settle_recon_open_discrepancies", "Discrepancy tasks not resolved yet, by state.",
                       MetricType::Gauge);
    for (const auto& [state, n] : count) {
      open.add({{"state", std::string(reconcile::state_name(state))}}, static_cast<double>(n));
    }
    out.push_back(open.build());
  });
}

}  // namespace settle::app
