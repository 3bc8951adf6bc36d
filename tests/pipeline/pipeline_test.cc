// The stream processor and the settlement worker on the embedded backends:
// duplicates and conflicts, late events, crash recovery from checkpoints,
// live watermarks, and the worker's refusals (control totals, order, fences).
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <thread>

#include "app/runtime.h"
#include "embedded_runtime.h"
#include "model/dead_letter.h"
#include "model/event_json.h"
#include "model/merchant_json.h"
#include "model/settlement_task.h"
#include "model/status_update.h"
#include "processor/merchant_directory.h"
#include "processor/stream_processor.h"
#include "processor/topics.h"
#include "rules/rules.h"
#include "settlement/settlement_worker.h"
#include "support/forwarding_bus.h"
#include "verify/checks.h"
#include "verify/collect.h"

namespace settle {
namespace {

using model::EventType;
using processor::kEventsTopic;
using processor::kStatusTopic;
using processor::kTasksTopic;

// Fails appends to one topic while `armed`, to simulate a crash between a
// ledger commit and the bus write that follows it.
class FaultyBus final : public testing::ForwardingBus {
 public:
  explicit FaultyBus(bus::Bus& inner) : ForwardingBus(inner) {}
  std::string fail_topic;
  bool armed = false;

  Result<std::vector<bus::Position>> append(std::string_view t, std::span<const bus::Record> r) override {
    if (armed && t == fail_topic) return make_error(ErrorCode::kIo, "injected fault");
    return ForwardingBus::append(t, r);
  }
  Result<std::vector<bus::Position>> append_to(std::string_view t, std::int32_t p,
                                               std::span<const bus::Record> r) override {
    if (armed && t == fail_topic) return make_error(ErrorCode::kIo, "injected fault");
    return ForwardingBus::append_to(t, p, r);
  }
};

class Pipeline : public testing::EmbeddedPipelineTest {
 protected:
  static model::Event event(const std::string& id, EventType type, Minor amount, const std::string& at) {
    model::Event ev;
    ev.merchant_id = MerchantId("m1");
    ev.event_id = EventId(id);
    ev.type = type;
    ev.amount = amount;
    ev.currency = "USD";
    ev.occurred_at = *parse_rfc3339(at);
    return ev;
  }
  void append(bus::Bus& b, const std::vector<model::Event>& events) {
    std::vector<bus::Record> recs;
    for (const auto& ev : events) recs.push_back(bus::Record{"m1", model::canonical_event_json(ev), {}, 0});
    ASSERT_TRUE(b.append(kEventsTopic, recs).ok());
  }
  std::vector<model::SettlementTask> tasks() {
    auto recs = rt_.bus->read(kTasksTopic, 0, 0, 1000);
    EXPECT_TRUE(recs.ok());
    std::vector<model::SettlementTask> out;
    for (const auto& r : *recs) out.push_back(*model::parse_task_json(r.value));
    return out;
  }
  std::vector<model::StatusUpdate> statuses() {
    auto recs = rt_.bus->read(kStatusTopic, 0, 0, 1000);
    EXPECT_TRUE(recs.ok());
    std::vector<model::StatusUpdate> out;
    for (const auto& r : *recs) out.push_back(*model::parse_status_json(r.value));
    return out;
  }
  void drain(processor::StreamProcessor& p) {
    for (;;) {
      auto n = p.poll(0);
      ASSERT_TRUE(n.ok()) << n.error().to_string();
      if (*n == 0) break;
    }
  }
  std::size_t run_worker(settlement::SettlementWorker& w) {
    auto n = w.poll(0);
    EXPECT_TRUE(n.ok()) << n.error().to_string();
    return n.ok() ? *n : 0;
  }
};

const Date kDay1 = date_from_civil(2026, 3, 2);
const Date kDay2 = date_from_civil(2026, 3, 3);

TEST_F(Pipeline, DuplicatesAndConflictsDoNotCountTowardControlTotals) {
  processor::StreamProcessor proc(*rt_.bus, *rt_.ledger, *directory_, {});
  ASSERT_TRUE(proc.recover(0).ok());
  append(*rt_.bus, {event("e1", EventType::kCapture, 1000, "2026-03-02T10:00:00Z"),
                    event("e1", EventType::kCapture, 1000, "2026-03-02T10:00:00Z"),
                    event("e1", EventType::kCapture, 9999, "2026-03-02T10:00:00Z"),
                    event("e2", EventType::kRefund, 300, "2026-03-02T11:00:00Z")});
  drain(proc);
  EXPECT_EQ(proc.stats().posted, 2);
  EXPECT_EQ(proc.stats().duplicates, 1);
  EXPECT_EQ(proc.stats().conflicts, 1);
  ASSERT_TRUE(proc.close_through(0, kDay1).ok());
  const auto t = tasks();
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].totals.of(EventType::kCapture).count, 1);
  EXPECT_EQ(t[0].totals.of(EventType::kCapture).amount, 1000);
  EXPECT_EQ(t[0].totals.of(EventType::kCapture).fees, 10);
  EXPECT_EQ(t[0].totals.of(EventType::kRefund).amount, 300);
  EXPECT_FALSE(t[0].previous_batch.has_value());
  int conflicts = 0;
  for (const auto& s : statuses()) conflicts += s.kind == model::StatusKind::kEventConflict;
  EXPECT_EQ(conflicts, 1);
}

