// The settled command line: each group of subcommands lives in its own file
// (cli_<group>.cc) and registers itself with add_<group>_commands(); main.cc
// lists the groups. Exit status: 0 ok, 1 the run completed but input was
// rejected or a check failed, 2 the run could not complete.
#pragma once

#include <CLI/CLI.hpp>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "common/result.h"

namespace settle::app {

constexpr int kExitOk = 0;
constexpr int kExitRejected = 1;
constexpr int kExitFatal = 2;

struct Command {
  CLI::App* cli = nullptr;
  std::function<int()> run;  // called when this subcommand was given
};
using Commands = std::vector<Command>;

// Applies the config file named by the subcommand's --config FILE (or
// --config=FILE) in argv, before parsing: each `key = value` of the file
// becomes the default of the subcommand's option --key, so the environment
// (SETTLE_*) and the command line still override it. An unknown key, a
// section or a missing file is an error naming the file and the key.
Status apply_config_file(CLI::App& cli, int argc, char** argv);

// Prints "settled: <message>" on stderr; returns kExitFatal.
int fatal(const std::string& message);
Result<std::string> read_file(const std::filesystem::path& path);

// One per cli_<group>.cc.
void add_embedded_commands(CLI::App& cli, Commands& commands);  // settle, demo, report, balances
void add_role_commands(CLI::App& cli, Commands& commands);      // all, processor, worker, ingest, replay
void add_kafka_commands(CLI::App& cli, Commands& commands);     // topics ensure
void add_recon_commands(CLI::App& cli, Commands& commands);     // payouts export, recon run|discrepancies|ack|resolve|drift
void add_postgres_commands(CLI::App& cli, Commands& commands);  // migrate, partitions
void add_gateway_commands(CLI::App& cli, Commands& commands);   // gateway, keys
void add_verify_commands(CLI::App& cli, Commands& commands);    // verify, simulate
void add_notify_commands(CLI::App& cli, Commands& commands);    // notify
void add_trace_commands(CLI::App& cli, Commands& commands);     // trace

}  // namespace settle::app
