// settle_bench: N generated events through `settled settle` end to end
// (parse, bus append, processor, ledger, worker, report). Prints events/s and
// the child's peak RSS for each size, so that RSS independence from the event
// count is visible, and beside each size up to 2M the baseline: reading and
// parsing the same file with simdjson alone (every field of every event read).
//
// At the 1M-event target it also posts the same events' journals to a
// SqliteLedger alone (no bus, parsing or worker in the timed part), in the
// processor's chunks: the storage step the whole pipeline cannot go below.
//
// Usage: settle_bench [--fsync-only] [--open-batches] [events...]
//   events          sizes to run (default 100000 1000000)
//   --fsync-only    only the durable mode (fsync every append, ledger full)
//   --open-batches  also measure RSS per open batch: 200k events left open
//                   over 30 days and over 3,000 days (600 vs 60,000 batches)
// Prints bench/run's ROW lines (bench/row.h).
#include <fmt/format.h>
#include <simdjson.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "app/runtime.h"
#include "ledger/sqlite_ledger.h"
#include "model/event_json.h"
#include "model/merchant_json.h"
#include "processor/stream_processor.h"
#include "row.h"
#include "rules/rules.h"
#include "workload.h"

namespace {

namespace fs = std::filesystem;
using namespace settle;
using settle::bench::print_row;
using settle::bench::write_inputs;

constexpr double kTargetEventsPerSecond = 250'000;
constexpr std::int64_t kTargetEvents = 1'000'000;  // the run the target is for

struct Figures {
  double seconds;
  long max_rss_kib;
  int exit_code;
};

Figures run_settle(const fs::path& dir, const std::string& through, const std::vector<std::string>& extra) {
  std::vector<std::string> args = {SETTLED_BIN, "settle", "--quiet", "--merchants", (dir / "merchants.ndjson").string(),
                                   "--events", (dir / "events.ndjson").string(), "--through", through,
                                   "--data-dir", (dir / "data").string()};
  args.insert(args.end(), extra.begin(), extra.end());
  fs::remove_all(dir / "data");
  std::fflush(stdout);  // or the child's freopen() flushes our buffered lines a second time
  const auto t0 = std::chrono::steady_clock::now();
  const pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (!freopen("/dev/null", "w", stdout)) _exit(127);
    execv(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  rusage usage{};
  wait4(pid, &status, 0, &usage);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fs::remove_all(dir / "data");
  return Figures{s, usage.ru_maxrss, WIFEXITED(status) ? WEXITSTATUS(status) : -1};
}

// The baseline: load the file and read every field of every event with
// simdjson's streaming parser, nothing else. Returns events/s, or < 0 on error.
double simdjson_baseline(const fs::path& file, std::int64_t expected) {
  const auto t0 = std::chrono::steady_clock::now();
  simdjson::padded_string json;
  if (simdjson::padded_string::load(file.string()).get(json)) return -1;
  simdjson::ondemand::parser parser;
  simdjson::ondemand::document_stream stream;
  if (parser.iterate_many(json, 1 << 20).get(stream)) return -1;
  std::int64_t events = 0, amounts = 0;
  std::size_t id_bytes = 0;
  for (auto doc : stream) {
    std::string_view s;
    std::int64_t amount = 0;
    if (doc["event_id"].get_string().get(s)) return -1;
    id_bytes += s.size();
    if (doc["merchant_id"].get_string().get(s)) return -1;
    id_bytes += s.size();
    if (doc["type"].get_string().get(s)) return -1;
    if (doc["amount"].get_int64().get(amount)) return -1;
    if (doc["currency"].get_string().get(s)) return -1;
    if (doc["occurred_at"].get_string().get(s)) return -1;
    amounts += amount;
    ++events;
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (events != expected || id_bytes == 0 || amounts == 0) return -1;
  return static_cast<double>(events) / s;
}

// The ledger alone: the journals the processor would make of dir's events
// (each with a trace id, as ingestion gives every record one), posted to a new
// SqliteLedger with the settle's options, chunk_records a call, each with a
// checkpoint, pipelined as the processor posts them (a call inserts while the
// one before waits for the disk). Only the posting is timed. Returns
// journals/s, or < 0 on error (printed).
double ledger_alone(const fs::path& dir) {
  auto fail = [](const std::string& why) {
    std::fprintf(stderr, "settle_bench: ledger alone: %s\n", why.c_str());
    return -1.0;
  };
  std::stringstream merchants_text;
  merchants_text << std::ifstream(dir / "merchants.ndjson").rdbuf();
  auto merchants = model::parse_merchant_list(merchants_text.str(), "merchants.ndjson");
  if (!merchants.ok()) return fail(merchants.error().message);
  std::unordered_map<std::string, const model::Merchant*> by_id;
  for (const auto& m : *merchants) by_id[m.id.str()] = &m;

  std::vector<model::Journal> journals;
  model::EventParser parser;
  model::Event ev;
  std::ifstream events(dir / "events.ndjson");
  std::mt19937_64 rng(7);
  for (std::string line; std::getline(events, line);) {
    if (Status parsed = parser.parse_into(line, ev); !parsed.ok()) return fail(parsed.error().message);
    const auto m = by_id.find(ev.merchant_id.str());
    if (m == by_id.end()) return fail("unknown merchant " + ev.merchant_id.str());
    const Date batch = rules::batch_date_of(*m->second, ev.occurred_at);
    model::Journal& j = journals.emplace_back();
    if (Status made = rules::assign_event_journal(j, ev, *m->second, batch, batch, false); !made.ok()) {
      return fail(made.error().message);
    }
    j.trace_id = fmt::format("{:016x}{:016x}", rng(), rng());
  }

  const fs::path ledger_dir = dir / "ledger-alone";
  fs::create_directories(ledger_dir);
  const app::RuntimeOptions settle_defaults;  // what `settled settle` opens its ledger with
  ledger::SqliteLedgerOptions options;
  options.path = ledger_dir / "ledger.db";
  options.synchronous = settle_defaults.ledger_sync;
  options.cache_kib = settle_defaults.ledger_cache_kib;
  double seconds = 0;
  {
    auto ledger = ledger::SqliteLedger::open(options);
    if (!ledger.ok()) return fail(ledger.error().message);
    const std::size_t chunk = processor::ProcessorOptions{}.chunk_records;
    const std::size_t calls = (journals.size() + chunk - 1) / chunk;
    std::vector<ledger::Checkpoint> checkpoints(calls);
    std::vector<std::promise<void>> committed(calls);
    using Outcomes = Result<std::vector<ledger::PostOutcome>>;
    auto check = [](std::future<Outcomes>& f) -> std::string {
      auto outcomes = f.get();
      if (!outcomes.ok()) return outcomes.error().message;
      for (const ledger::PostOutcome o : *outcomes) {
        if (o != ledger::PostOutcome::kPosted) return "a journal was not posted as new";
      }
      return "";
    };
    const auto t0 = std::chrono::steady_clock::now();
    std::future<Outcomes> previous;
    for (std::size_t call = 0; call < calls; ++call) {
      const std::size_t from = call * chunk;
      const std::span<const model::Journal> part =
          std::span(journals).subspan(from, std::min(chunk, journals.size() - from));
      checkpoints[call] = ledger::Checkpoint{"bench", 0, static_cast<std::int64_t>(from + part.size()), "",
                                             static_cast<std::int64_t>(call + 1)};
      // As the pipelined processor does: the next call starts once this one
      // has committed, and inserts while this one waits for the disk.
      std::future<Outcomes> current = std::async(std::launch::async, [&, call, part] {
        bool signalled = false;
        const auto signal = [&] {
          if (!signalled) committed[call].set_value();
          signalled = true;
        };
        auto out = (*ledger)->post_pipelined(part, std::span(&checkpoints[call], 1), signal);
        signal();
        return out;
      });
      committed[call].get_future().wait();
      if (previous.valid()) {
        if (const std::string why = check(previous); !why.empty()) return fail(why);
      }
      previous = std::move(current);
    }
    if (previous.valid()) {
      if (const std::string why = check(previous); !why.empty()) return fail(why);
    }
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  fs::remove_all(ledger_dir);
  const double rate = static_cast<double>(journals.size()) / seconds;
  std::printf("ledger alone: %zu journals posted to SQLite in %.2f s (%.0f journals/s)\n", journals.size(), seconds,
              rate);
  return rate;
}

// ledger_alone() in a child process, so that the million journals it holds
// do not stay in this process's heap (freed, but not given back to the
// system): every settled forked afterwards would count them in its peak RSS,
// which includes the moment between its fork and its exec.
double ledger_alone_in_child(const fs::path& dir) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    close(fds[0]);
    const double rate = ledger_alone(dir);
    std::fflush(stdout);
    const bool sent = write(fds[1], &rate, sizeof rate) == static_cast<ssize_t>(sizeof rate);
    _exit(sent && rate > 0 ? 0 : 1);
  }
  close(fds[1]);
  double rate = -1;
  if (read(fds[0], &rate, sizeof rate) != static_cast<ssize_t>(sizeof rate)) rate = -1;
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? rate : -1;
}

std::string mib(long kib) { return fmt::format("{:.1f} MiB", static_cast<double>(kib) / 1024.0); }

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::int64_t> sizes;
  bool fsync_only = false, open_batches = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--fsync-only") == 0) {
      fsync_only = true;
    } else if (std::strcmp(argv[i], "--open-batches") == 0) {
      open_batches = true;
    } else if (argv[i][0] >= '1' && argv[i][0] <= '9') {
      sizes.push_back(std::stoll(argv[i]));
    } else {
      std::fprintf(stderr, "usage: settle_bench [--fsync-only] [--open-batches] [events...]\n");
      return 2;
    }
  }
  if (sizes.empty()) sizes = {100'000, 1'000'000};
  const fs::path root = fs::temp_directory_path() / fmt::format("settle-bench-{}", getpid());
  std::printf("%-10s %-34s %10s %14s %12s\n", "events", "durability", "seconds", "events/s", "peak RSS");

  for (std::int64_t n : sizes) {
    const fs::path dir = root / std::to_string(n);
    fs::create_directories(dir);
    write_inputs(dir, n);
    const double baseline = n <= 2'000'000 ? simdjson_baseline(dir / "events.ndjson", n) : 0;
    if (baseline < 0) {
      std::fprintf(stderr, "settle_bench: the simdjson baseline could not read %s\n", (dir / "events.ndjson").c_str());
      return 1;
    }
    struct Mode {
      const char* name;
      std::vector<std::string> flags;
    };
    std::vector<Mode> modes = {{"fsync every append, ledger full", {}}};
    if (!fsync_only) modes.push_back({"no fsync, ledger normal", {"--fsync", "none", "--ledger-sync", "normal"}});
    for (const Mode& mode : modes) {
      const Figures f = run_settle(dir, "2026-03-31", mode.flags);
      if (f.exit_code != 0) {
        std::fprintf(stderr, "settled exited with %d\n", f.exit_code);
        return 1;
      }
      const double rate = static_cast<double>(n) / f.seconds;
      std::printf("%-10lld %-34s %10.2f %14.0f %12s\n", static_cast<long long>(n), mode.name, f.seconds, rate,
                  mib(f.max_rss_kib).c_str());
      std::fflush(stdout);
      if (&mode == &modes.front()) {
        const std::string measure = fmt::format("embedded settle, {} events, end to end (events/s)", n);
        // The target is the 1M-event run's; the other sizes show how the
        // cost grows (a 100k run is mostly start-up and the final closes).
        const bool target_run = n == kTargetEvents;
        print_row(measure, fmt::format("{:.0f}", rate), baseline > 0 ? fmt::format("{:.0f} simdjson", baseline) : "",
                  bench::ratio_text(rate, baseline), target_run ? ">= 250k events/s" : "(the target is at 1M)",
                  target_run ? bench::met(rate >= kTargetEventsPerSecond) : "");
        print_row(fmt::format("embedded settle, {} events: time, peak RSS", n),
                  fmt::format("{:.1f} s, {}", f.seconds, mib(f.max_rss_kib)), "", "", "RSS flat in event count", "");
        if (target_run) {
          const double alone = ledger_alone_in_child(dir);
          if (alone < 0) return 1;
          // The settle's rate against its storage step's alone: what the
          // rest of the pipeline costs on top of the ledger's writes.
          print_row(fmt::format("SQLite ledger alone, the same {} journals (journals/s)", n),
                    fmt::format("{:.0f}", alone), "", bench::ratio_text(rate, alone) + " settle/ledger",
                    "(bounds the settle)", "");
        }
      }
    }
    fs::remove_all(dir);
  }
  if (open_batches) {
    // The same 200k events spread over 30 days and over 3,000 days, with a
    // through date before the first event: nothing closes, so the second run
    // holds 100 times the open batches of the first (20 merchants a day each).
    constexpr std::int64_t kEvents = 200'000, kMerchants = 20;
    long rss[2] = {0, 0};
    const std::int64_t spans[2] = {30, 3000};
    for (int k = 0; k < 2; ++k) {
      const fs::path dir = root / fmt::format("open-{}", spans[k]);
      fs::create_directories(dir);
      write_inputs(dir, kEvents, spans[k]);
      const Figures f = run_settle(dir, "2026-02-27", {"--fsync", "none", "--ledger-sync", "normal"});
      if (f.exit_code != 0) {
        std::fprintf(stderr, "settled exited with %d (open batches)\n", f.exit_code);
        return 1;
      }
      rss[k] = f.max_rss_kib;
      std::printf("open batches: %lld events over %lld days, ~%lld open batches: peak RSS %s\n",
                  static_cast<long long>(kEvents), static_cast<long long>(spans[k]),
                  static_cast<long long>(kMerchants * spans[k]), mib(f.max_rss_kib).c_str());
      fs::remove_all(dir);
    }
    const double per_batch = static_cast<double>(rss[1] - rss[0]) * 1024.0 /
                             static_cast<double>(kMerchants * (spans[1] - spans[0]));
    print_row("RSS per open batch (bytes; 600 vs 60,000 open)", fmt::format("{:.0f}", per_batch), "", "",
              "flat in event count", "");
  }
  fs::remove_all(root);
  return 0;
}