TEST_F(Pipeline, LateEventSettlesInTheEarliestOpenBatchAndKeepsItsOwnDate) {
  processor::StreamProcessor proc(*rt_.bus, *rt_.ledger, *directory_, {});
  ASSERT_TRUE(proc.recover(0).ok());
  append(*rt_.bus, {event("a", EventType::kCapture, 1000, "2026-03-02T10:00:00Z"),
                    event("b", EventType::kCapture, 2000, "2026-03-03T10:00:00Z")});
  drain(proc);
  ASSERT_TRUE(proc.close_through(0, kDay1).ok());
  append(*rt_.bus, {event("late", EventType::kCapture, 500, "2026-03-02T23:59:59Z")});
  drain(proc);
  EXPECT_EQ(proc.stats().late, 1);
  ASSERT_TRUE(proc.close_through(0, kDay2).ok());
  const auto t = tasks();
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].totals.of(EventType::kCapture).amount, 1000);  // day 1 closed before "late" arrived
  EXPECT_EQ(t[1].key.batch_date, kDay2);
  EXPECT_EQ(t[1].totals.of(EventType::kCapture).amount, 2500);
  EXPECT_EQ(t[1].previous_batch, kDay1);
  ledger::PostingQuery q;
  q.account = "merchant:m1:payable";
  auto rows = rt_.ledger->postings(q);
  ASSERT_TRUE(rows.ok());
  bool found = false;
  for (const auto& r : *rows) {
    if (r.ref == "late") {
      found = true;
      EXPECT_TRUE(r.late);
      EXPECT_EQ(r.batch_date, kDay1);
      EXPECT_EQ(r.settle_date, kDay2);
    }
  }
  EXPECT_TRUE(found);
}

TEST_F(Pipeline, LateEventWithNoOpenBatchOpensTheBatchOfItsArrival) {
  processor::StreamProcessor proc(*rt_.bus, *rt_.ledger, *directory_, {});
  ASSERT_TRUE(proc.recover(0).ok());
  append(*rt_.bus, {event("a", EventType::kCapture, 1000, "2026-03-02T10:00:00Z")});
  drain(proc);
  ASSERT_TRUE(proc.close_through(0, kDay1).ok());
  const auto before = std::chrono::system_clock::now();
  append(*rt_.bus, {event("late", EventType::kCapture, 500, "2026-03-02T12:00:00Z")});
  drain(proc);
  const auto after = std::chrono::system_clock::now();
  auto to_date = [&](auto tp) {
    return rules::batch_date_of(merchant_, Timestamp{std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                          tp.time_since_epoch()).count()});
  };
  ASSERT_EQ(proc.open_batches(0), 1u);
  ASSERT_TRUE(proc.close_through(0, to_date(after)).ok());
  const auto t = tasks();
  ASSERT_EQ(t.size(), 2u);
  EXPECT_GE(t[1].key.batch_date, to_date(before));
  EXPECT_LE(t[1].key.batch_date, to_date(after));
  EXPECT_EQ(t[1].totals.of(EventType::kCapture).amount, 500);
}

TEST_F(Pipeline, RecoveryResumesFromTheCheckpointWithoutDoubleCounting) {
  append(*rt_.bus, {event("a", EventType::kCapture, 100, "2026-03-02T01:00:00Z"),
                    event("b", EventType::kCapture, 200, "2026-03-02T02:00:00Z"),
                    event("a", EventType::kCapture, 100, "2026-03-02T01:00:00Z"),
                    event("c", EventType::kCapture, 400, "2026-03-02T03:00:00Z"),
                    event("d", EventType::kCapture, 800, "2026-03-02T04:00:00Z")});
  processor::ProcessorOptions small;
  small.chunk_records = 2;
  {
    processor::StreamProcessor first(*rt_.bus, *rt_.ledger, *directory_, small);
    ASSERT_TRUE(first.recover(0).ok());
    ASSERT_TRUE(first.poll(0).ok());  // a, b committed with the checkpoint
    ASSERT_EQ(first.next_offset(0), 2);
  }  // "crash": the in-memory state is gone
  processor::StreamProcessor second(*rt_.bus, *rt_.ledger, *directory_, small);
  ASSERT_TRUE(second.recover(0).ok());
  EXPECT_EQ(second.next_offset(0), 2);
  drain(second);
  ASSERT_TRUE(second.close_through(0, kDay1).ok());
  const auto t = tasks();
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].totals.of(EventType::kCapture).count, 4);
  EXPECT_EQ(t[0].totals.of(EventType::kCapture).amount, 1500);
  EXPECT_EQ(second.stats().duplicates, 1);
}

