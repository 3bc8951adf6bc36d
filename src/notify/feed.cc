#include "notify/feed.h"

#include <fmt/format.h>

#include <algorithm>

#include "model/status_update.h"
#include "observability/log.h"
#include "processor/topics.h"

namespace settle::notify {

std::uint64_t epoch_of(std::int32_t partitions, std::int32_t partition, std::int64_t first_timestamp_ms) {
  // FNV-1a over the three numbers, kept to 53 bits so JavaScript reads it exactly.
  std::uint64_t h = 1469598103934665603ULL;
  const std::string text = fmt::format("{}/{}/{}", partitions, partition, first_timestamp_ms);
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  h &= (std::uint64_t{1} << 53) - 1;
  return h == 0 ? 1 : h;
}

Result<CacheEntry> entry_of(const bus::StoredRecord& r, std::uint64_t epoch) {
  SETTLE_ASSIGN_OR_RETURN(model::StatusUpdate u, model::parse_status_json(r.value));
  return entry_of(r, u, epoch);
}

CacheEntry entry_of(const bus::StoredRecord& r, const model::StatusUpdate& u, std::uint64_t epoch) {
  CacheEntry e;
  e.merchant_id = u.merchant_id;
  e.at = {epoch, r.offset};
  using model::StatusKind;
  const auto kind = u.kind;
  const bool batch_kind = kind == StatusKind::kBatchOpen || kind == StatusKind::kBatchClosing ||
                          kind == StatusKind::kBatchClosed || kind == StatusKind::kBatchCloseFailed ||
                          kind == StatusKind::kBatchPaidOut || kind == StatusKind::kBatchReconciled ||
                          kind == StatusKind::kBatchDiscrepancy;
  if (batch_kind && u.batch) e.batch = format_date(u.batch->batch_date) + "/" + u.batch->currency;
  if (kind == StatusKind::kMerchantDiscrepancies) e.batch = kDiscrepanciesKey;
  e.status = r.value;
  e.message = notify_message(e.merchant_id, e.at, e.status);
  return e;
}

Status Feed::start(std::int32_t partitions, std::int32_t p, Cursor& c) {
  SETTLE_ASSIGN_OR_RETURN(auto mark, cache_.mark(p));
  SETTLE_ASSIGN_OR_RETURN(std::int64_t end, bus_.end_offset(processor::kStatusTopic, p));
  c.started = true;
  if (mark && mark->next_offset <= end) {
    // Same log only if its first record still gives the mark's epoch.
    SETTLE_ASSIGN_OR_RETURN(auto first, bus_.read(processor::kStatusTopic, p, 0, 1));
    if (!first.empty() && epoch_of(partitions, p, first.front().timestamp_ms) == mark->epoch) {
      c.epoch = mark->epoch;
      c.next = mark->next_offset;
      return ok_status();
    }
  }
  c.epoch.reset();
  c.next = 0;
  return ok_status();
}

Result<std::size_t> Feed::poll(std::size_t max_records) {
  if (partitions_ == 0) {
    auto n = bus_.partition_count(processor::kStatusTopic);
    if (!n.ok()) {
      if (n.error().code == ErrorCode::kNotFound) return std::size_t{0};  // nothing published yet
      return n.error();
    }
    partitions_ = *n;
  }
  std::size_t handled = 0;
  bool all_at_end = true;
  for (std::int32_t p = 0; p < partitions_; ++p) {
    Cursor& c = cursors_[p];
    if (!c.started) SETTLE_TRY(start(partitions_, p, c));
    SETTLE_ASSIGN_OR_RETURN(auto records, bus_.read(processor::kStatusTopic, p, c.next, max_records));
    if (records.size() == max_records) all_at_end = false;
    if (records.empty()) continue;
    if (!c.epoch) c.epoch = epoch_of(partitions_, p, records.front().offset == 0 ? records.front().timestamp_ms : 0);
    for (const auto& r : records) {
      c.next = r.offset + 1;
      auto u = model::parse_status_json(r.value);
      if (!u.ok()) {
        ++skipped_;
        observability::Logger("notify").warn("{}/{} offset {}: skipped: {}", processor::kStatusTopic, p, r.offset,
                                             u.error().message);
        continue;
      }
      if (u->kind == model::StatusKind::kEventPosted && u->partition >= 0) {
        std::int64_t& at = pipeline_.posted_offsets[u->partition];
        at = std::max(at, u->offset);
      }
      if (u->kind == model::StatusKind::kBatchCloseFailed) ++pipeline_.close_failed;
      const CacheEntry e = entry_of(r, *u, *c.epoch);
      SETTLE_TRY(cache_.apply(e));
      if (listener_) listener_(e);
      ++handled;
    }
    SETTLE_TRY(cache_.set_mark(p, PartitionMark{*c.epoch, c.next}));
  }
  if (all_at_end) caught_up_ = true;
  return handled;
}

}  // namespace settle::notify
