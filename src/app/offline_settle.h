// `settled settle`: settles recorded events (SETTLEMENT_RULES §8) through the
// real path: every valid line is appended to the bus, the stream processor
// posts it and closes batches through the given date, the settlement worker
// settles them into the ledger, and the report is read back from the ledger.
#pragma once

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

#include "app/runtime.h"
#include "common/result.h"
#include "common/time.h"
#include "model/batch.h"
#include "model/merchant.h"

namespace settle::app {

struct SettleOptions {
  std::filesystem::path events_file;
  Date through;
  bool progress = false;  // a progress line on stderr (when it is a terminal)
  // Records per bus append: one fdatasync per partition each. 16,384 against
  // 4,096 cut a 1M-event settle's system time by a fifth and its wall time by
  // 7-8% (docs/performance.md, round 8), for about 10 MiB more peak RSS; the
  // processor waits for chunks of 20,000 per partition anyway.
  std::size_t ingest_batch_records = 16384;
};

struct SettleStats {
  std::int64_t lines = 0;      // non-blank input lines
  std::int64_t accepted = 0;   // appended to the bus
  std::int64_t invalid = 0;    // rejected at ingestion (reported with line numbers)
  std::int64_t posted = 0;
  std::int64_t duplicates = 0;
  std::int64_t conflicts = 0;
  std::int64_t rejected = 0;   // rejected by the processor
  std::int64_t dead_letters = 0;  // sent to the dead-letters topic (processor and worker)
  std::int64_t late = 0;
  std::int64_t batches_closed = 0;
  std::int64_t tasks_failed = 0;
  double seconds = 0;

  bool clean() const { return invalid == 0 && conflicts == 0 && rejected == 0 && tasks_failed == 0; }
};

// Publishes `merchants`, ingests the events file, processes and settles.
// Per-line problems are written to `diagnostics` ("file:line: reason") and
// counted; the Result is an error only when the run itself could not proceed
// (unreadable file, I/O, corruption).
Result<SettleStats> settle_file(Runtime& runtime, const std::vector<model::Merchant>& merchants,
                                const SettleOptions& options, std::ostream& diagnostics);

// The report (SETTLEMENT_RULES §7) of every closed batch in the ledger.
Result<std::string> report_csv(ledger::Ledger& ledger);

}  // namespace settle::app