TEST_F(Pipeline, AProcessorThatLostItsPartitionCannotOverwriteTheCheckpointOfItsSuccessor) {
  append(*rt_.bus, {event("a", EventType::kCapture, 100, "2026-03-02T01:00:00Z"),
                    event("b", EventType::kCapture, 200, "2026-03-02T02:00:00Z"),
                    event("c", EventType::kCapture, 400, "2026-03-02T03:00:00Z"),
                    event("d", EventType::kCapture, 800, "2026-03-02T04:00:00Z")});
  processor::ProcessorOptions small;
  small.chunk_records = 2;
  // The old owner read the partition's checkpoint, then slept through a
  // rebalance; its successor read the same checkpoint and went on.
  processor::StreamProcessor old_owner(*rt_.bus, *rt_.ledger, *directory_, small);
  ASSERT_TRUE(old_owner.recover(0).ok());
  processor::StreamProcessor successor(*rt_.bus, *rt_.ledger, *directory_, small);
  ASSERT_TRUE(successor.recover(0).ok());
  drain(successor);
  ASSERT_EQ(successor.next_offset(0), 4);

  // The old owner wakes and commits its first chunk (a, b): refused.
  auto stale = old_owner.poll(0);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error().code, ErrorCode::kFenced) << stale.error().to_string();
  EXPECT_FALSE(old_owner.poll(0).ok()) << "a refused processor stays broken until it is recovered";
  auto cp = rt_.ledger->checkpoint("processor", 0);
  ASSERT_TRUE(cp.ok() && cp->has_value());
  EXPECT_EQ((*cp)->next_offset, 4) << "the successor's position stands";

  // The successor keeps its partition and closes the batch with every event once.
  ASSERT_TRUE(successor.close_through(0, kDay1).ok());
  const auto t = tasks();
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].totals.of(EventType::kCapture).count, 4);
  EXPECT_EQ(t[0].totals.of(EventType::kCapture).amount, 1500);
  // Recovered, the old owner starts where the successor stopped.
  processor::StreamProcessor recovered(*rt_.bus, *rt_.ledger, *directory_, small);
  ASSERT_TRUE(recovered.recover(0).ok());
  EXPECT_EQ(recovered.next_offset(0), 4);
}

TEST_F(Pipeline, RecoveryReEmitsTheTaskOfABatchItWasClosing) {
  FaultyBus faulty(*rt_.bus);
  append(*rt_.bus, {event("a", EventType::kCapture, 100, "2026-03-02T01:00:00Z")});
  {
    processor::StreamProcessor first(faulty, *rt_.ledger, *directory_, {});
    ASSERT_TRUE(first.recover(0).ok());
    drain(first);
    faulty.fail_topic = kTasksTopic;
    faulty.armed = true;
    EXPECT_FALSE(first.close_through(0, kDay1).ok());  // checkpointed, but the task never left
  }
  EXPECT_TRUE(tasks().empty());
  processor::StreamProcessor second(*rt_.bus, *rt_.ledger, *directory_, {});
  ASSERT_TRUE(second.recover(0).ok());
  const auto t = tasks();
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].key.batch_date, kDay1);
  EXPECT_EQ(t[0].totals.of(EventType::kCapture).amount, 100);
  EXPECT_EQ(second.open_batches(0), 0u);
  // Re-emitted once: the recovery checkpointed that the task is out.
  processor::StreamProcessor third(*rt_.bus, *rt_.ledger, *directory_, {});
  ASSERT_TRUE(third.recover(0).ok());
  EXPECT_EQ(tasks().size(), 1u);
}

// The processor of an idle partition (no chunk after the close) restarting
// again and again must not emit the closed batches' tasks on every recovery:
// under frequent crashes those duplicates outgrow what the workers drain
// (simulator seed 1585).
TEST_F(Pipeline, RecoveriesOfAnIdlePartitionDoNotReEmitTasksAlreadySent) {
  append(*rt_.bus, {event("a", EventType::kCapture, 100, "2026-03-02T01:00:00Z"),
                    event("b", EventType::kCapture, 200, "2026-03-03T01:00:00Z")});
  {
    processor::StreamProcessor first(*rt_.bus, *rt_.ledger, *directory_, {});
    ASSERT_TRUE(first.recover(0).ok());
    drain(first);
    ASSERT_TRUE(first.close_through(0, kDay1).ok());
  }
  ASSERT_EQ(tasks().size(), 1u);
  for (int restart = 0; restart < 5; ++restart) {
    processor::StreamProcessor again(*rt_.bus, *rt_.ledger, *directory_, {});
    ASSERT_TRUE(again.recover(0).ok());
    EXPECT_EQ(again.stats().tasks, 0) << "restart " << restart;
    EXPECT_EQ(again.open_batches(0), 1u);  // 03-03 stays open, its totals recovered
  }
  EXPECT_EQ(tasks().size(), 1u);
  // A pipelined processor clears the list the same way.
  processor::ProcessorOptions pipelined;
  pipelined.pipelined = true;
  {
    processor::StreamProcessor p(*rt_.bus, *rt_.ledger, *directory_, pipelined);
    ASSERT_TRUE(p.recover(0).ok());
    ASSERT_TRUE(p.close_through(0, kDay1.plus_days(1)).ok());
  }
  processor::StreamProcessor last(*rt_.bus, *rt_.ledger, *directory_, pipelined);
  ASSERT_TRUE(last.recover(0).ok());
  const auto t = tasks();
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[1].key.batch_date, kDay1.plus_days(1));
  EXPECT_EQ(t[1].totals.of(EventType::kCapture).amount, 200);
  EXPECT_EQ(last.stats().tasks, 0);
}

TEST_F(Pipeline, LiveWatermarkClosesABatchOnlyOnceItsEndPlusGraceHasPassed) {
  processor::ProcessorOptions live;
  live.grace_ms = 10 * 60 * 1000;
  live.idle_ms = 24LL * 3600 * 1000;  // never idle in this test
  processor::StreamProcessor proc(*rt_.bus, *rt_.ledger, *directory_, live);
  ASSERT_TRUE(proc.recover(0).ok());
  const Timestamp now = *parse_rfc3339("2026-03-03T00:10:00Z");
  append(*rt_.bus, {event("a", EventType::kCapture, 100, "2026-03-02T10:00:00Z"),
                    event("b", EventType::kCapture, 100, "2026-03-03T00:09:59Z")});
  drain(proc);
  ASSERT_TRUE(proc.advance(0, now).ok());
  EXPECT_TRUE(tasks().empty()) << "watermark 23:59:59 has not passed the end 00:00 of 03-02";
  append(*rt_.bus, {event("c", EventType::kCapture, 100, "2026-03-03T00:10:00Z")});
  drain(proc);
  ASSERT_TRUE(proc.advance(0, now).ok());
  const auto t = tasks();
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].key.batch_date, kDay1);
  EXPECT_EQ(proc.open_batches(0), 1u);  // 03-03 stays open
}

