#include "processor/merchant_directory.h"

#include <fmt/format.h>

#include "model/merchant_json.h"
#include "processor/topics.h"

namespace settle::processor {

Status MerchantDirectory::refresh() {
  SETTLE_ASSIGN_OR_RETURN(auto values, bus_.latest_values(kMerchantsTopic));
  std::unordered_map<std::string, model::Merchant> next;
  for (const auto& [id, json] : values) {
    auto m = model::parse_merchant_json(json);
    if (!m.ok()) {
      return make_error(ErrorCode::kCorruption,
                        fmt::format("topic '{}': merchant '{}': {}", kMerchantsTopic, id, m.error().message));
    }
    next.emplace(id, std::move(m).value());
  }
  merchants_ = std::move(next);
  last_refresh_ = std::chrono::steady_clock::now();
  return ok_status();
}

const model::Merchant* MerchantDirectory::find(std::string_view merchant_id) {
  auto it = merchants_.find(std::string(merchant_id));
  if (it != merchants_.end()) return &it->second;
  if (std::chrono::steady_clock::now() - last_refresh_ < kMissRefreshInterval) return nullptr;
  if (!refresh().ok()) return nullptr;
  it = merchants_.find(std::string(merchant_id));
  return it == merchants_.end() ? nullptr : &it->second;
}

Status MerchantDirectory::publish(bus::Bus& bus, std::span<const model::Merchant> merchants) {
  SETTLE_ASSIGN_OR_RETURN(auto current, bus.latest_values(kMerchantsTopic));
  std::vector<bus::Record> records;
  for (const model::Merchant& m : merchants) {
    std::string json = model::merchant_json(m);
    auto it = current.find(m.id.str());
    if (it != current.end() && it->second == json) continue;
    records.push_back(bus::Record{m.id.str(), std::move(json), {}, 0});
  }
  if (records.empty()) return ok_status();
  SETTLE_TRY(bus.append(kMerchantsTopic, records));
  return ok_status();
}

}  // namespace settle::processor
