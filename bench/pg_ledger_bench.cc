// PostgresLedger posting throughput beside its baseline, measured in the same
// run on the same server: a raw COPY of the same journal rows straight into
// the same partitioned `journals` table (what PostgreSQL can ingest with no
// ledger logic: no identity check, no verdicts, no balances).
//
//   pg_ledger_bench [journals (default 200000)] [rounds (default 2)]
//
// Starts its own PostgreSQL 15 (tests/support/postgres_server.h). Each round
// uses two fresh databases, migrated and with the days' partitions created
// ahead (as `settled partitions ensure` would), and posts in calls of 20,000
// journals (a chunk of the processor, which posts at most 60,000), one
// transaction each, in a shuffled event-id order. Prints journals/s and
// postings/s of both and their ratio.
#include <fmt/format.h>
#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "ledger/postgres_ledger.h"
#include "row.h"
#include "model/merchant.h"
#include "rules/rules.h"
#include "support/postgres_server.h"

namespace {

using namespace settle;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kCall = 20'000;
constexpr std::size_t kPieceBytes = 64 * 1024;  // as PostgresLedger sends its COPY rows
constexpr int kDays = 10;
constexpr int kMerchants = 500;

template <typename T>
T must(Result<T> r) {
  if (!r.ok()) throw std::runtime_error(r.error().to_string());
  return std::move(r).value();
}

std::vector<model::Journal> workload(std::size_t n) {
  std::vector<model::Merchant> merchants;
  for (int i = 0; i < kMerchants; ++i) {
    model::Merchant m;
    m.id = MerchantId(fmt::format("merchant_{:04}", i));
    m.fees[static_cast<std::size_t>(model::EventType::kCapture)] = {290, 30};
    m.fees[static_cast<std::size_t>(model::EventType::kRefund)] = {0, 15};
    merchants.push_back(m);
  }
  std::mt19937_64 rng(42);
  std::vector<model::Journal> out;
  out.reserve(n);
  const Date first = date_from_civil(2026, 3, 1);
  for (std::size_t i = 0; i < n; ++i) {
    const model::Merchant& m = merchants[rng() % merchants.size()];
    model::Event e;
    e.merchant_id = m.id;
    e.event_id = EventId(fmt::format("evt_{:016x}", rng()));
    e.type = rng() % 10 == 0 ? model::EventType::kRefund : model::EventType::kCapture;
    e.amount = static_cast<Minor>(100 + rng() % 100'000);
    e.currency = "USD";
    e.occurred_at = Timestamp{(first.days + static_cast<std::int64_t>(rng() % kDays)) * kNsPerDay +
                              static_cast<std::int64_t>(rng() % 86'400) * kNsPerSecond};
    const Date d = rules::batch_date_of(m, e.occurred_at);
    out.push_back(must(rules::event_journal(e, m, d, d, false)));
  }
  return out;
}

void copy_text(std::string& out, std::string_view s) {
  for (char c : s) {
    if (c == '\\' || c == '\t' || c == '\n') out += '\\';
    out += c == '\t' ? 't' : c == '\n' ? 'n' : c;
  }
}

// The journals' columns (without journal_id) as COPY text rows, appended.
void append_copy_rows(std::string& out, std::span<const model::Journal> journals) {
  for (const model::Journal& j : journals) {
    copy_text(out, j.merchant_id.view());
    out += '\t';
    copy_text(out, j.ref);
    out += fmt::format("\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t\\\\x{:016x}{:016x}\t", model::journal_kind_name(j.kind),
                       j.currency, format_date(j.batch_date), format_date(j.settle_date), j.late ? 't' : 'f',
                       format_rfc3339(j.occurred_at), j.amount, j.fee, j.digest.hi, j.digest.lo);
    if (j.metadata_json.empty()) {
      out += "\\N";
    } else {
      copy_text(out, j.metadata_json);
    }
    out += '\t';
    if (j.trace_id.empty()) {
      out += "\\N";
    } else {
      copy_text(out, j.trace_id);
    }
    for (std::size_t leg = 0; leg < model::kMaxLegs; ++leg) {
      if (leg < j.leg_count) {
        out += fmt::format("\t{}\t{}", static_cast<int>(j.legs[leg].account), j.legs[leg].amount);
      } else {
        out += "\t\\N\t\\N";
      }
    }
    out += '\n';
  }
}

void exec(PGconn* pg, const std::string& sql) {
  PGresult* r = PQexec(pg, sql.c_str());
  const auto st = PQresultStatus(r);
  std::string message = PQresultErrorMessage(r);
  PQclear(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) throw std::runtime_error(sql + ": " + message);
}

// Starts both runs from a clean slate of dirty buffers.
void checkpoint(const std::string& conninfo) {
  PGconn* pg = PQconnectdb(conninfo.c_str());
  exec(pg, "CHECKPOINT");
  PQfinish(pg);
}

// The baseline: COPY FROM STDIN into journals, one transaction per call.
double raw_copy(const std::string& conninfo, const std::vector<model::Journal>& journals) {
  PGconn* pg = PQconnectdb(conninfo.c_str());
  if (PQstatus(pg) != CONNECTION_OK) throw std::runtime_error(PQerrorMessage(pg));
  const auto start = Clock::now();
  for (std::size_t at = 0; at < journals.size(); at += kCall) {
    const auto call = std::span(journals).subspan(at, std::min(kCall, journals.size() - at));
    exec(pg, "BEGIN");
    PGresult* r = PQexec(pg,
                         "COPY journals (merchant_id, ref, kind, currency, batch_date, settle_date, late, "
                         "occurred_at, amount, fee, digest, metadata, trace_id, leg1_account, leg1_amount, "
                         "leg2_account, leg2_amount, leg3_account, leg3_amount) FROM STDIN");
    if (PQresultStatus(r) != PGRES_COPY_IN) throw std::runtime_error(PQresultErrorMessage(r));
    PQclear(r);
    // Formatting the rows is part of the client's work, as it is the
    // ledger's; like the ledger, the client sends them in pieces of about
    // 64 KiB as it formats them, so the server stores one while the next is
    // formatted.
    std::string piece;
    for (std::size_t from = 0; from < call.size();) {
      piece.clear();
      std::size_t to = from;
      while (to < call.size() && piece.size() < kPieceBytes) append_copy_rows(piece, call.subspan(to++, 1));
      if (PQputCopyData(pg, piece.data(), static_cast<int>(piece.size())) != 1) {
        throw std::runtime_error(PQerrorMessage(pg));
      }
      from = to;
    }
    if (PQputCopyEnd(pg, nullptr) != 1) throw std::runtime_error(PQerrorMessage(pg));
    while (PGresult* res = PQgetResult(pg)) {
      const bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
      std::string message = PQresultErrorMessage(res);
      PQclear(res);
      if (!ok) throw std::runtime_error("COPY: " + message);
    }
    exec(pg, "COMMIT");
  }
  const double s = std::chrono::duration<double>(Clock::now() - start).count();
  PQfinish(pg);
  return s;
}

double ledger_post(const std::string& url, const std::vector<model::Journal>& journals) {
  ledger::PostgresLedgerOptions options;
  options.pool_size = 1;
  auto ledger = must(ledger::PostgresLedger::open(url, options));
  must(ledger->ensure_partitions(date_from_civil(2026, 2, 27), date_from_civil(2026, 3, 1 + kDays)));
  const auto start = Clock::now();
  for (std::size_t at = 0; at < journals.size(); at += kCall) {
    const std::size_t n = std::min(kCall, journals.size() - at);
    const auto out = must(ledger->post(std::span(journals).subspan(at, n), {}));
    for (const auto o : out) {
      if (o != ledger::PostOutcome::kPosted) throw std::runtime_error("a journal was not posted");
    }
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const auto st = ledger->post_stats();
  std::printf("  PostgresLedger::post phases (ms): stage COPY %.0f, journal_keys insert+verdicts %.0f, "
              "journals COPY %.0f, accounts %.0f, commit %.0f, client (rest) %.0f\n",
              st.stage_ms, st.keys_ms, st.journals_ms, st.accounts_ms, st.commit_ms,
              seconds * 1000 - st.stage_ms - st.keys_ms - st.journals_ms - st.accounts_ms - st.commit_ms);
  return seconds;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::size_t n = argc > 1 ? std::stoul(argv[1]) : 200'000;
    const int rounds = argc > 2 ? std::stoi(argv[2]) : 2;
    auto& server = settle::testing::PostgresServer::shared();
    std::printf("pg_ledger_bench: %zu journals (%d merchants, %d days, shuffled ids), calls of %zu, "
                "PostgreSQL 15 on 127.0.0.1:%d (fsync off)\n",
                n, kMerchants, kDays, kCall, server.port());
    const auto journals = workload(n);
    std::size_t postings = 0;
    for (const auto& j : journals) postings += j.leg_count;
    double best_raw = 0;
    double best_ledger = 0;
    for (int round = 0; round < rounds; ++round) {
      const std::string raw_db = fmt::format("bench_raw_{}", round);
      const std::string ledger_db = fmt::format("bench_ledger_{}", round);
      server.create_database(raw_db);
      server.create_database(ledger_db);
      must(ledger::PostgresLedger::migrate(server.url(raw_db)));
      must(ledger::PostgresLedger::migrate(server.url(ledger_db)));
      {
        auto l = must(ledger::PostgresLedger::open(server.url(raw_db)));
        must(l->ensure_partitions(date_from_civil(2026, 2, 27), date_from_civil(2026, 3, 1 + kDays)));
      }
      checkpoint(server.conninfo());
      const double raw_s = raw_copy(server.conninfo(raw_db), journals);
      checkpoint(server.conninfo());
      const double ledger_s = ledger_post(server.url(ledger_db), journals);
      const double raw_rate = static_cast<double>(n) / raw_s;
      const double ledger_rate = static_cast<double>(n) / ledger_s;
      std::printf("round %d: raw COPY %.0f journals/s (%.0f postings/s, %.2f s); PostgresLedger::post %.0f "
                  "journals/s (%.0f postings/s, %.2f s); ratio %.2fx\n",
                  round + 1, raw_rate, raw_rate * static_cast<double>(postings) / static_cast<double>(n), raw_s,
                  ledger_rate, ledger_rate * static_cast<double>(postings) / static_cast<double>(n), ledger_s,
                  ledger_rate / raw_rate);
      best_raw = std::max(best_raw, raw_rate);
      best_ledger = std::max(best_ledger, ledger_rate);
    }
    std::printf("best: raw COPY %.0f journals/s, PostgresLedger %.0f journals/s, ratio %.2fx (target >= 0.7x)\n",
                best_raw, best_ledger, best_ledger / best_raw);
    settle::bench::print_row("PostgreSQL ledger posting (journals/s)", fmt::format("{:.0f}", best_ledger),
                             fmt::format("{:.0f} raw COPY", best_raw), settle::bench::ratio_text(best_ledger, best_raw),
                             ">= 0.7x", settle::bench::met(best_ledger >= 0.7 * best_raw));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pg_ledger_bench: %s\n", e.what());
    return 2;
  }
  return 0;
}
