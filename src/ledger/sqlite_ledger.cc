#include "ledger/sqlite_ledger.h"

#include "ledger/checks.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>
#include <utility>

#include "common/assert.h"
#include "model/journal.h"

namespace settle::ledger {
namespace {

using model::AccountRole;
using model::BatchKey;
using model::BatchSummary;
using model::EventType;
using model::Journal;
using model::JournalKind;

// ---------------------------------------------------------------------------
// Statements

// An owned prepared statement.
class Stmt {
 public:
  Stmt() = default;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  Stmt(Stmt&& other) noexcept : s_(std::exchange(other.s_, nullptr)) {}
  Stmt& operator=(Stmt&& other) noexcept {
    if (this != &other) {
      sqlite3_finalize(s_);
      s_ = std::exchange(other.s_, nullptr);
    }
    return *this;
  }
  ~Stmt() { sqlite3_finalize(s_); }

  sqlite3_stmt* get() const { return s_; }
  sqlite3_stmt** out() { return &s_; }
  explicit operator bool() const { return s_ != nullptr; }

 private:
  sqlite3_stmt* s_ = nullptr;
};

// One execution of a cached statement: binds, steps and reads columns, and
// resets the statement when it goes out of scope, so that it holds no read
// snapshot and is ready for the next use. Text and blobs are bound without a
// copy (SQLITE_STATIC): they must outlive the last step().
class Run {
 public:
  explicit Run(const Stmt& stmt) : s_(stmt.get()) {}
  ~Run() { sqlite3_reset(s_); }
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;

  void text(int i, std::string_view v) {
    // A null pointer would bind NULL; an empty string must stay ''.
    sqlite3_bind_text(s_, i, v.empty() ? "" : v.data(), static_cast<int>(v.size()),
                      SQLITE_STATIC);
  }
  void text_or_null(int i, std::string_view v) {
    if (v.empty()) {
      sqlite3_bind_null(s_, i);
    } else {
      text(i, v);
    }
  }
  void blob(int i, const void* p, std::size_t n) {
    sqlite3_bind_blob(s_, i, n == 0 ? "" : p, static_cast<int>(n), SQLITE_STATIC);
  }
  void int64(int i, std::int64_t v) { sqlite3_bind_int64(s_, i, v); }
  void null(int i) { sqlite3_bind_null(s_, i); }
  int named(const char* name) const { return sqlite3_bind_parameter_index(s_, name); }

  int step() { return sqlite3_step(s_); }

  std::int64_t int64_at(int i) const { return sqlite3_column_int64(s_, i); }
  bool null_at(int i) const { return sqlite3_column_type(s_, i) == SQLITE_NULL; }
  std::string_view text_at(int i) const {
    const unsigned char* p = sqlite3_column_text(s_, i);
    const int n = sqlite3_column_bytes(s_, i);
    if (p == nullptr) return {};
    return {reinterpret_cast<const char*>(p), static_cast<std::size_t>(n)};
  }
  std::string_view blob_at(int i) const {
    const void* p = sqlite3_column_blob(s_, i);
    const int n = sqlite3_column_bytes(s_, i);
    if (p == nullptr) return {};
    return {static_cast<const char*>(p), static_cast<std::size_t>(n)};
  }

 private:
  sqlite3_stmt* s_;
};

// ---------------------------------------------------------------------------
// Values

using DigestBytes = std::array<unsigned char, 16>;

DigestBytes digest_bytes(const model::Digest& d) {
  DigestBytes b{};
  for (int i = 0; i < 8; ++i) {
    b[static_cast<std::size_t>(i)] = static_cast<unsigned char>(d.hi >> (56 - 8 * i));
    b[static_cast<std::size_t>(8 + i)] = static_cast<unsigned char>(d.lo >> (56 - 8 * i));
  }
  return b;
}


std::string now_rfc3339() {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  return format_rfc3339(Timestamp{static_cast<std::int64_t>(ns)});
}

// The dates the ledger stores: four-digit years, as 'YYYY-MM-DD' needs (and
// as format_date() asserts).
const Date kFirstDate = checks::first_date();
const Date kLastDate = checks::last_date();
using checks::check_key;
using checks::date_in_range;
using checks::is_event_kind;
using checks::journal_id_text;
using checks::validate_journal;


// A key naming a batch, checked before anything formats its date.

// A query bound outside the storable dates means "no bound".
std::string bound_text(const std::optional<Date>& d) {
  if (!d) return {};
  return format_date(std::clamp(*d, kFirstDate, kLastDate));
}

// What the ledger refuses before it opens a transaction: a journal that does
// not balance, moves nothing, or names no identity.

// ---------------------------------------------------------------------------
// The account cache: (role, merchant, currency) -> account_id, and the
// balance delta the current call has accumulated for it. Looked up without
// building the account's name (three lookups per event journal).

struct AccountKeyView {
  AccountRole role;
  std::string_view merchant;  // "" for platform accounts
  std::string_view currency;
};

struct AccountKey {
  AccountRole role;
  std::string merchant;
  std::string currency;
  operator AccountKeyView() const { return {role, merchant, currency}; }  // NOLINT
};

struct AccountKeyHash {
  using is_transparent = void;
  std::size_t operator()(const AccountKeyView& k) const noexcept {
    const std::size_t h = std::hash<std::string_view>{}(k.merchant);
    const std::size_t c = std::hash<std::string_view>{}(k.currency);
    return (h * 0x9E3779B97F4A7C15ULL) ^ (c + static_cast<std::size_t>(k.role));
  }
};

struct AccountKeyEq {
  using is_transparent = void;
  bool operator()(const AccountKeyView& a, const AccountKeyView& b) const noexcept {
    return a.role == b.role && a.merchant == b.merchant && a.currency == b.currency;
  }
};

struct AccountEntry {
  std::int64_t id = 0;
  __int128 delta = 0;       // of the current call
  std::int64_t postings = 0;  // of the current call
  bool touched = false;
};

AccountKeyView account_key(const Journal& j, const model::Posting& p) {
  return {p.account, model::is_merchant_account(p.account) ? j.merchant_id.view() : "",
          j.currency};
}

// A journal's columns that need formatting, kept alive until its INSERT ran
// (bound without a copy). Written with put_date() and put_rfc3339() into fixed
// buffers: three std::string results per journal were a measurable part of
// post().
struct RowText {
  char batch_date[kDateTextLen];
  char settle_date[kDateTextLen];
  char occurred_at[kRfc3339TextMax];
  std::size_t occurred_len = 0;  // 0: NULL, a batch journal
};

// Big-endian word of s's bytes [at, at + 8), zero-padded: for strings without
// NUL bytes, comparing these words orders them as comparing the strings does
// (SQLite's BINARY collation), so most comparisons never reach the strings.
std::uint64_t prefix_word(std::string_view s, std::size_t at) {
  std::uint64_t w = 0;
  for (std::size_t i = 0; i < 8; ++i) {
    w = (w << 8) | (at + i < s.size() ? static_cast<unsigned char>(s[at + i]) : 0U);
  }
  return w;
}

// Journals are handled in key order, so one after another they are scattered
// in memory: a cache miss on each was most of the time spent binding them.
// Each loop over them fetches kPrefetchRows journals ahead.
void prefetch(const Journal& j) {
  const char* at = reinterpret_cast<const char*>(&j);
  for (std::size_t line = 0; line < sizeof(Journal); line += 64) __builtin_prefetch(at + line);
}

// A journal's identity (merchant_id, ref) in the order of the unique index.
struct SortKey {
  std::uint64_t merchant_word;  // prefix_word(merchant, 0)
  std::uint64_t ref_words[2];   // prefix_word(ref, 0), prefix_word(ref, 8)
  std::string_view merchant;
  std::string_view ref;
  std::uint32_t input;  // index in the call

  SortKey(std::string_view m, std::string_view r, std::uint32_t i)
      : merchant_word(prefix_word(m, 0)), ref_words{prefix_word(r, 0), prefix_word(r, 8)},
        merchant(m), ref(r), input(i) {}

  bool same_identity(const SortKey& o) const { return merchant == o.merchant && ref == o.ref; }

  // By (merchant, ref), then by position in the call: the first journal of an
  // identity sorts first, as with a stable sort.
  friend bool operator<(const SortKey& a, const SortKey& b) {
    if (a.merchant_word != b.merchant_word) return a.merchant_word < b.merchant_word;
    if (a.merchant.size() > 8 || b.merchant.size() > 8) {
      if (const int c = a.merchant.compare(b.merchant); c != 0) return c < 0;
    }
    if (a.ref_words[0] != b.ref_words[0]) return a.ref_words[0] < b.ref_words[0];
    if (a.ref_words[1] != b.ref_words[1]) return a.ref_words[1] < b.ref_words[1];
    if (const int c = a.ref.compare(b.ref); c != 0) return c < 0;
    return a.input < b.input;
  }
};

// One journal of a call, in key order.
struct Row {
  enum class State : std::uint8_t {
    kInsert,    // to be inserted (unless it turns out stored after all)
    kDecided,   // its identity is stored; outcome known
    kFollower,  // same identity as an earlier journal of the call
  };
  std::uint32_t input = 0;
  std::uint32_t leader = 0;  // kFollower: position of the first journal of its identity
  State state = State::kInsert;
  bool has_stored = false;  // `stored` is the digest stored before the call
  std::array<AccountEntry*, model::kMaxLegs> legs{};
  DigestBytes digest{};
  DigestBytes stored{};
};

// The accounts of the merchant and currency of the previous journal: in key
// order most journals share them, which saves three hash lookups.
struct AccountMemo {
  std::string_view merchant;
  std::string_view currency;
  std::array<AccountEntry*, 6> by_role{};
};

// A row of the settling table, as a call accumulates it (views into the
// call's journals).
struct SettlingKey {
  std::string_view merchant;
  std::string_view currency;
  Date settle_date;
  JournalKind kind;
};

struct SettlingKeyLess {
  bool operator()(const SettlingKey& a, const SettlingKey& b) const noexcept {
    if (a.settle_date != b.settle_date) return a.settle_date < b.settle_date;
    if (a.kind != b.kind) return a.kind < b.kind;
    if (const int c = a.merchant.compare(b.merchant); c != 0) return c < 0;
    return a.currency < b.currency;
  }
};

struct SettlingDelta {
  std::int64_t count = 0;
  __int128 amount = 0;
  __int128 fees = 0;
};

// The checkpointer thread's nice value (see start_checkpointer()).
constexpr int kCheckpointerNice = 10;

// Rows per multi-row INSERT. One statement per row costs about a quarter
// more per journal (statement start, cursors opened and closed).
constexpr std::size_t kInsertChunk = 64;
// How many journals ahead a loop in key order prefetches (prefetch()).
constexpr std::size_t kPrefetchRows = 4;
constexpr int kJournalParams = 19;

// ---------------------------------------------------------------------------
// Summaries

// The columns of a batch row that make up a BatchSummary, in this order.
constexpr const char* kBatchColumns =
    "merchant_id, batch_date, currency, "
    "captures_count, captures, captures_fees, refunds_count, refunds, refunds_fees, "
    "chargebacks_count, chargebacks, chargebacks_fees, reversals_count, reversals, "
    "reversals_fees, adjustments_count, adjustments, adjustments_fees, "
    "reserve_held, reserve_released, carried_in, net, payout, carry_out, payout_date";
constexpr int kBatchColumnCount = 25;

}  // namespace

// ---------------------------------------------------------------------------

struct SqliteLedger::Impl {
  std::string path;  // for messages
  sqlite3* db = nullptr;
  bool sync_full = true;  // options.synchronous == kFull

