// settled payouts export | recon run | recon discrepancies | recon ack |
// recon resolve | recon drift | recon watch: reconciliation on a data directory's
// ledger (SQLite) or on a PostgreSQL ledger (--ledger URL).
//
// run, watch, ack and resolve publish what they change on the `status` topic
// (batch_paid_out, batch_reconciled, batch_discrepancy,
// merchant_discrepancies): on the bus --bus names (Kafka), or on a data
// directory's embedded bus when no other process holds it (run, ack and
// resolve only: watch runs for long and must not keep `settled all` from
// starting). A running `settled all` holds its data directory's bus: the
// command then says that it published nothing and that the gateway's recon
// API (which publishes) is the way to reconcile on a live data directory.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include "app/cli.h"
#include "app/recon_metrics.h"
#include "app/role_flags.h"
#include "app/runtime.h"
#include "bus/file_log_bus.h"
#include "bus/kafka_bus.h"
#include "observability/metrics_server.h"
#include "processor/topics.h"
#include "reconcile/payout.h"
#include "reconcile/recon_status.h"
#include "reconcile/reconcile.h"

namespace settle::app {
namespace {

namespace fs = std::filesystem;

Timestamp wall_now() {
  return Timestamp{std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count()};
}

// Where the ledger is: a data directory that settle, demo or a role left,
// or a production ledger's URL.
struct Where {
  std::string data_dir;
  std::string ledger_url;
  std::string bus_url;  // run, watch, ack, resolve: where statuses go
};

void add_where(CLI::App& cmd, Where& w) {
  auto* dir = cmd.add_option("--data-dir", w.data_dir, "A data directory that 'settle' left");
  auto* url = cmd.add_option("--ledger", w.ledger_url, "Or a production ledger: postgresql://user@host:port/db")
                  ->envname("SETTLE_LEDGER");
  dir->excludes(url);
}

// --bus for the commands whose changes merchants see as statuses.
void add_status_bus(CLI::App& cmd, Where& w) {
  cmd.add_option("--bus", w.bus_url,
                 "Publish status updates on this bus: kafka://host:port[,host:port] (default: the data directory's "
                 "embedded bus when no running process holds it)")
      ->envname("SETTLE_BUS");
}

struct Opened {
  std::unique_ptr<bus::Bus> bus;  // the statuses' bus, or null
  std::unique_ptr<ledger::Ledger> ledger;
  std::shared_ptr<reconcile::ReconStore> store;  // shared with the metrics collector of recon watch
  std::string no_statuses;  // why no statuses are published (empty: they are)
};

constexpr const char* kThroughTheApi =
    "reconcile through the gateway's recon API instead (POST /v1/statements, POST "
    "/v1/discrepancies/{id}/acknowledge or /resolve), which publishes them";

// The ledger (which must exist: settle, demo or `settled migrate` made it)
// and the reconciliation tables beside it.
Result<Opened> open_where(const Where& w, bool with_ledger) {
  if (w.data_dir.empty() && w.ledger_url.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "name the ledger: --data-dir DIR or --ledger URL");
  }
  RuntimeOptions ro;
  ro.data_dir = w.data_dir;
  ro.ledger_url = w.ledger_url;
  ro.ledger_cache_kib = 16384;
  ro.create = false;
  Opened o;
  if (with_ledger) {
    SETTLE_ASSIGN_OR_RETURN(o.ledger, open_ledger(ro));
  }
  SETTLE_ASSIGN_OR_RETURN(o.store, open_recon_store(ro));
  return o;
}

// Wraps o.store in the status publisher when a bus takes the statuses;
// otherwise o.no_statuses says why not. `embedded`: whether the data
// directory's embedded bus may be opened (briefly). A bus that cannot be
// reached is not the command's failure: the reconciliation stands.
Status attach_statuses(const Where& w, bool embedded, Opened& o) {
  if (!w.bus_url.empty()) {
    if (!w.bus_url.starts_with("kafka://")) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("--bus: expected kafka://host:port[,host:port], not '{}'", w.bus_url));
    }
    auto k = bus::KafkaBus::open(w.bus_url);
    if (!k.ok()) {
      o.no_statuses = fmt::format("no status updates published: bus {}: {}", w.bus_url, k.error().message);
      return ok_status();
    }
    o.bus = std::move(*k);
  } else if (w.data_dir.empty()) {
    o.no_statuses = "no status updates published: name the pipeline's bus with --bus kafka://host:port";
    return ok_status();
  } else if (!embedded) {
    o.no_statuses = fmt::format(
        "no status updates published: recon watch does not hold the embedded bus of {} (settled all needs it); "
        "give --bus kafka://host:port, or {}",
        w.data_dir, kThroughTheApi);
    return ok_status();
  } else {
    bus::FileLogOptions fo;
    fo.dir = fs::path(w.data_dir) / "bus";
    auto b = bus::FileLogBus::open(fo);
    if (!b.ok()) {
      o.no_statuses = fmt::format("no status updates published: {} (a running settled all holds it); {}",
                                  b.error().message, kThroughTheApi);
      return ok_status();
    }
    o.bus = std::move(*b);
  }
  if (auto parts = o.bus->partition_count(processor::kStatusTopic); !parts.ok()) {
    o.no_statuses = fmt::format("no status updates published: the bus has no status topic ({})", parts.error().message);
    o.bus.reset();
    return ok_status();
  }
  if (!o.ledger) {
    RuntimeOptions ro;
    ro.data_dir = w.data_dir;
    ro.ledger_url = w.ledger_url;
    ro.ledger_cache_kib = 16384;
    ro.create = false;
    SETTLE_ASSIGN_OR_RETURN(o.ledger, open_ledger(ro));
  }
  o.store = with_status_publisher(std::move(o.store), *o.ledger, *o.bus);
  return ok_status();
}

