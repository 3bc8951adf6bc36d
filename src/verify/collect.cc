#include "verify/collect.h"

#include <fmt/format.h>

#include <cstdint>
#include <limits>
#include <set>
#include <string>

#include "model/event_json.h"
#include "model/merchant_json.h"
#include "processor/topics.h"

namespace settle::verify {
namespace {

// Calls `each` on every record of every partition of `topic`, from offset 0.
template <typename Fn>
Status read_topic(bus::Bus& bus, std::string_view topic, std::size_t chunk, bool optional, Fn&& each) {
  auto partitions = bus.partition_count(topic);
  if (!partitions.ok()) {
    if (optional && partitions.error().code == ErrorCode::kNotFound) return ok_status();
    return partitions.error();
  }
  for (std::int32_t p = 0; p < *partitions; ++p) {
    SETTLE_ASSIGN_OR_RETURN(const std::int64_t end, bus.end_offset(topic, p));
    for (std::int64_t from = 0; from < end;) {
      SETTLE_ASSIGN_OR_RETURN(auto records, bus.read(topic, p, from, chunk));
      if (records.empty()) break;  // retention removed the rest, or a gap
      for (const bus::StoredRecord& r : records) SETTLE_TRY(each(r));
      from = records.back().offset + 1;
    }
  }
  return ok_status();
}

}  // namespace

Result<Input> collect(bus::Bus& bus, ledger::Ledger& ledger, const CollectOptions& options) {
  Input in;
  SETTLE_ASSIGN_OR_RETURN(auto merchants, bus.latest_values(processor::kMerchantsTopic));
  for (const auto& [id, value] : merchants) {
    auto m = model::parse_merchant_json(value);
    if (!m.ok()) continue;  // reported by the batches that need it
    in.merchants.emplace(id, std::move(*m));
  }

  model::EventParser parser;
  SETTLE_TRY(read_topic(bus, processor::kEventsTopic, options.read_records, false, [&](const bus::StoredRecord& r) {
    AcceptedEvent e;
    e.partition = r.partition;
    e.offset = r.offset;
    if (auto ev = parser.parse(r.value); ev.ok()) {
      e.merchant_id = ev->merchant_id.str();
      e.event_id = ev->event_id.str();
    } else {
      e.merchant_id = r.key;
    }
    in.accepted.push_back(std::move(e));
    return ok_status();
  }));
  SETTLE_TRY(read_topic(bus, processor::kDeadLettersTopic, options.read_records, true,
                        [&](const bus::StoredRecord& r) -> Status {
                          auto d = model::parse_dead_letter_json(r.value);
                          if (!d.ok()) {
                            return make_error(ErrorCode::kCorruption,
                                              fmt::format("{}/{} offset {}: {}", processor::kDeadLettersTopic,
                                                          r.partition, r.offset, d.error().message));
                          }
                          in.dead_letters.push_back(std::move(*d));
                          return ok_status();
                        }));

  SETTLE_ASSIGN_OR_RETURN(in.closed, ledger.closed_batches(ledger::BatchQuery{}));
  SETTLE_ASSIGN_OR_RETURN(in.balances, ledger.balances(std::nullopt));
  SETTLE_ASSIGN_OR_RETURN(in.trial, ledger.trial_balance());
  // Every merchant with a journal has a payable account (every journal kind
  // posts to it), so the merchants of the accounts name every journal.
  std::set<std::string> merchant_ids;
  for (const ledger::Balance& b : in.balances) {
    constexpr std::string_view kPrefix = "merchant:";
    if (b.account.starts_with(kPrefix)) {
      const std::string_view rest = std::string_view(b.account).substr(kPrefix.size());
      merchant_ids.insert(std::string(rest.substr(0, rest.rfind(':'))));
    }
  }
  for (const auto& [id, m] : in.merchants) merchant_ids.insert(id);
  for (const auto& a : in.accepted) {
    if (!a.merchant_id.empty()) merchant_ids.insert(a.merchant_id);
  }
  for (const std::string& id : merchant_ids) {
    ledger::PostingQuery q;
    q.merchant_id = id;
    q.limit = std::numeric_limits<std::size_t>::max();
    SETTLE_ASSIGN_OR_RETURN(auto rows, ledger.postings(q));
    for (auto& row : rows) in.postings.push_back(std::move(row));
  }
  return in;
}

}  // namespace settle::verify
