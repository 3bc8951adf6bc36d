// settled gateway | keys: the HTTP gateway role and API key management.
#include <fmt/format.h>

#include <cstdio>
#include <memory>

#include "app/cli.h"
#include "app/recon_metrics.h"
#include "app/role_flags.h"
#include "app/runtime.h"
#include "gateway/keys.h"
#include "gateway/server.h"
#include "observability/alerts.h"
#include "observability/log.h"
#include "observability/metrics.h"

namespace settle::app {
namespace {

int run_gateway(const RoleFlags& flags) {
  if (auto s = init_role_logging(flags); !s.ok()) return fatal(s.error().message);
  const observability::Logger log("gateway");
  auto ro = runtime_options(flags);
  if (!ro.ok()) return fatal(ro.error().message);
  auto so = server_options(flags);
  if (!so.ok()) return fatal(so.error().message);
  block_stop_signals();
  auto rt = open_runtime_retrying(*ro, "gateway");
  if (!rt.ok()) return fatal(rt.error().message);
  auto recon = open_recon_store(*ro);
  if (!recon.ok()) return fatal(recon.error().message);
  std::shared_ptr<reconcile::ReconStore> recon_store = with_status_publisher(std::move(*recon), *rt->ledger, *rt->bus);
  so->api.recon = recon_store.get();
  observability::Metrics metrics("gateway");
  so->api.metrics = &metrics;
  const auto recon_collector = add_recon_collector(metrics, recon_store);
  std::unique_ptr<observability::AlertMonitor> alerts;
  if (flags.alert_interval_ms > 0) {
    alerts = std::make_unique<observability::AlertMonitor>(metrics, std::chrono::milliseconds(flags.alert_interval_ms));
    so->api.alerts = alerts.get();
  }
  gateway::Server server(*rt->bus, *rt->ledger, *rt->store, *so);
  if (auto s = server.start(); !s.ok()) return fatal(s.error().message);
  log.info("{}://{}:{} (bus {}, ledger {}, store {}); stop with SIGTERM or Ctrl-C",
           so->tls_cert_file.empty() ? "http" : "https", so->host, server.port(),
           rt->bus_kind, rt->ledger_kind, rt->store_kind);
  if (server.api().upload_secret_generated()) log.warn("{}", kGeneratedSecretNote);
  while (!wait_for_signal(std::chrono::milliseconds(500))) {
  }
  server.stop();
  log.info("stopped");
  return kExitOk;
}

Result<std::unique_ptr<gateway::KeyRing>> open_keys(Runtime& rt) { return gateway::KeyRing::open(*rt.bus); }

int run_keys_create(const RoleFlags& flags, const std::string& merchant, bool admin) {
  if (admin == !merchant.empty()) return fatal("keys create: give exactly one of --merchant M or --admin");
  auto ro = runtime_options(flags);
  if (!ro.ok()) return fatal(ro.error().message);
  auto rt = Runtime::open(*ro);
  if (!rt.ok()) return fatal(rt.error().message);
  auto keys = open_keys(*rt);
  if (!keys.ok()) return fatal(keys.error().message);
  auto created = (*keys)->create(admin ? gateway::Scope::kAdmin : gateway::Scope::kMerchant, merchant);
  if (!created.ok()) return fatal(created.error().message);
  std::printf("%s\n", created->secret.c_str());
  std::fprintf(stderr, "settled keys: created %s (%s%s%s); the key above is shown once, only its hash is stored\n",
               created->info.key_id.c_str(), std::string(gateway::scope_name(created->info.scope)).c_str(),
               admin ? "" : " ", merchant.c_str());
  return kExitOk;
}

int run_keys_revoke(const RoleFlags& flags, const std::string& key_id) {
  auto ro = runtime_options(flags);
  if (!ro.ok()) return fatal(ro.error().message);
  auto rt = Runtime::open(*ro);
  if (!rt.ok()) return fatal(rt.error().message);
  auto keys = open_keys(*rt);
  if (!keys.ok()) return fatal(keys.error().message);
  auto k = (*keys)->revoke(key_id);
  if (!k.ok()) return fatal(k.error().message);
  std::fprintf(stderr, "settled keys: revoked %s\n", k->key_id.c_str());
  return kExitOk;
}

int run_keys_list(const RoleFlags& flags) {
  auto ro = runtime_options(flags);
  if (!ro.ok()) return fatal(ro.error().message);
  auto rt = Runtime::open(*ro);
  if (!rt.ok()) return fatal(rt.error().message);
  auto keys = open_keys(*rt);
  if (!keys.ok()) return fatal(keys.error().message);
  auto list = (*keys)->list();
  if (!list.ok()) return fatal(list.error().message);
  std::printf("key_id,scope,merchant_id,created_at,revoked\n");
  for (const auto& k : *list) {
    std::printf("%s,%s,%s,%s,%s\n", k.key_id.c_str(), std::string(gateway::scope_name(k.scope)).c_str(),
                k.merchant_id.c_str(), k.created_at.c_str(), k.revoked ? "true" : "false");
  }
  return kExitOk;
}

}  // namespace

void add_gateway_commands(CLI::App& cli, Commands& commands) {
  auto flags = std::make_shared<RoleFlags>();
  CLI::App* cmd = cli.add_subcommand("gateway", "Run the HTTP gateway (ingestion and query API), until SIGTERM");
  add_role_flags(*cmd, *flags);
  commands.push_back({cmd, [=] { return run_gateway(*flags); }});

  CLI::App* keys = cli.add_subcommand("keys", "Create, revoke and list API keys of a data directory");
  keys->require_subcommand(1);
  auto create_flags = std::make_shared<RoleFlags>();
  auto merchant = std::make_shared<std::string>();
  auto admin = std::make_shared<bool>(false);
  CLI::App* create = keys->add_subcommand("create", "Create a key; print it once on stdout");
  add_role_flags(*create, *create_flags);
  create->add_option("--merchant", *merchant, "A merchant key: reads and writes only this merchant");
  create->add_flag("--admin", *admin, "An admin key: manages merchants and keys, reads everything");
  commands.push_back({create, [=] { return run_keys_create(*create_flags, *merchant, *admin); }});

  auto revoke_flags = std::make_shared<RoleFlags>();
  auto key_id = std::make_shared<std::string>();
  CLI::App* revoke = keys->add_subcommand("revoke", "Revoke a key by its id (key_...)");
  add_role_flags(*revoke, *revoke_flags);
  revoke->add_option("--key-id", *key_id, "The key's id, as 'keys create' or 'keys list' printed it")->required();
  commands.push_back({revoke, [=] { return run_keys_revoke(*revoke_flags, *key_id); }});

  auto list_flags = std::make_shared<RoleFlags>();
  CLI::App* list = keys->add_subcommand("list", "List keys (ids, scopes; never the keys themselves) as CSV");
  add_role_flags(*list, *list_flags);
  commands.push_back({list, [=] { return run_keys_list(*list_flags); }});
}

}  // namespace settle::app