  // Durability of the commits of post_pipelined() and close_batch_deferred(),
  // which SQLite does not fsync: `commits` counts them (each once its frames
  // are written to the WAL), `synced` is the count the last fdatasync of the
  // WAL covered.
  // A failed fdatasync leaves the file's state unknown, so it breaks the
  // ledger: every later write is refused until it is reopened.
  std::atomic<std::uint64_t> commits{0};
  std::mutex sync_mu;  // guards the three below
  std::uint64_t synced = 0;
  int wal_fd = -1;  // the WAL, opened by the first sync
  Status broken = ok_status();
  std::atomic<bool> is_broken{false};

  std::mutex mu;  // guards everything below

  Stmt begin, commit, rollback;
  Stmt insert_journal, insert_journals, find_journal, max_journal_id;
  Stmt find_account, insert_account, update_account;
  Stmt update_checkpoint, insert_checkpoint, get_checkpoint;
  Stmt settling, upsert_settling;
  Stmt last_closed, holds;
  Stmt get_fence, upsert_fence;
  Stmt get_batch, later_batch, get_hold, insert_batch, release_hold;
  Stmt closed_batches, balances, trial_balance;
  std::array<Stmt, 16> postings;  // by filter combination, prepared on first use

  std::unordered_map<AccountKey, AccountEntry, AccountKeyHash, AccountKeyEq> accounts;
  std::vector<AccountKey> created;      // accounts created by the open transaction
  std::vector<AccountEntry*> touched;   // accounts with a delta in the open call
  // The settling rows the open call adds to (views into its journals).
  std::map<SettlingKey, SettlingDelta, SettlingKeyLess> settling_deltas;
  // Scratch of insert_all(), kept to spare the allocations.
  std::vector<SortKey> keys;
  std::vector<Row> rows;
  std::vector<std::uint32_t> to_insert;
  std::array<RowText, kInsertChunk> texts;

  // Checkpoints (see start_checkpointer()).
  struct Checkpointer {
    sqlite3* db = nullptr;  // the thread's own connection
    std::thread thread;
    std::mutex m;  // guards stop and wanted
    std::condition_variable cv;
    bool stop = false;
    bool wanted = false;
    // WAL lengths in frames: the writer's own checkpoint, and a growth that
    // wakes the thread. Written by open(), then read by the WAL hook.
    int writer_frames = 0;
    int background_frames = 0;
    int woken_at = 0;  // WAL length at the last wake-up (the hook's, under mu)
    std::atomic<std::uint64_t> runs{0};  // background checkpoints that completed
  } ckpt;

  // Checkpointing. A commit appends the pages it changed to the WAL; a
  // checkpoint copies the latest version of each back into the database
  // (and fsyncs it). Random event ids touch pages all over the journals'
  // unique index, so one commit of 20,000 journals into a large ledger
  // writes tens of megabytes, most of them pages that the next commits write
  // again. SQLite's default, a checkpoint by the writer whenever the WAL
  // passes 1000 pages, copied every commit's pages and took as long as the
  // inserts. Here:
  // - a thread with its own connection copies what has been committed
  //   whenever the WAL has grown by options.background_checkpoint_bytes.
  //   Its checkpoints are PASSIVE: the writer never waits for them, and they
  //   copy only frames no reader still needs.
  // - the writer checkpoints itself after a commit that leaves the WAL
  //   longer than options.checkpoint_wal_bytes (what SQLite's autocheckpoint
  //   does), copying what the thread has not yet. Its next transaction then
  //   writes the WAL from its beginning again, which bounds the file's size:
  //   a WAL of hundreds of megabytes took 0.1-0.2 s to delete when the ledger
  //   closed, and stays in the page cache meanwhile.
  // Either may find the other checkpointing and skip its turn (SQLITE_BUSY);
  // a later commit tries again. The last connection to close copies the rest.
  Status start_checkpointer(const SqliteLedgerOptions& options) {
    std::int64_t page_size = 0;
    {
      Stmt q;
      SETTLE_TRY(prepare(q, "PRAGMA page_size"));
      Run r(q);
      const int rc = r.step();
      if (rc != SQLITE_ROW) return sql_fail(rc, "open: read page size");
      page_size = std::max<std::int64_t>(r.int64_at(0), 512);
    }
    const auto frames = [&](std::int64_t bytes) {
      return static_cast<int>(std::clamp<std::int64_t>(bytes / page_size, 1, INT_MAX));
    };
    ckpt.writer_frames = frames(options.checkpoint_wal_bytes);
    ckpt.background_frames = frames(options.background_checkpoint_bytes);

    const std::string file = sqlite3_db_filename(db, "main");
    const int rc = sqlite3_open_v2(file.c_str(), &ckpt.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
      return fail(ErrorCode::kIo, "open", fmt::format("checkpointer connection: sqlite: {}",
                                                      ckpt.db != nullptr ? sqlite3_errmsg(ckpt.db) : sqlite3_errstr(rc)));
    }
    // A connection learns that the file is in WAL mode on its first read.
    if (sqlite3_exec(ckpt.db, "SELECT count(*) FROM sqlite_schema", nullptr, nullptr, nullptr) != SQLITE_OK) {
      return fail(ErrorCode::kIo, "open", fmt::format("checkpointer connection: sqlite: {}", sqlite3_errmsg(ckpt.db)));
    }
    // Replaces SQLite's autocheckpoint hook.
    sqlite3_wal_hook(db, &Impl::on_wal_commit, this);
    ckpt.thread = std::thread([this] { run_checkpointer(); });
    return ok_status();
  }

  // After each commit of the writer's connection (under mu), with the WAL's
  // length in frames.
  static int on_wal_commit(void* arg, sqlite3* writer, const char* schema, int frames) {
    Checkpointer& c = static_cast<Impl*>(arg)->ckpt;
    if (frames < c.woken_at) c.woken_at = 0;  // the WAL started over
    if (frames >= c.writer_frames) {
      // Errors are the next commit's to retry, as with SQLite's own hook.
      (void)sqlite3_wal_checkpoint_v2(writer, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
      c.woken_at = 0;
    } else if (frames - c.woken_at >= c.background_frames) {
      c.woken_at = frames;
      {
        std::lock_guard lock(c.m);
        c.wanted = true;
      }
      c.cv.notify_one();
    }
    return SQLITE_OK;
  }

  void run_checkpointer() {
    pthread_setname_np(pthread_self(), "ledger-ckpt");
    // Its copies can wait; the writer (the critical path of a settle) cannot.
    // Best effort, like the ingest thread's (no privilege needed to lower).
    (void)setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), kCheckpointerNice);
    std::unique_lock lock(ckpt.m);
    for (;;) {
      ckpt.cv.wait(lock, [&] { return ckpt.stop || ckpt.wanted; });
      if (ckpt.stop) return;
      ckpt.wanted = false;
      lock.unlock();
      // Failures (SQLITE_BUSY while the writer checkpoints) are left to the
      // next wake-up or to the writer's own checkpoint.
      if (sqlite3_wal_checkpoint_v2(ckpt.db, "main", SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr) == SQLITE_OK) {
        ckpt.runs.fetch_add(1, std::memory_order_relaxed);
      }
      lock.lock();
    }
  }

  void stop_checkpointer() {
    if (ckpt.thread.joinable()) {
      {
        std::lock_guard lock(ckpt.m);
        ckpt.stop = true;
      }
      ckpt.cv.notify_one();
      ckpt.thread.join();
    }
    // Before the writer's connection: the last to close checkpoints the rest
    // and deletes the WAL.
    if (ckpt.db != nullptr) sqlite3_close_v2(ckpt.db);
    ckpt.db = nullptr;
  }

  ~Impl() {
    stop_checkpointer();
    if (wal_fd >= 0) ::close(wal_fd);
    // close_v2: the connection goes away once the cached statements (members,
    // finalized after this body) are.
    if (db != nullptr) sqlite3_close_v2(db);
  }

  // --- errors ---------------------------------------------------------------

  Error fail(ErrorCode code, std::string_view what, std::string_view why) const {
    return make_error(code, fmt::format("ledger {}: {}: {}", path, what, why));
  }
  Error refuse(const checks::Refusal& r, std::string_view what) const { return fail(r.code, what, r.why); }

