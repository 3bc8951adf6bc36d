// The stream processor: consumes `events`, enriches each event with its
// merchant's configuration, assigns its batch (SETTLEMENT_RULES §3, late
// events to the earliest open batch), posts its journal to the ledger, keeps
// per-(merchant, batch_date, currency) control totals, and emits a settlement
// task on `settlement-tasks` when a batch closes.
//
// Exactly once: each chunk of input is posted to the ledger in one transaction
// together with the partition's checkpoint (next input offset and the set of
// open batches). The ledger's verdict per journal (posted, duplicate,
// conflict) decides what counts toward the control totals, so duplicates are
// caught by the ledger's unique keys, not by a per-event set in memory. After
// a crash, recover() reloads the checkpoint, recomputes each open batch's
// totals from the ledger and re-emits the tasks of batches it had started to
// close (a checkpoint names a batch as closing from the commit that closes it
// until its task is on the bus); tasks are idempotent by batch identity.
//
// A record it cannot handle (unreadable, invalid, of an unknown merchant, or
// overflowing its batch's totals) goes to the `dead-letters` topic with its
// reason and source partition and offset, before the chunk that read it is
// checkpointed: every record behind a checkpoint is posted or dead-lettered,
// and none stalls its partition. (An unknown merchant is dead-lettered as soon
// as a re-read of the merchants topic still lacks it: ingestion publishes a
// merchant before its events.)
//
// Memory: state is per open batch and per (merchant, currency), never per event.
// Thread safety: one thread per StreamProcessor (in pipelined mode it uses
// others internally for the ledger writes, one per chunk in flight).
#pragma once

#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "bus/bus.h"
#include "common/result.h"
#include "ledger/ledger.h"
#include "model/batch.h"
#include "model/event_json.h"
#include "model/status_update.h"
#include "processor/merchant_directory.h"

namespace settle::processor {

struct ProcessorOptions {
  std::string consumer = "processor";  // checkpoint name in the ledger
  // Records per ledger transaction: larger is faster, a crash replays more,
  // and the chunks in flight take more memory. Each transaction writes every
  // page of the journals' identity index it touched, and ids land at random
  // in that index: once it outgrows a chunk, larger chunks write each page
  // for more journals. 60,000 against 20,000: a 10M-event settle 42 s
  // against 60-65 s, 1M events the same 3.3 s, peak RSS 232 MiB against 164.
  std::size_t chunk_records = 60'000;
  // Live mode: a batch closes once the partition's watermark (latest event
  // time minus grace) passes the batch's end. Larger grace admits later
  // stragglers into their own batch, and delays payouts by as much.
  std::int64_t grace_ms = 10 * 60 * 1000;
  // Live mode: a partition with no input for this long lets wall-clock time
  // (minus grace) drive its watermark, so a quiet merchant's batch still closes.
  std::int64_t idle_ms = 60 * 1000;
  // Overlap the ledger's write of one chunk with the reading and enrichment
  // of the next (on a second thread), and the next chunk's insert with the
  // previous one's fsync (Ledger::post_pipelined(); chunks commit in order).
  // poll() may then return before its chunk is committed; flush() waits for
  // it. Off: poll() returns committed.
  bool pipelined = false;
  // Called for every newly posted journal with the milliseconds from its
  // record's append to the bus to the ledger commit (metrics); may be empty.
  std::function<void(std::int64_t ms)> observe_posted;
};

struct ProcessorStats {
  std::int64_t events = 0;      // records read
  std::int64_t posted = 0;      // new journals
  std::int64_t duplicates = 0;
  std::int64_t conflicts = 0;
  std::int64_t rejected = 0;    // invalid or unknown merchant
  std::int64_t dead_letters = 0;  // records sent to the dead-letters topic (the rejected ones)
  std::int64_t late = 0;
  std::int64_t tasks = 0;       // settlement tasks emitted
};

class StreamProcessor {
 public:
  StreamProcessor(bus::Bus& bus, ledger::Ledger& ledger, MerchantDirectory& merchants,
                  ProcessorOptions options);
  ~StreamProcessor();

  // Loads the partition's checkpoint (or starts it at offset 0) and re-emits
  // tasks the checkpoint says were being emitted (then checkpoints that they
  // were). Must precede poll().
  Status recover(std::int32_t partition);

  // Processes up to chunk_records records of the partition; 0 at the end
  // (after flushing). When the ledger refuses a chunk, this and every later
  // call fail: the in-memory state is ahead of the ledger, and the way back
  // is a new StreamProcessor and recover().
  Result<std::size_t> poll(std::int32_t partition);
  // Waits for the chunk in flight (pipelined mode) and applies its verdicts.
  Status flush();

  // Offline: closes every open batch of the partition with batch_date <=
  // through, in ascending date per merchant and currency.
  Status close_through(std::int32_t partition, Date through);

  // Live: advances the partition's watermark to `now` if idle and closes the
  // batches it has passed.
  Status advance(std::int32_t partition, Timestamp now);

  std::int64_t next_offset(std::int32_t partition) const;
  std::size_t open_batches(std::int32_t partition) const;
  const ProcessorStats& stats() const { return stats_; }
  // The latest event time seen on a partition (ns since the epoch), or
  // nullopt before its first event.
  std::optional<std::int64_t> max_event_ns(std::int32_t partition) const;

