#include "processor/merchant_directory.h"

#include <fmt/format.h>

#include "model/merchant_json.h"
#include "processor/topics.h"

namespace settle::processor {

Result<std::vector<std::int64_t>> MerchantDirectory::end_offsets() {
  SETTLE_ASSIGN_OR_RETURN(const std::int32_t partitions, bus_.partition_count(kMerchantsTopic));
  std::vector<std::int64_t> ends;
  ends.reserve(static_cast<std::size_t>(partitions));
  for (std::int32_t p = 0; p < partitions; ++p) {
    SETTLE_ASSIGN_OR_RETURN(const std::int64_t end, bus_.end_offset(kMerchantsTopic, p));
    ends.push_back(end);
  }
  return ends;
}

Status MerchantDirectory::refresh() {
  // The end offsets first: a record appended while the values are read is
  // then seen as growth by the next refresh_if_grown().
  SETTLE_ASSIGN_OR_RETURN(auto ends, end_offsets());
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
  loaded_ends_ = std::move(ends);
  last_refresh_ = std::chrono::steady_clock::now();
  return ok_status();
}

Status MerchantDirectory::refresh_if_grown() {
  SETTLE_ASSIGN_OR_RETURN(auto ends, end_offsets());
  if (ends == loaded_ends_) {
    last_refresh_ = std::chrono::steady_clock::now();
    return ok_status();
  }
  return refresh();
}

const model::Merchant* MerchantDirectory::find(std::string_view merchant_id) {
  auto it = merchants_.find(std::string(merchant_id));
  if (it != merchants_.end()) return &it->second;
  if (!look_on_miss_ && std::chrono::steady_clock::now() - last_refresh_ < kMissRefreshInterval) return nullptr;
  look_on_miss_ = false;
  if (!refresh_if_grown().ok()) return nullptr;
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
