// A settlement task: the processor's request to close one batch, carrying the
// batch's control totals and the merchant configuration it was computed
// with, so a worker needs nothing else to settle it. Travels as JSON on the
// `settlement-tasks` topic.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "model/batch.h"
#include "model/merchant.h"

namespace settle::model {

struct SettlementTask {
  BatchKey key;
  ControlTotals totals;
  // The batch of this merchant and currency the processor closed just before
  // this one; the worker refuses to close out of order.
  std::optional<Date> previous_batch;
  Merchant merchant;
  // No trace id: a batch holds the events of many requests and closes
  // because time passed (cut-off plus grace, or the idle rule), not because
  // of one of them (docs/observability.md#tracing). A task written with a
  // `trace_id` field by an older version still parses; the field is ignored.
};

std::string task_json(const SettlementTask& task);
Result<SettlementTask> parse_task_json(std::string_view json);

// Control totals as JSON ({"capture":{"count":..,"amount":..,"fees":..},..});
// used by tasks, processor checkpoints and status updates.
std::string control_totals_json(const ControlTotals& totals);

}  // namespace settle::model
