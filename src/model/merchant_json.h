// Merchant configuration as JSON (SETTLEMENT_RULES §2): strict parsing with
// defaults, errors that name the field, and a canonical serialization (what
// the compacted `merchants` topic stores).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "model/merchant.h"

namespace settle::model {

Result<Merchant> parse_merchant_json(std::string_view json);
std::string merchant_json(const Merchant& merchant);

// A JSON array of merchants or NDJSON (one per line). Errors say which
// element or line: "merchants.json: element 3: field 'cutoff': ...".
Result<std::vector<Merchant>> parse_merchant_list(std::string_view text, std::string_view source);

}  // namespace settle::model