// What became of the statuses, on stderr: published (and failed) updates, or
// why none were.
void report_statuses(const char* command, const Opened& o) {
  if (!o.no_statuses.empty()) {
    std::fprintf(stderr, "settled %s: %s\n", command, o.no_statuses.c_str());
    return;
  }
  const auto* pub = dynamic_cast<const reconcile::ReconStatusPublisher*>(o.store.get());
  if (pub == nullptr) return;
  std::fprintf(stderr, "settled %s: %lld status updates published%s\n", command,
               static_cast<long long>(pub->published()),
               pub->publish_failures() > 0
                   ? fmt::format(", {} publishes failed", pub->publish_failures()).c_str()
                   : "");
}

int minor_exponent(const std::string& currency) {
  auto c = find_currency(currency);
  return c.ok() ? c->exponent() : 2;
}

struct ExportFlags {
  Where where;
  std::string date, format = "pain.001", out, debtor_name = "Settlement platform", debtor_iban, debtor_bic;
};

int run_export(const ExportFlags& f) {
  auto date = parse_date(f.date);
  if (!date.ok()) return fatal("--date: " + date.error().message);
  if (f.format != "pain.001" && f.format != "csv") return fatal("--format must be pain.001 or csv");
  auto o = open_where(f.where, true);
  if (!o.ok()) return fatal(o.error().message);
  auto all = reconcile::ledger_payouts(*o->ledger);
  if (!all.ok()) return fatal(all.error().message);
  std::vector<reconcile::Payout> day;
  for (const reconcile::Payout& p : *all) {
    if (p.payout_date == *date) day.push_back(p);
  }
  std::string text;
  if (f.format == "csv") {
    text = reconcile::write_payouts_csv(day);
  } else {
    reconcile::Pain001Options po;
    po.created_at = wall_now();
    po.debtor_name = f.debtor_name;
    po.debtor_iban = f.debtor_iban;
    po.debtor_bic = f.debtor_bic;
    auto xml = reconcile::write_pain001(day, po);
    if (!xml.ok()) return fatal(xml.error().message);
    text = std::move(*xml);
  }
  if (f.out.empty()) {
    std::fwrite(text.data(), 1, text.size(), stdout);
  } else {
    std::ofstream out(f.out, std::ios::binary);
    out << text;
    if (!out.flush()) return fatal("cannot write " + f.out);
  }
  std::fprintf(stderr, "settled: %zu payouts due %s\n", day.size(), f.date.c_str());
  return kExitOk;
}

