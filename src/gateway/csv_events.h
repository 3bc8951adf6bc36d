// CSV events for bulk uploads: a header row naming the columns (event_id,
// merchant_id, type, amount, currency, occurred_at, metadata; any order,
// any subset) and one event per record, turned into the event's JSON for
// model::EventParser, which validates it. Pure functions without I/O (the
// fuzz target fuzz/bulk_csv_fuzz.cc drives them).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace settle::gateway {

// Splits one CSV record (RFC 4180: quoted fields, "" inside quotes).
std::vector<std::string> split_csv(std::string_view record);

// The header row's columns, trimmed of spaces; kInvalidArgument naming the
// first column that is not an event field.
Result<std::vector<std::string>> csv_header(std::string_view record);

// The event JSON object of one record's cells (cells.size() == columns.size()):
// an empty cell leaves its field out, amount is a number when it is an
// integer (else a string, which the parser rejects with a reason), metadata
// is inserted as the JSON it must be, every other cell is a JSON string.
// has_metadata tells whether a metadata cell was inserted.
std::string csv_event_json(const std::vector<std::string>& columns, const std::vector<std::string>& cells,
                           bool& has_metadata);

}  // namespace settle::gateway