TEST_F(Pipeline, AnIdlePartitionAdvancesItsWatermarkByWallClock) {
  processor::ProcessorOptions live;
  live.grace_ms = 60 * 1000;
  live.idle_ms = 1;
  processor::StreamProcessor proc(*rt_.bus, *rt_.ledger, *directory_, live);
  ASSERT_TRUE(proc.recover(0).ok());
  append(*rt_.bus, {event("a", EventType::kCapture, 100, "2026-03-02T10:00:00Z")});
  drain(proc);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const Timestamp now{std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count()};
  ASSERT_TRUE(proc.advance(0, now).ok());
  EXPECT_EQ(tasks().size(), 1u);
}

TEST_F(Pipeline, UnprocessableRecordsGoToDeadLettersWithReasonAndSourceAndDoNotStallThePartition) {
  processor::StreamProcessor proc(*rt_.bus, *rt_.ledger, *directory_, {});
  ASSERT_TRUE(proc.recover(0).ok());
  model::Event stranger = event("s1", EventType::kCapture, 500, "2026-03-02T10:30:00Z");
  stranger.merchant_id = MerchantId("nobody");
  const std::vector<bus::Record> recs{
      bus::Record{"m1", model::canonical_event_json(event("a", EventType::kCapture, 1000, "2026-03-02T10:00:00Z")),
                  {}, 0},
      bus::Record{"m1", "{not json", {}, 0},
      bus::Record{"nobody", model::canonical_event_json(stranger), {}, 0},
      bus::Record{"m1", model::canonical_event_json(event("b", EventType::kCapture, 2000, "2026-03-02T11:00:00Z")),
                  {}, 0}};
  ASSERT_TRUE(rt_.bus->append_to(kEventsTopic, 0, recs).ok());
  drain(proc);
  // The records after the bad ones were processed: the partition moved on.
  EXPECT_EQ(proc.next_offset(0), 4);
  EXPECT_EQ(proc.stats().posted, 2);
  EXPECT_EQ(proc.stats().dead_letters, 2);

  std::vector<model::DeadLetter> letters;
  for (std::int32_t p = 0; p < *rt_.bus->partition_count(processor::kDeadLettersTopic); ++p) {
    auto got = rt_.bus->read(processor::kDeadLettersTopic, p, 0, 100);
    ASSERT_TRUE(got.ok());
    for (const auto& r : *got) letters.push_back(*model::parse_dead_letter_json(r.value));
  }
  std::sort(letters.begin(), letters.end(),
            [](const auto& a, const auto& b) { return a.source_offset < b.source_offset; });
  ASSERT_EQ(letters.size(), 2u);
  EXPECT_EQ(letters[0].source_topic, "events");
  EXPECT_EQ(letters[0].source_partition, 0);
  EXPECT_EQ(letters[0].source_offset, 1);
  EXPECT_EQ(letters[0].value, "{not json");
  EXPECT_NE(letters[0].reason.find("events/0 offset 1"), std::string::npos) << letters[0].reason;
  EXPECT_EQ(letters[1].source_offset, 2);
  EXPECT_EQ(letters[1].merchant_id, "nobody");
  EXPECT_EQ(letters[1].event_id, "s1");
  EXPECT_EQ(letters[1].reason, "unknown merchant 'nobody'");

  // verify counts them as accounted for, not missing.
  auto input = verify::collect(*rt_.bus, *rt_.ledger);
  ASSERT_TRUE(input.ok()) << input.error().to_string();
  const verify::Findings f = verify::check(*input);
  EXPECT_TRUE(f.clean()) << (f.breaks.empty() ? "" : verify::format_break(f.breaks[0]));
  EXPECT_EQ(f.records, 4);
  EXPECT_EQ(f.posted, 2);
  EXPECT_EQ(f.dead_lettered, 2);
}

