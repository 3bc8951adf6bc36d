// settled: the merchant settlement platform's one binary.
#include <malloc.h>

#include <CLI/CLI.hpp>

#include "app/cli.h"
#include "app/crash_report.h"

int main(int argc, char** argv) {
  // The pipeline allocates and frees chunks of a few MiB (records read from
  // the bus, journals of a chunk) many times a second. glibc's defaults hand
  // such memory back to the kernel each time and fault it in again; keeping
  // it costs a bounded few tens of MiB and saves most of that kernel time.
  // (settled is linked with tcmalloc, which ignores these, unless built
  // without it: SETTLE_TCMALLOC=OFF or the sanitizer tree.)
  settle::app::install_crash_report();
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 128 << 20);
  using namespace settle::app;
  CLI::App cli{"settled: merchant settlement platform (embedded default: file log bus, SQLite ledger)"};
  cli.require_subcommand(1);

  Commands commands;
  add_embedded_commands(cli, commands);
  add_role_commands(cli, commands);
  add_kafka_commands(cli, commands);
  add_recon_commands(cli, commands);
  add_postgres_commands(cli, commands);
  add_gateway_commands(cli, commands);
  add_verify_commands(cli, commands);
  add_notify_commands(cli, commands);
  add_trace_commands(cli, commands);

  if (settle::Status s = apply_config_file(cli, argc, argv); !s.ok()) return fatal(s.error().message);
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = cli.exit(e);
    return code == 0 ? kExitOk : kExitFatal;
  }
  for (const Command& c : commands) {
    if (c.cli->parsed()) return c.run();
  }
  return kExitFatal;
}
