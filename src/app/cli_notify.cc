// settled notify: the notification server (notify/server.h) on its own, and
// the part of it settled all starts beside the gateway.
#include "app/cli_notify.h"

#include <fmt/format.h>

#include <charconv>
#include <chrono>

#include "app/cli.h"
#include "app/role_flags.h"
#include "app/runtime.h"
#include "notify/redis_status_cache.h"
#include "observability/log.h"

namespace settle::app {

Result<std::unique_ptr<NotifyRole>> start_notify(bus::Bus& bus, const RoleFlags& flags, const std::string& listen) {
  const auto colon = listen.rfind(':');
  unsigned port = 0;
  if (colon == std::string::npos) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("notify listen '{}': expected host:port", listen));
  }
  const char* b = listen.data() + colon + 1;
  const char* e = listen.data() + listen.size();
  auto [p, ec] = std::from_chars(b, e, port);
  if (ec != std::errc() || p != e || port > 65535) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("notify listen '{}': bad port", listen));
  }
  auto role = std::make_unique<NotifyRole>();
  notify::CacheLimits limits;
  limits.history_max = flags.notify_history;
  if (flags.notify_cache.empty()) {
    role->cache = notify::make_memory_cache(limits);
    role->cache_kind = "in-process";
  } else {
    SETTLE_ASSIGN_OR_RETURN(role->cache, notify::open_redis_cache(flags.notify_cache, limits));
    role->cache_kind = "redis";
  }
  notify::NotifyOptions o;
  o.host = listen.substr(0, colon);
  o.port = static_cast<std::uint16_t>(port);
  o.io_threads = flags.io_threads;
  o.queue_max = flags.notify_queue_max;
  o.token_secret = flags.notify_token_secret;
  role->server = std::make_unique<notify::NotifyServer>(bus, *role->cache, o);
  SETTLE_TRY(role->server->start());
  return role;
}

namespace {

int run_notify(const RoleFlags& flags) {
  if (auto s = init_role_logging(flags); !s.ok()) return fatal(s.error().message);
  const observability::Logger log("notify");
  auto ro = runtime_options(flags);
  if (!ro.ok()) return fatal(ro.error().message);
  block_stop_signals();
  auto rt = Runtime::open(*ro);
  if (!rt.ok()) return fatal(rt.error().message);
  auto role = start_notify(*rt->bus, flags, flags.listen);
  if (!role.ok()) return fatal(role.error().message);
  log.info("on http://{}:{} (dashboard /dashboard); bus {}, cache {}; stop with SIGTERM or Ctrl-C",
           flags.listen.substr(0, flags.listen.rfind(':')), (*role)->server->port(), rt->bus_kind, (*role)->cache_kind);
  while (!wait_for_signal(std::chrono::milliseconds(200))) {
    if (!(*role)->server->failure().ok()) break;
  }
  (*role)->server->stop();
  if (auto f = (*role)->server->failure(); !f.ok()) return fatal(f.error().message);
  log.info("stopped; {} messages sent, {} slow clients closed", (*role)->server->messages_sent(),
           (*role)->server->slow_closed());
  return kExitOk;
}

}  // namespace

void add_notify_commands(CLI::App& cli, Commands& commands) {
  auto flags = std::make_shared<RoleFlags>();
  flags->listen = "127.0.0.1:8081";
  CLI::App* cmd = cli.add_subcommand(
      "notify", "Serve live status (WebSocket /v1/stream/status, /dashboard) from the status topic, until SIGTERM");
  add_role_flags(*cmd, *flags);
  commands.push_back({cmd, [flags] { return run_notify(*flags); }});
}

}  // namespace settle::app