TEST_F(Pipeline, AnEventOfAMerchantCreatedJustBeforeItIsPostedNotDeadLetteredForAStaleDirectory) {
  processor::StreamProcessor proc(*rt_.bus, *rt_.ledger, *directory_, {});
  ASSERT_TRUE(proc.recover(0).ok());
  // A miss: the directory has just looked at the topic for "nobody".
  model::Event stranger = event("s1", EventType::kCapture, 500, "2026-03-02T10:30:00Z");
  stranger.merchant_id = MerchantId("nobody");
  ASSERT_TRUE(rt_.bus->append_to(kEventsTopic, 0, std::vector{bus::Record{"nobody", model::canonical_event_json(stranger), {}, 0}}).ok());
  drain(proc);
  ASSERT_EQ(proc.stats().dead_letters, 1);

  // Within the same second, m2 is created (as PUT /v1/merchants does) and an
  // event of m2 accepted after it: the directory must look again, not answer
  // from the miss it just had.
  model::Merchant m2 = merchant_;
  m2.id = MerchantId("m2");
  ASSERT_TRUE(processor::MerchantDirectory::publish(*rt_.bus, std::span(&m2, 1)).ok());
  model::Event ev = event("n1", EventType::kCapture, 700, "2026-03-02T10:40:00Z");
  ev.merchant_id = MerchantId("m2");
  ASSERT_TRUE(rt_.bus->append_to(kEventsTopic, 0, std::vector{bus::Record{"m2", model::canonical_event_json(ev), {}, 0}}).ok());
  drain(proc);
  EXPECT_EQ(proc.stats().dead_letters, 1) << "m2's event was dead-lettered as of an unknown merchant";
  EXPECT_EQ(proc.stats().posted, 1);
  ASSERT_NE(directory_->find("m2"), nullptr);

  // An unknown id in a later chunk is still dead-lettered.
  stranger.event_id = EventId("s2");
  ASSERT_TRUE(rt_.bus->append_to(kEventsTopic, 0, std::vector{bus::Record{"nobody", model::canonical_event_json(stranger), {}, 0}}).ok());
  drain(proc);
  EXPECT_EQ(proc.stats().dead_letters, 2);
}

TEST_F(Pipeline, ACrashBeforeTheCheckpointWritesDeadLettersAgainButNeverLosesThem) {
  FaultyBus faulty(*rt_.bus);
  {
    processor::StreamProcessor proc(faulty, *rt_.ledger, *directory_, {});
    ASSERT_TRUE(proc.recover(0).ok());
    ASSERT_TRUE(rt_.bus->append_to(kEventsTopic, 0, std::vector<bus::Record>{{"m1", "[]", {}, 0}}).ok());
    faulty.fail_topic = processor::kDeadLettersTopic;
    faulty.armed = true;
    EXPECT_FALSE(proc.poll(0).ok());  // nothing checkpointed: the record will be read again
  }
  faulty.armed = false;
  processor::StreamProcessor proc(faulty, *rt_.ledger, *directory_, {});
  ASSERT_TRUE(proc.recover(0).ok());
  EXPECT_EQ(proc.next_offset(0), 0);
  drain(proc);
  EXPECT_EQ(proc.stats().dead_letters, 1);
  auto input = verify::collect(*rt_.bus, *rt_.ledger);
  ASSERT_TRUE(input.ok());
  EXPECT_TRUE(verify::check(*input).clean());
}

TEST_F(Pipeline, PublishesEachOpenBatchsRunningTotalsOncePerChunkWithoutDuplicates) {
  processor::StreamProcessor proc(*rt_.bus, *rt_.ledger, *directory_, {});
  ASSERT_TRUE(proc.recover(0).ok());
  append(*rt_.bus, {event("e1", EventType::kCapture, 1000, "2026-03-02T10:00:00Z"),
                    event("e2", EventType::kCapture, 2000, "2026-03-02T11:00:00Z"),
                    event("e2", EventType::kCapture, 2000, "2026-03-02T11:00:00Z"),
                    event("e3", EventType::kRefund, 300, "2026-03-03T09:00:00Z")});
  drain(proc);
  std::map<Date, model::StatusUpdate> open;
  int opens = 0;
  for (const auto& s : statuses()) {
    if (s.kind != model::StatusKind::kBatchOpen) continue;
    ++opens;
    ASSERT_TRUE(s.batch.has_value());
    ASSERT_TRUE(s.totals.has_value());
    open[s.batch->batch_date] = s;
  }
  EXPECT_EQ(opens, 2);  // one chunk, two batches: one update each, not one per event
  ASSERT_EQ(open.count(kDay1), 1u);
  EXPECT_EQ(open[kDay1].totals->of(EventType::kCapture).count, 2);  // the duplicate is not counted
  EXPECT_EQ(open[kDay1].totals->of(EventType::kCapture).amount, 3000);
  EXPECT_EQ(open[kDay1].totals->fees(), 30);
  EXPECT_EQ(open[kDay2].totals->of(EventType::kRefund).amount, 300);
}

TEST_F(Pipeline, PublishesAChunksOpenBatchesInBatchOrderWhateverTheOrderOfTheirEvents) {
  processor::StreamProcessor proc(*rt_.bus, *rt_.ledger, *directory_, {});
  ASSERT_TRUE(proc.recover(0).ok());
  append(*rt_.bus, {event("e3", EventType::kRefund, 300, "2026-03-03T09:00:00Z"),
                    event("e1", EventType::kCapture, 1000, "2026-03-02T10:00:00Z"),
                    event("e4", EventType::kCapture, 700, "2026-03-03T12:00:00Z"),
                    event("e2", EventType::kCapture, 2000, "2026-03-02T11:00:00Z")});
  drain(proc);
  std::vector<Date> order;
  for (const auto& s : statuses()) {
    if (s.kind == model::StatusKind::kBatchOpen) order.push_back(s.batch->batch_date);
  }
  EXPECT_EQ(order, (std::vector<Date>{kDay1, kDay2}));
}