  // An error SQLite reported; its message is included.
  Error sql_fail(int rc, std::string_view what) const {
    const char* msg = sqlite3_errmsg(db);
    ErrorCode code = ErrorCode::kIo;
    switch (rc & 0xff) {
      case SQLITE_BUSY:
      case SQLITE_LOCKED: code = ErrorCode::kUnavailable; break;
      case SQLITE_CORRUPT:
      case SQLITE_NOTADB: code = ErrorCode::kCorruption; break;
      case SQLITE_CONSTRAINT:
        // In STRICT tables a datatype violation can only come from an integer
        // that overflowed into a REAL.
        code = rc == SQLITE_CONSTRAINT_DATATYPE ? ErrorCode::kOverflow
                                                : ErrorCode::kInvalidArgument;
        break;
      case SQLITE_ERROR:
        if (std::string_view(msg).find("integer overflow") != std::string_view::npos) {
          code = ErrorCode::kOverflow;
        }
        break;
      default: break;
    }
    return make_error(code, fmt::format("ledger {}: {}: sqlite: {}", path, what, msg));
  }

  Error corrupt(std::string_view what, std::string_view why) const {
    return fail(ErrorCode::kCorruption, what, why);
  }

  // --- plumbing -------------------------------------------------------------

  // Makes the first `commit_no` counted commits durable: one
  // fdatasync of the WAL covers every commit whose frames were written before
  // it, so a call that another call's fsync covered returns at once. (Frames
  // that a checkpoint copied into the database before the WAL was rewritten
  // were fsynced there by the checkpoint.) Any descriptor of the file will
  // do: the WAL keeps its inode while the connection is open.
  Status sync_wal(std::uint64_t commit_no, std::string_view what) {
    std::lock_guard lock(sync_mu);
    if (!broken.ok()) return broken;
    if (synced >= commit_no) return ok_status();
    const std::uint64_t covered = commits.load(std::memory_order_acquire);
    if (wal_fd < 0) {
      const std::string wal = sqlite3_filename_wal(sqlite3_db_filename(db, "main"));
      const int fd = ::open(wal.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        return fail(ErrorCode::kIo, what, fmt::format("cannot open {} to fsync it: {}", wal, std::strerror(errno)));
      }
      // The WAL may be new: its directory entry must be durable too (SQLite
      // syncs the directory on its first sync of a new WAL the same way).
      const std::string dir = std::filesystem::path(wal).parent_path().string();
      const int dir_fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      const bool dir_synced = dir_fd >= 0 && ::fsync(dir_fd) == 0;
      const int dir_errno = errno;
      if (dir_fd >= 0) ::close(dir_fd);
      if (!dir_synced) {
        ::close(fd);
        return fail(ErrorCode::kIo, what, fmt::format("cannot fsync the directory of {}: {}", wal, std::strerror(dir_errno)));
      }
      wal_fd = fd;
    }
    if (::fdatasync(wal_fd) != 0) {
      broken = fail(ErrorCode::kIo, what,
                    fmt::format("fdatasync of the WAL failed ({}); the ledger refuses writes until reopened",
                                std::strerror(errno)));
      is_broken.store(true, std::memory_order_release);
      return broken;
    }
    synced = covered;
    return ok_status();
  }

  // kIo once a sync_wal() failed.
  Status check_not_broken() {
    if (!is_broken.load(std::memory_order_acquire)) return ok_status();
    std::lock_guard lock(sync_mu);
    return broken;
  }

