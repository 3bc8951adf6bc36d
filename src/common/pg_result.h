// An owned libpq result (PGresult), for the modules that talk to PostgreSQL
// (they link libpq themselves; this header only includes its interface).
//
// Thread safety: like the PGresult it holds, one thread at a time.
#pragma once

#include <libpq-fe.h>

#include <charconv>
#include <cstdint>
#include <string_view>
#include <utility>

namespace settle {

class PgResult {
 public:
  explicit PgResult(PGresult* r = nullptr) : r_(r) {}
  PgResult(const PgResult&) = delete;
  PgResult& operator=(const PgResult&) = delete;
  PgResult(PgResult&& o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
  PgResult& operator=(PgResult&& o) noexcept {
    if (this != &o) {
      PQclear(r_);
      r_ = std::exchange(o.r_, nullptr);
    }
    return *this;
  }
  ~PgResult() { PQclear(r_); }

  PGresult* get() const { return r_; }
  explicit operator bool() const { return r_ != nullptr; }
  int rows() const { return PQntuples(r_); }
  bool null_at(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }
  // The value's text; valid while this result lives.
  std::string_view text(int row, int col) const {
    return {PQgetvalue(r_, row, col), static_cast<std::size_t>(PQgetlength(r_, row, col))};
  }
  // The value as an integer (0 when it is not one).
  std::int64_t int64(int row, int col) const {
    std::int64_t v = 0;
    const std::string_view s = text(row, col);
    std::from_chars(s.data(), s.data() + s.size(), v);
    return v;
  }
  // The rows the command affected (PQcmdTuples; 0 when it does not say).
  std::int64_t affected() const {
    std::int64_t v = 0;
    const std::string_view s = PQcmdTuples(r_);
    std::from_chars(s.data(), s.data() + s.size(), v);
    return v;
  }

 private:
  PGresult* r_ = nullptr;
};

}  // namespace settle