 private:
  struct Closing {
    model::BatchKey key;
    std::optional<Date> previous;
    model::ControlTotals totals;
  };
  // Per-event lookups by views of the event's strings, without building keys.
  struct KeyRef {
    std::string_view merchant;
    Date date;
    std::string_view currency;
  };
  struct BatchKeyLess {
    using is_transparent = void;
    static KeyRef ref(const model::BatchKey& k) { return {k.merchant_id.view(), k.batch_date, k.currency}; }
    static const KeyRef& ref(const KeyRef& k) { return k; }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      const KeyRef x = ref(a), y = ref(b);
      return std::tie(x.merchant, x.date, x.currency) < std::tie(y.merchant, y.date, y.currency);
    }
  };
  using MerchantCurrency = std::pair<std::string, std::string>;
  struct MerchantCurrencyLess {
    using is_transparent = void;
    using Ref = std::pair<std::string_view, std::string_view>;
    static Ref ref(const MerchantCurrency& k) { return {k.first, k.second}; }
    static const Ref& ref(const Ref& k) { return k; }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const { return ref(a) < ref(b); }
  };
  using OpenBatches = std::map<model::BatchKey, model::ControlTotals, BatchKeyLess>;
  using OpenBatch = OpenBatches::value_type;
  struct PartitionState {
    std::int64_t next_offset = 0;
    std::int64_t max_event_ns = INT64_MIN;
    std::int64_t last_input_ms = 0;  // wall clock of the last record read
    OpenBatches open;
    std::map<MerchantCurrency, Date, MerchantCurrencyLess> last_closed;
    std::vector<Closing> closing;  // checkpointed, emitted after the commit
    // The version of the partition's last checkpoint this processor wrote or
    // read (0: none); its next write is this + 1, which the ledger refuses
    // (kFenced) if another writer moved the checkpoint meanwhile.
    std::int64_t checkpoint_version = 0;
  };

  PartitionState& state(std::int32_t partition);
  std::string encode_state(const PartitionState& st) const;
  Result<PartitionState> decode_state(const ledger::Checkpoint& cp);
  // Moves `keys` from open to closing, in settlement order.
  void begin_close(PartitionState& st, std::vector<model::BatchKey> keys);
  // Checkpoints `next` (no journals), makes it current and emits its tasks.
  Status commit_closes(std::int32_t partition, PartitionState next);
  // A chunk handed to the ledger, and what its verdicts need. Reused from
  // chunk to chunk (see spares_): its journals and sources are written over,
  // so that their strings keep their buffers.
  struct PendingPost {
    std::int32_t partition = 0;
    std::int64_t now_ms = 0;
    std::size_t size = 0;  // the chunk's journals are journals[0, size)
    std::vector<model::Journal> journals;  // more than size: kept for reuse
    std::vector<std::string> sources;  // each journal's source header (same)
    std::vector<std::int64_t> appended_ms;  // each journal's record timestamp
    // Each journal's open batch (its node in the partition's `open`). Valid
    // until the verdicts are applied: a batch leaves `open` only after
    // flush(), which applies them first.
    std::vector<OpenBatch*> batches;
    std::vector<model::StatusUpdate> updates;
    std::vector<bus::Record> dead_letters;  // appended before the chunk is posted
    ledger::Checkpoint checkpoint;
    std::future<Result<std::vector<ledger::PostOutcome>>> outcome;
    // Set once the chunk's transaction has committed (or its post failed):
    // the next chunk may go to the ledger then, while this one's is made
    // durable.
    std::promise<void> committed_signal;
    std::future<void> committed = committed_signal.get_future();

    std::span<const model::Journal> chunk() const { return {journals.data(), size}; }
    // The slot of the next journal: written over, then kept with add().
    model::Journal& next_journal() {
      if (journals.size() == size) journals.emplace_back();
      return journals[size];
    }
    void add(std::string_view source, std::int64_t appended, OpenBatch* batch) {
      if (sources.size() == size) sources.emplace_back();
      sources[size].assign(source);
      appended_ms.push_back(appended);
      batches.push_back(batch);
      ++size;
    }
    // Empties it for the next chunk, keeping the journals and sources.
    void reset();
  };
  // Empties p and keeps it in spares_ unless two are kept already.
  void keep_spare(std::unique_ptr<PendingPost> p);
  // Waits for p's verdicts; a refusal breaks the processor.
  Result<std::vector<ledger::PostOutcome>> outcome_of(PendingPost& p);
  // Counts p's verdicts, takes duplicates and conflicts out of the open
  // batches' totals and emits the chunk's statuses.
  Status apply_verdicts(PendingPost& p, const std::vector<ledger::PostOutcome>& outcomes);

  // Emits the tasks of st.closing, then checkpoints the emptied list.
  Status emit_tasks(std::int32_t partition, PartitionState& st);
  // Appends to the dead-letters topic, creating it (as many partitions as
  // events) on first use when the bus lacks it.
  Status emit_dead_letters(std::vector<bus::Record>& letters);
  Status emit_statuses(std::vector<model::StatusUpdate>& updates);
  Date settle_date_for_late(PartitionState& st, const model::Merchant& merchant,
                            const std::string& currency, Date last_closed, std::int64_t arrival_ms);

  bus::Bus& bus_;
  ledger::Ledger& ledger_;
  MerchantDirectory& merchants_;
  ProcessorOptions options_;
  model::EventParser parser_;
  // poll()'s input, kept between polls so that the bus can reuse its storage.
  bus::ReadBuffer records_;
  std::map<std::int32_t, PartitionState> partitions_;
  std::unique_ptr<PendingPost> pending_;
  // Chunks whose verdicts were applied, for the next polls to reuse: at most
  // two, as no more than two are ever in use at once.
  std::vector<std::unique_ptr<PendingPost>> spares_;
  model::Event event_;  // poll()'s parsed record, reused
  Status broken_ = ok_status();
  ProcessorStats stats_;
};

}  // namespace settle::processor
