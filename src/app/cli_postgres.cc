// settled migrate | partitions ensure|archive|restore|list: upkeep of the
// PostgreSQL ledger (src/ledger/postgres_ledger.h; docs/operations.md).
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "app/cli.h"
#include "common/time.h"
#include "ledger/postgres_ledger.h"

namespace settle::app {
namespace {

struct PgFlags {
  std::string ledger;
  int days_ahead = 7;
  std::string from;    // partitions ensure: first day (default today, UTC)
  std::string before;  // partitions archive
  std::string dir;     // partitions archive
  std::string date;    // partitions restore
  std::string file;    // partitions restore
};

void add_ledger_flag(CLI::App& cmd, PgFlags& f) {
  cmd.add_option("--ledger", f.ledger, "Ledger URL: postgresql://user@host:port/db")
      ->envname("SETTLE_LEDGER")
      ->required();
}

Date today_utc() {
  const auto days = std::chrono::duration_cast<std::chrono::days>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
  return Date{static_cast<std::int32_t>(days)};
}

Result<std::unique_ptr<ledger::PostgresLedger>> open_ledger(const PgFlags& f) {
  if (!f.ledger.starts_with("postgresql://") && !f.ledger.starts_with("postgres://")) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("--ledger must be a postgresql:// URL, not '{}'", f.ledger));
  }
  ledger::PostgresLedgerOptions options;
  options.pool_size = 1;
  return ledger::PostgresLedger::open(f.ledger, options);
}

int migrate(const PgFlags& f) {
  auto report = ledger::PostgresLedger::migrate(f.ledger);
  if (!report.ok()) return fatal(report.error().to_string());
  if (report->applied.empty()) {
    std::printf("ledger schema is at version %d; nothing to apply\n", report->version);
  } else {
    for (const std::int32_t v : report->applied) std::printf("applied migration %04d\n", v);
    std::printf("ledger schema is at version %d\n", report->version);
  }
  return kExitOk;
}

int ensure(const PgFlags& f) {
  if (f.days_ahead < 0) return fatal("--days-ahead must be >= 0");
  Date from = today_utc();
  if (!f.from.empty()) {
    auto d = parse_date(f.from);
    if (!d.ok()) return fatal("--from: " + d.error().message);
    from = *d;
  }
  auto l = open_ledger(f);
  if (!l.ok()) return fatal(l.error().to_string());
  auto created = (*l)->ensure_partitions(from, from.plus_days(f.days_ahead));
  if (!created.ok()) return fatal(created.error().to_string());
  for (const Date d : *created) std::printf("created partition %s\n", format_date(d).c_str());
  std::printf("partitions %s..%s present (%zu created)\n", format_date(from).c_str(),
              format_date(from.plus_days(f.days_ahead)).c_str(), created->size());
  return kExitOk;
}

int archive(const PgFlags& f) {
  auto before = parse_date(f.before);
  if (!before.ok()) return fatal("--before: " + before.error().message);
  auto l = open_ledger(f);
  if (!l.ok()) return fatal(l.error().to_string());
  auto archived = (*l)->archive_partitions(*before, f.dir);
  if (!archived.ok()) return fatal(archived.error().to_string());
  for (const ledger::ArchivedDay& a : *archived) {
    std::printf("archived %s: %lld journals -> ledger_archive.%s, %s\n", format_date(a.day).c_str(),
                static_cast<long long>(a.rows), a.table.c_str(), a.file.string().c_str());
  }
  std::printf("%zu partitions archived\n", archived->size());
  return kExitOk;
}

int restore(const PgFlags& f) {
  auto day = parse_date(f.date);
  if (!day.ok()) return fatal("--date: " + day.error().message);
  auto l = open_ledger(f);
  if (!l.ok()) return fatal(l.error().to_string());
  if (auto s = (*l)->restore_partition(*day, f.file); !s.ok()) return fatal(s.error().to_string());
  std::printf("restored partition %s\n", format_date(*day).c_str());
  return kExitOk;
}

int list(const PgFlags& f) {
  auto l = open_ledger(f);
  if (!l.ok()) return fatal(l.error().to_string());
  auto days = (*l)->partition_days();
  if (!days.ok()) return fatal(days.error().to_string());
  for (const Date d : *days) std::printf("%s\n", format_date(d).c_str());
  return kExitOk;
}

}  // namespace

void add_postgres_commands(CLI::App& cli, Commands& commands) {
  auto f = std::make_shared<PgFlags>();

  CLI::App* mig = cli.add_subcommand("migrate", "Apply the PostgreSQL ledger's pending schema migrations");
  add_ledger_flag(*mig, *f);
  commands.push_back({mig, [f] { return migrate(*f); }});

  CLI::App* parts = cli.add_subcommand("partitions", "Upkeep of the PostgreSQL ledger's day partitions");
  parts->require_subcommand(1);

  CLI::App* ens = parts->add_subcommand("ensure", "Create the day partitions from --from (default today) on");
  add_ledger_flag(*ens, *f);
  ens->add_option("--days-ahead", f->days_ahead, "Days after --from to create as well")->capture_default_str();
  ens->add_option("--from", f->from, "First day, YYYY-MM-DD (default today, UTC)");
  commands.push_back({ens, [f] { return ensure(*f); }});

  CLI::App* arc = parts->add_subcommand(
      "archive", "Export, detach and move to schema ledger_archive the partitions before a day");
  add_ledger_flag(*arc, *f);
  arc->add_option("--before", f->before, "Archive days before this one, YYYY-MM-DD")->required();
  arc->add_option("--dir", f->dir, "Directory for the COPY exports (journals_pYYYYMMDD.copy)")
      ->required()
      ->check(CLI::ExistingDirectory);
  commands.push_back({arc, [f] { return archive(*f); }});

  CLI::App* res = parts->add_subcommand("restore", "Re-attach an archived day (or reload it from its export)");
  add_ledger_flag(*res, *f);
  res->add_option("--date", f->date, "The archived day, YYYY-MM-DD")->required();
  res->add_option("--file", f->file, "Export to load when ledger_archive's table is gone (default: the recorded one)");
  commands.push_back({res, [f] { return restore(*f); }});

  CLI::App* lst = parts->add_subcommand("list", "Print the live day partitions");
  add_ledger_flag(*lst, *f);
  commands.push_back({lst, [f] { return list(*f); }});
}

}  // namespace settle::app