TEST_F(Pipeline, PublishesOneEventPostedPerMerchantAndChunkNamingEveryNewEventOnce) {
  processor::ProcessorOptions o;
  o.chunk_records = 3;
  processor::StreamProcessor proc(*rt_.bus, *rt_.ledger, *directory_, o);
  ASSERT_TRUE(proc.recover(0).ok());
  append(*rt_.bus, {event("e1", EventType::kCapture, 1000, "2026-03-02T10:00:00Z"),
                    event("e2", EventType::kCapture, 2000, "2026-03-02T11:00:00Z"),
                    event("e1", EventType::kCapture, 1000, "2026-03-02T10:00:00Z"),
                    event("e3", EventType::kRefund, 300, "2026-03-03T09:00:00Z")});
  drain(proc);
  std::vector<model::StatusUpdate> posted;
  for (const auto& s : statuses()) {
    if (s.kind == model::StatusKind::kEventPosted) posted.push_back(s);
  }
  // Two chunks (3 + 1 records): one update each, the duplicate in neither.
  ASSERT_EQ(posted.size(), 2u);
  EXPECT_EQ(posted[0].merchant_id, "m1");
  EXPECT_EQ(posted[0].count, 2);
  EXPECT_EQ(posted[0].event_ids, (std::vector<std::string>{"e1", "e2"}));
  EXPECT_EQ(posted[0].partition, 0);
  EXPECT_EQ(posted[0].offset, 3);  // the processor's next offset after the chunk: its lag is readable
  EXPECT_EQ(posted[1].count, 1);
  EXPECT_EQ(posted[1].event_ids, (std::vector<std::string>{"e3"}));
  EXPECT_EQ(posted[1].offset, 4);
}

TEST_F(Pipeline, StatusesCarryTheTraceIdOfTheEventThatCausedThem) {
  processor::StreamProcessor proc(*rt_.bus, *rt_.ledger, *directory_, {});
  ASSERT_TRUE(proc.recover(0).ok());
  auto traced = [](const model::Event& ev, char digit) {
    const std::string tp = "00-" + std::string(32, digit) + "-00f067aa0ba902b7-01";
    return bus::Record{ev.merchant_id.str(), model::canonical_event_json(ev),
                       {bus::Header{processor::kTraceparentHeader, tp}}, 0};
  };
  model::Event unknown = event("x1", EventType::kCapture, 100, "2026-03-02T10:00:00Z");
  unknown.merchant_id = MerchantId("m-unknown");
  const std::vector<bus::Record> recs = {
      traced(event("e1", EventType::kCapture, 1000, "2026-03-02T10:00:00Z"), 'a'),
      traced(event("e1", EventType::kCapture, 1000, "2026-03-02T10:00:00Z"), 'b'),  // duplicate
      traced(event("e1", EventType::kCapture, 9999, "2026-03-02T10:00:00Z"), 'c'),  // conflict
      bus::Record{"m1", model::canonical_event_json(event("e3", EventType::kCapture, 500, "2026-03-03T09:00:00Z")), {}, 0},
      traced(event("e2", EventType::kCapture, 2000, "2026-03-02T11:00:00Z"), 'd'),
      traced(unknown, 'e')};  // rejected
  ASSERT_TRUE(rt_.bus->append(kEventsTopic, recs).ok());
  drain(proc);
  ASSERT_TRUE(proc.close_through(0, kDay1).ok());
  std::map<std::string, std::string> trace_of;  // kind (and batch date) -> trace id
  for (const auto& s : statuses()) {
    std::string what(model::status_kind_name(s.kind));
    if (s.batch) what += " " + format_date(s.batch->batch_date);
    EXPECT_EQ(trace_of.count(what), 0u) << what;
    trace_of[what] = s.trace_id;
    // The field is in the published JSON only when there is a trace.
    EXPECT_EQ(model::status_json(s).find("\"trace_id\"") != std::string::npos, !s.trace_id.empty()) << what;
  }
  EXPECT_EQ(trace_of["event_duplicate"], std::string(32, 'b'));
  EXPECT_EQ(trace_of["event_conflict"], std::string(32, 'c'));
  EXPECT_EQ(trace_of["event_rejected"], std::string(32, 'e'));
  // The chunk's event_posted (e1, e3, e2) carries its last event's trace.
  EXPECT_EQ(trace_of["event_posted"], std::string(32, 'd'));
  // The open batch's update carries its last event's trace; an event without
  // a traceparent leaves none; a batch close is about many traces.
  EXPECT_EQ(trace_of["batch_open 2026-03-02"], std::string(32, 'd'));
  EXPECT_EQ(trace_of["batch_open 2026-03-03"], "");
  ASSERT_EQ(trace_of.count("batch_closing 2026-03-02"), 1u);
  EXPECT_EQ(trace_of["batch_closing 2026-03-02"], "");
}

class Worker : public Pipeline {
 protected:
  // Processes and closes day 1 and 2 with the processor; returns nothing.
  void prepare(bool close_day2 = true) {
    processor::StreamProcessor proc(*rt_.bus, *rt_.ledger, *directory_, {});
    ASSERT_TRUE(proc.recover(0).ok());
    append(*rt_.bus, {event("a", EventType::kCapture, 10000, "2026-03-02T10:00:00Z"),
                      event("b", EventType::kChargeback, 30000, "2026-03-03T10:00:00Z")});
    drain(proc);
    ASSERT_TRUE(proc.close_through(0, close_day2 ? kDay2 : kDay1).ok());
  }
};

