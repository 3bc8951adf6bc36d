// A seeded workload for the simulator: a few merchants (zones with DST,
// cut-offs, fees, reserves, several currencies) and events over a few days,
// sometimes with an event of a merchant nobody configured; and the report the
// rules give for it (SETTLEMENT_RULES §5, §7, §8), computed directly, without
// any of the pipeline.
#pragma once

#include <string>
#include <vector>

#include "common/time.h"
#include "model/event.h"
#include "model/merchant.h"
#include "sim/faults.h"

namespace settle::sim {

struct Workload {
  std::vector<model::Merchant> merchants;
  std::vector<model::Event> events;  // distinct identities; some of unknown merchants
  std::vector<Date> batch_dates;     // per event; unset (Date{}) for an unknown merchant's
  std::vector<Date> dates;           // the distinct batch dates, ascending
  Date through;                      // the last of them
};

Workload make_workload(Faults& rng, int events);

// The settlement report (CSV with header) of every batch through
// workload.through, from the rules alone.
std::string reference_report(const Workload& workload);

}  // namespace settle::sim
