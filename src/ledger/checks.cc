#include "ledger/checks.h"

#include <fmt/format.h>

#include <climits>
#include <string_view>
#include <utility>

#include "common/assert.h"

namespace settle::ledger::checks {

using model::AccountRole;
using model::Journal;
using model::JournalKind;

Date first_date() { return date_from_civil(1, 1, 1); }
Date last_date() { return date_from_civil(9999, 12, 31); }
bool date_in_range(Date d) { return d >= first_date() && d <= last_date(); }

std::string journal_id_text(const Journal& j) { return fmt::format("journal {}/{}", j.merchant_id.str(), j.ref); }

bool is_event_kind(JournalKind kind) { return static_cast<int>(kind) < model::kEventTypeCount; }

Status check_key(const model::BatchKey& key) {
  if (key.merchant_id.empty() || key.currency.size() != 3 || !date_in_range(key.batch_date)) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("batch key {}/(day {})/{}: needs a merchant, a 3-letter "
                                  "currency and a date in the years 0001-9999",
                                  key.merchant_id.str(), key.batch_date.days, key.currency));
  }
  return ok_status();
}

Status validate_journal(const Journal& j) {
  auto bad = [&](std::string_view why) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("{}: {}", journal_id_text(j), why));
  };
  if (j.merchant_id.empty()) return bad("merchant_id is empty");
  if (j.ref.empty()) return bad("ref is empty");
  if (j.currency.size() != 3) return bad(fmt::format("currency '{}' is not a 3-letter code", j.currency));
  if (static_cast<int>(j.kind) > static_cast<int>(JournalKind::kPayout)) return bad("unknown kind");
  if (!date_in_range(j.batch_date) || !date_in_range(j.settle_date)) {
    return bad("batch_date or settle_date outside the years 0001-9999");
  }
  if (j.leg_count < 2 || j.leg_count > model::kMaxLegs) {
    return bad(fmt::format("has {} legs; a journal has 2 to {}", j.leg_count, model::kMaxLegs));
  }
  __int128 sum = 0;
  for (std::size_t i = 0; i < j.leg_count; ++i) {
    const model::Posting& p = j.legs[i];
    if (p.amount == 0) return bad(fmt::format("leg {} has a zero amount", i + 1));
    if (static_cast<int>(p.account) > static_cast<int>(AccountRole::kPlatformPayouts)) {
      return bad(fmt::format("leg {} names an unknown account", i + 1));
    }
    sum += p.amount;
  }
  if (sum != 0) return bad(fmt::format("legs sum to {}, not 0", static_cast<long long>(sum)));
  // Text columns travel in COPY text format and as C-string parameters.
  for (std::string_view s : {j.merchant_id.view(), std::string_view(j.ref), std::string_view(j.metadata_json),
                             std::string_view(j.trace_id)}) {
    if (s.find('\0') != std::string_view::npos) return bad("a text field contains a NUL byte");
  }
  return ok_status();
}

Status validate_close(const model::BatchSummary& summary, std::span<const Date> released,
                      std::span<const Journal> journals, std::uint64_t fencing_token) {
  auto bad = [](std::string why) { return make_error(ErrorCode::kInvalidArgument, std::move(why)); };
  if (fencing_token > static_cast<std::uint64_t>(INT64_MAX)) return bad("fencing token above 2^63-1");
  if (!date_in_range(summary.payout_date)) return bad("payout_date outside the years 0001-9999");
  for (const Date r : released) {
    if (!date_in_range(r)) return bad("releases a hold dated outside the years 0001-9999");
    if (r >= summary.key.batch_date) {
      return bad(fmt::format("releases the hold of {}, which is not an earlier batch", format_date(r)));
    }
  }
  for (const Journal& j : journals) {
    SETTLE_TRY(validate_journal(j));
    if (j.merchant_id != summary.key.merchant_id || j.currency != summary.key.currency) {
      return bad(fmt::format("{} ({}) is not of this batch's merchant and currency", journal_id_text(j), j.currency));
    }
  }
  return ok_status();
}

