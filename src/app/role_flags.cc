#include "app/role_flags.h"

#include <fmt/format.h>
#include <signal.h>

#include <algorithm>
#include <charconv>
#include <ctime>
#include <fstream>
#include <sstream>

#include "observability/log.h"

namespace settle::app {

void add_role_flags(CLI::App& cmd, RoleFlags& f) {
  cmd.add_option("--config", "Config file (TOML: key = value, keys as the long options without --); "
                              "the environment and the command line override it")
      ->check(CLI::ExistingFile);
  cmd.add_option("--data-dir", f.data_dir, "Embedded backends' directory (bus/, ledger.db)")
      ->envname("SETTLE_DATA_DIR")->capture_default_str();
  cmd.add_option("--bus", f.bus, "Bus URL: kafka://host:port[,host:port] (default: embedded file log)")
      ->envname("SETTLE_BUS");
  cmd.add_option("--store", f.store, "Idempotency store URL: redis://host:port (default: in-process)")
      ->envname("SETTLE_STORE");
  cmd.add_option("--memory-store-max-entries", f.memory_store_max_entries,
                 "In-process idempotency store: entries held at most (one per event accepted within the claim "
                 "TTL, 24 h); beyond, new claims answer 503 until old ones expire (default 10000000)")
      ->envname("SETTLE_MEMORY_STORE_MAX_ENTRIES")->check(CLI::Range(std::size_t{1000}, std::size_t{1} << 40));
  cmd.add_option("--ledger", f.ledger, "Ledger URL: postgresql://user@host:port/db (default: SQLite in data dir)")
      ->envname("SETTLE_LEDGER");
  cmd.add_option("--partitions", f.partitions, "Partitions of newly created topics (default 8)")
      ->envname("SETTLE_PARTITIONS");
  cmd.add_option("--owned-partitions", f.owned, "Partitions this process owns, e.g. 0-3,6 (default all)")
      ->envname("SETTLE_OWNED_PARTITIONS");
  cmd.add_option("--fsync", f.fsync, "Embedded bus durability: every-append or none")
      ->envname("SETTLE_FSYNC")->capture_default_str();
  cmd.add_option("--ledger-sync", f.ledger_sync, "Embedded ledger durability: full or normal")
      ->envname("SETTLE_LEDGER_SYNC")->capture_default_str();
  cmd.add_option("--grace-ms", f.grace_ms, "Watermark grace: how late an event may arrive for its own batch")
      ->envname("SETTLE_GRACE_MS")->capture_default_str();
  cmd.add_option("--idle-ms", f.idle_ms, "A partition idle this long lets wall-clock time close its batches")
      ->envname("SETTLE_IDLE_MS")->capture_default_str();
  cmd.add_option("--lease-ms", f.lease_ms,
                 "Worker: how long its claim on a batch lasts (a dead worker's batch waits this long)")
      ->envname("SETTLE_LEASE_MS")->capture_default_str();
  cmd.add_option("--listen", f.listen, "HTTP address host:port")->envname("SETTLE_LISTEN")->capture_default_str();
  cmd.add_option("--io-threads", f.io_threads, "HTTP I/O threads")
      ->envname("SETTLE_IO_THREADS")->check(CLI::Range(1, 256))->capture_default_str();
  cmd.add_option("--handler-threads", f.handler_threads, "Gateway: threads that run requests (bus appends, ledger reads)")
      ->envname("SETTLE_HANDLER_THREADS")->check(CLI::Range(1, 1024))->capture_default_str();
  cmd.add_option("--request-timeout-ms", f.request_timeout_ms,
                 "Gateway: a request must arrive, and its response leave, within this")
      ->envname("SETTLE_REQUEST_TIMEOUT_MS")->check(CLI::Range(std::int64_t{1}, std::int64_t{3'600'000}))
      ->capture_default_str();
  cmd.add_option("--max-connections", f.max_connections, "Gateway: concurrent connections; more are answered 503")
      ->envname("SETTLE_MAX_CONNECTIONS")->capture_default_str();
  cmd.add_option("--body-limit-bytes", f.body_limit_bytes, "Gateway: largest request body (413 beyond); bulk is streamed")
      ->envname("SETTLE_BODY_LIMIT_BYTES")->capture_default_str();
  cmd.add_option("--stream-max-in-flight", f.stream_max_in_flight,
                 "Gateway: events of a /v1/events/stream connection awaiting acks; reading stops beyond")
      ->envname("SETTLE_STREAM_MAX_IN_FLIGHT")->check(CLI::Range(std::size_t{1}, std::size_t{1} << 24))
      ->capture_default_str();
  cmd.add_option("--stream-max-message-bytes", f.stream_max_message_bytes,
                 "Gateway: largest /v1/events/stream message (closed with 1009 beyond)")
      ->envname("SETTLE_STREAM_MAX_MESSAGE_BYTES")->check(CLI::Range(std::size_t{1}, std::size_t{1} << 30))
      ->capture_default_str();
  cmd.add_option("--rate-limit", f.rate_events_per_s, "Gateway: events per second per merchant (0: no limit); 429 beyond")
      ->envname("SETTLE_RATE_LIMIT")->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd.add_option("--rate-burst", f.rate_burst, "Gateway: token-bucket size per merchant, in events (default: the rate)")
      ->envname("SETTLE_RATE_BURST")->check(CLI::NonNegativeNumber);
  cmd.add_option("--upload-secret", f.upload_secret,
                 "Gateway: HMAC-SHA256 key of pre-signed upload URLs (default: random per process)")
      ->envname("SETTLE_UPLOAD_SECRET");
  cmd.add_option("--upload-secret-file", f.upload_secret_file, "Gateway: a file holding the upload URLs' key")
      ->envname("SETTLE_UPLOAD_SECRET_FILE");
  cmd.add_option("--upload-max-bytes", f.upload_max_bytes, "Gateway: largest pre-signed upload")
      ->envname("SETTLE_UPLOAD_MAX_BYTES")->check(CLI::PositiveNumber)->capture_default_str();
  cmd.add_option("--upload-expiry-s", f.upload_expiry_s, "Gateway: default lifetime of an upload URL, in seconds")
      ->envname("SETTLE_UPLOAD_EXPIRY_S")->check(CLI::Range(std::int64_t{1}, std::int64_t{7 * 86400}))
      ->capture_default_str();
  cmd.add_option("--tls-cert", f.tls_cert, "Gateway: PEM certificate chain; with --tls-key the gateway speaks only HTTPS")
      ->envname("SETTLE_TLS_CERT");
  cmd.add_option("--tls-key", f.tls_key, "Gateway: PEM private key of --tls-cert")->envname("SETTLE_TLS_KEY");
  cmd.add_flag("--migrate", f.migrate, "PostgreSQL ledger: apply pending migrations at start (else run 'settled migrate')")
      ->envname("SETTLE_MIGRATE");
  cmd.add_option("--metrics-listen", f.metrics_listen,
                 "host:port for GET /metrics on roles without the gateway (the gateway serves it on --listen)")
      ->envname("SETTLE_METRICS_LISTEN");
  cmd.add_option("--notify-listen", f.notify_listen, "settled all: the notify server's host:port (default: any free port)")
      ->envname("SETTLE_NOTIFY_LISTEN");
  cmd.add_option("--notify-cache", f.notify_cache, "Notify: status cache URL redis://host:port (default: in-process)")
      ->envname("SETTLE_NOTIFY_CACHE");
  cmd.add_option("--notify-token-secret", f.notify_token_secret,
                 "Notify: HMAC key of stream tokens; give every notify process the same (default: random per process)")
      ->envname("SETTLE_NOTIFY_TOKEN_SECRET");
  cmd.add_option("--notify-queue-max", f.notify_queue_max, "Notify: unsent messages per client before it is closed (4008)")
      ->envname("SETTLE_NOTIFY_QUEUE_MAX")->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20))->capture_default_str();
  cmd.add_option("--notify-history", f.notify_history, "Notify: messages kept per merchant for resume")
      ->envname("SETTLE_NOTIFY_HISTORY")->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20))->capture_default_str();
  cmd.add_option("--log-level", f.log_level, "trace, debug, info, warn, error")
      ->envname("SETTLE_LOG_LEVEL")->capture_default_str();
  cmd.add_option("--log-format", f.log_format, "Operational log on stderr: text, or json (one JSON object a line)")
      ->envname("SETTLE_LOG_FORMAT")->capture_default_str();
  cmd.add_option("--alert-interval-ms", f.alert_interval_ms,
                 "Gateway roles: evaluate the alert rules in the process this often, for GET /v1/alerts (0: off)")
      ->envname("SETTLE_ALERT_INTERVAL_MS")->check(CLI::Range(std::int64_t{0}, std::int64_t{3'600'000}))
      ->capture_default_str();
}