  // Whether each commit fsyncs the WAL (FULL) or leaves that to a later
  // commit or checkpoint (NORMAL). Set outside a transaction only.
  Status set_synchronous(bool full, std::string_view what) {
    return exec(full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL", what);
  }

  // Runs `write` (whole transactions, under mu) with commits that SQLite does
  // not fsync; the caller sees to their durability (sync_wal(), or a later
  // fsynced commit). With Synchronous::kNormal, just runs it.
  template <typename Write>
  auto unsynced(std::string_view what, Write&& write) -> decltype(write()) {
    if (!sync_full) return write();
    SETTLE_TRY(set_synchronous(false, what));
    auto result = write();
    SETTLE_TRY(set_synchronous(true, what));
    return result;
  }

  Status exec(const char* sql, std::string_view what) {
    const int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return sql_fail(rc, what);
    return ok_status();
  }

  Status prepare(Stmt& s, const std::string& sql) {
    const int rc = sqlite3_prepare_v3(db, sql.c_str(), static_cast<int>(sql.size()),
                                      SQLITE_PREPARE_PERSISTENT, s.out(), nullptr);
    if (rc != SQLITE_OK) return sql_fail(rc, "prepare " + sql.substr(0, 60));
    return ok_status();
  }

  Status run_done(const Stmt& s, std::string_view what) {
    Run r(s);
    const int rc = r.step();
    if (rc != SQLITE_DONE) return sql_fail(rc, what);
    return ok_status();
  }

  Result<Date> date_at(const Run& r, int col, std::string_view what) const {
    auto d = parse_date(r.text_at(col));
    if (!d.ok()) return corrupt(what, "stored date: " + d.error().message);
    return d.value();
  }

  // --- schema ---------------------------------------------------------------

  Status ensure_schema() {
    SETTLE_TRY(exec("BEGIN IMMEDIATE", "open"));
    Status s = check_or_create_schema();
    if (!s.ok()) {
      if (sqlite3_get_autocommit(db) == 0) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
      return s;
    }
    return exec("COMMIT", "open: create schema");
  }

  Status check_or_create_schema() {
    Stmt q;
    SETTLE_TRY(prepare(q, "SELECT count(*), count(*) FILTER (WHERE name = 'schema_version') "
                          "FROM sqlite_schema WHERE type = 'table'"));
    std::int64_t tables = 0;
    std::int64_t version_tables = 0;
    {
      Run r(q);
      const int rc = r.step();
      if (rc != SQLITE_ROW) return sql_fail(rc, "open: read schema");
      tables = r.int64_at(0);
      version_tables = r.int64_at(1);
    }
    if (version_tables == 0) {
      if (tables != 0) {
        return fail(ErrorCode::kFailedPrecondition, "open",
                    "a SQLite database but not a settlement ledger (it has tables but no "
                    "schema_version)");
      }
      const std::string sql(SqliteLedger::schema_sql());
      SETTLE_TRY(exec(sql.c_str(), "open: create schema"));
      return record_version(SqliteLedger::kSchemaVersion);
    }
    std::optional<std::int64_t> stored;
    {
      Stmt v;
      SETTLE_TRY(prepare(v, "SELECT max(version) FROM schema_version"));
      Run r(v);
      const int rc = r.step();
      if (rc != SQLITE_ROW) return sql_fail(rc, "open: read schema version");
      if (!r.null_at(0)) stored = r.int64_at(0);
    }
    static_assert(SqliteLedger::kSchemaVersion == 3, "add the upgrade from the previous version");
    if (stored == 1) {
      // Version 1 had no checkpoints.version: existing rows become version 0,
      // so their next write is version 1.
      SETTLE_TRY(exec("ALTER TABLE checkpoints ADD COLUMN version INTEGER NOT NULL DEFAULT 0 "
                      "CHECK (version >= 0)",
                      "open: upgrade schema version 1 to 2"));
      SETTLE_TRY(record_version(2));
      stored = 2;
    }
    if (stored == 2) {
      SETTLE_TRY(upgrade_2_to_3());
      stored = 3;
    }
    if (stored != SqliteLedger::kSchemaVersion) {
      return fail(ErrorCode::kFailedPrecondition, "open",
                  fmt::format("schema version {}, but this build reads version {}; migrate the "
                              "file or open another",
                              stored ? std::to_string(*stored) : std::string("(none)"),
                              SqliteLedger::kSchemaVersion));
    }
    return ok_status();
  }

  // Version 2 summed a batch's journals through an index on (merchant_id,
  // currency, settle_date); version 3 keeps those sums in the settling table
  // (its DDL is the schema file's), filled here from the journals.
  Status upgrade_2_to_3() {
    constexpr std::string_view kWhat = "open: upgrade schema version 2 to 3";
    const std::string_view schema = SqliteLedger::schema_sql();
    const std::size_t from = schema.find("CREATE TABLE settling (");
    const std::size_t to = schema.find(';', from);
    SETTLE_ASSERT(from != std::string_view::npos && to != std::string_view::npos,
                  "the schema defines the settling table");
    const std::string create(schema.substr(from, to + 1 - from));
    SETTLE_TRY(exec(create.c_str(), kWhat));
    SETTLE_TRY(exec("INSERT INTO settling (merchant_id, currency, settle_date, kind, count, amount, fees) "
                    "SELECT merchant_id, currency, settle_date, kind, count(*), sum(amount), sum(fee) "
                    "FROM journals WHERE kind = 'capture' OR kind = 'refund' OR kind = 'chargeback' "
                    "OR kind = 'chargeback_reversal' OR kind = 'adjustment' "
                    "GROUP BY merchant_id, currency, settle_date, kind",
                    kWhat));
    SETTLE_TRY(exec("DROP INDEX IF EXISTS journals_settling", kWhat));
    return record_version(3);
  }

  // Records that the schema is now at `version` (in the open transaction).
  Status record_version(std::int64_t version) {
    Stmt ins;
    SETTLE_TRY(prepare(ins, "INSERT INTO schema_version (version, applied_at) VALUES (?1, ?2)"));
    Run r(ins);
    const std::string now = now_rfc3339();
    r.int64(1, version);
    r.text(2, now);
    const int rc = r.step();
    if (rc != SQLITE_DONE) return sql_fail(rc, fmt::format("open: record schema version {}", version));
    return ok_status();
  }

  Status prepare_all() {
    SETTLE_TRY(prepare(begin, "BEGIN IMMEDIATE"));
    SETTLE_TRY(prepare(commit, "COMMIT"));
    SETTLE_TRY(prepare(rollback, "ROLLBACK"));
    const std::string insert_head =
        "INSERT INTO journals (merchant_id, ref, kind, currency, batch_date, settle_date, late, "
        "occurred_at, amount, fee, digest, metadata, trace_id, leg1_account, leg1_amount, "
        "leg2_account, leg2_amount, leg3_account, leg3_amount) VALUES ";
    const std::string one_row = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    const std::string on_conflict = " ON CONFLICT (merchant_id, ref) DO NOTHING";
    SETTLE_TRY(prepare(insert_journal, insert_head + one_row + on_conflict));
    std::string rows_sql = insert_head;
    for (std::size_t i = 0; i < kInsertChunk; ++i) rows_sql += (i == 0 ? "" : ", ") + one_row;
    SETTLE_TRY(prepare(insert_journals, rows_sql + on_conflict));
    SETTLE_TRY(prepare(find_journal, "SELECT journal_id, digest FROM journals "
                                     "WHERE merchant_id = ?1 AND ref = ?2"));
    SETTLE_TRY(prepare(max_journal_id, "SELECT coalesce(max(journal_id), 0) FROM journals"));
    SETTLE_TRY(prepare(find_account,
                       "SELECT account_id FROM accounts WHERE name = ?1 AND currency = ?2"));
    SETTLE_TRY(prepare(insert_account,
                       "INSERT INTO accounts (name, currency, balance, postings) "
                       "VALUES (?1, ?2, 0, 0)"));
    SETTLE_TRY(prepare(update_account,
                       "UPDATE accounts SET balance = balance + ?1, postings = postings + ?2 "
                       "WHERE account_id = ?3"));
    SETTLE_TRY(prepare(update_checkpoint,
                       "UPDATE checkpoints SET next_offset = ?3, state = ?4, version = ?5 "
                       "WHERE consumer = ?1 AND partition = ?2 AND version = ?5 - 1"));
    SETTLE_TRY(prepare(insert_checkpoint,
                       "INSERT INTO checkpoints (consumer, partition, next_offset, state, version) "
                       "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (consumer, partition) DO NOTHING"));
    SETTLE_TRY(prepare(get_checkpoint,
                       "SELECT next_offset, state, version FROM checkpoints "
                       "WHERE consumer = ?1 AND partition = ?2"));
    SETTLE_TRY(prepare(settling,
                       "SELECT kind, count, amount, fees FROM settling "
                       "WHERE merchant_id = ?1 AND currency = ?2 AND settle_date = ?3"));
    SETTLE_TRY(prepare(upsert_settling,
                       "INSERT INTO settling (merchant_id, currency, settle_date, kind, count, amount, fees) "
                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
                       "ON CONFLICT (merchant_id, currency, settle_date, kind) DO UPDATE SET "
                       "count = count + excluded.count, amount = amount + excluded.amount, "
                       "fees = fees + excluded.fees"));
    SETTLE_TRY(prepare(last_closed,
                       "SELECT batch_date, carry_out FROM batches "
                       "WHERE merchant_id = ?1 AND currency = ?2 "
                       "ORDER BY batch_date DESC LIMIT 1"));
    SETTLE_TRY(prepare(holds,
                       "SELECT batch_date, reserve_held FROM batches "
                       "WHERE merchant_id = ?1 AND currency = ?2 AND reserve_held > 0 "
                       "AND released_by IS NULL ORDER BY batch_date"));
    SETTLE_TRY(prepare(get_fence,
                       "SELECT token FROM batch_fences "
                       "WHERE merchant_id = ?1 AND currency = ?2 AND batch_date = ?3"));
    SETTLE_TRY(prepare(upsert_fence,
                       "INSERT INTO batch_fences (merchant_id, currency, batch_date, token) "
                       "VALUES (?1, ?2, ?3, ?4) "
                       "ON CONFLICT (merchant_id, currency, batch_date) "
                       "DO UPDATE SET token = max(token, excluded.token)"));
    SETTLE_TRY(prepare(get_batch, fmt::format("SELECT {} FROM batches WHERE merchant_id = ?1 AND "
                                              "currency = ?2 AND batch_date = ?3",
                                              kBatchColumns)));
    SETTLE_TRY(prepare(later_batch,
                       "SELECT batch_date FROM batches WHERE merchant_id = ?1 AND currency = ?2 "
                       "AND batch_date > ?3 ORDER BY batch_date LIMIT 1"));
    SETTLE_TRY(prepare(get_hold,
                       "SELECT reserve_held, released_by FROM batches "
                       "WHERE merchant_id = ?1 AND currency = ?2 AND batch_date = ?3"));
    SETTLE_TRY(prepare(
        insert_batch,
        fmt::format("INSERT INTO batches ({}, fees, released_by, fencing_token, closed_at) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, "
                    "?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, NULL, ?27, ?28)",
                    kBatchColumns)));
    SETTLE_TRY(prepare(release_hold,
                       "UPDATE batches SET released_by = ?4 "
                       "WHERE merchant_id = ?1 AND currency = ?2 AND batch_date = ?3 "
                       "AND released_by IS NULL"));
    SETTLE_TRY(prepare(closed_batches,
                       fmt::format("SELECT {} FROM batches "
                                   "WHERE (?1 IS NULL OR merchant_id = ?1) "
                                   "AND (?2 IS NULL OR batch_date >= ?2) "
                                   "AND (?3 IS NULL OR batch_date <= ?3) "
                                   "ORDER BY merchant_id, currency, batch_date",
                                   kBatchColumns)));
    SETTLE_TRY(prepare(balances,
                       "SELECT name, currency, balance, postings FROM accounts "
                       "WHERE ?1 IS NULL OR substr(name, 1, length(?1)) = ?1 "
                       "ORDER BY name, currency"));
    // Recomputed from the postings, never from the accounts' running
    // balances (which it checks). One pass over the leg columns rather than
    // through the postings view, which SQLite would materialize first (six
    // times slower); sums per leg slot, added up in C++ because SQLite turns
    // an overflowing `+` into a REAL where sum() raises an error.
    SETTLE_TRY(prepare(trial_balance,
                       "SELECT currency, "
                       "sum(CASE WHEN leg1_amount > 0 THEN leg1_amount ELSE 0 END), "
                       "sum(CASE WHEN leg2_amount > 0 THEN leg2_amount ELSE 0 END), "
                       "sum(CASE WHEN leg3_amount > 0 THEN leg3_amount ELSE 0 END), "
                       "sum(CASE WHEN leg1_amount < 0 THEN leg1_amount ELSE 0 END), "
                       "sum(CASE WHEN leg2_amount < 0 THEN leg2_amount ELSE 0 END), "
                       "sum(CASE WHEN leg3_amount < 0 THEN leg3_amount ELSE 0 END) "
                       "FROM journals GROUP BY currency ORDER BY currency"));
    return ok_status();
  }

  // --- transactions ---------------------------------------------------------

  // Undoes the open transaction, if any, and every in-memory effect of it.
  void abort() {
    if (sqlite3_get_autocommit(db) == 0) {
      Run r(rollback);
      r.step();  // if even ROLLBACK fails, SQLite rolls back when the connection closes
    }
    clear_deltas();
    for (const AccountKey& k : created) accounts.erase(k);
    created.clear();
  }

  void clear_deltas() {
    for (AccountEntry* e : touched) {
      e->delta = 0;
      e->postings = 0;
      e->touched = false;
    }
    touched.clear();
    settling_deltas.clear();
  }

  // A write transaction (BEGIN IMMEDIATE: the write lock is taken up front, so
  // a call never fails half-way on lock upgrade). Rolled back, with its
  // in-memory effects, unless committed.
  class Txn {
   public:
    explicit Txn(Impl& impl) : impl_(impl) {}
    ~Txn() {
      if (open_) impl_.abort();
    }
    Txn(const Txn&) = delete;
    Txn& operator=(const Txn&) = delete;

    Status begin(std::string_view what) {
      SETTLE_TRY(impl_.run_done(impl_.begin, what));
      open_ = true;
      return ok_status();
    }
    Status commit(std::string_view what) {
      SETTLE_TRY(impl_.run_done(impl_.commit, what));
      open_ = false;
      impl_.created.clear();
      return ok_status();
    }

   private:
    Impl& impl_;
    bool open_ = false;
  };

  // --- accounts -------------------------------------------------------------

  // Finds or creates the account, inside the open transaction.
  Result<AccountEntry*> account(const AccountKeyView& key, std::string_view what) {
    if (auto it = accounts.find(key); it != accounts.end()) return &it->second;
    const std::string name = model::account_name(key.role, key.merchant);
    std::int64_t id = 0;
    {
      Run r(find_account);
      r.text(1, name);
      r.text(2, key.currency);
      const int rc = r.step();
      if (rc == SQLITE_ROW) {
        id = r.int64_at(0);
      } else if (rc != SQLITE_DONE) {
        return sql_fail(rc, what);
      }
    }
    AccountKey owned{key.role, std::string(key.merchant), std::string(key.currency)};
    if (id == 0) {
      Run r(insert_account);
      r.text(1, name);
      r.text(2, key.currency);
      const int rc = r.step();
      if (rc != SQLITE_DONE) return sql_fail(rc, fmt::format("{}: create account {}", what, name));
      id = sqlite3_last_insert_rowid(db);
      created.push_back(owned);
    }
    AccountEntry& entry = accounts.emplace(std::move(owned), AccountEntry{}).first->second;
    entry.id = id;
    return &entry;
  }

  // Writes the call's accumulated balance deltas, one UPDATE per account,
  // and its settling totals, one upsert per (batch, kind).
  Status apply_deltas(std::string_view what) {
    for (const auto& [k, d] : settling_deltas) {
      const char* overflow = d.amount > INT64_MAX || d.amount < INT64_MIN ? "amount"
                             : d.fees > INT64_MAX || d.fees < INT64_MIN   ? "fees"
                                                                          : nullptr;
      if (overflow != nullptr) {
        return fail(ErrorCode::kOverflow, what,
                    fmt::format("batch {}/{}/{}: the {} of its {} journals leave int64", k.merchant,
                                format_date(k.settle_date), k.currency, overflow,
                                model::journal_kind_name(k.kind)));
      }
      char date[kDateTextLen];
      put_date(date, k.settle_date);
      Run r(upsert_settling);
      r.text(1, k.merchant);
      r.text(2, k.currency);
      r.text(3, {date, kDateTextLen});
      r.text(4, model::journal_kind_name(k.kind));
      r.int64(5, d.count);
      r.int64(6, static_cast<std::int64_t>(d.amount));
      r.int64(7, static_cast<std::int64_t>(d.fees));
      const int rc = r.step();
      if (rc != SQLITE_DONE) {
        return sql_fail(rc, fmt::format("{}: settling totals of batch {}/{}/{}", what, k.merchant,
                                        format_date(k.settle_date), k.currency));
      }
    }
    std::sort(touched.begin(), touched.end(),
              [](const AccountEntry* a, const AccountEntry* b) { return a->id < b->id; });
    for (const AccountEntry* e : touched) {
      if (e->delta > INT64_MAX || e->delta < INT64_MIN) {
        return fail(ErrorCode::kOverflow, what,
                    fmt::format("account {}: the balance change leaves int64", e->id));
      }
      Run r(update_account);
      r.int64(1, static_cast<std::int64_t>(e->delta));
      r.int64(2, e->postings);
      r.int64(3, e->id);
      const int rc = r.step();
      if (rc != SQLITE_DONE) return sql_fail(rc, fmt::format("{}: update account {}", what, e->id));
      // Every account an inserted leg refers to is updated here: this is the
      // ledger's foreign-key check (see open()).
      if (sqlite3_changes(db) != 1) {
        return corrupt(what, fmt::format("account {} does not exist, but the call's legs refer to it", e->id));
      }
    }
    clear_deltas();
    return ok_status();
  }

  // --- journals -------------------------------------------------------------

  // The journal_id and digest stored under j's identity, if any.
  Result<std::optional<std::pair<std::int64_t, DigestBytes>>> find(const Journal& j,
                                                                    std::string_view what) {
    using Found = std::optional<std::pair<std::int64_t, DigestBytes>>;
    Run r(find_journal);
    r.text(1, j.merchant_id.view());
    r.text(2, j.ref);
    const int rc = r.step();
    if (rc == SQLITE_DONE) return Found{};
    if (rc != SQLITE_ROW) return sql_fail(rc, fmt::format("{}: {}", what, journal_id_text(j)));
    const std::string_view b = r.blob_at(1);
    if (b.size() != 16) return corrupt(what, journal_id_text(j) + ": stored digest is not 16 bytes");
    DigestBytes digest{};
    std::copy(b.begin(), b.end(), digest.begin());
    return Found(std::in_place, r.int64_at(0), digest);
  }

  // The accounts of j's legs. Creates missing ones, unless j's identity is
  // already stored (then j will not be inserted, and must not leave an empty
  // account behind): returns false and records the stored digest in `row`.
  Result<bool> resolve_legs(const Journal& j, Row& row, AccountMemo& memo, std::string_view what) {
    if (memo.merchant != j.merchant_id.view() || memo.currency != j.currency) {
      memo = AccountMemo{j.merchant_id.view(), j.currency, {}};
    }
    bool checked = false;
    for (std::size_t i = 0; i < j.leg_count; ++i) {
      AccountEntry*& slot = memo.by_role[static_cast<std::size_t>(j.legs[i].account)];
      if (slot == nullptr) {
        const AccountKeyView key = account_key(j, j.legs[i]);
        if (auto it = accounts.find(key); it != accounts.end()) {
          slot = &it->second;
        } else {
          if (!checked) {
            checked = true;
            SETTLE_ASSIGN_OR_RETURN(const auto stored, find(j, what));
            if (stored) {
              row.has_stored = true;
              row.stored = stored->second;
              return false;
            }
          }
          SETTLE_ASSIGN_OR_RETURN(slot, account(key, what));
        }
      }
      row.legs[i] = slot;
    }
    return true;
  }

  void bind_journal(Run& r, int base, const Journal& j, const Row& row, RowText& t) {
    put_date(t.batch_date, j.batch_date);
    put_date(t.settle_date, j.settle_date);
    t.occurred_len = is_event_kind(j.kind) ? put_rfc3339(t.occurred_at, j.occurred_at) : 0;
    r.text(base + 1, j.merchant_id.view());
    r.text(base + 2, j.ref);
    r.text(base + 3, model::journal_kind_name(j.kind));
    r.text(base + 4, j.currency);
    r.text(base + 5, {t.batch_date, kDateTextLen});
    r.text(base + 6, {t.settle_date, kDateTextLen});
    r.int64(base + 7, j.late ? 1 : 0);
    if (t.occurred_len != 0) {
      r.text(base + 8, {t.occurred_at, t.occurred_len});
    } else {
      r.null(base + 8);
    }
    r.int64(base + 9, j.amount);
    r.int64(base + 10, j.fee);
    r.blob(base + 11, row.digest.data(), row.digest.size());
    r.text_or_null(base + 12, j.metadata_json);
    r.text_or_null(base + 13, j.trace_id);
    for (int i = 0; i < static_cast<int>(model::kMaxLegs); ++i) {
      const auto leg = static_cast<std::size_t>(i);
      if (leg < j.leg_count) {
        r.int64(base + 14 + 2 * i, row.legs[leg]->id);
        r.int64(base + 15 + 2 * i, j.legs[leg].amount);
      } else {
        r.null(base + 14 + 2 * i);
        r.null(base + 15 + 2 * i);
      }
    }
  }

  // Counts an inserted event journal into its batch's settling totals.
  void add_settling(const Journal& j) {
    if (!is_event_kind(j.kind)) return;
    SettlingDelta& d = settling_deltas[SettlingKey{j.merchant_id.view(), j.currency, j.settle_date, j.kind}];
    d.count += 1;
    d.amount += j.amount;
    d.fees += j.fee;
  }

  void add_legs(const Journal& j, const Row& row) {
    for (std::size_t i = 0; i < j.leg_count; ++i) {
      AccountEntry* e = row.legs[i];
      e->delta += j.legs[i].amount;
      e->postings += 1;
      if (!e->touched) {
        e->touched = true;
        touched.push_back(e);
      }
    }
  }

  // Inserts (validated) journals, inside the open transaction, each unless
  // its identity is stored; sets out[i] for journals[i] and accumulates the
  // inserted legs into the account deltas.
  //
  // Journals go in key order (merchant_id, ref): it turns the unique index's
  // random writes into one sweep over its pages. Ties go by position in the
  // call, so the first of two journals with one identity is the one inserted; the second is
  // then a duplicate or conflict of it. They are inserted kInsertChunk rows per
  // statement; when a statement inserts fewer rows than it was given, each of
  // its rows is looked up: one with a journal_id above the largest before the
  // call was inserted by it, any other was stored already.
  Status insert_all(std::span<const Journal> journals, std::vector<PostOutcome>& out,
                    std::string_view what) {
    const auto n = static_cast<std::uint32_t>(journals.size());
    keys.clear();
    for (std::uint32_t i = 0; i < n; ++i) keys.emplace_back(journals[i].merchant_id.view(), journals[i].ref, i);
    std::sort(keys.begin(), keys.end());

    rows.assign(n, Row{});
    to_insert.clear();
    AccountMemo memo;
    for (std::uint32_t p = 0; p < n; ++p) {
      if (p + kPrefetchRows < n) prefetch(journals[keys[p + kPrefetchRows].input]);
      Row& row = rows[p];
      row.input = keys[p].input;
      const Journal& j = journals[row.input];
      row.digest = digest_bytes(j.digest);
      if (p > 0 && keys[p].same_identity(keys[p - 1])) {
        row.state = Row::State::kFollower;
        row.leader = rows[p - 1].state == Row::State::kFollower ? rows[p - 1].leader : p - 1;
        continue;
      }
      SETTLE_ASSIGN_OR_RETURN(const bool insertable, resolve_legs(j, row, memo, what));
      if (insertable) {
        to_insert.push_back(p);
      } else {
        row.state = Row::State::kDecided;
        out[row.input] = row.stored == row.digest ? PostOutcome::kDuplicate : PostOutcome::kConflict;
      }
    }

    if (!to_insert.empty()) {
      std::int64_t max_before = 0;
      {
        Run r(max_journal_id);
        const int rc = r.step();
        if (rc != SQLITE_ROW) return sql_fail(rc, what);
        max_before = r.int64_at(0);
      }
      std::size_t done = 0;
      while (done < to_insert.size()) {
        const bool chunk = to_insert.size() - done >= kInsertChunk;
        const std::size_t count = chunk ? kInsertChunk : 1;
        SETTLE_TRY(insert_rows(journals, done, count, chunk, what));
        const bool all_new = static_cast<std::size_t>(sqlite3_changes(db)) == count;
        for (std::size_t k = 0; k < count; ++k) {
          Row& row = rows[to_insert[done + k]];
          const Journal& j = journals[row.input];
          bool inserted = all_new;
          if (!inserted) {
            SETTLE_ASSIGN_OR_RETURN(const auto stored, find(j, what));
            if (!stored) return corrupt(what, journal_id_text(j) + ": neither inserted nor found");
            inserted = stored->first > max_before;
            row.has_stored = !inserted;
            row.stored = stored->second;
          }
          if (inserted) {
            out[row.input] = PostOutcome::kPosted;
            add_legs(j, row);
            add_settling(j);
          } else {
            out[row.input] =
                row.stored == row.digest ? PostOutcome::kDuplicate : PostOutcome::kConflict;
          }
        }
        done += count;
      }
    }

    for (Row& row : rows) {
      if (row.state != Row::State::kFollower) continue;
      const Row& leader = rows[row.leader];
      const DigestBytes& reference =
          out[leader.input] == PostOutcome::kPosted ? leader.digest : leader.stored;
      out[row.input] = reference == row.digest ? PostOutcome::kDuplicate : PostOutcome::kConflict;
    }
    return ok_status();
  }

  // One INSERT of `count` rows (to_insert[from...]).
  Status insert_rows(std::span<const Journal> journals, std::size_t from, std::size_t count,
                     bool chunk, std::string_view what) {
    int rc = SQLITE_OK;
    {
      Run r(chunk ? insert_journals : insert_journal);
      for (std::size_t k = 0; k < count; ++k) {
        if (k + kPrefetchRows < count) prefetch(journals[rows[to_insert[from + k + kPrefetchRows]].input]);
        const Row& row = rows[to_insert[from + k]];
        bind_journal(r, static_cast<int>(k) * kJournalParams, journals[row.input], row, texts[k]);
      }
      rc = r.step();
      if (rc == SQLITE_DONE) return ok_status();
      if (!chunk || sqlite3_get_autocommit(db) != 0) {
        const Journal& j = journals[rows[to_insert[from]].input];
        return sql_fail(rc, fmt::format("{}: {}", what,
                                        chunk ? "journals from " + journal_id_text(j)
                                              : journal_id_text(j)));
      }
    }
    // The failed statement was rolled back on its own and the transaction is
    // open: insert its rows one by one to name the journal at fault (the
    // caller rolls everything back).
    for (std::size_t k = 0; k < count; ++k) SETTLE_TRY(insert_rows(journals, from + k, 1, false, what));
    return sql_fail(rc, what);
  }

  // --- batches --------------------------------------------------------------

  Result<BatchSummary> summary_at(const Run& r, std::string_view what) const {
    BatchSummary s;
    s.key.merchant_id = MerchantId(std::string(r.text_at(0)));
    SETTLE_ASSIGN_OR_RETURN(s.key.batch_date, date_at(r, 1, what));
    s.key.currency = std::string(r.text_at(2));
    int c = 3;
    for (auto& t : s.totals.by_type) {
      t.count = r.int64_at(c++);
      t.amount = r.int64_at(c++);
      t.fees = r.int64_at(c++);
    }
    s.reserve_held = r.int64_at(c++);
    s.reserve_released = r.int64_at(c++);
    s.carried_in = r.int64_at(c++);
    s.net = r.int64_at(c++);
    s.payout = r.int64_at(c++);
    s.carry_out = r.int64_at(c++);
    SETTLE_ASSIGN_OR_RETURN(s.payout_date, date_at(r, c++, what));
    SETTLE_ASSERT(c == kBatchColumnCount, "batch columns and summary fields disagree");
    return s;
  }

  Result<std::optional<std::int64_t>> fence_of(const std::string& merchant,
                                               const std::string& currency,
                                               const std::string& date, std::string_view what) {
    Run r(get_fence);
    r.text(1, merchant);
    r.text(2, currency);
    r.text(3, date);
    const int rc = r.step();
    if (rc == SQLITE_DONE) return std::optional<std::int64_t>{};
    if (rc != SQLITE_ROW) return sql_fail(rc, what);
    return std::optional<std::int64_t>(r.int64_at(0));
  }

  Status raise_fence(const std::string& merchant, const std::string& currency,
                     const std::string& date, std::int64_t token, std::string_view what) {
    Run r(upsert_fence);
    r.text(1, merchant);
    r.text(2, currency);
    r.text(3, date);
    r.int64(4, token);
    const int rc = r.step();
    if (rc != SQLITE_DONE) return sql_fail(rc, what);
    return ok_status();
  }

  Result<CloseOutcome> close(const BatchSummary& s, std::span<const Date> released,
                             std::span<const Journal> journals, std::int64_t token,
                             const std::string& what);

  // post()'s transaction, under mu.
  Status post_locked(std::span<const Journal> journals, std::span<const Checkpoint> checkpoints,
                     std::vector<PostOutcome>& out, std::string_view what);

  // Reads journals, not the postings view: SQLite materializes the view
  // (three scans of journals and a sort) before it filters, while journals
  // in journal_id order can be read until `limit` postings are found. The
  // account filter names the account's ids, so that a journal is skipped
  // without looking at its legs' names.
  Result<const Stmt*> postings_stmt(unsigned mask) {
    Stmt& s = postings[mask];
    if (!s) {
      std::string sql =
          "SELECT j.merchant_id, j.ref, j.kind, j.currency, j.batch_date, j.settle_date, j.late, "
          "a1.name, j.leg1_amount, a2.name, j.leg2_amount, a3.name, j.leg3_amount "
          "FROM journals AS j "
          "JOIN accounts AS a1 ON a1.account_id = j.leg1_account "
          "JOIN accounts AS a2 ON a2.account_id = j.leg2_account "
          "LEFT JOIN accounts AS a3 ON a3.account_id = j.leg3_account WHERE 1 = 1";
      if ((mask & 1U) != 0) sql += " AND j.merchant_id = :merchant";
      if ((mask & 2U) != 0) {
        sql += " AND (j.leg1_account IN (SELECT account_id FROM accounts WHERE name = :account) "
               "OR j.leg2_account IN (SELECT account_id FROM accounts WHERE name = :account) "
               "OR j.leg3_account IN (SELECT account_id FROM accounts WHERE name = :account))";
      }
      if ((mask & 4U) != 0) sql += " AND j.settle_date >= :from";
      if ((mask & 8U) != 0) sql += " AND j.settle_date <= :to";
      sql += " ORDER BY j.journal_id";
      SETTLE_TRY(prepare(s, sql));
    }
    return &s;
  }
};

Result<CloseOutcome> SqliteLedger::Impl::close(const BatchSummary& s,
                                               std::span<const Date> released,
                                               std::span<const Journal> journals,
                                               std::int64_t token, const std::string& what) {
  const std::string& merchant = s.key.merchant_id.str();
  const std::string& currency = s.key.currency;
  const std::string date = format_date(s.key.batch_date);

  Txn txn(*this);
  SETTLE_TRY(txn.begin(what));

  SETTLE_ASSIGN_OR_RETURN(const auto fence, fence_of(merchant, currency, date, what));
  if (auto no = checks::fence_refusal(token, fence)) return refuse(*no, what);

  {
    Run r(get_batch);
    r.text(1, merchant);
    r.text(2, currency);
    r.text(3, date);
    const int rc = r.step();
    if (rc == SQLITE_ROW) {
      SETTLE_ASSIGN_OR_RETURN(const BatchSummary stored, summary_at(r, what));
      if (stored == s) return CloseOutcome::kAlreadyClosed;
      return refuse(checks::different_summary(stored, s), what);
    }
    if (rc != SQLITE_DONE) return sql_fail(rc, what);
  }

  {
    Run r(later_batch);
    r.text(1, merchant);
    r.text(2, currency);
    r.text(3, date);
    const int rc = r.step();
    if (rc == SQLITE_ROW) return refuse(checks::later_batch_closed(r.text_at(0)), what);
    if (rc != SQLITE_DONE) return sql_fail(rc, what);
  }

  {
    Run r(last_closed);
    r.text(1, merchant);
    r.text(2, currency);
    const int rc = r.step();
    std::optional<checks::LastClosed> last;
    if (rc == SQLITE_ROW) {
      last = checks::LastClosed{std::string(r.text_at(0)), r.int64_at(1)};
    } else if (rc != SQLITE_DONE) {
      return sql_fail(rc, what);
    }
    if (auto no = checks::carry_refusal(s.carried_in, last)) return refuse(*no, what);
  }

  checks::HoldReleases releases;
  for (const Date d : released) {
    if (auto no = releases.name(d)) return refuse(*no, what);
    const std::string hold = format_date(d);  // bound SQLITE_STATIC: lives until step()
    Run r(get_hold);
    r.text(1, merchant);
    r.text(2, currency);
    r.text(3, hold);
    const int rc = r.step();
    std::optional<checks::StoredHold> stored;
    if (rc == SQLITE_ROW) {
      stored = checks::StoredHold{r.int64_at(0), r.null_at(1) ? std::nullopt : std::optional<std::string>(r.text_at(1))};
    } else if (rc != SQLITE_DONE) {
      return sql_fail(rc, what);
    }
    if (auto no = releases.take(d, stored)) return refuse(*no, what);
  }
  if (auto no = releases.finish(s.reserve_released)) return refuse(*no, what);

  std::vector<PostOutcome> outcomes(journals.size(), PostOutcome::kPosted);
  SETTLE_TRY(insert_all(journals, outcomes, what));
  for (std::size_t i = 0; i < journals.size(); ++i) {
    if (outcomes[i] == PostOutcome::kConflict) return refuse(checks::journal_conflict(journals[i]), what);
  }
  SETTLE_TRY(apply_deltas(what));

  {
    Run r(insert_batch);
    const std::string payout_date = format_date(s.payout_date);
    const std::string closed_at = now_rfc3339();
    r.text(1, merchant);
    r.text(2, date);
    r.text(3, currency);
    int c = 4;
    for (const auto& t : s.totals.by_type) {
      r.int64(c++, t.count);
      r.int64(c++, t.amount);
      r.int64(c++, t.fees);
    }
    r.int64(c++, s.reserve_held);
    r.int64(c++, s.reserve_released);
    r.int64(c++, s.carried_in);
    r.int64(c++, s.net);
    r.int64(c++, s.payout);
    r.int64(c++, s.carry_out);
    r.text(c++, payout_date);
    SETTLE_ASSERT(c == kBatchColumnCount + 1, "batch columns and summary fields disagree");
    auto fees = checks::batch_fees(s);
    if (!fees.ok()) return fail(fees.error().code, what, fees.error().message);
    r.int64(c++, fees.value());
    r.int64(c++, token);
    r.text(c++, closed_at);
    const int rc = r.step();
    if (rc != SQLITE_DONE) return sql_fail(rc, what);
  }

  for (const std::string& hold : releases.dates()) {
    Run r(release_hold);
    r.text(1, merchant);
    r.text(2, currency);
    r.text(3, hold);
    r.text(4, date);
    const int rc = r.step();
    if (rc != SQLITE_DONE) return sql_fail(rc, what);
    if (sqlite3_changes(db) != 1) return corrupt(what, "hold " + hold + " vanished");
  }

  SETTLE_TRY(raise_fence(merchant, currency, date, token, what));
  SETTLE_TRY(txn.commit(what));
  return CloseOutcome::kClosed;
}

// ---------------------------------------------------------------------------

SqliteLedger::SqliteLedger(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SqliteLedger::~SqliteLedger() = default;

Result<std::unique_ptr<SqliteLedger>> SqliteLedger::open(const SqliteLedgerOptions& options) {
  const std::string path = options.path.string();
  if (path.empty()) return make_error(ErrorCode::kInvalidArgument, "ledger: no path given");
  if (options.cache_kib <= 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("ledger {}: cache_kib must be > 0", path));
  }
  if (options.background_checkpoint_bytes <= 0 || options.checkpoint_wal_bytes < options.background_checkpoint_bytes) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("ledger {}: checkpoint sizes must be > 0, background_checkpoint_bytes "
                                  "at most checkpoint_wal_bytes", path));
  }
  // Memory statistics (sqlite3_memory_used()) take a global mutex on every
  // allocation SQLite makes, several per inserted row; the ledger does not
  // read them. This must precede SQLite's initialization: when another part
  // of the process has used SQLite already, it is refused and changes nothing.
  static std::once_flag sqlite_config_once;
  std::call_once(sqlite_config_once, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });

  auto impl = std::make_unique<Impl>();
  impl->path = path;
  const int rc = sqlite3_open_v2(path.c_str(), &impl->db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                 nullptr);
  if (rc != SQLITE_OK) {
    const char* why = impl->db != nullptr ? sqlite3_errmsg(impl->db) : sqlite3_errstr(rc);
    return make_error(ErrorCode::kIo, fmt::format("ledger {}: open: sqlite: {}", path, why));
  }
  sqlite3_extended_result_codes(impl->db, 1);
  // Another process may hold the write lock for a while (a checkpoint, a big
  // post); waiting is better than failing at once.
  sqlite3_busy_timeout(impl->db, 5000);

  // The schema's REFERENCES clauses are not enforced per row on this
  // connection: every leg's account id comes from the account cache, which
  // holds only accounts stored or created by the open transaction (abort()
  // evicts the latter), and apply_deltas() refuses a call whose update of a
  // touched account changes no row. That is the same check, once per account
  // and call instead of three parent-row lookups per journal (8% of the
  // 1M-event settle). Other connections (the sqlite3 shell, the tests) can
  // still enforce them, and `PRAGMA foreign_key_check` reports a violation.
  SETTLE_TRY(impl->exec("PRAGMA foreign_keys = OFF", "open"));
  // Only for a new file (the page size of an existing one is fixed). Larger
  // pages than the default 4 KiB mean fewer B-tree splits and WAL frames per
  // inserted journal; point reads are not the ledger's hot path.
  SETTLE_TRY(impl->exec("PRAGMA page_size = 16384", "open"));
  {
    // journal_mode answers with the mode it is in; a file that cannot do WAL
    // (e.g. on a network file system) answers something else.
    Stmt q;
    SETTLE_TRY(impl->prepare(q, "PRAGMA journal_mode = WAL"));
    Run r(q);
    const int step = r.step();
    if (step != SQLITE_ROW) return impl->sql_fail(step, "open: set WAL mode");
    if (r.text_at(0) != "wal") {
      return impl->fail(ErrorCode::kIo, "open",
                        fmt::format("cannot use WAL mode (journal_mode is {})", r.text_at(0)));
    }
  }
  impl->sync_full = options.synchronous == Synchronous::kFull;
  SETTLE_TRY(impl->set_synchronous(impl->sync_full, "open"));
  SETTLE_TRY(impl->exec(fmt::format("PRAGMA cache_size = -{}", options.cache_kib).c_str(), "open"));
  SETTLE_TRY(impl->exec("PRAGMA temp_store = MEMORY", "open"));
  SETTLE_TRY(impl->ensure_schema());
  SETTLE_TRY(impl->prepare_all());
  SETTLE_TRY(impl->start_checkpointer(options));
  return std::unique_ptr<SqliteLedger>(new SqliteLedger(std::move(impl)));
}