TEST_F(Worker, SettlesTasksIntoTheLedgerAndPublishesStatus) {
  prepare();
  settlement::SettlementWorker w(*rt_.bus, *rt_.ledger, *rt_.store, {});
  EXPECT_EQ(run_worker(w), 2u);
  auto closed = rt_.ledger->closed_batches({});
  ASSERT_TRUE(closed.ok());
  ASSERT_EQ(closed->size(), 2u);
  EXPECT_EQ((*closed)[0].payout, 9900);  // 10000 - fee 100
  EXPECT_EQ((*closed)[1].net, -30000);   // chargeback 30000, no fee scheduled
  EXPECT_EQ((*closed)[1].carry_out, -30000);
  int closed_statuses = 0;
  for (const auto& s : statuses()) {
    if (s.kind != model::StatusKind::kBatchClosed) continue;
    ++closed_statuses;
    ASSERT_TRUE(s.payout_date.has_value());
    ASSERT_TRUE(s.totals.has_value());
    if (s.batch->batch_date == kDay1) {
      EXPECT_EQ(s.payout, 9900);
      EXPECT_EQ(*s.payout_date, date_from_civil(2026, 3, 3));  // delay_days 1
      EXPECT_EQ(s.totals->of(EventType::kCapture).amount, 10000);
    }
  }
  EXPECT_EQ(closed_statuses, 2);
  EXPECT_EQ(*rt_.bus->committed("settlement-worker", kTasksTopic, 0), 2);
}

TEST_F(Worker, ATaskCarriesNoTraceAndOneWrittenWithATraceIdByAnOlderVersionStillParses) {
  prepare();
  settlement::SettlementWorker w(*rt_.bus, *rt_.ledger, *rt_.store, {});
  EXPECT_EQ(run_worker(w), 2u);
  const auto t = tasks();
  std::string older = model::task_json(t[0]);
  EXPECT_EQ(older.find("trace_id"), std::string::npos) << older;
  ASSERT_EQ(older.back(), '}');
  older.insert(older.size() - 1, R"(,"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736")");
  const bus::Record rec{"m1", older, {}, 0};
  ASSERT_TRUE(rt_.bus->append(kTasksTopic, std::span(&rec, 1)).ok());
  EXPECT_EQ(run_worker(w), 1u);
  EXPECT_EQ(w.stats().already_closed, 1);  // read as the same batch's task, not unreadable
  EXPECT_EQ(w.stats().failed, 0);
}

TEST_F(Worker, ARedeliveredTaskChangesNothing) {
  prepare();
  settlement::SettlementWorker w(*rt_.bus, *rt_.ledger, *rt_.store, {});
  EXPECT_EQ(run_worker(w), 2u);
  const auto before = *rt_.ledger->closed_batches({});
  const auto t = tasks();
  const bus::Record again{"m1", model::task_json(t[0]), {}, 0};
  ASSERT_TRUE(rt_.bus->append(kTasksTopic, std::span(&again, 1)).ok());
  EXPECT_EQ(run_worker(w), 1u);
  EXPECT_EQ(w.stats().already_closed, 1);
  EXPECT_EQ(w.stats().failed, 0);
  EXPECT_EQ(*rt_.ledger->closed_batches({}), before);
}

TEST_F(Worker, AControlTotalMismatchFailsTheTaskVisiblyAndLeavesTheBatchOpen) {
  prepare(/*close_day2=*/false);
  auto t = tasks();
  ASSERT_EQ(t.size(), 1u);
  // Replace the genuine task by one that claims an extra capture.
  model::SettlementTask forged = t[0];
  forged.totals.of(EventType::kCapture).count += 1;
  forged.totals.of(EventType::kCapture).amount += 1;
  ASSERT_TRUE(rt_.bus->commit("settlement-worker", kTasksTopic, 0, 1).ok());
  const bus::Record rec{"m1", model::task_json(forged), {}, 0};
  ASSERT_TRUE(rt_.bus->append(kTasksTopic, std::span(&rec, 1)).ok());
  settlement::SettlementWorker w(*rt_.bus, *rt_.ledger, *rt_.store, {});
  EXPECT_EQ(run_worker(w), 1u);
  EXPECT_EQ(w.stats().failed, 1);
  ASSERT_EQ(w.failures().size(), 1u);
  EXPECT_NE(w.failures()[0].find("control totals mismatch"), std::string::npos) << w.failures()[0];
  EXPECT_TRUE(rt_.ledger->closed_batches({})->empty());
  bool failed_status = false;
  for (const auto& s : statuses()) failed_status |= s.kind == model::StatusKind::kBatchCloseFailed;
  EXPECT_TRUE(failed_status);
}

TEST_F(Worker, ABatchWhosePredecessorIsNotClosedIsRefused) {
  prepare();
  auto t = tasks();
  ASSERT_EQ(t.size(), 2u);
  // Deliver day 2 first: its predecessor (day 1) is not in the ledger yet.
  ASSERT_TRUE(rt_.bus->commit("settlement-worker", kTasksTopic, 0, 2).ok());
  const bus::Record rec{"m1", model::task_json(t[1]), {}, 0};
  ASSERT_TRUE(rt_.bus->append(kTasksTopic, std::span(&rec, 1)).ok());
  settlement::SettlementWorker w(*rt_.bus, *rt_.ledger, *rt_.store, {});
  EXPECT_EQ(run_worker(w), 1u);
  ASSERT_EQ(w.failures().size(), 1u);
  EXPECT_NE(w.failures()[0].find("out of order"), std::string::npos) << w.failures()[0];
  EXPECT_TRUE(rt_.ledger->closed_batches({})->empty());
}

