// The idempotency port: short-lived keys for deduplication of requests and
// events, and leases with fencing tokens. A fast path only: the ledger's
// unique keys are the durable guard.
//
// Contract (tests/idempotency/store_contract.h runs it against every implementation):
// - put_if_absent(k, v, ttl) stores v when k is absent (or expired) and says
//   so; otherwise it stores nothing and returns the value already there.
// - get(k) returns the live value or nothing; a key is gone once its ttl passed.
// - delete_if_equal(k, v) deletes k only when its value is v.
// - replace_if_equal(k, expected, v, ttl) stores v with a new ttl only when
//   k's live value is `expected`, and says whether it did; an absent or
//   expired key is not replaced. replace_if_equal_many answers as if it were
//   called on each item in order; on an error some items may have been
//   replaced. Implementations may pipeline it; the default loops.
// - try_lock(k, ttl) grants a lease when k is not leased; each grant carries a
//   fencing token strictly greater than every token granted before on any key
//   of this store. unlock() releases only the lease it is given; extend()
//   renews it only while it is still held.
// - put_if_absent_many(items, ttl) answers as if put_if_absent were called on
//   each item in order (a key repeated in one batch sees its earlier item's
//   value), one outcome per item. On an error some items may have been stored
//   already; calling it again is safe, those then answer !inserted with their
//   own value. Implementations may pipeline it; the default loops.
// - A ttl that is not positive is kInvalidArgument.
// Thread safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <span>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace settle::idempotency {

struct PutOutcome {
  bool inserted = false;
  std::string existing;  // the value already stored when !inserted
};

struct PutRequest {
  std::string_view key;
  std::string_view value;
};

struct ReplaceRequest {
  std::string_view key;
  std::string_view expected;
  std::string_view value;
};

struct Lease {
  std::string key;
  std::uint64_t token = 0;  // fencing token, strictly increasing across grants
};

class Store {
 public:
  virtual ~Store() = default;

  virtual Result<PutOutcome> put_if_absent(std::string_view key, std::string_view value,
                                           std::chrono::milliseconds ttl) = 0;
  // Outcomes in the order of items.
  virtual Result<std::vector<PutOutcome>> put_if_absent_many(std::span<const PutRequest> items,
                                                             std::chrono::milliseconds ttl);
  virtual Result<std::optional<std::string>> get(std::string_view key) = 0;
  virtual Result<bool> delete_if_equal(std::string_view key, std::string_view expected) = 0;
  virtual Result<bool> replace_if_equal(std::string_view key, std::string_view expected, std::string_view value,
                                        std::chrono::milliseconds ttl) = 0;
  // Whether each item was replaced, in the order of items.
  virtual Result<std::vector<bool>> replace_if_equal_many(std::span<const ReplaceRequest> items,
                                                          std::chrono::milliseconds ttl);

  // nullopt when another holder has the lease.
  virtual Result<std::optional<Lease>> try_lock(std::string_view key,
                                                std::chrono::milliseconds ttl) = 0;
  virtual Result<bool> extend(const Lease& lease, std::chrono::milliseconds ttl) = 0;
  virtual Result<bool> unlock(const Lease& lease) = 0;

  // True when no call waits for I/O (the store lives in this process): a
  // caller may then use it from a thread that must not block.
  virtual bool in_process() const { return false; }
};

}  // namespace settle::idempotency