Status init_role_logging(const RoleFlags& f) {
  SETTLE_ASSIGN_OR_RETURN(observability::LogLevel level, observability::parse_log_level(f.log_level));
  SETTLE_ASSIGN_OR_RETURN(observability::LogFormat format, observability::parse_log_format(f.log_format));
  observability::init_logging(level, format);
  return ok_status();
}

Result<RuntimeOptions> runtime_options(const RoleFlags& f) {
  RuntimeOptions o;
  o.data_dir = f.data_dir;
  if (f.partitions != 0) o.partitions = f.partitions;
  if (f.fsync == "every-append") {
    o.bus_fsync = bus::FsyncPolicy::kEveryAppend;
  } else if (f.fsync == "none") {
    o.bus_fsync = bus::FsyncPolicy::kNone;
  } else {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("--fsync must be every-append or none, not '{}'", f.fsync));
  }
  if (f.ledger_sync == "full") {
    o.ledger_sync = ledger::Synchronous::kFull;
  } else if (f.ledger_sync == "normal") {
    o.ledger_sync = ledger::Synchronous::kNormal;
  } else {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("--ledger-sync must be full or normal, not '{}'", f.ledger_sync));
  }
  o.bus_url = f.bus;
  o.store_url = f.store;
  if (f.memory_store_max_entries != 0) {
    if (!f.store.empty() && f.store != "memory://") {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("--memory-store-max-entries bounds the in-process store; the store is {}",
                                    f.store));
    }
    o.memory_store_max_entries = f.memory_store_max_entries;
  }
  o.ledger_url = f.ledger;
  o.migrate = f.migrate;
  return o;
}