TEST_F(Worker, AStaleWorkerIsFencedOutAndRetriesLater) {
  prepare(/*close_day2=*/false);
  const auto t = tasks();
  // A newer claimant registered a higher token with the ledger (the embedded
  // store's tokens start at the wall clock in microseconds).
  ASSERT_TRUE(rt_.ledger->register_fence(t[0].key, static_cast<std::uint64_t>(INT64_MAX)).ok());
  settlement::SettlementWorker w(*rt_.bus, *rt_.ledger, *rt_.store, {});
  EXPECT_EQ(run_worker(w), 0u);
  EXPECT_TRUE(rt_.ledger->closed_batches({})->empty());
  EXPECT_EQ(*rt_.bus->committed("settlement-worker", kTasksTopic, 0), 0);
}

// Forwards to a ledger and, at each sync(), records what the rest of the
// system could see of the closes it makes durable.
class SyncWatchingLedger final : public ledger::Ledger {
 public:
  SyncWatchingLedger(ledger::Ledger& inner, std::function<void()> at_sync) : inner_(inner), at_sync_(std::move(at_sync)) {}
  int deferred_closes = 0;
  int syncs = 0;

  Result<std::vector<ledger::PostOutcome>> post(std::span<const model::Journal> j,
                                                std::span<const ledger::Checkpoint> c) override {
    return inner_.post(j, c);
  }
  Result<std::optional<ledger::Checkpoint>> checkpoint(std::string_view consumer, std::int32_t p) override {
    return inner_.checkpoint(consumer, p);
  }
  Result<model::ControlTotals> settling_totals(const model::BatchKey& key) override {
    return inner_.settling_totals(key);
  }
  Result<ledger::BatchHistory> batch_history(std::string_view m, std::string_view c) override {
    return inner_.batch_history(m, c);
  }
  Status register_fence(const model::BatchKey& key, std::uint64_t token) override {
    return inner_.register_fence(key, token);
  }
  Result<ledger::CloseOutcome> close_batch(const model::BatchSummary& s, std::span<const Date> r,
                                           std::span<const model::Journal> j, std::uint64_t t) override {
    return inner_.close_batch(s, r, j, t);
  }
  Result<ledger::CloseOutcome> close_batch_deferred(const model::BatchSummary& s, std::span<const Date> r,
                                                    std::span<const model::Journal> j, std::uint64_t t) override {
    ++deferred_closes;
    return inner_.close_batch_deferred(s, r, j, t);
  }
  Status sync() override {
    ++syncs;
    at_sync_();
    return inner_.sync();
  }
  Result<std::vector<model::BatchSummary>> closed_batches(const ledger::BatchQuery& q) override {
    return inner_.closed_batches(q);
  }
  Result<std::vector<ledger::Balance>> balances(std::optional<std::string_view> m) override {
    return inner_.balances(m);
  }
  Result<std::vector<ledger::TrialBalance>> trial_balance() override { return inner_.trial_balance(); }
  Result<std::vector<ledger::PostingRow>> postings(const ledger::PostingQuery& q) override {
    return inner_.postings(q);
  }

 private:
  ledger::Ledger& inner_;
  std::function<void()> at_sync_;
};

TEST_F(Worker, ClosesAreMadeDurableBeforeTheirStatusesAndOffsetAndWhileTheirBatchesAreLeased) {
  prepare();
  const auto t = tasks();
  ASSERT_EQ(t.size(), 2u);
  int closed_statuses_at_sync = -1;
  bool leases_held_at_sync = true;
  std::int64_t committed_at_sync = -1;
  SyncWatchingLedger watching(*rt_.ledger, [&] {
    closed_statuses_at_sync = 0;
    for (const auto& s : statuses()) closed_statuses_at_sync += s.kind == model::StatusKind::kBatchClosed ? 1 : 0;
    for (const auto& task : t) {
      auto lease = rt_.store->try_lock("batch:" + task.key.to_string(), std::chrono::seconds(1));
      ASSERT_TRUE(lease.ok());
      if (lease->has_value()) {
        leases_held_at_sync = false;
        (void)rt_.store->unlock(**lease);
      }
    }
    committed_at_sync = *rt_.bus->committed("settlement-worker", kTasksTopic, 0);
  });
  settlement::SettlementWorker w(*rt_.bus, watching, *rt_.store, {});
  EXPECT_EQ(run_worker(w), 2u);
  EXPECT_EQ(watching.deferred_closes, 2);
  EXPECT_GE(watching.syncs, 1);
  EXPECT_EQ(closed_statuses_at_sync, 0) << "a status told of a close before it was durable";
  EXPECT_EQ(committed_at_sync, 0) << "the offset passed a task before its close was durable";
  EXPECT_TRUE(leases_held_at_sync) << "a batch was released before its close was durable";
  // Afterwards: both closed, published, committed, and released.
  EXPECT_EQ(rt_.ledger->closed_batches({})->size(), 2u);
  int closed_statuses = 0;
  for (const auto& s : statuses()) closed_statuses += s.kind == model::StatusKind::kBatchClosed ? 1 : 0;
  EXPECT_EQ(closed_statuses, 2);
  EXPECT_EQ(*rt_.bus->committed("settlement-worker", kTasksTopic, 0), 2);
  for (const auto& task : t) {
    auto lease = rt_.store->try_lock("batch:" + task.key.to_string(), std::chrono::seconds(1));
    ASSERT_TRUE(lease.ok());
    EXPECT_TRUE(lease->has_value()) << task.key.to_string() << " is still leased";
  }
}

}  // namespace
}  // namespace settle