std::uint64_t SqliteLedger::background_checkpoints() const {
  return impl_->ckpt.runs.load(std::memory_order_relaxed);
}

Result<std::vector<PostOutcome>> SqliteLedger::post(std::span<const Journal> journals,
                                                    std::span<const Checkpoint> checkpoints) {
  return post_pipelined(journals, checkpoints, [] {});
}

Result<std::vector<PostOutcome>> SqliteLedger::post_pipelined(std::span<const Journal> journals,
                                                              std::span<const Checkpoint> checkpoints,
                                                              const std::function<void()>& committed) {
  Impl& d = *impl_;
  constexpr std::string_view kWhat = "post";
  for (const Journal& j : journals) {
    if (auto s = validate_journal(j); !s.ok()) {
      return d.fail(ErrorCode::kInvalidArgument, kWhat, s.error().message);
    }
  }
  for (const Checkpoint& c : checkpoints) {
    if (c.consumer.empty()) {
      return d.fail(ErrorCode::kInvalidArgument, kWhat, "a checkpoint names no consumer");
    }
  }
  if (journals.size() > UINT32_MAX) {
    return d.fail(ErrorCode::kInvalidArgument, kWhat, "too many journals in one call");
  }
  std::vector<PostOutcome> out(journals.size(), PostOutcome::kPosted);
  if (journals.empty() && checkpoints.empty()) {
    committed();
    return out;
  }
  SETTLE_TRY(d.check_not_broken());

  // The commit is not fsynced by SQLite (synchronous = NORMAL for this
  // transaction); the WAL is fsynced below, once the connection is free for
  // the next call.
  std::uint64_t commit_no = 0;
  {
    std::lock_guard lock(d.mu);
    SETTLE_TRY(d.unsynced(kWhat, [&] { return d.post_locked(journals, checkpoints, out, kWhat); }));
    commit_no = d.commits.fetch_add(1, std::memory_order_acq_rel) + 1;
  }
  committed();
  if (d.sync_full) SETTLE_TRY(d.sync_wal(commit_no, kWhat));
  return out;
}