Result<std::vector<std::int32_t>> parse_partition_list(const std::string& text) {
  std::vector<std::int32_t> out;
  std::string_view rest = text;
  auto number = [&](std::string_view s) -> Result<std::int32_t> {
    std::int32_t v = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || ptr != s.data() + s.size() || v < 0) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("--owned-partitions: '{}' is not a partition number (in '{}')", s, text));
    }
    return v;
  };
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    const auto dash = item.find('-');
    if (dash == std::string_view::npos) {
      SETTLE_ASSIGN_OR_RETURN(std::int32_t p, number(item));
      out.push_back(p);
    } else {
      SETTLE_ASSIGN_OR_RETURN(std::int32_t lo, number(item.substr(0, dash)));
      SETTLE_ASSIGN_OR_RETURN(std::int32_t hi, number(item.substr(dash + 1)));
      if (hi < lo) {
        return make_error(ErrorCode::kInvalidArgument, fmt::format("--owned-partitions: empty range '{}'", item));
      }
      for (std::int32_t p = lo; p <= hi; ++p) out.push_back(p);
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Result<LiveOptions> live_options(const RoleFlags& f) {
  LiveOptions o;
  SETTLE_ASSIGN_OR_RETURN(o.partitions, parse_partition_list(f.owned));
  if (f.grace_ms < 0 || f.idle_ms < 0) {
    return make_error(ErrorCode::kInvalidArgument, "--grace-ms and --idle-ms must not be negative");
  }
  if (f.lease_ms < 100) return make_error(ErrorCode::kInvalidArgument, "--lease-ms must be at least 100");
  o.worker.lease_ttl = std::chrono::milliseconds(f.lease_ms);
  o.processor.grace_ms = f.grace_ms;
  o.processor.idle_ms = f.idle_ms;
  return o;
}

Result<gateway::ServerOptions> server_options(const RoleFlags& f) {
  const auto colon = f.listen.rfind(':');
  if (colon == std::string::npos) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("--listen '{}': expected host:port", f.listen));
  }
  unsigned port = 0;
  const char* b = f.listen.data() + colon + 1;
  const char* e = f.listen.data() + f.listen.size();
  auto [p, ec] = std::from_chars(b, e, port);
  if (ec != std::errc() || p != e || port > 65535) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("--listen '{}': bad port", f.listen));
  }
  gateway::ServerOptions so;
  so.host = f.listen.substr(0, colon);
  so.port = static_cast<std::uint16_t>(port);
  so.io_threads = f.io_threads;
  so.handler_threads = f.handler_threads;
  so.request_timeout = std::chrono::milliseconds(f.request_timeout_ms);
  so.max_connections = f.max_connections;
  so.body_limit_bytes = f.body_limit_bytes;
  so.stream_in_flight_max = f.stream_max_in_flight;
  so.stream_message_bytes_max = f.stream_max_message_bytes;
  so.api.rate_limit.rate_per_s = f.rate_events_per_s;
  so.api.rate_limit.burst = f.rate_burst > 0 ? f.rate_burst : f.rate_events_per_s;
  if (!f.upload_secret.empty() && !f.upload_secret_file.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "give --upload-secret or --upload-secret-file, not both");
  }
  so.api.upload_secret = f.upload_secret;
  if (!f.upload_secret_file.empty()) {
    std::ifstream in(f.upload_secret_file, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("--upload-secret-file '{}': cannot read it", f.upload_secret_file));
    }
    so.api.upload_secret = text.str();
    while (!so.api.upload_secret.empty() &&
           (so.api.upload_secret.back() == '\n' || so.api.upload_secret.back() == '\r')) {
      so.api.upload_secret.pop_back();
    }
    if (so.api.upload_secret.empty()) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("--upload-secret-file '{}' is empty", f.upload_secret_file));
    }
  }
  if (!so.api.upload_secret.empty() && so.api.upload_secret.size() < 16) {
    return make_error(ErrorCode::kInvalidArgument, "the upload secret must have at least 16 characters");
  }
  if (f.tls_cert.empty() != f.tls_key.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "TLS needs both --tls-cert and --tls-key");
  }
  so.tls_cert_file = f.tls_cert;
  so.tls_key_file = f.tls_key;
  so.api.upload_max_bytes = f.upload_max_bytes;
  so.api.upload_expiry = std::chrono::seconds(f.upload_expiry_s);
  return so;
}

void block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
}

bool wait_for_signal(std::chrono::milliseconds timeout) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  timespec ts{static_cast<time_t>(timeout.count() / 1000), static_cast<long>((timeout.count() % 1000) * 1'000'000)};
  return sigtimedwait(&set, nullptr, &ts) > 0;
}

}  // namespace settle::app

namespace settle::app {

Result<Runtime> open_runtime_retrying(const RuntimeOptions& options, const char* role,
                                      std::chrono::milliseconds give_up) {
  const auto deadline = std::chrono::steady_clock::now() + give_up;
  for (int attempt = 1;; ++attempt) {
    auto rt = Runtime::open(options);
    if (rt.ok()) return rt;
    const ErrorCode code = rt.error().code;
    if ((code != ErrorCode::kUnavailable && code != ErrorCode::kIo) || std::chrono::steady_clock::now() >= deadline) {
      return rt.error();
    }
    observability::Logger(role).warn("{}; retrying (attempt {})", rt.error().message, attempt);
    if (wait_for_signal(std::chrono::milliseconds(std::min(2000, 100 << std::min(attempt, 5))))) {
      return make_error(code, rt.error().message + " (stopped while retrying)");
    }
  }
}

}  // namespace settle::app
