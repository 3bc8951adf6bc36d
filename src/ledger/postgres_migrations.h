// The PostgreSQL ledger's schema as versioned migrations, compiled in from
// src/ledger/migrations/NNNN_name.sql (CMake generates the table; editing a
// file re-runs CMake). Applied in ascending version by
// PostgresLedger::migrate(); an applied migration is never edited, only
// followed by a new one.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace settle::ledger {

struct Migration {
  std::int32_t version = 0;  // NNNN
  std::string_view name;     // "initial" for 0001_initial.sql
  std::string_view sql;
};

// Every migration, ascending version (unique, starting at 1, no gaps).
std::span<const Migration> postgres_migrations();

}  // namespace settle::ledger
