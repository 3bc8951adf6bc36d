#include "idempotency/store.h"

#include <string>
#include <utility>

namespace settle::idempotency {

Result<std::vector<PutOutcome>> Store::put_if_absent_many(std::span<const PutRequest> items,
                                                          std::chrono::milliseconds ttl) {
  if (ttl.count() <= 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "idempotency put_if_absent_many: ttl must be positive, got " +
                          std::to_string(ttl.count()) + " ms");
  }
  std::vector<PutOutcome> outcomes;
  outcomes.reserve(items.size());
  for (const PutRequest& item : items) {
    SETTLE_ASSIGN_OR_RETURN(PutOutcome outcome, put_if_absent(item.key, item.value, ttl));
    outcomes.push_back(std::move(outcome));
  }
  return outcomes;
}

Result<std::vector<bool>> Store::replace_if_equal_many(std::span<const ReplaceRequest> items,
                                                      std::chrono::milliseconds ttl) {
  if (ttl.count() <= 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "idempotency replace_if_equal_many: ttl must be positive, got " + std::to_string(ttl.count()) +
                          " ms");
  }
  std::vector<bool> replaced;
  replaced.reserve(items.size());
  for (const ReplaceRequest& item : items) {
    SETTLE_ASSIGN_OR_RETURN(bool done, replace_if_equal(item.key, item.expected, item.value, ttl));
    replaced.push_back(done);
  }
  return replaced;
}

}  // namespace settle::idempotency
