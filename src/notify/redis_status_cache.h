// The status cache in Redis (>= 7.0, through hiredis), shared by several
// notify processes. Per merchant (the braces keep a merchant's keys in one
// cluster slot):
//   <prefix>:{<merchant>}:head     hash: epoch, seq, floor
//   <prefix>:{<merchant>}:hist     list of "<seq> <message>", oldest first, at most history_max
//   <prefix>:{<merchant>}:batches  hash: batch key -> latest status JSON, at most batches_max
//   <prefix>:merchants             set of merchant ids
//   <prefix>:mark:<partition>      "<epoch> <next offset>"
// apply() is one Lua script on the merchant's keys (compare with the head,
// append, trim, record the floor), so processes applying the same record
// concurrently keep one copy. Size: bounded per merchant, so the whole is
// bounded by the number of merchants.
//
// Thread safety: every method may be called from any thread (one connection
// behind a mutex; a failed connection is reopened on the next call).
#pragma once

#include <memory>
#include <string>

#include "notify/status_cache.h"

namespace settle::notify {

// url: redis://[:password@]host[:port][/db]. Connects once to check the
// server: kInvalidArgument for a bad URL, kUnavailable when unreachable.
Result<std::unique_ptr<StatusCache>> open_redis_cache(const std::string& url, CacheLimits limits = {},
                                                      std::string key_prefix = "settle:notify");

}  // namespace settle::notify
