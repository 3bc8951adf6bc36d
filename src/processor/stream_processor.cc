#include "processor/stream_processor.h"

#include <fmt/format.h>
#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <unordered_map>
#include <nlohmann/json.hpp>

#include "model/dead_letter.h"
#include "model/settlement_task.h"
#include "processor/topics.h"
#include "rules/rules.h"

namespace settle::processor {
namespace {

using model::BatchKey;
using model::ControlTotals;
using model::StatusKind;
using model::StatusUpdate;
using nlohmann::json;

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The trace id of a W3C traceparent "00-<32 hex trace id>-<16 hex span>-<flags>".
std::string_view trace_id_of(std::string_view traceparent) {
  if (traceparent.size() >= 35 && traceparent[2] == '-') return traceparent.substr(3, 32);
  return {};
}

void subtract(ControlTotals& totals, const model::Journal& j) {
  model::TypeTotals& t = totals.of(static_cast<model::EventType>(j.kind));
  t.count -= 1;
  t.amount -= j.amount;
  t.fees -= j.fee;
}

}  // namespace

StreamProcessor::StreamProcessor(bus::Bus& bus, ledger::Ledger& ledger, MerchantDirectory& merchants,
                                 ProcessorOptions options)
    : bus_(bus), ledger_(ledger), merchants_(merchants), options_(std::move(options)) {}

StreamProcessor::~StreamProcessor() {
  // An in-flight post finishes (or fails) before its buffers go away.
  if (pending_) (void)pending_->outcome.wait();
}

StreamProcessor::PartitionState& StreamProcessor::state(std::int32_t partition) {
  auto it = partitions_.find(partition);
  SETTLE_ASSERT(it != partitions_.end(), "recover() must precede use of a partition");
  return it->second;
}

std::int64_t StreamProcessor::next_offset(std::int32_t partition) const {
  auto it = partitions_.find(partition);
  return it == partitions_.end() ? 0 : it->second.next_offset;
}

std::optional<std::int64_t> StreamProcessor::max_event_ns(std::int32_t partition) const {
  auto it = partitions_.find(partition);
  if (it == partitions_.end() || it->second.max_event_ns == INT64_MIN) return std::nullopt;
  return it->second.max_event_ns;
}

std::size_t StreamProcessor::open_batches(std::int32_t partition) const {
  auto it = partitions_.find(partition);
  return it == partitions_.end() ? 0 : it->second.open.size();
}

std::string StreamProcessor::encode_state(const PartitionState& st) const {
  json j;
  j["max_event_ns"] = st.max_event_ns;
  json open = json::array();
  for (const auto& [key, totals] : st.open) {
    open.push_back({key.merchant_id.str(), key.currency, format_date(key.batch_date)});
  }
  j["open"] = std::move(open);
  json closed = json::array();
  for (const auto& [mc, date] : st.last_closed) closed.push_back({mc.first, mc.second, format_date(date)});
  j["last_closed"] = std::move(closed);
  json closing = json::array();
  for (const Closing& c : st.closing) {
    closing.push_back({c.key.merchant_id.str(), c.key.currency, format_date(c.key.batch_date),
                       c.previous ? json(format_date(*c.previous)) : json(nullptr)});
  }
  j["closing"] = std::move(closing);
  return j.dump();
}

Result<StreamProcessor::PartitionState> StreamProcessor::decode_state(const ledger::Checkpoint& cp) {
  auto bad = [&](const std::string& why) {
    return make_error(ErrorCode::kCorruption,
                      fmt::format("checkpoint {}/{}: {}", cp.consumer, cp.partition, why));
  };
  json j = json::parse(cp.state, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad("state is not a JSON object");
  PartitionState st;
  st.next_offset = cp.next_offset;
  try {
    st.max_event_ns = j.at("max_event_ns").get<std::int64_t>();
    for (const auto& e : j.at("open")) {
      SETTLE_ASSIGN_OR_RETURN(Date d, parse_date(e.at(2).get<std::string>()));
      BatchKey key{MerchantId(e.at(0).get<std::string>()), d, e.at(1).get<std::string>()};
      // Totals are not checkpointed: they are exactly what the ledger holds
      // for the batch, since postings and checkpoint commit together.
      SETTLE_ASSIGN_OR_RETURN(st.open[key], ledger_.settling_totals(key));
    }
    for (const auto& e : j.at("last_closed")) {
      SETTLE_ASSIGN_OR_RETURN(Date d, parse_date(e.at(2).get<std::string>()));
      st.last_closed[{e.at(0).get<std::string>(), e.at(1).get<std::string>()}] = d;
    }
    for (const auto& e : j.at("closing")) {
      SETTLE_ASSIGN_OR_RETURN(Date d, parse_date(e.at(2).get<std::string>()));
      Closing c{BatchKey{MerchantId(e.at(0).get<std::string>()), d, e.at(1).get<std::string>()}, std::nullopt, {}};
      // Recovering: the ledger holds exactly what was posted for it.
      SETTLE_ASSIGN_OR_RETURN(c.totals, ledger_.settling_totals(c.key));
      if (!e.at(3).is_null()) {
        SETTLE_ASSIGN_OR_RETURN(Date prev, parse_date(e.at(3).get<std::string>()));
        c.previous = prev;
      }
      st.closing.push_back(std::move(c));
    }
  } catch (const json::exception& e) {
    return bad(e.what());
  }
  return st;
}

Status StreamProcessor::recover(std::int32_t partition) {
  SETTLE_TRY(flush());
  SETTLE_ASSIGN_OR_RETURN(auto cp, ledger_.checkpoint(options_.consumer, partition));
  PartitionState st;
  if (cp) {
    SETTLE_ASSIGN_OR_RETURN(st, decode_state(*cp));
    st.checkpoint_version = cp->version;
  }
  st.last_input_ms = wall_ms();
  auto& slot = partitions_[partition] = std::move(st);
  // A crash may have fallen between the checkpoint and the tasks' emission.
  return emit_tasks(partition, slot);
}

Date StreamProcessor::settle_date_for_late(PartitionState& st, const model::Merchant& merchant,
                                           const std::string& currency, Date last_closed,
                                           std::int64_t arrival_ms) {
  // The earliest open batch of this merchant and currency.
  const BatchKey lo{merchant.id, Date{INT32_MIN}, ""};
  for (auto it = st.open.lower_bound(lo); it != st.open.end() && it->first.merchant_id == merchant.id; ++it) {
    if (it->first.currency == currency) return it->first.batch_date;
  }
  // None is open: the batch of the event's arrival, and never a closed one.
  const Date arrival = rules::batch_date_of(merchant, Timestamp{arrival_ms * 1'000'000});
  return std::max(arrival, last_closed.plus_days(1));
}

Result<std::size_t> StreamProcessor::poll(std::int32_t partition) {
  if (!broken_.ok()) return broken_.error();
  PartitionState& st = state(partition);
  SETTLE_TRY(bus_.read_into(kEventsTopic, partition, st.next_offset, options_.chunk_records, records_));
  const std::span<const bus::StoredRecord> records = records_.records();
  if (records.empty()) {
    SETTLE_TRY(flush());
    return std::size_t{0};
  }
  // From here on the partition's state moves ahead of what the ledger has
  // committed; if the ledger refuses the chunk the processor is broken and
  // must be recovered from its checkpoint (see broken_).
  st.next_offset = records.back().offset + 1;
  st.last_input_ms = wall_ms();
  merchants_.input_read();

  std::unique_ptr<PendingPost> chunk;
  if (spares_.empty()) {
    chunk = std::make_unique<PendingPost>();
  } else {
    chunk = std::move(spares_.back());
    spares_.pop_back();
  }
  chunk->partition = partition;
  chunk->now_ms = st.last_input_ms;
  chunk->journals.reserve(records.size());
  chunk->sources.reserve(records.size());
  chunk->appended_ms.reserve(records.size());
  const std::int64_t now_ms = chunk->now_ms;

  auto reject = [&](const bus::StoredRecord& rec, std::string merchant, std::string event_id, std::string why) {
    ++stats_.rejected;
    model::DeadLetter letter{kEventsTopic, partition, rec.offset, merchant, event_id, why, rec.value, now_ms};
    chunk->dead_letters.push_back(bus::Record{rec.key, model::dead_letter_json(letter), rec.headers, 0});
    chunk->updates.push_back(StatusUpdate{StatusKind::kEventRejected, std::move(merchant), std::move(event_id),
                                          std::string(rec.header(kSourceHeader)), std::nullopt, 0, 0,
                                          std::move(why), now_ms, std::nullopt, std::nullopt});
    chunk->updates.back().trace_id.assign(trace_id_of(rec.header(kTraceparentHeader)));
  };

  for (const bus::StoredRecord& rec : records) {
    ++stats_.events;
    model::Event& ev = event_;
    if (Status parsed = parser_.parse_into(rec.value, ev); !parsed.ok()) {
      reject(rec, rec.key, "", fmt::format("{}/{} offset {}: {}", kEventsTopic, partition, rec.offset,
                                           parsed.error().message));
      continue;
    }
    const model::Merchant* merchant = merchants_.find(ev.merchant_id.view());
    if (merchant == nullptr) {
      reject(rec, ev.merchant_id.str(), ev.event_id.str(),
             fmt::format("unknown merchant '{}'", ev.merchant_id.str()));
      continue;
    }
    const Date batch_date = rules::batch_date_of(*merchant, ev.occurred_at);
    Date settle_date = batch_date;
    bool late = false;
    auto closed = st.last_closed.find(MerchantCurrencyLess::Ref{ev.merchant_id.view(), ev.currency});
    if (closed != st.last_closed.end() && batch_date <= closed->second) {
      late = true;
      settle_date = settle_date_for_late(st, *merchant, ev.currency, closed->second, rec.timestamp_ms);
    }
    model::Journal& journal = chunk->next_journal();
    if (Status made = rules::assign_event_journal(journal, ev, *merchant, batch_date, settle_date, late);
        !made.ok()) {
      reject(rec, ev.merchant_id.str(), ev.event_id.str(), made.error().message);
      continue;
    }
    // Count it tentatively; duplicates and conflicts are taken back when the
    // ledger's verdicts arrive.
    auto open = st.open.find(KeyRef{ev.merchant_id.view(), settle_date, ev.currency});
    if (open == st.open.end()) {
      open = st.open.emplace(BatchKey{ev.merchant_id, settle_date, ev.currency}, ControlTotals{}).first;
    }
    ControlTotals tentative = open->second;
    if (auto added = rules::add_to_totals(tentative, ev.type, journal.amount, journal.fee); !added.ok()) {
      reject(rec, ev.merchant_id.str(), ev.event_id.str(),
             fmt::format("batch {}: {}", open->first.to_string(), added.error().message));
      continue;
    }
    open->second = tentative;
    journal.trace_id.assign(trace_id_of(rec.header(kTraceparentHeader)));
    st.max_event_ns = std::max(st.max_event_ns, ev.occurred_at.ns);
    chunk->add(rec.header(kSourceHeader), rec.timestamp_ms, &*open);
  }
  // The chunk's version is taken now: chunks commit in order, and a refused
  // one breaks the processor (recovered from the checkpoint it then reads).
  chunk->checkpoint = ledger::Checkpoint{options_.consumer, partition, st.next_offset, encode_state(st),
                                         ++st.checkpoint_version};
  // Dead letters are durable before the checkpoint that passes them: a crash
  // in between writes them again (the same source offsets), never loses them.
  if (!chunk->dead_letters.empty()) {
    if (Status s = emit_dead_letters(chunk->dead_letters); !s.ok()) {
      broken_ = s;
      return s.error();
    }
  }

  // At most two chunks in flight. This one goes to the ledger once the
  // previous one has committed, so chunks commit in order, and it is posted
  // while the previous one is made durable; then the previous one's verdicts
  // are awaited and applied (statuses emitted). If the previous one turns
  // out refused, this one may still commit: each partition's checkpoint
  // commits with its postings, so recovery finds every partition consistent.
  if (!broken_.ok()) return broken_.error();
  std::unique_ptr<PendingPost> previous = std::move(pending_);
  if (previous) previous->committed.wait();
  PendingPost* p = chunk.get();
  if (options_.pipelined) {
    p->outcome = std::async(std::launch::async, [this, p] {
      pthread_setname_np(pthread_self(), "ledger-post");  // for top -H and profilers
      bool signalled = false;
      const auto signal = [&] {
        if (signalled) return;
        signalled = true;
        p->committed_signal.set_value();
      };
      auto outcome = ledger_.post_pipelined(p->chunk(), std::span(&p->checkpoint, 1), signal);
      signal();  // a call that failed before its commit
      return outcome;
    });
  } else {
    std::promise<Result<std::vector<ledger::PostOutcome>>> done;
    done.set_value(ledger_.post(p->chunk(), std::span(&p->checkpoint, 1)));
    p->committed_signal.set_value();
    p->outcome = done.get_future();
  }
  pending_ = std::move(chunk);
  if (previous) {
    SETTLE_ASSIGN_OR_RETURN(const std::vector<ledger::PostOutcome> previous_outcomes, outcome_of(*previous));
    SETTLE_TRY(apply_verdicts(*previous, previous_outcomes));
    keep_spare(std::move(previous));
  }
  if (!options_.pipelined) SETTLE_TRY(flush());
  return records.size();
}

Status StreamProcessor::flush() {
  if (!broken_.ok()) return broken_;
  if (!pending_) return ok_status();
  std::unique_ptr<PendingPost> p = std::move(pending_);
  SETTLE_ASSIGN_OR_RETURN(const std::vector<ledger::PostOutcome> outcomes, outcome_of(*p));
  SETTLE_TRY(apply_verdicts(*p, outcomes));
  keep_spare(std::move(p));
  return ok_status();
}

void StreamProcessor::keep_spare(std::unique_ptr<PendingPost> p) {
  if (spares_.size() >= 2) return;
  p->reset();
  spares_.push_back(std::move(p));
}

Result<std::vector<ledger::PostOutcome>> StreamProcessor::outcome_of(PendingPost& p) {
  auto outcomes = p.outcome.get();
  if (!outcomes.ok()) {
    broken_ = outcomes.error();
    return broken_.error();
  }
  SETTLE_ASSERT(outcomes->size() == p.size, "one outcome per journal");
  return std::move(outcomes).value();
}

Status StreamProcessor::apply_verdicts(PendingPost& p, const std::vector<ledger::PostOutcome>& outcomes) {
  const std::int64_t committed_ms = options_.observe_posted ? wall_ms() : 0;
  const std::span<const model::Journal> journals = p.chunk();
  for (std::size_t i = 0; i < journals.size(); ++i) {
    const model::Journal& j = journals[i];
    auto settle_batch = [&]() -> ControlTotals& { return p.batches[i]->second; };
    switch (outcomes[i]) {
      case ledger::PostOutcome::kPosted:
        ++stats_.posted;
        if (options_.observe_posted) options_.observe_posted(committed_ms - p.appended_ms[i]);
        if (j.late) {
          ++stats_.late;
          p.updates.push_back(StatusUpdate{StatusKind::kEventLate, j.merchant_id.str(), j.ref, p.sources[i],
                                           BatchKey{j.merchant_id, j.settle_date, j.currency}, 0, 0,
                                           fmt::format("belongs to closed batch {}; settles in {}",
                                                       format_date(j.batch_date), format_date(j.settle_date)),
                                           p.now_ms, std::nullopt, std::nullopt});
          p.updates.back().trace_id = j.trace_id;
        }
        break;
      case ledger::PostOutcome::kDuplicate:
        ++stats_.duplicates;
        subtract(settle_batch(), j);
        p.updates.push_back(StatusUpdate{StatusKind::kEventDuplicate, j.merchant_id.str(), j.ref, p.sources[i],
                                         std::nullopt, 0, 0, "already accepted with identical content",
                                         p.now_ms, std::nullopt, std::nullopt});
        p.updates.back().trace_id = j.trace_id;
        break;
      case ledger::PostOutcome::kConflict:
        ++stats_.conflicts;
        subtract(settle_batch(), j);
        p.updates.push_back(StatusUpdate{StatusKind::kEventConflict, j.merchant_id.str(), j.ref, p.sources[i],
                                         std::nullopt, 0, 0,
                                         "an event with this event_id and different content was accepted before",
                                         p.now_ms, std::nullopt, std::nullopt});
        p.updates.back().trace_id = j.trace_id;
        break;
    }
  }
  // One event_posted per merchant of the chunk (coalesced: the ids of its
  // first kEventIdsMax events and the count), in the order they were read.
  // It carries the trace of the merchant's last posted event in the chunk
  // (none if that event's record had no traceparent), like batch_open.
  {
    std::map<std::string_view, std::size_t> by_merchant;  // -> index in p.updates
    for (std::size_t i = 0; i < journals.size(); ++i) {
      if (outcomes[i] != ledger::PostOutcome::kPosted) continue;
      const model::Journal& j = journals[i];
      auto [it, fresh] = by_merchant.emplace(j.merchant_id.view(), p.updates.size());
      if (fresh) {
        StatusUpdate u{StatusKind::kEventPosted, j.merchant_id.str(), "", "", std::nullopt, 0, 0, "",
                       p.now_ms, std::nullopt, std::nullopt};
        u.partition = p.partition;
        u.offset = p.checkpoint.next_offset;
        p.updates.push_back(std::move(u));
      }
      StatusUpdate& u = p.updates[it->second];
      ++u.count;
      if (u.event_ids.size() < model::kEventIdsMax) u.event_ids.push_back(j.ref);
      u.trace_id = j.trace_id;
    }
  }
  // One batch_open per batch this chunk posted to, with its running totals
  // (after the duplicates and conflicts above were taken out): per chunk,
  // not per event, so the hot path stays cheap. It carries the trace of the
  // batch's last posted event in the chunk, and they go in the batches' order.
  std::unordered_map<const OpenBatch*, std::size_t> last_posted;  // -> index in journals
  for (std::size_t i = 0; i < journals.size(); ++i) {
    if (outcomes[i] == ledger::PostOutcome::kPosted) last_posted[p.batches[i]] = i;
  }
  std::vector<std::pair<const OpenBatch*, std::size_t>> touched(last_posted.begin(), last_posted.end());
  std::sort(touched.begin(), touched.end(),
            [](const auto& a, const auto& b) { return BatchKeyLess{}(a.first->first, b.first->first); });
  for (const auto& [batch, i] : touched) {
    p.updates.push_back(StatusUpdate{StatusKind::kBatchOpen, batch->first.merchant_id.str(), "", "", batch->first, 0, 0,
                                     "", p.now_ms, std::nullopt, batch->second});
    p.updates.back().trace_id = journals[i].trace_id;
  }
  // Statuses are informational; an event whose status is lost is still
  // settled exactly once.
  return emit_statuses(p.updates);
}

void StreamProcessor::PendingPost::reset() {
  size = 0;
  appended_ms.clear();
  batches.clear();
  updates.clear();
  dead_letters.clear();
  outcome = {};
  committed_signal = std::promise<void>();
  committed = committed_signal.get_future();
}

void StreamProcessor::begin_close(PartitionState& st, std::vector<BatchKey> keys) {
  // Ascending batch_date per merchant and currency: the order the worker
  // must settle them in (the map's order is merchant, date, currency).
  std::stable_sort(keys.begin(), keys.end(), [](const BatchKey& a, const BatchKey& b) {
    return std::tie(a.merchant_id, a.currency, a.batch_date) < std::tie(b.merchant_id, b.currency, b.batch_date);
  });
  for (const BatchKey& key : keys) {
    auto it = st.open.find(key);
    SETTLE_ASSERT(it != st.open.end(), "closing a batch that is not open");
    const ControlTotals totals = it->second;
    st.open.erase(it);
    // A batch exists only with at least one event (every one of its events
    // may have been a duplicate): then there is nothing to settle or close.
    if (totals.event_count() == 0) continue;
    const auto mc = std::make_pair(key.merchant_id.str(), key.currency);
    auto last = st.last_closed.find(mc);
    std::optional<Date> previous;
    if (last != st.last_closed.end()) previous = last->second;
    st.closing.push_back(Closing{key, previous, totals});
    st.last_closed[mc] = key.batch_date;
  }
}

Status StreamProcessor::commit_closes(std::int32_t partition, PartitionState next) {
  const ledger::Checkpoint cp{options_.consumer, partition, next.next_offset, encode_state(next),
                              state(partition).checkpoint_version + 1};
  SETTLE_TRY(ledger_.post({}, std::span(&cp, 1)));
  PartitionState& current = state(partition);
  current = std::move(next);
  current.checkpoint_version = cp.version;
  return emit_tasks(partition, current);
}

Status StreamProcessor::close_through(std::int32_t partition, Date through) {
  SETTLE_TRY(flush());
  PartitionState next = state(partition);
  std::vector<BatchKey> keys;
  for (const auto& [key, totals] : next.open) {
    if (key.batch_date <= through) keys.push_back(key);
  }
  if (keys.empty()) return ok_status();
  begin_close(next, std::move(keys));
  return commit_closes(partition, std::move(next));
}

Status StreamProcessor::advance(std::int32_t partition, Timestamp now) {
  SETTLE_TRY(flush());
  PartitionState next = state(partition);
  std::int64_t high_ns = next.max_event_ns;
  const std::int64_t now_ms = now.ns / 1'000'000;
  if (now_ms - next.last_input_ms >= options_.idle_ms) {
    high_ns = std::max(high_ns, (now_ms - options_.idle_ms) * 1'000'000);
  }
  if (high_ns == INT64_MIN) return ok_status();
  const std::int64_t watermark_ns = high_ns - options_.grace_ms * 1'000'000;
  std::vector<BatchKey> keys;
  for (const auto& [key, totals] : next.open) {
    const model::Merchant* merchant = merchants_.find(key.merchant_id.view());
    if (merchant == nullptr) continue;  // cannot tell its end; it stays open
    if (rules::batch_end(*merchant, key.batch_date).ns <= watermark_ns) keys.push_back(key);
  }
  if (keys.empty()) return ok_status();
  begin_close(next, std::move(keys));
  return commit_closes(partition, std::move(next));
}

Status StreamProcessor::emit_tasks(std::int32_t partition, PartitionState& st) {
  if (st.closing.empty()) return ok_status();
  std::vector<bus::Record> tasks;
  std::vector<StatusUpdate> updates;
  for (const Closing& c : st.closing) {
    const model::Merchant* merchant = merchants_.find(c.key.merchant_id.view());
    if (merchant == nullptr) {
      return make_error(ErrorCode::kNotFound,
                        fmt::format("closing batch {}: merchant configuration is missing", c.key.to_string()));
    }
    model::SettlementTask task;
    task.key = c.key;
    // What this processor counted; the worker checks it against the ledger.
    task.totals = c.totals;
    task.previous_batch = c.previous;
    task.merchant = *merchant;
    tasks.push_back(bus::Record{c.key.merchant_id.str(), model::task_json(task), {}, 0});
    updates.push_back(StatusUpdate{StatusKind::kBatchClosing, c.key.merchant_id.str(), "", "", c.key, 0, 0,
                                   fmt::format("{} events", task.totals.event_count()), wall_ms(), std::nullopt,
                                   std::nullopt});
  }
  SETTLE_TRY(bus_.append(kTasksTopic, tasks));
  stats_.tasks += static_cast<std::int64_t>(tasks.size());
  st.closing.clear();
  // The tasks are durable on the bus: checkpoint the emptied closing list, or
  // every recovery until the partition's next chunk would emit them again (an
  // idle partition whose processor restarts often floods the workers with
  // duplicates). Nothing is in flight (callers flush first), so `st` is the
  // committed state but for `closing`. If this post fails the checkpoint keeps
  // the old list and a recovery re-emits the tasks, which is harmless, so the
  // failure is not the caller's: the next recovery or chunk clears it.
  SETTLE_ASSERT(!pending_, "tasks are emitted with no chunk in flight");
  const ledger::Checkpoint cp{options_.consumer, partition, st.next_offset, encode_state(st),
                              st.checkpoint_version + 1};
  // On failure st keeps the old version: if the write was made after all
  // (unacknowledged) or was refused, the next checkpoint is refused and the
  // processor recovers; if it was lost, the next one follows the stored one.
  if (ledger_.post({}, std::span(&cp, 1)).ok()) st.checkpoint_version = cp.version;
  return emit_statuses(updates);
}

Status StreamProcessor::emit_dead_letters(std::vector<bus::Record>& letters) {
  auto appended = bus_.append(kDeadLettersTopic, letters);
  if (!appended.ok() && appended.error().code == ErrorCode::kNotFound) {
    SETTLE_ASSIGN_OR_RETURN(const std::int32_t partitions, bus_.partition_count(kEventsTopic));
    SETTLE_TRY(bus_.create_topic({kDeadLettersTopic, partitions, false}));
    appended = bus_.append(kDeadLettersTopic, letters);
  }
  SETTLE_TRY(appended);
  stats_.dead_letters += static_cast<std::int64_t>(letters.size());
  letters.clear();
  return ok_status();
}

Status StreamProcessor::emit_statuses(std::vector<StatusUpdate>& updates) {
  if (updates.empty()) return ok_status();
  std::vector<bus::Record> records;
  records.reserve(updates.size());
  for (const StatusUpdate& u : updates) records.push_back(bus::Record{u.merchant_id, model::status_json(u), {}, 0});
  SETTLE_TRY(bus_.append(kStatusTopic, records));
  updates.clear();
  return ok_status();
}

}  // namespace settle::processor