struct RunFlags {
  Where where;
  std::vector<std::string> statements;
  std::string format = "auto";
  std::string mapping = "default";
  std::string merchant;
  std::string config;
  std::string today;    // YYYY-MM-DD; "" = the wall clock's UTC date
  int settle_days = 2;  // a payout is expected once payout date + settle_days <= today
};

// The run options the flags of `recon run` and `recon watch` describe.
Result<reconcile::RunOptions> run_options(const RunFlags& f) {
  reconcile::RunOptions ro;
  ro.now = wall_now();
  ro.merchant_id = f.merchant;
  if (f.format != "auto") {
    auto fm = reconcile::parse_format_name(f.format);
    if (!fm.ok()) return make_error(fm.error().code, "--format: " + fm.error().message);
    ro.format = *fm;
  }
  if (f.mapping.ends_with(".json")) {
    auto text = read_file(f.mapping);
    if (!text.ok()) return make_error(text.error().code, "--mapping: " + text.error().message);
    auto m = reconcile::parse_mapping_json(*text);
    if (!m.ok()) return make_error(m.error().code, f.mapping + ": " + m.error().message);
    ro.csv_mapping = *m;
  } else {
    auto m = reconcile::builtin_mapping(f.mapping);
    if (!m.ok()) return make_error(m.error().code, "--mapping: " + m.error().message);
    ro.csv_mapping = *m;
  }
  if (!f.config.empty()) {
    auto text = read_file(f.config);
    if (!text.ok()) return make_error(text.error().code, "--config: " + text.error().message);
    auto c = reconcile::parse_match_config_json(*text);
    if (!c.ok()) return make_error(c.error().code, f.config + ": " + c.error().message);
    ro.match = *c;
  }
  Date today{static_cast<std::int32_t>(ro.now.ns / kNsPerDay)};
  if (!f.today.empty()) {
    auto d = parse_date(f.today);
    if (!d.ok()) return make_error(d.error().code, "--today: " + d.error().message);
    today = *d;
  }
  ro.match.due_through = today.plus_days(-f.settle_days);
  return ro;
}

int run_recon(const RunFlags& f) {
  auto opts = run_options(f);
  if (!opts.ok()) return fatal(opts.error().message);
  const reconcile::RunOptions& ro = *opts;
  std::vector<std::string> contents;
  for (const std::string& path : f.statements) {
    auto text = read_file(path);
    if (!text.ok()) return fatal(text.error().message);
    contents.push_back(std::move(*text));
  }
  auto o = open_where(f.where, true);
  if (!o.ok()) return fatal(o.error().message);
  if (auto st = attach_statuses(f.where, true, *o); !st.ok()) return fatal(st.error().message);
  auto r = reconcile::run(*o->ledger, *o->store, contents, ro);
  report_statuses("recon run", *o);
  if (!r.ok()) {
    return fatal((f.statements.size() == 1 ? f.statements.front() + ": " : std::string()) + r.error().message);
  }
  if (r->outcome.duplicate_statement) {
    std::printf("statement %s was reconciled by run %lld already; nothing changed\n", r->statement_ids.c_str(),
                static_cast<long long>(r->outcome.run_id));
    return kExitOk;
  }
  std::printf("run %lld: %s %s: %lld items, %zu matches, %zu findings (%lld new discrepancies, %lld resolved by this "
              "statement)\n",
              static_cast<long long>(r->outcome.run_id), std::string(reconcile::format_name(r->format)).c_str(),
              r->statement_ids.c_str(), static_cast<long long>(r->items), r->matches.size(), r->findings.size(),
              static_cast<long long>(r->outcome.opened), static_cast<long long>(r->outcome.auto_resolved));
  for (const reconcile::Finding& x : r->findings) {
    std::printf("  %-22s %s %s\n", std::string(reconcile::reason_name(x.reason)).c_str(), x.subject.c_str(),
                x.detail.c_str());
  }
  for (const reconcile::DriftRow& d : r->outcome.drift.rows) {
    if (!d.merchant_id.empty()) continue;
    std::printf("drift %s: %lld unmatched, %s\n", d.currency.c_str(), static_cast<long long>(d.count),
                format_minor(d.amount, minor_exponent(d.currency)).c_str());
  }
  return r->findings.empty() ? kExitOk : kExitRejected;
}

