// Reads what verify's checks need through the bus and ledger ports: every
// record of every partition of `events` and `dead-letters` from the start, the
// merchants' configuration, and the ledger's postings (per merchant), closed
// batches, balances and trial balance.
//
// Memory: the whole input is held at once (about 200 bytes per event record
// and per posting), so a ledger of tens of millions of journals needs a few
// GiB; a streaming pass per partition is the next step if that is too much.
#pragma once

#include <cstddef>

#include "bus/bus.h"
#include "common/result.h"
#include "ledger/ledger.h"
#include "verify/checks.h"

namespace settle::verify {

struct CollectOptions {
  std::size_t read_records = 4096;  // records per bus read
};

// kUnavailable/kIo when a backend cannot be read; a missing dead-letters
// topic counts as empty.
Result<Input> collect(bus::Bus& bus, ledger::Ledger& ledger, const CollectOptions& options = {});

}  // namespace settle::verify