Error checkpoint_fenced(const Checkpoint& c) {
  return make_error(ErrorCode::kFenced,
                    fmt::format("post: checkpoint {}/{} (offset {}) is version {}, but the stored checkpoint is not "
                                "version {}: another writer (a processor that took the partition over, or a replay) "
                                "moved it since this one read it; nothing of this post was written",
                                c.consumer, c.partition, c.next_offset, c.version, c.version - 1));
}

std::string summary_text(const model::BatchSummary& s) {
  return fmt::format("{} reserve_held={} reserve_released={} carried_in={} net={} payout={} "
                     "carry_out={} payout_date={}",
                     s.totals.to_string(), s.reserve_held, s.reserve_released, s.carried_in,
                     s.net, s.payout, s.carry_out, format_date(s.payout_date));
}

std::optional<Refusal> fence_refusal(std::int64_t token, std::optional<std::int64_t> registered) {
  if (!registered || *registered <= token) return std::nullopt;
  return Refusal{ErrorCode::kFenced,
                 fmt::format("fencing token {} is below the registered {}", token, *registered)};
}

Refusal different_summary(const model::BatchSummary& stored, const model::BatchSummary& given) {
  return Refusal{ErrorCode::kConflict,
                 fmt::format("already closed with a different summary: stored {}; given {}",
                             summary_text(stored), summary_text(given))};
}

Refusal later_batch_closed(std::string_view later_date) {
  return Refusal{ErrorCode::kFailedPrecondition,
                 fmt::format("the later batch {} is already closed; batches of a merchant and "
                             "currency close in ascending batch_date",
                             later_date)};
}

std::optional<Refusal> carry_refusal(Minor carried_in, const std::optional<LastClosed>& last) {
  const Minor carry = last ? last->carry_out : 0;
  if (carry == carried_in) return std::nullopt;
  return Refusal{ErrorCode::kFailedPrecondition,
                 fmt::format("carried_in {} is not the carry_out {} of the latest closed batch "
                             "{}; the summary was computed from a stale history",
                             carried_in, carry, last ? last->batch_date : "(none)")};
}

std::optional<Refusal> HoldReleases::name(Date d) {
  if (seen_.insert(d).second) return std::nullopt;
  return Refusal{ErrorCode::kFailedPrecondition, fmt::format("releases the hold of {} twice", format_date(d))};
}

std::optional<Refusal> HoldReleases::take(Date d, const std::optional<StoredHold>& stored) {
  SETTLE_ASSERT(seen_.count(d) == 1, "a hold is named before it is taken");
  std::string hold = format_date(d);
  auto refuse = [&](std::string_view why) {
    return Refusal{ErrorCode::kFailedPrecondition, fmt::format("releases the hold of {}, {}", hold, why)};
  };
  if (!stored) return refuse("which is not a closed batch");
  if (stored->held <= 0) return refuse("which held no reserve");
  if (stored->released_by) return refuse(fmt::format("already released by {}", *stored->released_by));
  sum_ += stored->held;
  dates_.push_back(std::move(hold));
  return std::nullopt;
}

std::optional<Refusal> HoldReleases::finish(Minor reserve_released) const {
  if (sum_ == reserve_released) return std::nullopt;
  return Refusal{ErrorCode::kFailedPrecondition,
                 fmt::format("reserve_released {} is not the {} held by the released batches",
                             reserve_released, static_cast<long long>(sum_))};
}

Refusal journal_conflict(const Journal& j) {
  return Refusal{ErrorCode::kConflict, fmt::format("{} is already stored with different content", journal_id_text(j))};
}

Result<std::int64_t> batch_fees(const model::BatchSummary& s) {
  __int128 fees = 0;
  for (const auto& t : s.totals.by_type) fees += t.fees;
  if (fees > INT64_MAX || fees < INT64_MIN) {
    return make_error(ErrorCode::kOverflow, "the batch's fees leave int64");
  }
  return static_cast<std::int64_t>(fees);
}

}  // namespace settle::ledger::checks