struct WatchFlags {
  RunFlags run;
  std::string inbox;
  int interval_ms = 1000;
  bool once = false;
  std::string metrics_listen;  // host:port for GET /metrics; empty: off
};

// Moves `from` into `dir`, creating it; a name already there gets a suffix.
Result<fs::path> move_into(const fs::path& from, const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return make_error(ErrorCode::kIo, fmt::format("{}: {}", dir.string(), ec.message()));
  fs::path to = dir / from.filename();
  for (int n = 1; fs::exists(to, ec); ++n) to = dir / fmt::format("{}.{}", from.filename().string(), n);
  fs::rename(from, to, ec);
  if (ec) return make_error(ErrorCode::kIo, fmt::format("move {} to {}: {}", from.string(), to.string(), ec.message()));
  return to;
}

// One pass over the inbox: every regular file (oldest name first) is
// reconciled once and moved to done/, or to failed/ with a .error file.
Result<int> watch_pass(const WatchFlags& f, reconcile::RunOptions ro, Opened& o) {
  const fs::path inbox(f.inbox);
  std::vector<fs::path> files;
  std::error_code ec;
  for (fs::directory_iterator it(inbox, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (it->is_regular_file(ec) && !name.starts_with(".")) files.push_back(it->path());
  }
  if (ec) return make_error(ErrorCode::kIo, fmt::format("{}: {}", inbox.string(), ec.message()));
  std::sort(files.begin(), files.end());
  int failed = 0;
  for (const fs::path& file : files) {
    ro.now = wall_now();
    auto text = read_file(file.string());
    Result<reconcile::RunReport> r =
        text.ok() ? reconcile::run(*o.ledger, *o.store, {*text}, ro) : Result<reconcile::RunReport>(text.error());
    if (!r.ok()) {
      // A ledger or store failure is ours, not the file's: stop, leave the file.
      if (text.ok() && r.error().code != ErrorCode::kInvalidArgument) return r.error();
      ++failed;
      SETTLE_ASSIGN_OR_RETURN(fs::path to, move_into(file, inbox / "failed"));
      std::ofstream(to.string() + ".error", std::ios::binary) << r.error().message << "\n";
      std::printf("%s: failed: %s\n", file.filename().string().c_str(), r.error().message.c_str());
      std::fflush(stdout);
      continue;
    }
    SETTLE_TRY(move_into(file, inbox / "done"));
    if (r->outcome.duplicate_statement) {
      std::printf("%s: statement %s was reconciled by run %lld already; nothing changed\n",
                  file.filename().string().c_str(), r->statement_ids.c_str(), static_cast<long long>(r->outcome.run_id));
    } else {
      std::printf("%s: run %lld: %s %s: %lld items, %zu matches, %zu findings (%lld new discrepancies, %lld resolved)\n",
                  file.filename().string().c_str(), static_cast<long long>(r->outcome.run_id),
                  std::string(reconcile::format_name(r->format)).c_str(), r->statement_ids.c_str(),
                  static_cast<long long>(r->items), r->matches.size(), r->findings.size(),
                  static_cast<long long>(r->outcome.opened), static_cast<long long>(r->outcome.auto_resolved));
    }
    std::fflush(stdout);
  }
  return failed;
}

int run_watch(const WatchFlags& f) {
  std::error_code ec;
  if (!fs::is_directory(f.inbox, ec)) return fatal("--inbox: " + f.inbox + " is not a directory");
  auto o = open_where(f.run.where, true);
  if (!o.ok()) return fatal(o.error().message);
  if (auto st = attach_statuses(f.run.where, false, *o); !st.ok()) return fatal(st.error().message);
  if (!o->no_statuses.empty()) std::fprintf(stderr, "settled recon watch: %s\n", o->no_statuses.c_str());
  if (!f.once) block_stop_signals();
  observability::Metrics metrics("recon");
  const auto recon_collector = add_recon_collector(metrics, o->store);
  std::unique_ptr<observability::MetricsServer> metrics_server;  // stops before the collector goes
  if (!f.metrics_listen.empty()) {
    auto where = observability::parse_listen(f.metrics_listen);
    if (!where.ok()) return fatal(where.error().message);
    auto started = observability::MetricsServer::start(metrics, where->first, where->second);
    if (!started.ok()) return fatal(started.error().message);
    metrics_server = std::move(*started);
    std::fprintf(stderr, "settled recon watch: metrics on http://%s:%u/metrics\n", where->first.c_str(),
                 static_cast<unsigned>(metrics_server->port()));
  }
  while (true) {
    // Options per pass: "today" (and so which payouts are due) moves on.
    auto ro = run_options(f.run);
    if (!ro.ok()) return fatal(ro.error().message);
    auto pass = watch_pass(f, *ro, *o);
    if (!pass.ok()) return fatal(pass.error().message);
    if (f.once) {
      report_statuses("recon watch", *o);
      return kExitOk;
    }
    if (wait_for_signal(std::chrono::milliseconds(f.interval_ms))) return kExitOk;
  }
}

// "3d", "12h", "90m" -> nanoseconds.
Result<std::int64_t> parse_age(const std::string& s) {
  if (s.size() < 2) return make_error(ErrorCode::kInvalidArgument, "--older-than: expected e.g. 3d, 12h or 30m");
  std::int64_t n = 0;
  for (std::size_t i = 0; i + 1 < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9' || n > 1'000'000) {
      return make_error(ErrorCode::kInvalidArgument, "--older-than: expected e.g. 3d, 12h or 30m, found '" + s + "'");
    }
    n = n * 10 + (s[i] - '0');
  }
  switch (s.back()) {
    case 'd': return n * kNsPerDay;
    case 'h': return n * 60 * kNsPerMinute;
    case 'm': return n * kNsPerMinute;
    default: return make_error(ErrorCode::kInvalidArgument, "--older-than: expected e.g. 3d, 12h or 30m, found '" + s + "'");
  }
}

