// The reconciliation store port: loaded statements, runs, matches,
// discrepancy tasks and the drift time series. Kept small so that the
// PostgreSQL ledger can get an implementation beside SqliteReconStore.
//
// Contract:
// - record_run() writes a run atomically: the statement's identity, the
//   matches, the new discrepancies, the auto-resolutions and one drift sample.
//   A statement key seen before writes nothing and answers
//   duplicate_statement = true (loading a statement twice changes nothing).
// - A finding whose (reason, subject) already has an open or acknowledged
//   task of a missing_* reason is not opened again.
// - A subject matched by a run resolves that subject's open or acknowledged
//   missing_in_statement / missing_in_ledger tasks, with a comment naming
//   the run (a later statement that brings the missing item).
// - Drift is computed over open and acknowledged tasks after the run.
// Thread safety: calls are serialized by the implementation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/time.h"
#include "reconcile/matcher.h"

namespace settle::reconcile {

enum class TaskState : std::uint8_t { kOpen, kAcknowledged, kResolved };
std::string_view state_name(TaskState state);  // "open", "acknowledged", "resolved"
Result<TaskState> parse_state(std::string_view name);

struct Discrepancy {
  std::int64_t id = 0;
  Finding finding;
  TaskState state = TaskState::kOpen;
  std::string comment;
  std::string statement_key;
  std::int64_t run_id = 0;
  Timestamp created_at;
  Timestamp updated_at;
};

// Age in whole days at `now`, and its bucket: "0-1d", "1-3d", "3-7d", "7-30d", ">30d".
std::int64_t age_days(const Discrepancy& d, Timestamp now);
std::string_view aging_bucket(std::int64_t days);

struct DiscrepancyQuery {
  std::optional<TaskState> state;
  std::optional<std::string> merchant_id;
  std::optional<Reason> reason;
  std::optional<Timestamp> created_before;  // "older than": created strictly before
  std::size_t limit = 10000;
};

struct DriftRow {
  std::string currency;
  std::string merchant_id;  // "" = every merchant of the currency (its total)
  std::int64_t count = 0;
  Minor amount = 0;  // sum of the tasks' drift amounts, minor units of currency
};

struct DriftSample {
  std::int64_t run_id = 0;
  Timestamp at;
  std::int64_t open_count = 0;  // open + acknowledged tasks, every currency
  std::vector<DriftRow> rows;
};

struct RunRecord {
  std::string statement_key;  // digest of the content + statement ids
  std::string format;
  std::string statement_ids;
  Timestamp at;
  std::int64_t items = 0;
  std::vector<Match> matches;
  std::vector<Finding> findings;
  std::vector<std::string> matched_subjects;
};

struct RunOutcome {
  bool duplicate_statement = false;
  std::int64_t run_id = 0;  // of the earlier run when duplicate_statement
  std::int64_t opened = 0;
  std::int64_t auto_resolved = 0;
  std::vector<std::int64_t> opened_ids;
  DriftSample drift;
};

class ReconStore {
 public:
  virtual ~ReconStore() = default;

  virtual Result<RunOutcome> record_run(const RunRecord& run) = 0;
  // Subjects (with this prefix, e.g. "payout:") matched by any earlier run.
  virtual Result<std::vector<std::string>> matched_subjects(std::string_view prefix) = 0;
  virtual Result<std::vector<Discrepancy>> discrepancies(const DiscrepancyQuery& query) = 0;
  // open -> acknowledged. kNotFound for an unknown id; kFailedPrecondition when resolved.
  virtual Result<Discrepancy> acknowledge(std::int64_t id, Timestamp at) = 0;
  // open|acknowledged -> resolved with a comment (required, non-empty).
  virtual Result<Discrepancy> resolve(std::int64_t id, std::string_view comment, Timestamp at) = 0;
  // The latest `last` drift samples, oldest first.
  virtual Result<std::vector<DriftSample>> drift(std::size_t last) = 0;
};

}  // namespace settle::reconcile
