#include "notify/status_cache.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <deque>
#include <map>
#include <mutex>
#include <unordered_map>

#include "common/assert.h"
#include "model/event_json.h"

namespace settle::notify {

Result<StreamPosition> parse_position(std::string_view text) {
  const auto colon = text.find(':');
  auto bad = [&](std::string_view why) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("since '{}': {} (expected EPOCH:SEQ)", text, why));
  };
  if (colon == std::string_view::npos) return bad("no ':'");
  StreamPosition p;
  const std::string_view e = text.substr(0, colon), s = text.substr(colon + 1);
  auto [pe, ece] = std::from_chars(e.data(), e.data() + e.size(), p.epoch);
  if (ece != std::errc() || pe != e.data() + e.size() || e.empty()) return bad("the epoch is not a number");
  auto [ps, ecs] = std::from_chars(s.data(), s.data() + s.size(), p.seq);
  if (ecs != std::errc() || ps != s.data() + s.size() || s.empty() || p.seq < 0) return bad("the seq is not a number");
  return p;
}

Result<std::map<std::string, StreamPosition>> parse_positions(std::string_view text) {
  std::map<std::string, StreamPosition> out;
  std::size_t start = 0;
  for (int item = 1;; ++item) {
    const std::size_t comma = text.find(',', start);
    const std::string_view part = text.substr(start, comma == std::string_view::npos ? text.npos : comma - start);
    const auto first = part.find(':'), last = part.rfind(':');
    auto bad = [&](std::string_view why) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("since item {} '{}': {} (expected EPOCH:MERCHANT:SEQ, comma-separated)", item, part, why));
    };
    if (first == std::string_view::npos || first == last || last == first + 1) return bad("no merchant");
    const std::string merchant(part.substr(first + 1, last - first - 1));
    std::string pos(part.substr(0, first));
    pos += part.substr(last);
    auto p = parse_position(pos);
    if (!p.ok()) return bad(p.error().message);
    if (!out.emplace(merchant, *p).second) return bad("merchant '" + merchant + "' named twice");
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

std::string notify_message(std::string_view merchant_id, StreamPosition at, std::string_view status_json) {
  std::string out = fmt::format("{{\"type\":\"status\",\"epoch\":{},\"seq\":{},\"merchant_id\":\"", at.epoch, at.seq);
  model::append_json_escaped(out, merchant_id);
  out += "\",\"status\":";
  out += status_json;
  out += '}';
  return out;
}

namespace {
std::string state_body(const MerchantState& s) {
  std::string out = "\"merchant_id\":\"";
  model::append_json_escaped(out, s.merchant_id);
  out += fmt::format("\",\"epoch\":{},\"seq\":{},\"batches\":[", s.head.epoch, s.head.seq);
  for (std::size_t i = 0; i < s.batches.size(); ++i) {
    if (i > 0) out += ',';
    out += s.batches[i];
  }
  out += "]";
  return out;
}
}  // namespace

std::string resync_message(const MerchantState& s) { return "{\"type\":\"resync\"," + state_body(s) + "}"; }
std::string state_json(const MerchantState& s) { return "{" + state_body(s) + "}"; }

namespace {

class MemoryCache final : public StatusCache {
 public:
  explicit MemoryCache(CacheLimits limits) : limits_(limits) {
    SETTLE_ASSERT(limits_.history_max > 0 && limits_.batches_max > 0 && limits_.merchants_max > 0,
                  "cache limits must be positive");
  }

  Result<bool> apply(const CacheEntry& e) override {
    std::lock_guard lock(mu_);
    auto it = merchants_.find(e.merchant_id);
    if (it == merchants_.end()) {
      if (merchants_.size() >= limits_.merchants_max) evict_one();
      it = merchants_.emplace(e.merchant_id, Merchant{}).first;
    }
    Merchant& m = it->second;
    if (m.head.seq >= 0 && m.head.epoch == e.at.epoch && e.at.seq <= m.head.seq) return false;
    if (m.head.seq < 0 || m.head.epoch != e.at.epoch) {
      m.history.clear();
      m.floor = -1;
    }
    m.head = e.at;
    m.touched = ++clock_;
    m.history.push_back(e);
    if (m.history.size() > limits_.history_max) {
      m.floor = m.history.front().at.seq;
      m.history.pop_front();
    }
    if (!e.batch.empty()) {
      m.batches[e.batch] = e.status;
      if (m.batches.size() > limits_.batches_max) m.batches.erase(m.batches.begin());
    }
    return true;
  }

  Result<MerchantState> state(std::string_view merchant_id) override {
    std::lock_guard lock(mu_);
    MerchantState s;
    s.merchant_id = std::string(merchant_id);
    auto it = merchants_.find(s.merchant_id);
    if (it == merchants_.end()) return s;
    s.head = it->second.head;
    for (const auto& [key, status] : it->second.batches) s.batches.push_back(status);
    return s;
  }

  Result<std::optional<std::vector<CacheEntry>>> since(std::string_view merchant_id, StreamPosition from) override {
    std::lock_guard lock(mu_);
    auto it = merchants_.find(std::string(merchant_id));
    if (it == merchants_.end()) return std::optional<std::vector<CacheEntry>>();
    const Merchant& m = it->second;
    if (m.head.epoch != from.epoch || from.seq < m.floor || from.seq > m.head.seq) {
      return std::optional<std::vector<CacheEntry>>();
    }
    std::vector<CacheEntry> out;
    for (const CacheEntry& e : m.history) {
      if (e.at.seq > from.seq) out.push_back(e);
    }
    return std::optional<std::vector<CacheEntry>>(std::move(out));
  }

  Result<std::vector<std::string>> merchants() override {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    out.reserve(merchants_.size());
    for (const auto& [id, m] : merchants_) out.push_back(id);
    std::sort(out.begin(), out.end());
    return out;
  }

  Result<std::optional<PartitionMark>> mark(std::int32_t partition) override {
    std::lock_guard lock(mu_);
    auto it = marks_.find(partition);
    if (it == marks_.end()) return std::optional<PartitionMark>();
    return std::optional<PartitionMark>(it->second);
  }

  Status set_mark(std::int32_t partition, PartitionMark mark) override {
    std::lock_guard lock(mu_);
    marks_[partition] = mark;
    return ok_status();
  }

 private:
  struct Merchant {
    StreamPosition head;
    std::int64_t floor = -1;
    std::deque<CacheEntry> history;
    std::map<std::string, std::string> batches;  // "YYYY-MM-DD/CUR" sorts oldest first
    std::uint64_t touched = 0;
  };

  // Drops the least recently updated merchant (O(merchants), only when full).
  void evict_one() {
    auto victim = std::min_element(merchants_.begin(), merchants_.end(),
                                   [](const auto& a, const auto& b) { return a.second.touched < b.second.touched; });
    if (victim != merchants_.end()) merchants_.erase(victim);
  }

  const CacheLimits limits_;
  std::mutex mu_;
  std::unordered_map<std::string, Merchant> merchants_;
  std::map<std::int32_t, PartitionMark> marks_;
  std::uint64_t clock_ = 0;
};

}  // namespace

std::unique_ptr<StatusCache> make_memory_cache(CacheLimits limits) { return std::make_unique<MemoryCache>(limits); }

}  // namespace settle::notify
