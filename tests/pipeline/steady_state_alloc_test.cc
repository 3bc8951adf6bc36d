// The stream processor's hot path once its buffers are warm: reading a chunk
// from the bus, parsing and enriching its events and handing its journals to
// the ledger reuse the storage of the chunks before it, so a chunk costs a
// few allocations of its own (its statuses, its checkpoint) and none per
// event. heaptrack found 3.3 per event before (docs/performance.md, round 19).
//
// Its own executable: it replaces the global operator new to count calls.
// SQLite allocates with malloc and is not counted.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <new>

#include "embedded_runtime.h"
#include "model/event_json.h"
#include "processor/stream_processor.h"
#include "processor/topics.h"

namespace {
std::atomic<long> g_news{0};
}  // namespace

void* operator new(std::size_t n) {
  g_news.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace settle {
namespace {

class SteadyStateAlloc : public testing::EmbeddedPipelineTest {
 protected:
  // `count` captures of one day, with ids longer than a string's inline
  // buffer (as real ones are), so that a field built anew allocates.
  void append_events(int count) {
    std::vector<bus::Record> recs;
    for (int i = 0; i < count; ++i, ++next_id_) {
      model::Event ev;
      ev.merchant_id = MerchantId("m1");
      ev.event_id = EventId(fmt::format("evt_steady_state_{:08}", next_id_));
      ev.type = model::EventType::kCapture;
      ev.amount = 1000 + next_id_ % 97;
      ev.currency = "USD";
      ev.occurred_at = *parse_rfc3339(fmt::format("2026-03-01T10:{:02}:{:02}Z", next_id_ / 60 % 60, next_id_ % 60));
      recs.push_back(bus::Record{"m1", model::canonical_event_json(ev),
                                 {{"source", fmt::format("events.ndjson:{}", next_id_ + 1)}}, 0});
    }
    ASSERT_TRUE(rt_.bus->append(processor::kEventsTopic, recs).ok());
  }

  int next_id_ = 0;
};

TEST_F(SteadyStateAlloc, AWarmProcessorPollsAChunkWithoutAnAllocationPerEvent) {
  processor::ProcessorOptions options;
  options.chunk_records = 4000;
  processor::StreamProcessor proc(*rt_.bus, *rt_.ledger, *directory_, options);
  ASSERT_TRUE(proc.recover(0).ok());

  // Warm: a full chunk, then a shorter one (a read that shrinks must not
  // drop the storage the next, longer read needs).
  append_events(4000);
  auto n = proc.poll(0);
  ASSERT_TRUE(n.ok()) << n.error().to_string();
  ASSERT_EQ(*n, 4000u);
  append_events(2000);
  n = proc.poll(0);
  ASSERT_TRUE(n.ok()) << n.error().to_string();
  ASSERT_EQ(*n, 2000u);

  append_events(4000);
  const long before = g_news.load();
  n = proc.poll(0);
  const long news = g_news.load() - before;
  ASSERT_TRUE(n.ok()) << n.error().to_string();
  ASSERT_EQ(*n, 4000u);
  EXPECT_EQ(proc.stats().posted, 10000);
  // The chunk's own (its statuses, checkpoint, the bus's bookkeeping: about
  // 190 whatever its size), and none per event: a tenth of one per event at
  // most. Built anew, an event's record, journal and source take six or more.
  std::printf("operator new calls for the warm chunk of 4,000 events: %ld\n", news);
  EXPECT_LT(news, 400) << "operator new calls for a chunk of 4,000 events";
}

}  // namespace
}  // namespace settle
