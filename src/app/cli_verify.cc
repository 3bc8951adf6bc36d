// settled verify: checks the exactly-once and settlement invariants over what
// the bus and the ledger hold (verify/checks.h) and lists every break.
#include <fmt/format.h>

#include <cstdio>
#include <memory>

#include "app/cli.h"
#include "app/role_flags.h"
#include "app/runtime.h"
#include "verify/checks.h"
#include "verify/collect.h"

namespace settle::app {
namespace {

int run_verify(const RoleFlags& flags, bool quiet) {
  auto ro = runtime_options(flags);
  if (!ro.ok()) return fatal(ro.error().message);
  ro->create = false;
  auto rt = Runtime::open(*ro);
  if (!rt.ok()) return fatal(rt.error().message);
  auto input = verify::collect(*rt->bus, *rt->ledger);
  if (!input.ok()) return fatal(input.error().message);
  const verify::Findings f = verify::check(*input);
  if (!quiet || !f.clean()) {
    std::printf(
        "settled verify: %lld event records on the bus, %lld distinct events: %lld posted, %lld dead-lettered; "
        "%lld event journals in the ledger; %lld closed batches\n",
        static_cast<long long>(f.records), static_cast<long long>(f.events), static_cast<long long>(f.posted),
        static_cast<long long>(f.dead_lettered), static_cast<long long>(f.journals),
        static_cast<long long>(f.batches));
  }
  if (f.clean()) {
    if (!quiet) std::printf("clean: no breaks\n");
    return kExitOk;
  }
  std::printf("%zu breaks:\n", f.breaks.size());
  for (std::size_t i = 0; i < f.breaks.size(); ++i) {
    std::printf("%4zu. %s\n", i + 1, verify::format_break(f.breaks[i]).c_str());
  }
  return kExitRejected;
}

}  // namespace

void add_verify_commands(CLI::App& cli, Commands& commands) {
  auto flags = std::make_shared<RoleFlags>();
  auto quiet = std::make_shared<bool>(false);
  CLI::App* cmd = cli.add_subcommand(
      "verify",
      "Check that every accepted event settled exactly once and every closed batch adds up; exit 1 listing "
      "each break");
  add_role_flags(*cmd, *flags);
  cmd->add_flag("--quiet", *quiet, "Print nothing when clean");
  commands.push_back({cmd, [=] { return run_verify(*flags, *quiet); }});
}

}  // namespace settle::app