Status SqliteLedger::Impl::post_locked(std::span<const Journal> journals,
                                       std::span<const Checkpoint> checkpoints,
                                       std::vector<PostOutcome>& out, std::string_view what) {
  Impl& d = *this;
  Impl::Txn txn(d);
  SETTLE_TRY(txn.begin(what));
  SETTLE_TRY(d.insert_all(journals, out, what));
  SETTLE_TRY(d.apply_deltas(what));
  for (const Checkpoint& c : checkpoints) {
    // The successor of the stored version: an update of version - 1, or the
    // first write (version 1) of a checkpoint none has written.
    bool written = false;
    for (Stmt* stmt : {&d.update_checkpoint, &d.insert_checkpoint}) {
      if (stmt == &d.insert_checkpoint && c.version != 1) break;
      Run r(*stmt);
      r.text(1, c.consumer);
      r.int64(2, c.partition);
      r.int64(3, c.next_offset);
      r.blob(4, c.state.data(), c.state.size());
      r.int64(5, c.version);
      const int rc = r.step();
      if (rc != SQLITE_DONE) {
        return d.sql_fail(rc, fmt::format("{}: checkpoint {}/{}", what, c.consumer, c.partition));
      }
      if (sqlite3_changes(d.db) == 1) {
        written = true;
        break;
      }
    }
    if (!written) return checks::checkpoint_fenced(c);
  }
  return txn.commit(what);
}

