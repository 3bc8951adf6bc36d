// settled all | processor | worker: the long-running pipeline roles.
#include <fmt/format.h>

#include <cstdio>
#include <memory>

#include "app/cli.h"
#include "app/live_pipeline.h"
#include "app/role_flags.h"
#include "app/runtime.h"

namespace settle::app {
namespace {

int run_role(const char* name, const RoleFlags& flags, bool processor, bool worker) {
  auto ro = runtime_options(flags);
  if (!ro.ok()) return fatal(ro.error().message);
  auto lo = live_options(flags);
  if (!lo.ok()) return fatal(lo.error().message);
  lo->run_processor = processor;
  lo->run_worker = worker;
  block_stop_signals();
  auto rt = Runtime::open(*ro);
  if (!rt.ok()) return fatal(rt.error().message);
  LivePipeline pipeline(*rt->bus, *rt->ledger, *rt->store, rt->partitions, *lo);
  if (auto s = pipeline.start(); !s.ok()) return fatal(s.error().message);
  std::fprintf(stderr, "settled %s: bus %s, ledger %s, store %s; %d partitions%s%s; stop with SIGTERM or Ctrl-C\n",
               name, rt->bus_kind.c_str(), rt->ledger_kind.c_str(), rt->store_kind.c_str(), rt->partitions,
               flags.owned.empty() ? "" : ", owning ", flags.owned.c_str());
  while (!wait_for_signal(std::chrono::milliseconds(200))) {
    if (pipeline.failure()) break;
  }
  const Status stopped = pipeline.stop();
  const LiveStats s = pipeline.stats();
  std::fprintf(stderr,
               "settled %s: stopped; %lld events read, %lld posted, %lld duplicates, %lld conflicts, %lld rejected, "
               "%lld tasks emitted, %lld batches closed, %lld tasks failed\n",
               name, static_cast<long long>(s.events), static_cast<long long>(s.posted),
               static_cast<long long>(s.duplicates), static_cast<long long>(s.conflicts),
               static_cast<long long>(s.rejected), static_cast<long long>(s.tasks_emitted),
               static_cast<long long>(s.batches_closed), static_cast<long long>(s.tasks_failed));
  if (!stopped.ok()) return fatal(stopped.error().message);
  return kExitOk;
}

}  // namespace

void add_role_commands(CLI::App& cli, Commands& commands) {
  struct Role {
    const char* name;
    const char* help;
    bool processor, worker;
  };
  for (const Role& role : {Role{"all", "Run every role in this process (embedded default), until SIGTERM", true, true},
                           Role{"processor", "Run the stream processor on the owned partitions, until SIGTERM", true,
                                false},
                           Role{"worker", "Run a settlement worker, until SIGTERM", false, true}}) {
    auto flags = std::make_shared<RoleFlags>();
    CLI::App* cmd = cli.add_subcommand(role.name, role.help);
    add_role_flags(*cmd, *flags);
    commands.push_back({cmd, [flags, role] { return run_role(role.name, *flags, role.processor, role.worker); }});
  }
}

}  // namespace settle::app
