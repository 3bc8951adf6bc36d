// settled settle | demo | report | balances: the embedded default.
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>

#include "app/cli.h"
#include "app/role_flags.h"
#include "app/demo.h"
#include "app/runtime.h"
#include "app/offline_settle.h"
#include "model/merchant_json.h"

namespace settle::app {
namespace {

namespace fs = std::filesystem;

// A temporary data directory removed when the command ends.
struct ScratchDir {
  fs::path path;
  ScratchDir() {
    std::random_device rd;
    path = fs::temp_directory_path() / fmt::format("settled-{}-{:x}", ::getpid(), rd());
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// settle and demo take the roles' options (role_flags.h): the embedded
// default, or production backends by URL (--bus, --store, --ledger, --config).
using CommonFlags = RoleFlags;

Result<app::Runtime> open_runtime(const CommonFlags& flags, const fs::path& dir) {
  SETTLE_ASSIGN_OR_RETURN(app::RuntimeOptions options, runtime_options(flags));
  options.data_dir = dir;
  return app::Runtime::open(options);
}

void print_summary(const app::SettleStats& s) {
  std::fprintf(stderr,
               "settled: %lld lines: %lld accepted, %lld invalid; %lld posted, %lld duplicates, %lld conflicts, "
               "%lld late; %lld batches closed, %lld failed; %.2f s\n",
               static_cast<long long>(s.lines), static_cast<long long>(s.accepted),
               static_cast<long long>(s.invalid), static_cast<long long>(s.posted),
               static_cast<long long>(s.duplicates), static_cast<long long>(s.conflicts),
               static_cast<long long>(s.late), static_cast<long long>(s.batches_closed),
               static_cast<long long>(s.tasks_failed), s.seconds);
}

int run_settle(const CommonFlags& flags, const std::string& merchants_file, const std::string& events_file,
               const std::string& through_text, bool no_progress, bool quiet) {
  auto through = parse_date(through_text);
  if (!through.ok()) return fatal("--through: " + through.error().message);
  auto merchants_text = read_file(merchants_file);
  if (!merchants_text.ok()) return fatal(merchants_text.error().message);
  auto merchants = model::parse_merchant_list(*merchants_text, merchants_file);
  if (!merchants.ok()) return fatal(merchants.error().message);

  std::optional<ScratchDir> scratch;
  fs::path dir = flags.data_dir;
  if (dir.empty()) {
    scratch.emplace();
    dir = scratch->path;
  }
  auto rt = open_runtime(flags, dir);
  if (!rt.ok()) return fatal(rt.error().message);

  app::SettleOptions so;
  so.events_file = events_file;
  so.through = *through;
  so.progress = !no_progress && !quiet && ::isatty(STDERR_FILENO);
  auto stats = app::settle_file(*rt, *merchants, so, std::cerr);
  if (!stats.ok()) return fatal(stats.error().message);
  auto csv = app::report_csv(*rt->ledger);
  if (!csv.ok()) return fatal(csv.error().message);
  std::fwrite(csv->data(), 1, csv->size(), stdout);
  std::fflush(stdout);
  if (!quiet) print_summary(*stats);
  return stats->clean() ? kExitOk : kExitRejected;
}

int run_demo(CommonFlags flags, int events_per_day, std::uint64_t seed) {
  const fs::path dir = flags.data_dir.empty() ? fs::path("settled-demo") : fs::path(flags.data_dir);
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_empty(dir, ec)) {
    if (!fs::exists(dir / ".settled-demo", ec)) {
      return fatal(fmt::format("{} exists and is not a demo directory; pass --data-dir with a new path",
                               dir.string()));
    }
    fs::remove_all(dir, ec);
  }
  fs::create_directories(dir, ec);
  std::ofstream(dir / ".settled-demo") << "created by settled demo; removed by the next demo run\n";

  const app::Sample sample = app::make_sample(seed, events_per_day);
  const fs::path merchants_file = dir / "merchants.json";
  const fs::path events_file = dir / "events.ndjson";
  std::ofstream(merchants_file) << sample.merchants_json;
  std::ofstream(events_file) << sample.events_ndjson;

  auto rt = open_runtime(flags, dir);
  if (!rt.ok()) return fatal(rt.error().message);
  app::SettleOptions so;
  so.events_file = events_file;
  so.through = sample.through;
  std::ostringstream diagnostics;
  auto stats = app::settle_file(*rt, sample.merchants, so, diagnostics);
  if (!stats.ok()) return fatal(stats.error().message);

  std::printf("settled demo: %zu merchants in 5 time zones, %lld events over %s..%s (Europe moves its clocks on "
              "2026-03-29),\nsettled through the real pipeline (bus -> stream processor -> settlement worker -> "
              "ledger) in %.2f s.\n",
              sample.merchants.size(), static_cast<long long>(stats->lines), format_date(sample.first_day).c_str(),
              format_date(sample.through.plus_days(1)).c_str(), stats->seconds);
  std::printf("%lld posted, %lld exact duplicates ignored, %lld batches closed; events of %s stay in open batches.\n\n",
              static_cast<long long>(stats->posted), static_cast<long long>(stats->duplicates),
              static_cast<long long>(stats->batches_closed), format_date(sample.through.plus_days(1)).c_str());
  std::printf("Settlement report (amounts in major units):\n\n%s\n", app::format_report_table(*rt->ledger).c_str());
  std::printf("Trial balance (every journal sums to zero, so every currency nets to zero):\n\n%s\n",
              app::format_trial_balance(*rt->ledger).c_str());
  std::printf("Where the data lives: %s\n", fs::absolute(dir).string().c_str());
  std::printf("  merchants.json, events.ndjson  the input\n");
  std::printf("  bus/                           the partitioned event log (events, settlement-tasks, status)\n");
  std::printf("  ledger.db                      the double-entry ledger (SQLite: journals, postings view, batches)\n\n");
  std::printf("Try next:\n");
  std::printf("  build/bin/settled report --data-dir %s            # the report as CSV\n", dir.string().c_str());
  std::printf("  build/bin/settled balances --data-dir %s --merchant risky-gadgets\n", dir.string().c_str());
  std::printf("  build/bin/settled settle --merchants %s --events %s --through %s --partitions 3\n",
              merchants_file.string().c_str(), events_file.string().c_str(), format_date(sample.through).c_str());
  std::printf("  sqlite3 %s \"select kind, count(*), sum(amount) from journals group by kind\"\n",
              (dir / "ledger.db").string().c_str());
  if (!stats->clean()) {
    std::fprintf(stderr, "%s", diagnostics.str().c_str());
    return kExitRejected;
  }
  return kExitOk;
}

// Where a read-only command finds the ledger: a data directory or a URL.
struct LedgerFlags {
  std::string data_dir;
  std::string ledger_url;
};

void add_ledger_flags(CLI::App& cmd, LedgerFlags& f) {
  auto* dir = cmd.add_option("--data-dir", f.data_dir, "A directory that 'settle --data-dir', 'demo' or a role left");
  auto* url = cmd.add_option("--ledger", f.ledger_url, "Or a production ledger: postgresql://user@host:port/db")
                  ->envname("SETTLE_LEDGER");
  dir->excludes(url);
}

Result<std::unique_ptr<ledger::Ledger>> open_existing(const LedgerFlags& f) {
  if (f.data_dir.empty() && f.ledger_url.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "name the ledger: --data-dir DIR or --ledger URL");
  }
  app::RuntimeOptions o;
  o.data_dir = f.data_dir;
  o.ledger_url = f.ledger_url;
  o.create = false;
  return app::open_ledger(o);
}

int run_report(const LedgerFlags& flags) {
  auto ledger = open_existing(flags);
  if (!ledger.ok()) return fatal(ledger.error().message);
  auto csv = app::report_csv(**ledger);
  if (!csv.ok()) return fatal(csv.error().message);
  std::fwrite(csv->data(), 1, csv->size(), stdout);
  return kExitOk;
}

int run_balances(const LedgerFlags& flags, const std::string& merchant) {
  auto ledger = open_existing(flags);
  if (!ledger.ok()) return fatal(ledger.error().message);
  std::optional<std::string_view> m;
  if (!merchant.empty()) m = merchant;
  std::printf("%s", app::format_balances_table(**ledger, m).c_str());
  if (!m) std::printf("\nTrial balance:\n%s", app::format_trial_balance(**ledger).c_str());
  return kExitOk;
}

}  // namespace


void add_embedded_commands(CLI::App& cli, Commands& commands) {
  // The flags outlive parsing: they are captured by the run functions.
  auto settle_flags = std::make_shared<CommonFlags>();
  auto merchants_file = std::make_shared<std::string>();
  auto events_file = std::make_shared<std::string>();
  auto through = std::make_shared<std::string>();
  auto no_progress = std::make_shared<bool>(false);
  auto quiet = std::make_shared<bool>(false);
  auto* settle_cmd = cli.add_subcommand("settle", "Settle recorded events through the pipeline; print the report (CSV)");
  settle_cmd->add_option("--merchants", *merchants_file, "Merchants: a JSON array or NDJSON")->required()->check(CLI::ExistingFile);
  settle_cmd->add_option("--events", *events_file, "Events: NDJSON, one event per line")->required()->check(CLI::ExistingFile);
  settle_cmd->add_option("--through", *through, "Close every batch with batch_date <= YYYY-MM-DD")->required();
  settle_flags->data_dir.clear();  // a temporary directory unless one is named
  add_role_flags(*settle_cmd, *settle_flags);
  settle_cmd->add_flag("--no-progress", *no_progress, "No progress bar on stderr");
  settle_cmd->add_flag("--quiet", *quiet, "No progress bar or summary on stderr");
  commands.push_back({settle_cmd, [=] {
    return run_settle(*settle_flags, *merchants_file, *events_file, *through, *no_progress, *quiet);
  }});

  auto demo_flags = std::make_shared<CommonFlags>();
  demo_flags->data_dir.clear();  // ./settled-demo unless one is named
  auto events_per_day = std::make_shared<int>(200);
  auto seed = std::make_shared<std::uint64_t>(20260327);
  auto* demo_cmd = cli.add_subcommand("demo", "Generate a sample, settle it, and show the result");
  demo_cmd->add_option("--data-dir", demo_flags->data_dir, "Where to put the demo (default ./settled-demo)");
  demo_cmd->add_option("--partitions", demo_flags->partitions, "Partitions of the demo's bus (default 8)");
  demo_cmd->add_option("--events-per-day", *events_per_day, "Events per merchant and day (default 200)")->check(CLI::Range(1, 1000000));
  demo_cmd->add_option("--seed", *seed, "Seed of the sample generator");
  commands.push_back({demo_cmd, [=] { return run_demo(*demo_flags, *events_per_day, *seed); }});

  auto report_flags = std::make_shared<LedgerFlags>();
  auto* report_cmd = cli.add_subcommand("report", "Print the settlement report (CSV) of a ledger");
  add_ledger_flags(*report_cmd, *report_flags);
  commands.push_back({report_cmd, [=] { return run_report(*report_flags); }});

  auto balances_flags = std::make_shared<LedgerFlags>();
  auto balances_merchant = std::make_shared<std::string>();
  auto* balances_cmd = cli.add_subcommand("balances", "Print account balances of a ledger");
  add_ledger_flags(*balances_cmd, *balances_flags);
  balances_cmd->add_option("--merchant", *balances_merchant, "Only this merchant's accounts");
  commands.push_back({balances_cmd, [=] { return run_balances(*balances_flags, *balances_merchant); }});
}

}  // namespace settle::app