Result<std::optional<Checkpoint>> SqliteLedger::checkpoint(std::string_view consumer,
                                                           std::int32_t partition) {
  Impl& d = *impl_;
  std::lock_guard lock(d.mu);
  Run r(d.get_checkpoint);
  r.text(1, consumer);
  r.int64(2, partition);
  const int rc = r.step();
  if (rc == SQLITE_DONE) return std::optional<Checkpoint>{};
  if (rc != SQLITE_ROW) {
    return d.sql_fail(rc, fmt::format("read checkpoint {}/{}", consumer, partition));
  }
  Checkpoint c;
  c.consumer = std::string(consumer);
  c.partition = partition;
  c.next_offset = r.int64_at(0);
  c.state = std::string(r.blob_at(1));
  c.version = r.int64_at(2);
  return std::optional<Checkpoint>(std::move(c));
}

Result<model::ControlTotals> SqliteLedger::settling_totals(const BatchKey& key) {
  Impl& d = *impl_;
  if (auto s = check_key(key); !s.ok()) {
    return d.fail(ErrorCode::kInvalidArgument, "settling totals", s.error().message);
  }
  const std::string what = "settling totals " + key.to_string();
  const std::string date = format_date(key.batch_date);
  std::lock_guard lock(d.mu);
  Run r(d.settling);
  r.text(1, key.merchant_id.view());
  r.text(2, key.currency);
  r.text(3, date);
  model::ControlTotals totals;
  int rc = SQLITE_ROW;
  while ((rc = r.step()) == SQLITE_ROW) {
    const auto type = model::event_type_from_name(r.text_at(0));
    if (!type) return d.corrupt(what, fmt::format("unknown event kind '{}'", r.text_at(0)));
    model::TypeTotals& t = totals.of(*type);
    t.count = r.int64_at(1);
    t.amount = r.int64_at(2);
    t.fees = r.int64_at(3);
  }
  if (rc != SQLITE_DONE) return d.sql_fail(rc, what);
  return totals;
}

