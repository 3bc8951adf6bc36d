#include "reconcile/acquirer_csv_parser.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <optional>

namespace settle::reconcile {
namespace {

struct Record {
  std::vector<std::string> cells;
  int line = 0;
};

Error at(int line, const std::string& what) {
  return make_error(ErrorCode::kInvalidArgument, fmt::format("acquirer csv line {}: {}", line, what));
}

// RFC 4180 records; a quoted cell may hold delimiters, "" and newlines.
Result<std::vector<Record>> records_of(std::string_view text, char delim) {
  std::vector<Record> out;
  std::size_t i = 0;
  int line = 1;
  if (text.starts_with("\xEF\xBB\xBF")) i = 3;
  while (i < text.size()) {
    Record r;
    r.line = line;
    std::string cell;
    bool done = false;
    while (!done) {
      if (i < text.size() && text[i] == '"') {
        const int quote_line = line;
        ++i;
        for (;;) {
          if (i >= text.size()) return at(quote_line, "expected a closing '\"' for the quoted cell opened here");
          const char c = text[i++];
          if (c == '"') {
            if (i < text.size() && text[i] == '"') {
              cell += '"';
              ++i;
              continue;
            }
            break;
          }
          if (c == '\n') ++line;
          cell += c;
        }
      }
      while (i < text.size() && text[i] != delim && text[i] != '\n') {
        if (text[i] != '\r') cell += text[i];
        ++i;
      }
      r.cells.push_back(std::move(cell));
      cell.clear();
      if (i >= text.size()) {
        done = true;
      } else if (text[i] == delim) {
        ++i;
      } else {  // '\n'
        ++i;
        ++line;
        done = true;
      }
    }
    const bool blank = r.cells.size() == 1 && r.cells[0].empty();
    if (!blank) out.push_back(std::move(r));
  }
  return out;
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

struct Columns {
  std::map<std::string, std::size_t> index;
  std::optional<std::size_t> find(const std::string& name) const {
    auto it = index.find(name);
    if (it == index.end()) return std::nullopt;
    return it->second;
  }
};

Result<std::size_t> need(const Columns& cols, const std::string& name, const CsvMapping& m, int line) {
  auto i = cols.find(name);
  if (!i) return at(line, fmt::format("expected a column '{}' in the header (mapping '{}')", name, m.name));
  return *i;
}

std::string cell(const Record& r, std::size_t i) { return i < r.cells.size() ? trim(r.cells[i]) : std::string(); }

Result<Minor> sum_columns(const Record& r, const Columns& cols, const std::vector<std::string>& names,
                          int exponent, const CsvMapping& m) {
  Minor total = 0;
  for (const std::string& spec : names) {
    const bool minus = spec.starts_with("-");
    const std::string name = minus ? spec.substr(1) : spec;
    SETTLE_ASSIGN_OR_RETURN(std::size_t i, need(cols, name, m, r.line));
    const std::string v = cell(r, i);
    if (v.empty()) continue;
    SETTLE_ASSIGN_OR_RETURN(Minor a, parse_decimal_minor(v, exponent,
                                                         fmt::format("acquirer csv line {}: column '{}'", r.line, name)));
    SETTLE_ASSIGN_OR_RETURN(total, minus ? checked_sub(total, a) : checked_add(total, a));
  }
  return total;
}

bool known_type(std::string_view t) {
  return t == "capture" || t == "refund" || t == "chargeback" || t == "chargeback_reversal" || t == "adjustment";
}

Minor magnitude(Minor a) { return a < 0 ? (a == INT64_MIN ? INT64_MAX : -a) : a; }

}  // namespace

Result<CsvMapping> builtin_mapping(std::string_view name) {
  CsvMapping m;
  if (name == "default") return m;
  if (name == "adyen") {
    m.name = "adyen";
    m.record_type = "";
    m.merchant_id = "Merchant Account";
    m.reference = "Merchant Reference";
    m.type = "Type";
    m.currency = "Gross Currency";
    m.gross = {"Gross Credit (GC)", "-Gross Debit (GC)"};
    m.fee = {"Commission (NC)", "Markup (NC)", "Scheme Fees (NC)", "Interchange (NC)"};
    m.net = {"Net Credit (NC)", "-Net Debit (NC)"};
    m.batch_date = "Creation Date";  // present in every layout; "Booking Date" is not
    m.count = "";
    m.types = {{"Settled", "capture"},
               {"SettledBulk", "capture"},
               {"Refunded", "refund"},
               {"RefundedBulk", "refund"},
               {"Chargeback", "chargeback"},
               {"ChargebackReversed", "chargeback_reversal"}};
    return m;
  }
  if (name == "stripe") {
    m.name = "stripe";
    m.record_type = "";
    m.merchant_id = "";
    m.reference = "balance_transaction_id";
    m.type = "reporting_category";
    m.currency = "currency";
    m.batch_date = "available_on";
    m.count = "";
    m.types = {{"charge", "capture"}, {"refund", "refund"}, {"dispute", "chargeback"},
               {"dispute_reversal", "chargeback_reversal"}};
    return m;
  }
  return make_error(ErrorCode::kInvalidArgument,
                    fmt::format("unknown CSV mapping '{}' (built in: default, adyen, stripe)", name));
}

Result<CsvMapping> parse_mapping_json(std::string_view json) {
  CsvMapping m;
  m.name = "custom";
  nlohmann::json j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return make_error(ErrorCode::kInvalidArgument, "CSV mapping: expected a JSON object");
  }
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const nlohmann::json& v = it.value();
    auto str = [&](std::string& out) -> Status {
      if (!v.is_string()) {
        return make_error(ErrorCode::kInvalidArgument, fmt::format("CSV mapping: '{}' must be a string", k));
      }
      out = v.get<std::string>();
      return ok_status();
    };
    auto list = [&](std::vector<std::string>& out) -> Status {
      out.clear();
      if (v.is_string()) {
        out.push_back(v.get<std::string>());
        return ok_status();
      }
      if (!v.is_array()) {
        return make_error(ErrorCode::kInvalidArgument,
                          fmt::format("CSV mapping: '{}' must be a column name or a list of them", k));
      }
      for (const auto& e : v) {
        if (!e.is_string()) {
          return make_error(ErrorCode::kInvalidArgument, fmt::format("CSV mapping: '{}' must list strings", k));
        }
        out.push_back(e.get<std::string>());
      }
      return ok_status();
    };
    if (k == "name") {
      SETTLE_TRY(str(m.name));
    } else if (k == "delimiter") {
      std::string d;
      SETTLE_TRY(str(d));
      if (d.size() != 1) return make_error(ErrorCode::kInvalidArgument, "CSV mapping: 'delimiter' must be one character");
      m.delimiter = d[0];
    } else if (k == "record_type") {
      SETTLE_TRY(str(m.record_type));
    } else if (k == "transaction_value") {
      SETTLE_TRY(str(m.transaction_value));
    } else if (k == "total_value") {
      SETTLE_TRY(str(m.total_value));
    } else if (k == "merchant_id") {
      SETTLE_TRY(str(m.merchant_id));
    } else if (k == "reference") {
      SETTLE_TRY(str(m.reference));
    } else if (k == "type") {
      SETTLE_TRY(str(m.type));
    } else if (k == "currency") {
      SETTLE_TRY(str(m.currency));
    } else if (k == "gross") {
      SETTLE_TRY(list(m.gross));
    } else if (k == "fee") {
      SETTLE_TRY(list(m.fee));
    } else if (k == "net") {
      SETTLE_TRY(list(m.net));
    } else if (k == "batch_date") {
      SETTLE_TRY(str(m.batch_date));
    } else if (k == "count") {
      SETTLE_TRY(str(m.count));
    } else if (k == "types") {
      if (!v.is_object()) return make_error(ErrorCode::kInvalidArgument, "CSV mapping: 'types' must be an object");
      for (auto t = v.begin(); t != v.end(); ++t) {
        if (!t.value().is_string() || !known_type(t.value().get<std::string>())) {
          return make_error(ErrorCode::kInvalidArgument,
                            fmt::format("CSV mapping: types['{}'] must be capture, refund, chargeback, "
                                        "chargeback_reversal or adjustment",
                                        t.key()));
        }
        m.types[t.key()] = t.value().get<std::string>();
      }
    } else {
      return make_error(ErrorCode::kInvalidArgument, fmt::format("CSV mapping: unknown key '{}'", k));
    }
  }
  return m;
}

