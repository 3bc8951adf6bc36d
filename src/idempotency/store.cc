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

}  // namespace settle::idempotency