Result<BatchHistory> SqliteLedger::batch_history(std::string_view merchant_id,
                                                 std::string_view currency) {
  Impl& d = *impl_;
  const std::string what = fmt::format("batch history {}/{}", merchant_id, currency);
  std::lock_guard lock(d.mu);
  BatchHistory h;
  {
    Run r(d.last_closed);
    r.text(1, merchant_id);
    r.text(2, currency);
    const int rc = r.step();
    if (rc == SQLITE_ROW) {
      SETTLE_ASSIGN_OR_RETURN(h.last_closed, d.date_at(r, 0, what));
      h.carry_out = r.int64_at(1);
    } else if (rc != SQLITE_DONE) {
      return d.sql_fail(rc, what);
    }
  }
  Run r(d.holds);
  r.text(1, merchant_id);
  r.text(2, currency);
  int rc = SQLITE_ROW;
  while ((rc = r.step()) == SQLITE_ROW) {
    BatchHistory::Hold hold;
    SETTLE_ASSIGN_OR_RETURN(hold.batch_date, d.date_at(r, 0, what));
    hold.amount = r.int64_at(1);
    h.unreleased.push_back(hold);
  }
  if (rc != SQLITE_DONE) return d.sql_fail(rc, what);
  return h;
}

Status SqliteLedger::register_fence(const BatchKey& key, std::uint64_t token) {
  Impl& d = *impl_;
  if (auto s = check_key(key); !s.ok()) {
    return d.fail(ErrorCode::kInvalidArgument, "register fence", s.error().message);
  }
  const std::string what = "register fence " + key.to_string();
  if (token > static_cast<std::uint64_t>(INT64_MAX)) {
    return d.fail(ErrorCode::kInvalidArgument, what, "fencing token above 2^63-1");
  }
  const auto signed_token = static_cast<std::int64_t>(token);
  const std::string date = format_date(key.batch_date);
  SETTLE_TRY(d.check_not_broken());
  std::lock_guard lock(d.mu);
  // The registration's commit is not fsynced on its own: it only matters to
  // the close that follows it, and the WAL is appended in order, so whatever
  // makes that close durable (its own fsync, or sync() after a deferred one)
  // makes the registration durable too. A power loss before that loses a
  // registration that no close relied on. One fsync less per batch.
  return d.unsynced(what, [&]() -> Status {
    Impl::Txn txn(d);
    SETTLE_TRY(txn.begin(what));
    SETTLE_ASSIGN_OR_RETURN(const auto fence,
                            d.fence_of(key.merchant_id.str(), key.currency, date, what));
    if (fence && *fence > signed_token) {
      return d.fail(ErrorCode::kFenced, what,
                    fmt::format("token {} is below the registered {}", token, *fence));
    }
    SETTLE_TRY(d.raise_fence(key.merchant_id.str(), key.currency, date, signed_token, what));
    return txn.commit(what);
  });
}

Result<CloseOutcome> SqliteLedger::close_batch(const BatchSummary& summary,
                                               std::span<const Date> released,
                                               std::span<const Journal> journals,
                                               std::uint64_t fencing_token) {
  return close_batch_with(summary, released, journals, fencing_token, false);
}

Result<CloseOutcome> SqliteLedger::close_batch_deferred(const BatchSummary& summary,
                                                        std::span<const Date> released,
                                                        std::span<const Journal> journals,
                                                        std::uint64_t fencing_token) {
  return close_batch_with(summary, released, journals, fencing_token, true);
}

Status SqliteLedger::sync() {
  Impl& d = *impl_;
  if (!d.sync_full) return ok_status();
  return d.sync_wal(d.commits.load(std::memory_order_acquire), "sync");
}

Result<CloseOutcome> SqliteLedger::close_batch_with(const BatchSummary& summary,
                                                    std::span<const Date> released,
                                                    std::span<const Journal> journals,
                                                    std::uint64_t fencing_token, bool deferred) {
  Impl& d = *impl_;
  if (auto s = check_key(summary.key); !s.ok()) {
    return d.fail(ErrorCode::kInvalidArgument, "close batch", s.error().message);
  }
  const std::string what = "close batch " + summary.key.to_string();
  if (auto s = checks::validate_close(summary, released, journals, fencing_token); !s.ok()) {
    return d.fail(ErrorCode::kInvalidArgument, what, s.error().message);
  }
  SETTLE_TRY(d.check_not_broken());
  std::lock_guard lock(d.mu);
  const auto close = [&] {
    return d.close(summary, released, journals, static_cast<std::int64_t>(fencing_token), what);
  };
  if (!deferred) return close();
  // Counted like post_pipelined()'s commits, which sync() waits for.
  auto closed = d.unsynced(what, close);
  if (closed.ok()) d.commits.fetch_add(1, std::memory_order_acq_rel);
  return closed;
}

Result<std::vector<BatchSummary>> SqliteLedger::closed_batches(const BatchQuery& query) {
  Impl& d = *impl_;
  constexpr std::string_view kWhat = "closed batches";
  const std::string from = bound_text(query.from);
  const std::string to = bound_text(query.to);
  std::lock_guard lock(d.mu);
  Run r(d.closed_batches);
  if (query.merchant_id) {
    r.text(1, *query.merchant_id);
  } else {
    r.null(1);
  }
  if (query.from) {
    r.text(2, from);
  } else {
    r.null(2);
  }
  if (query.to) {
    r.text(3, to);
  } else {
    r.null(3);
  }
  std::vector<BatchSummary> out;
  int rc = SQLITE_ROW;
  while ((rc = r.step()) == SQLITE_ROW) {
    SETTLE_ASSIGN_OR_RETURN(BatchSummary s, d.summary_at(r, kWhat));
    out.push_back(std::move(s));
  }
  if (rc != SQLITE_DONE) return d.sql_fail(rc, kWhat);
  return out;
}

Result<std::vector<Balance>> SqliteLedger::balances(std::optional<std::string_view> merchant_id) {
  Impl& d = *impl_;
  constexpr std::string_view kWhat = "balances";
  // Every account of merchant m1 starts "merchant:m1:" (the colon keeps m10 out).
  const std::string prefix =
      merchant_id ? fmt::format("merchant:{}:", *merchant_id) : std::string();
  std::lock_guard lock(d.mu);
  Run r(d.balances);
  if (merchant_id) {
    r.text(1, prefix);
  } else {
    r.null(1);
  }
  std::vector<Balance> out;
  int rc = SQLITE_ROW;
  while ((rc = r.step()) == SQLITE_ROW) {
    Balance b;
    b.account = std::string(r.text_at(0));
    b.currency = std::string(r.text_at(1));
    b.balance = r.int64_at(2);
    b.postings = r.int64_at(3);
    out.push_back(std::move(b));
  }
  if (rc != SQLITE_DONE) return d.sql_fail(rc, kWhat);
  return out;
}

Result<std::vector<TrialBalance>> SqliteLedger::trial_balance() {
  Impl& d = *impl_;
  constexpr std::string_view kWhat = "trial balance";
  std::lock_guard lock(d.mu);
  Run r(d.trial_balance);
  std::vector<TrialBalance> out;
  int rc = SQLITE_ROW;
  while ((rc = r.step()) == SQLITE_ROW) {
    const __int128 debits = static_cast<__int128>(r.int64_at(1)) + r.int64_at(2) + r.int64_at(3);
    const __int128 credits = static_cast<__int128>(r.int64_at(4)) + r.int64_at(5) + r.int64_at(6);
    const __int128 net = debits + credits;
    for (const __int128 v : {debits, credits, net}) {
      if (v > INT64_MAX || v < INT64_MIN) {
        return d.fail(ErrorCode::kOverflow, kWhat,
                      fmt::format("the {} postings add up beyond int64", r.text_at(0)));
      }
    }
    TrialBalance t;
    t.currency = std::string(r.text_at(0));
    t.debits = static_cast<Minor>(debits);
    t.credits = static_cast<Minor>(credits);
    t.net = static_cast<Minor>(net);
    out.push_back(std::move(t));
  }
  if (rc != SQLITE_DONE) return d.sql_fail(rc, kWhat);
  return out;
}

Result<std::vector<PostingRow>> SqliteLedger::postings(const PostingQuery& query) {
  Impl& d = *impl_;
  constexpr std::string_view kWhat = "postings";
  const unsigned mask = (query.merchant_id ? 1U : 0U) | (query.account ? 2U : 0U) |
                        (query.settle_from ? 4U : 0U) | (query.settle_to ? 8U : 0U);
  const std::string from = bound_text(query.settle_from);
  const std::string to = bound_text(query.settle_to);
  std::vector<PostingRow> out;
  if (query.limit == 0) return out;
  std::lock_guard lock(d.mu);
  SETTLE_ASSIGN_OR_RETURN(const Stmt* stmt, d.postings_stmt(mask));
  Run r(*stmt);
  if (query.merchant_id) r.text(r.named(":merchant"), *query.merchant_id);
  if (query.account) r.text(r.named(":account"), *query.account);
  if (query.settle_from) r.text(r.named(":from"), from);
  if (query.settle_to) r.text(r.named(":to"), to);
  int rc = SQLITE_ROW;
  while (out.size() < query.limit && (rc = r.step()) == SQLITE_ROW) {
    for (int leg = 0; leg < static_cast<int>(model::kMaxLegs) && out.size() < query.limit; ++leg) {
      const int name_col = 7 + 2 * leg;
      if (r.null_at(name_col)) continue;
      const std::string_view account = r.text_at(name_col);
      if (query.account && account != *query.account) continue;
      PostingRow p;
      p.merchant_id = std::string(r.text_at(0));
      p.ref = std::string(r.text_at(1));
      p.kind = std::string(r.text_at(2));
      p.currency = std::string(r.text_at(3));
      SETTLE_ASSIGN_OR_RETURN(p.batch_date, d.date_at(r, 4, kWhat));
      SETTLE_ASSIGN_OR_RETURN(p.settle_date, d.date_at(r, 5, kWhat));
      p.late = r.int64_at(6) != 0;
      p.account = std::string(account);
      p.amount = r.int64_at(name_col + 1);
      out.push_back(std::move(p));
    }
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return d.sql_fail(rc, kWhat);
  return out;
}

}  // namespace settle::ledger
