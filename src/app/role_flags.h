// The options every long-running role shares (settled all | processor |
// worker | gateway | recon | notify), so one config file serves them all.
//
// Precedence: command line, then environment (SETTLE_*), then the config
// file (--config, TOML: `bus = "kafka://127.0.0.1:9092"`), then defaults.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "app/live_pipeline.h"
#include "app/runtime.h"
#include "common/result.h"
#include "gateway/server.h"

namespace settle::app {

struct RoleFlags {
  std::string data_dir = "settled-data";
  std::string bus, store, ledger;  // URLs; empty: embedded
  int partitions = 0;              // of new topics; 0: existing or 8
  std::string owned;               // "0-3,6": partitions this process owns; empty: all
  std::string fsync = "every-append";
  // The in-process idempotency store's bound on entries (see
  // MemoryStoreOptions::max_entries); 0: its default.
  std::size_t memory_store_max_entries = 0;
  std::string ledger_sync = "full";
  std::int64_t grace_ms = 10 * 60 * 1000;
  std::int64_t idle_ms = 60 * 1000;
  std::int64_t lease_ms = 30 * 1000;  // the worker's claim on a batch (WorkerOptions::lease_ttl)
  std::string listen = "127.0.0.1:8080";  // HTTP (gateway, notify, metrics); port 0: any free one
  int io_threads = 2;
  // The gateway (settled gateway, and settled all).
  int handler_threads = 8;
  std::int64_t request_timeout_ms = 30'000;
  std::size_t max_connections = 1024;
  std::size_t body_limit_bytes = std::size_t{1} << 20;
  // The WebSocket /v1/events/stream: events awaiting acks per connection
  // (reading stops beyond), the largest message (closed with 1009 beyond).
  std::size_t stream_max_in_flight = 4096;
  std::size_t stream_max_message_bytes = std::size_t{1} << 20;
  double rate_events_per_s = 0;
  double rate_burst = 0;
  // Pre-signed uploads: the URLs' HMAC key (or a file holding it; neither: a
  // random key per process), the largest upload, the URLs' default lifetime.
  std::string upload_secret;
  std::string upload_secret_file;
  std::uint64_t upload_max_bytes = std::uint64_t{1} << 30;
  std::int64_t upload_expiry_s = 3600;
  // GET /metrics and /healthz for a role without the gateway (processor,
  // worker); the gateway serves /metrics on --listen. Empty: off.
  std::string metrics_listen;
  // Notify (settled notify on --listen; settled all on --notify-listen,
  // default: --listen's host, any free port).
  std::string notify_listen;
  std::string notify_cache;         // redis://...; empty: in-process
  std::string notify_token_secret;  // HMAC key of stream tokens; empty: random per process
  std::size_t notify_queue_max = 1024;
  std::size_t notify_history = 1000;
  std::string tls_cert, tls_key;  // PEM files; both: the gateway speaks only HTTPS
  std::string log_level = "info";
  std::string log_format = "text";  // text or json (JSON lines, observability/log.h)
  // The alert rules evaluated in the process (settled all, gateway), shown at
  // GET /v1/alerts; 0: off.
  std::int64_t alert_interval_ms = 15'000;
  bool migrate = false;  // PostgreSQL: apply pending migrations at start
};

// What the gateway says when it drew its own upload secret.
inline constexpr const char* kGeneratedSecretNote =
    "no --upload-secret or --upload-secret-file: upload URLs are signed with a random key of this process, "
    "valid only on this process until it stops (give every gateway the same secret)";

// Adds the shared options (and --config) to a role's subcommand.
void add_role_flags(CLI::App& cmd, RoleFlags& flags);

Result<RuntimeOptions> runtime_options(const RoleFlags& flags);
// "0-3,6" -> {0,1,2,3,6}; empty -> {}.
Result<std::vector<std::int32_t>> parse_partition_list(const std::string& text);
Result<LiveOptions> live_options(const RoleFlags& flags);
Result<gateway::ServerOptions> server_options(const RoleFlags& flags);
// Sets the process's log level and format from --log-level and --log-format.
Status init_role_logging(const RoleFlags& flags);

// Blocks SIGINT and SIGTERM in the calling thread (call before starting
// threads, which inherit the mask) so that wait_for_signal() receives them.
// Also ignores SIGPIPE in the whole process: a long-running role writes to
// sockets whose peer may go at any moment (a restarted Redis or PostgreSQL,
// a client that hung up), and such a write must fail with EPIPE, not end
// the role without a word.
void block_stop_signals();
// Waits up to `timeout` for SIGINT/SIGTERM; true when one arrived.
bool wait_for_signal(std::chrono::milliseconds timeout);

// Runtime::open for a long-running role: a server that is down or restarting
// (kUnavailable, kIo) is retried with backoff up to 2 s, each failure logged
// as a warning, for up to `give_up`, or until SIGINT/SIGTERM (call after
// block_stop_signals()). A role started while PostgreSQL or Redis restarts
// waits for it rather than exiting.
Result<Runtime> open_runtime_retrying(const RuntimeOptions& options, const char* role,
                                      std::chrono::milliseconds give_up = std::chrono::minutes(2));

}  // namespace settle::app
