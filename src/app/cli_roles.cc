// settled all | processor | worker: the long-running pipeline roles, and
// settled ingest, which feeds them from a file.
#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <span>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <unordered_set>

#include "app/cli.h"
#include "app/cli_notify.h"
#include "app/ingest.h"
#include "app/live_pipeline.h"
#include "app/recon_metrics.h"
#include "app/role_flags.h"
#include "app/runtime.h"
#include "bus/kafka_bus.h"
#include "gateway/server.h"
#include "model/merchant_json.h"
#include "observability/alerts.h"
#include "observability/log.h"
#include "observability/metrics.h"
#include "observability/metrics_server.h"
#include "processor/merchant_directory.h"
#include "processor/stream_processor.h"
#include "processor/topics.h"

namespace settle::app {
namespace {

// With drain, the role exits once it has nothing left to do: every event on
// the bus processed, every task handled, and nothing new for long enough
// that the idle rule has closed every batch it can.
int run_role(const char* name, const RoleFlags& flags, bool processor, bool worker, bool drain, bool http) {
  if (auto s = init_role_logging(flags); !s.ok()) return fatal(s.error().message);
  const observability::Logger log(name);
  auto ro = runtime_options(flags);
  if (!ro.ok()) return fatal(ro.error().message);
  auto so = server_options(flags);
  if (!so.ok()) return fatal(so.error().message);
  auto lo = live_options(flags);
  if (!lo.ok()) return fatal(lo.error().message);
  lo->run_processor = processor;
  lo->run_worker = worker;
  block_stop_signals();
  auto rt = open_runtime_retrying(*ro, name);
  if (!rt.ok()) return fatal(rt.error().message);
  // On Kafka, processes of a role share the partitions through consumer
  // groups unless the operator pins them with --owned-partitions.
  if (auto* kafka = dynamic_cast<bus::KafkaBus*>(rt->bus.get()); kafka != nullptr && lo->partitions.empty()) {
    lo->join = [kafka](const std::string& group, const std::string& topic, bus::GroupCallbacks callbacks) {
      return kafka->join_group(group, topic, std::move(callbacks));
    };
  }
  observability::Metrics metrics(name);
  lo->metrics = &metrics;
  so->api.metrics = &metrics;
  LivePipeline pipeline(*rt->bus, *rt->ledger, *rt->store, rt->partitions, *lo);
  // Declared after the pipeline so that it stops first: no scrape reads a
  // pipeline that is gone.
  std::unique_ptr<observability::MetricsServer> metrics_server;
  if (!flags.metrics_listen.empty()) {
    auto where = observability::parse_listen(flags.metrics_listen);
    if (!where.ok()) return fatal(where.error().message);
    auto started = observability::MetricsServer::start(metrics, where->first, where->second);
    if (!started.ok()) return fatal(started.error().message);
    metrics_server = std::move(*started);
    log.info("metrics on http://{}:{}/metrics", where->first, metrics_server->port());
  }
  if (auto s = pipeline.start(); !s.ok()) return fatal(s.error().message);
  std::shared_ptr<reconcile::ReconStore> recon;  // outlives the server, which uses it
  std::shared_ptr<void> recon_collector;
  std::unique_ptr<observability::AlertMonitor> alerts;  // stops before what it scrapes goes
  std::unique_ptr<gateway::Server> server;
  std::unique_ptr<NotifyRole> notify;
  if (http) {
    auto opened = open_recon_store(*ro);
    if (!opened.ok()) {
      (void)pipeline.stop();
      return fatal(opened.error().message);
    }
    recon = with_status_publisher(std::move(*opened), *rt->ledger, *rt->bus);
    so->api.recon = recon.get();
    recon_collector = add_recon_collector(metrics, recon);
    if (flags.alert_interval_ms > 0) {
      alerts = std::make_unique<observability::AlertMonitor>(metrics, std::chrono::milliseconds(flags.alert_interval_ms));
      so->api.alerts = alerts.get();
    }
    server = std::make_unique<gateway::Server>(*rt->bus, *rt->ledger, *rt->store, *so);
    if (auto s = server->start(); !s.ok()) {
      (void)pipeline.stop();
      return fatal(s.error().message);
    }
    log.info("gateway on {}://{}:{}", so->tls_cert_file.empty() ? "http" : "https", so->host, server->port());
    if (server->api().upload_secret_generated()) log.warn("{}", kGeneratedSecretNote);
    const std::string notify_listen = flags.notify_listen.empty() ? so->host + ":0" : flags.notify_listen;
    auto started = start_notify(*rt->bus, flags, notify_listen);
    if (!started.ok()) {
      server->stop();
      (void)pipeline.stop();
      return fatal(started.error().message);
    }
    notify = std::move(*started);
    log.info("notify on http://{}:{} (dashboard /dashboard)", notify_listen.substr(0, notify_listen.rfind(':')),
             notify->server->port());
  }
  log.info("bus {}, ledger {}, store {}; {} partitions, {}{}; stop with SIGTERM or Ctrl-C", rt->bus_kind,
           rt->ledger_kind, rt->store_kind, rt->partitions,
           lo->join ? "shared through consumer groups" : flags.owned.empty() ? "owning all" : "owning ", flags.owned);
  const auto quiet_needed = std::chrono::milliseconds(std::max<std::int64_t>(flags.idle_ms, 0) + 500);
  auto quiet_since = std::chrono::steady_clock::now();
  while (!wait_for_signal(std::chrono::milliseconds(drain ? 50 : 200))) {
    if (pipeline.failure()) break;
    if (!drain) continue;
    auto idle = pipeline.idle();
    const auto now = std::chrono::steady_clock::now();
    if (!idle.ok() || !*idle) {
      quiet_since = now;
    } else if (now - quiet_since >= quiet_needed) {
      break;
    }
  }
  if (notify) notify->server->stop();
  if (server) server->stop();
  const Status stopped = pipeline.stop();
  const LiveStats s = pipeline.stats();
  log.info("stopped; {} events read, {} posted, {} duplicates, {} conflicts, {} rejected ({} dead letters), {} tasks "
           "emitted, {} batches closed, {} tasks failed",
           s.events, s.posted, s.duplicates, s.conflicts, s.rejected, s.dead_letters, s.tasks_emitted, s.batches_closed,
           s.tasks_failed);
  if (!stopped.ok()) return fatal(stopped.error().message);
  return kExitOk;
}

// Publishes merchants and appends the valid events of a file to the bus.
int run_ingest(const RoleFlags& flags, const std::string& merchants_file, const std::string& events_file) {
  auto ro = runtime_options(flags);
  if (!ro.ok()) return fatal(ro.error().message);
  auto text = read_file(merchants_file);
  if (!text.ok()) return fatal(text.error().message);
  auto merchants = model::parse_merchant_list(*text, merchants_file);
  if (!merchants.ok()) return fatal(merchants.error().message);
  auto rt = Runtime::open(*ro);
  if (!rt.ok()) return fatal(rt.error().message);
  if (auto s = processor::MerchantDirectory::publish(*rt->bus, *merchants); !s.ok()) return fatal(s.error().message);
  std::unordered_set<std::string> ids;
  for (const auto& m : *merchants) ids.insert(m.id.str());
  SettleOptions so;
  so.events_file = events_file;
  Ingestor ingestor(*rt->bus, ids, so, std::cerr);
  const Status s = ingestor.run();
  std::fprintf(stderr, "settled ingest: %lld lines: %lld appended to the bus, %lld rejected\n",
               static_cast<long long>(ingestor.lines()), static_cast<long long>(ingestor.accepted()),
               static_cast<long long>(ingestor.invalid()));
  if (!s.ok()) return fatal(s.error().message);
  return ingestor.invalid() == 0 ? kExitOk : kExitRejected;
}

// The first offset of the partition whose record was appended at or after
// `ms` (bus timestamps increase with offsets, as the producer stamps them).
Result<std::int64_t> offset_for_time(bus::Bus& bus, std::int32_t partition, std::int64_t ms) {
  SETTLE_ASSIGN_OR_RETURN(std::int64_t hi, bus.end_offset(processor::kEventsTopic, partition));
  std::int64_t lo = 0;
  while (lo < hi) {
    const std::int64_t mid = lo + (hi - lo) / 2;
    SETTLE_ASSIGN_OR_RETURN(auto recs, bus.read(processor::kEventsTopic, partition, mid, 1));
    if (recs.empty()) return make_error(ErrorCode::kUnavailable, fmt::format("partition {}: no record at {}", partition, mid));
    if (recs.front().timestamp_ms < ms) {
      lo = recs.front().offset + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

// Moves the processor's checkpoints back so that it reads the events again
// from `from`. Its open-batch state is kept: every event the ledger already
// holds comes back a duplicate (not counted again), and an event the ledger
// lacks (e.g. after restoring a ledger backup) is posted, late if its batch
// has closed. The processors must be stopped while this runs.
int run_replay(const RoleFlags& flags, const std::string& from, int only_partition) {
  auto ro = runtime_options(flags);
  if (!ro.ok()) return fatal(ro.error().message);
  ro->create = false;
  std::optional<std::int64_t> offset;
  std::optional<std::int64_t> at_ms;
  if (!from.empty() && std::all_of(from.begin(), from.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    offset = std::stoll(from);
  } else if (auto ts = parse_rfc3339(from); ts.ok()) {
    at_ms = ts->ns / 1'000'000;
  } else {
    return fatal(fmt::format("--from '{}': neither an offset nor an RFC 3339 timestamp ({})", from, ts.error().message));
  }
  auto rt = Runtime::open(*ro);
  if (!rt.ok()) return fatal(rt.error().message);
  const processor::ProcessorOptions po;
  for (std::int32_t p = 0; p < rt->partitions; ++p) {
    if (only_partition >= 0 && p != only_partition) continue;
    auto cp = rt->ledger->checkpoint(po.consumer, p);
    if (!cp.ok()) return fatal(cp.error().message);
    if (!*cp) {
      std::fprintf(stderr, "settled replay: partition %d: never processed; it will be read from the start\n", p);
      continue;
    }
    std::int64_t target = 0;
    if (offset) {
      target = *offset;
    } else {
      auto t = offset_for_time(*rt->bus, p, *at_ms);
      if (!t.ok()) return fatal(t.error().message);
      target = *t;
    }
    if (target >= (*cp)->next_offset) {
      std::fprintf(stderr, "settled replay: partition %d: already at %lld, nothing to replay\n", p,
                   static_cast<long long>((*cp)->next_offset));
      continue;
    }
    ledger::Checkpoint moved = **cp;
    moved.next_offset = target;
    ++moved.version;  // a running processor's next checkpoint is then refused, and it recovers from this one
    if (auto s = rt->ledger->post({}, std::span(&moved, 1)); !s.ok()) return fatal(s.error().message);
    std::fprintf(stderr, "settled replay: partition %d: from %lld back to %lld\n", p,
                 static_cast<long long>((*cp)->next_offset), static_cast<long long>(target));
  }
  return kExitOk;
}

}  // namespace

void add_role_commands(CLI::App& cli, Commands& commands) {
  struct Role {
    const char* name;
    const char* help;
    bool processor, worker, http;
  };
  for (const Role& role :
       {Role{"all", "Run the gateway, processor and worker in this process, until SIGTERM", true, true, true},
        Role{"processor", "Run the stream processor on the owned partitions, until SIGTERM", true, false, false},
        Role{"worker", "Run a settlement worker, until SIGTERM", false, true, false}}) {
    auto flags = std::make_shared<RoleFlags>();
    auto drain = std::make_shared<bool>(false);
    CLI::App* cmd = cli.add_subcommand(role.name, role.help);
    add_role_flags(*cmd, *flags);
    cmd->add_flag("--drain", *drain,
                  "Exit once everything on the bus is processed and settled and the idle rule has closed what it "
                  "can (a batch-style run)");
    commands.push_back(
        {cmd, [flags, drain, role] {
           return run_role(role.name, *flags, role.processor, role.worker, *drain, role.http && !*drain);
         }});
  }

  auto flags = std::make_shared<RoleFlags>();
  auto merchants_file = std::make_shared<std::string>();
  auto events_file = std::make_shared<std::string>();
  CLI::App* ingest = cli.add_subcommand("ingest", "Publish merchants and append a file's valid events to the bus");
  ingest->add_option("--merchants", *merchants_file, "Merchants: a JSON array or NDJSON")
      ->required()->check(CLI::ExistingFile);
  ingest->add_option("--events", *events_file, "Events: NDJSON, one event per line")
      ->required()->check(CLI::ExistingFile);
  add_role_flags(*ingest, *flags);
  commands.push_back({ingest, [=] { return run_ingest(*flags, *merchants_file, *events_file); }});

  auto replay_flags = std::make_shared<RoleFlags>();
  auto from = std::make_shared<std::string>();
  auto partition = std::make_shared<int>(-1);
  CLI::App* replay = cli.add_subcommand(
      "replay", "Make the processors read events again from an offset or time (stop them first); no double effects");
  replay->add_option("--from", *from, "An offset, or an RFC 3339 time (the first event appended at or after it)")
      ->required();
  replay->add_option("--partition", *partition, "Only this partition (default every one)");
  add_role_flags(*replay, *replay_flags);
  commands.push_back({replay, [=] { return run_replay(*replay_flags, *from, *partition); }});
}

}  // namespace settle::app
