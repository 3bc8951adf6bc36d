// Strong identifier types: a MerchantId cannot be passed where an EventId is
// expected. Validation lives with the model (model/validate.h); these are
// plain holders.
#pragma once

#include <compare>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

namespace settle {

template <typename Tag>
class NamedId {
 public:
  NamedId() = default;
  explicit NamedId(std::string value) : value_(std::move(value)) {}
  // Replaces the value, reusing the buffer (for holders reused on hot paths).
  void assign(std::string_view value) { value_.assign(value); }
  const std::string& str() const { return value_; }
  std::string_view view() const { return value_; }
  bool empty() const { return value_.empty(); }
  auto operator<=>(const NamedId&) const = default;

 private:
  std::string value_;
};

using MerchantId = NamedId<struct MerchantIdTag>;
using EventId = NamedId<struct EventIdTag>;

}  // namespace settle

template <typename Tag>
struct std::hash<settle::NamedId<Tag>> {
  std::size_t operator()(const settle::NamedId<Tag>& id) const noexcept {
    return std::hash<std::string>{}(id.str());
  }
};
