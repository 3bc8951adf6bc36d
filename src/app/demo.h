// `settled demo`: a realistic sample day of a small platform, settled
// through the real pipeline, printed for a human.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/time.h"
#include "ledger/ledger.h"
#include "model/merchant.h"

namespace settle::app {

struct Sample {
  std::vector<model::Merchant> merchants;
  std::string merchants_json;  // a JSON array, as a user would write it
  std::string events_ndjson;
  Date first_day;
  Date through;  // the last batch date the demo closes (the day after stays open)
};

// Deterministic for a seed: merchants in several zones and currencies (some
// with reserves and cut-offs), a few days of captures, refunds, chargebacks
// and adjustments, a few exact duplicates.
Sample make_sample(std::uint64_t seed, int events_per_merchant_day);

// Aligned tables for terminals.
std::string format_report_table(ledger::Ledger& ledger);
std::string format_balances_table(ledger::Ledger& ledger, std::optional<std::string_view> merchant);
std::string format_trial_balance(ledger::Ledger& ledger);

}  // namespace settle::app