std::string csv_cell(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

struct ListFlags {
  Where where;
  std::string state, merchant, reason, older_than;
};

int run_list(const ListFlags& f) {
  reconcile::DiscrepancyQuery q;
  const Timestamp now = wall_now();
  if (!f.state.empty()) {
    auto s = reconcile::parse_state(f.state);
    if (!s.ok()) return fatal("--state: " + s.error().message);
    q.state = *s;
  }
  if (!f.merchant.empty()) q.merchant_id = f.merchant;
  if (!f.reason.empty()) {
    auto r = reconcile::parse_reason(f.reason);
    if (!r.ok()) return fatal("--reason: " + r.error().message);
    q.reason = *r;
  }
  if (!f.older_than.empty()) {
    auto age = parse_age(f.older_than);
    if (!age.ok()) return fatal(age.error().message);
    q.created_before = Timestamp{now.ns - *age};
  }
  auto o = open_where(f.where, false);
  if (!o.ok()) return fatal(o.error().message);
  auto list = o->store->discrepancies(q);
  if (!list.ok()) return fatal(list.error().message);
  std::printf("id,state,reason,age_days,aging,merchant_id,currency,expected,actual,drift,subject,our_ref,their_ref,"
              "detail,comment\n");
  std::map<std::string, std::int64_t> buckets;
  for (const reconcile::Discrepancy& d : *list) {
    const std::int64_t age = reconcile::age_days(d, now);
    const int exp = minor_exponent(d.finding.currency);
    ++buckets[std::string(reconcile::aging_bucket(age))];
    std::printf("%lld,%s,%s,%lld,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n", static_cast<long long>(d.id),
                std::string(reconcile::state_name(d.state)).c_str(),
                std::string(reconcile::reason_name(d.finding.reason)).c_str(), static_cast<long long>(age),
                std::string(reconcile::aging_bucket(age)).c_str(), csv_cell(d.finding.merchant_id).c_str(),
                d.finding.currency.c_str(), format_minor(d.finding.expected, exp).c_str(),
                format_minor(d.finding.actual, exp).c_str(), format_minor(d.finding.drift, exp).c_str(),
                csv_cell(d.finding.subject).c_str(), csv_cell(d.finding.our_ref).c_str(),
                csv_cell(d.finding.their_ref).c_str(), csv_cell(d.finding.detail).c_str(), csv_cell(d.comment).c_str());
  }
  std::string summary;
  for (const char* b : {"0-1d", "1-3d", "3-7d", "7-30d", ">30d"}) {
    summary += fmt::format(" {}={}", b, buckets[b]);
  }
  std::fprintf(stderr, "settled: %zu discrepancies; aging:%s\n", list->size(), summary.c_str());
  return kExitOk;
}

int run_transition(const Where& where, std::int64_t id, const std::string* comment) {
  auto o = open_where(where, false);
  if (!o.ok()) return fatal(o.error().message);
  if (auto st = attach_statuses(where, true, *o); !st.ok()) return fatal(st.error().message);
  auto r = comment == nullptr ? o->store->acknowledge(id, wall_now()) : o->store->resolve(id, *comment, wall_now());
  if (!r.ok()) return fatal(r.error().message);
  report_statuses(comment == nullptr ? "recon ack" : "recon resolve", *o);
  std::printf("discrepancy %lld: %s\n", static_cast<long long>(r->id), std::string(reconcile::state_name(r->state)).c_str());
  return kExitOk;
}

int run_drift(const Where& where, int last) {
  auto o = open_where(where, false);
  if (!o.ok()) return fatal(o.error().message);
  auto samples = o->store->drift(static_cast<std::size_t>(last));
  if (!samples.ok()) return fatal(samples.error().message);
  std::printf("run_id,at,open_count,currency,merchant_id,count,amount\n");
  for (const reconcile::DriftSample& s : *samples) {
    if (s.rows.empty()) {
      std::printf("%lld,%s,%lld,,,0,0\n", static_cast<long long>(s.run_id), format_rfc3339(s.at).c_str(),
                  static_cast<long long>(s.open_count));
    }
    for (const reconcile::DriftRow& r : s.rows) {
      std::printf("%lld,%s,%lld,%s,%s,%lld,%s\n", static_cast<long long>(s.run_id), format_rfc3339(s.at).c_str(),
                  static_cast<long long>(s.open_count), r.currency.c_str(),
                  r.merchant_id.empty() ? "*" : r.merchant_id.c_str(), static_cast<long long>(r.count),
                  format_minor(r.amount, minor_exponent(r.currency)).c_str());
    }
  }
  return kExitOk;
}

}  // namespace

