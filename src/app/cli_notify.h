// The notify server as settled notify and settled all run it.
#pragma once

#include <memory>
#include <string>

#include "app/role_flags.h"
#include "bus/bus.h"
#include "common/result.h"
#include "notify/server.h"
#include "notify/status_cache.h"

namespace settle::app {

struct NotifyRole {
  std::unique_ptr<notify::StatusCache> cache;  // outlives the server
  std::unique_ptr<notify::NotifyServer> server;
  std::string cache_kind;
  ~NotifyRole() {
    if (server) server->stop();
  }
};

// Opens the cache (--notify-cache) and starts the server on `listen`.
Result<std::unique_ptr<NotifyRole>> start_notify(bus::Bus& bus, const RoleFlags& flags, const std::string& listen);

}  // namespace settle::app
