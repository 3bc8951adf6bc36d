// TokenSource: where fencing tokens come from.
//
// A fencing token lets a resource (the ledger) refuse a lease holder that has
// been superseded. That only works if tokens never go back, across restarts
// and failovers of whatever hands out leases: a Redis INCR counter does not
// qualify (a failover to a replica that missed the last increments, or a
// restart without persistence, starts it lower). A TokenSource is therefore a
// separate, durable monotonic counter (PgTokenSource: a PostgreSQL sequence).
//
// Contract: if one call to next() returns before another starts (in any
// process sharing the source), the later one returns a strictly greater value.
// Values are positive; gaps are allowed.
// Thread safety: next() may be called from any thread.
#pragma once

#include <cstdint>

#include "common/result.h"

namespace settle::idempotency {

class TokenSource {
 public:
  virtual ~TokenSource() = default;
  // kUnavailable when the backing store cannot be reached in time.
  virtual Result<std::uint64_t> next() = 0;
};

}  // namespace settle::idempotency