Result<AcquirerReport> parse_acquirer_csv(std::string_view text, const CsvMapping& m,
                                          std::string_view default_merchant, AcquirerParseStats* stats) {
  SETTLE_ASSIGN_OR_RETURN(std::vector<Record> records, records_of(text, m.delimiter));
  if (records.empty()) return at(1, "expected a header line");
  Columns cols;
  for (std::size_t i = 0; i < records[0].cells.size(); ++i) cols.index.emplace(trim(records[0].cells[i]), i);
  const int hl = records[0].line;
  std::optional<std::size_t> rt_col;
  if (!m.record_type.empty()) {
    SETTLE_ASSIGN_OR_RETURN(std::size_t c, need(cols, m.record_type, m, hl));
    rt_col = c;
  }
  std::optional<std::size_t> merchant_col;
  if (!m.merchant_id.empty()) {
    SETTLE_ASSIGN_OR_RETURN(std::size_t c, need(cols, m.merchant_id, m, hl));
    merchant_col = c;
  } else if (default_merchant.empty()) {
    return at(hl, fmt::format("mapping '{}' has no merchant column: name the merchant (--merchant)", m.name));
  }
  SETTLE_ASSIGN_OR_RETURN(std::size_t ref_col, need(cols, m.reference, m, hl));
  SETTLE_ASSIGN_OR_RETURN(std::size_t type_col, need(cols, m.type, m, hl));
  SETTLE_ASSIGN_OR_RETURN(std::size_t cur_col, need(cols, m.currency, m, hl));
  SETTLE_ASSIGN_OR_RETURN(std::size_t date_col, need(cols, m.batch_date, m, hl));

  AcquirerReport out;
  for (std::size_t k = 1; k < records.size(); ++k) {
    const Record& r = records[k];
    const std::string kind = rt_col ? cell(r, *rt_col) : m.transaction_value;
    const bool total = kind == m.total_value;
    if (!total && kind != m.transaction_value) {
      return at(r.line, fmt::format("column '{}': expected '{}' or '{}', found '{}'", m.record_type,
                                    m.transaction_value, m.total_value, kind));
    }
    std::string type;
    if (!total) {
      type = cell(r, type_col);
      if (!m.types.empty()) {
        auto it = m.types.find(type);
        if (it == m.types.end()) {
          if (stats != nullptr) ++stats->skipped_lines;
          continue;
        }
        type = it->second;
      } else if (!known_type(type)) {
        return at(r.line, fmt::format("column '{}': expected capture, refund, chargeback, chargeback_reversal or "
                                      "adjustment, found '{}'",
                                      m.type, type));
      }
    }
    const std::string merchant = merchant_col ? cell(r, *merchant_col) : std::string(default_merchant);
    if (merchant.empty()) return at(r.line, fmt::format("column '{}': expected a merchant id", m.merchant_id));
    std::string currency = cell(r, cur_col);
    for (char& c : currency) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    auto cur = find_currency(currency);
    if (!cur.ok()) {
      return at(r.line, fmt::format("column '{}': expected an ISO 4217 currency, found '{}'", m.currency, currency));
    }
    const int exp = cur->exponent();
    SETTLE_ASSIGN_OR_RETURN(Minor gross, sum_columns(r, cols, m.gross, exp, m));
    SETTLE_ASSIGN_OR_RETURN(Minor fee, sum_columns(r, cols, m.fee, exp, m));
    SETTLE_ASSIGN_OR_RETURN(Minor net, sum_columns(r, cols, m.net, exp, m));
    const std::string date_text = cell(r, date_col);
    std::optional<Date> date;
    if (!date_text.empty()) {
      auto d = parse_date(std::string_view(date_text).substr(0, 10));
      if (!d.ok()) {
        return at(r.line, fmt::format("column '{}': expected a date YYYY-MM-DD, found '{}'", m.batch_date, date_text));
      }
      date = *d;
    }
    if (total) {
      AcquirerBatchTotal t;
      t.merchant_id = merchant;
      t.currency = currency;
      if (!date) return at(r.line, fmt::format("column '{}': a batch total needs its batch date", m.batch_date));
      t.batch_date = *date;
      t.gross = gross;
      t.fee = fee;
      t.net = net;
      t.line = r.line;
      if (!m.count.empty()) {
        SETTLE_ASSIGN_OR_RETURN(std::size_t cc, need(cols, m.count, m, hl));
        const std::string cv = cell(r, cc);
        std::int64_t n = 0;
        for (char c : cv) {
          if (c < '0' || c > '9' || n > 1'000'000'000'000) {
            return at(r.line, fmt::format("column '{}': expected a count, found '{}'", m.count, cv));
          }
          n = n * 10 + (c - '0');
        }
        t.count = n;
      }
      out.totals.push_back(std::move(t));
      continue;
    }
    AcquirerLine l;
    l.merchant_id = merchant;
    l.reference = cell(r, ref_col);
    if (l.reference.empty()) return at(r.line, fmt::format("column '{}': expected a reference (our event id)", m.reference));
    l.type = type;
    l.currency = currency;
    // Acquirers sign refunds and fees either way; ours are magnitudes, the
    // type gives the direction (adjustments keep their sign).
    l.gross = type == "adjustment" ? gross : magnitude(gross);
    l.fee = magnitude(fee);
    l.net = net;
    l.batch_date = date;
    l.line = r.line;
    out.lines.push_back(std::move(l));
  }
  return out;
}

}  // namespace settle::reconcile