void add_recon_commands(CLI::App& cli, Commands& commands) {
  auto* payouts = cli.add_subcommand("payouts", "Payout instructions of closed batches");
  payouts->require_subcommand(1);
  auto ef = std::make_shared<ExportFlags>();
  auto* exp = payouts->add_subcommand("export", "Write the payouts due on a date as ISO 20022 pain.001 or CSV");
  add_where(*exp, ef->where);
  exp->add_option("--date", ef->date, "Payout date YYYY-MM-DD")->required();
  exp->add_option("--format", ef->format, "pain.001 (default) or csv");
  exp->add_option("--out", ef->out, "Write here instead of stdout");
  exp->add_option("--debtor-name", ef->debtor_name, "Dbtr/Nm (default 'Settlement platform')");
  exp->add_option("--debtor-iban", ef->debtor_iban, "The platform's IBAN (default: a placeholder Othr/Id)");
  exp->add_option("--debtor-bic", ef->debtor_bic, "The platform's bank BIC (default: NOTPROVIDED)");
  commands.push_back({exp, [=] { return run_export(*ef); }});

  auto* recon = cli.add_subcommand("recon", "Reconcile statements with the ledger; discrepancy tasks; drift");
  recon->require_subcommand(1);

  auto rf = std::make_shared<RunFlags>();
  auto* run = recon->add_subcommand("run", "Reconcile a statement (camt.053, MT940, BAI2, acquirer CSV); exit 1 on findings");
  add_where(*run, rf->where);
  add_status_bus(*run, rf->where);
  run->add_option("--statement", rf->statements, "The statement file; repeat for one statement split over files")
      ->required()
      ->check(CLI::ExistingFile);
  run->add_option("--format", rf->format, "auto (default), camt053, mt940, bai2 or acquirer-csv");
  run->add_option("--mapping", rf->mapping, "Acquirer CSV columns: default, adyen, stripe or a FILE.json");
  run->add_option("--merchant", rf->merchant, "Merchant of an acquirer CSV that has no merchant column");
  run->add_option("--config", rf->config, "Tolerances and windows (JSON; see docs/reconciliation.md)");
  run->add_option("--today", rf->today, "Reconcile as of this date YYYY-MM-DD (default: today, UTC)");
  run->add_option("--settle-days", rf->settle_days, "A payout is expected once payout date + N days <= today (default 2)")
      ->check(CLI::Range(0, 365));
  commands.push_back({run, [=] { return run_recon(*rf); }});

  auto wf = std::make_shared<WatchFlags>();
  auto* watch = recon->add_subcommand("watch", "The recon role: reconcile each new statement file of an inbox once");
  add_where(*watch, wf->run.where);
  add_status_bus(*watch, wf->run.where);
  watch->add_option("--inbox", wf->inbox, "Directory polled for statements; handled files go to done/ or failed/")
      ->required();
  watch->add_option("--interval-ms", wf->interval_ms, "Poll interval (default 1000)")->check(CLI::Range(10, 3600000));
  watch->add_option("--settle-days", wf->run.settle_days, "A payout is expected once payout date + N days <= today (default 2)")
      ->check(CLI::Range(0, 365));
  watch->add_option("--today", wf->run.today, "Reconcile as of this date YYYY-MM-DD (default: today, UTC; for tests)");
  watch->add_option("--mapping", wf->run.mapping, "Acquirer CSV columns: default, adyen, stripe or a FILE.json");
  watch->add_option("--merchant", wf->run.merchant, "Merchant of acquirer CSVs that have no merchant column");
  watch->add_option("--config", wf->run.config, "Tolerances and windows (JSON; see docs/reconciliation.md)");
  watch->add_flag("--once", wf->once, "Process what is in the inbox now and exit (cron, tests)");
  watch->add_option("--metrics-listen", wf->metrics_listen, "host:port for GET /metrics (drift, open discrepancies)")
      ->envname("SETTLE_METRICS_LISTEN");
  commands.push_back({watch, [=] { return run_watch(*wf); }});

  auto lf = std::make_shared<ListFlags>();
  auto* list = recon->add_subcommand("discrepancies", "List discrepancy tasks (CSV) with their age");
  add_where(*list, lf->where);
  list->add_option("--state", lf->state, "open, acknowledged or resolved");
  list->add_option("--merchant", lf->merchant, "Only this merchant's");
  list->add_option("--reason", lf->reason, "Only this reason code");
  list->add_option("--older-than", lf->older_than, "Only tasks older than this (e.g. 3d, 12h)");
  commands.push_back({list, [=] { return run_list(*lf); }});

  auto ack_where = std::make_shared<Where>();
  auto ack_id = std::make_shared<std::int64_t>(0);
  auto* ack = recon->add_subcommand("ack", "Acknowledge a discrepancy task");
  ack->add_option("id", *ack_id, "Task id")->required();
  add_where(*ack, *ack_where);
  add_status_bus(*ack, *ack_where);
  commands.push_back({ack, [=] { return run_transition(*ack_where, *ack_id, nullptr); }});

  auto res_where = std::make_shared<Where>();
  auto res_id = std::make_shared<std::int64_t>(0);
  auto res_comment = std::make_shared<std::string>();
  auto* res = recon->add_subcommand("resolve", "Resolve a discrepancy task with a comment");
  res->add_option("id", *res_id, "Task id")->required();
  res->add_option("--comment", *res_comment, "Why it is resolved")->required();
  add_where(*res, *res_where);
  add_status_bus(*res, *res_where);
  commands.push_back({res, [=] { return run_transition(*res_where, *res_id, res_comment.get()); }});

  auto drift_where = std::make_shared<Where>();
  auto drift_last = std::make_shared<int>(30);
  auto* drift = recon->add_subcommand("drift", "Unmatched amount and count per run, currency and merchant (CSV)");
  add_where(*drift, *drift_where);
  drift->add_option("--last", *drift_last, "The latest N runs (default 30)")->check(CLI::Range(1, 100000));
  commands.push_back({drift, [=] { return run_drift(*drift_where, *drift_last); }});
}

}  // namespace settle::app
