#include "reconcile/mt940_parser.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <string>

namespace settle::reconcile {
namespace {

struct Field {
  std::string tag;    // "61", "60F", ...
  std::string value;  // continuation lines joined with '\n'
  int line = 0;
};

Error at(int line, std::string_view tag, const std::string& what) {
  return make_error(ErrorCode::kInvalidArgument, fmt::format("mt940 line {}: :{}: {}", line, tag, what));
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }

// ":61:" / ":28C:" at the start of a line: the tag, else "".
std::string tag_of(std::string_view line, std::size_t* value_start) {
  if (line.size() < 4 || line[0] != ':' || !is_digit(line[1]) || !is_digit(line[2])) return {};
  std::size_t i = 3;
  if (i < line.size() && is_alpha(line[i])) ++i;
  if (i >= line.size() || line[i] != ':') return {};
  *value_start = i + 1;
  return std::string(line.substr(1, i - 1));
}

// Splits the text into tagged fields; envelope, header and trailer lines drop out.
std::vector<Field> fields_of(std::string_view text) {
  std::vector<Field> out;
  bool in_field = false;
  int line_no = 0;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    while (!line.empty() && (line.front() == '\x01' || line.front() == '\x03')) line.remove_prefix(1);
    if (line_no == 1 && line.starts_with("\xEF\xBB\xBF")) line.remove_prefix(3);
    if (line.starts_with("{")) {
      // SWIFT envelope: "{1:...}{2:...}{4:" possibly followed by the first field.
      const std::size_t b4 = line.find("{4:");
      in_field = false;
      if (b4 == std::string_view::npos) continue;
      line = line.substr(b4 + 3);
      if (line.empty()) continue;
    }
    if (line == "-" || line.starts_with("-}") || line.starts_with("}")) {
      in_field = false;
      continue;
    }
    std::size_t value_start = 0;
    std::string tag = tag_of(line, &value_start);
    if (!tag.empty()) {
      out.push_back(Field{std::move(tag), std::string(line.substr(value_start)), line_no});
      in_field = true;
    } else if (in_field) {
      out.back().value += '\n';
      out.back().value += line;
    }
  }
  return out;
}

Result<Date> yymmdd(std::string_view s, int line, std::string_view tag, std::string_view what) {
  if (s.size() < 6 || !std::all_of(s.begin(), s.begin() + 6, is_digit)) {
    return at(line, tag, fmt::format("expected the {} as YYMMDD, found '{}'", what, s.substr(0, 6)));
  }
  const int yy = (s[0] - '0') * 10 + (s[1] - '0');
  const unsigned mm = static_cast<unsigned>((s[2] - '0') * 10 + (s[3] - '0'));
  const unsigned dd = static_cast<unsigned>((s[4] - '0') * 10 + (s[5] - '0'));
  if (mm < 1 || mm > 12 || dd < 1 || dd > 31) {
    return at(line, tag, fmt::format("expected the {} as YYMMDD, found '{}' (no such date)", what, s.substr(0, 6)));
  }
  const int year = yy < 80 ? 2000 + yy : 1900 + yy;
  const Date d = date_from_civil(year, mm, dd);
  const CivilDate back = civil_from_date(d);
  if (back.month != mm || back.day != dd) {
    return at(line, tag, fmt::format("expected the {} as YYMMDD, found '{}' (no such date)", what, s.substr(0, 6)));
  }
  return d;
}

std::string first_line(const std::string& v) { return v.substr(0, v.find('\n')); }

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

// :60F:, :62F:, :60M:, :62M: "C190215EUR194,57".
Result<BankBalance> balance_of(const Field& f) {
  const std::string v = trim(first_line(f.value));
  if (v.empty() || (v[0] != 'C' && v[0] != 'D')) {
    return at(f.line, f.tag, fmt::format("expected a balance starting with C or D, found '{}'", v));
  }
  BankBalance b;
  SETTLE_ASSIGN_OR_RETURN(b.date, yymmdd(std::string_view(v).substr(1), f.line, f.tag, "balance date"));
  if (v.size() < 10) return at(f.line, f.tag, fmt::format("expected a currency after the date, found '{}'", v));
  b.currency = v.substr(7, 3);
  auto cur = find_currency(b.currency);
  if (!cur.ok()) {
    return at(f.line, f.tag, fmt::format("expected an ISO 4217 currency after the date, found '{}'", b.currency));
  }
  SETTLE_ASSIGN_OR_RETURN(Minor amount, parse_decimal_minor(v.substr(10), cur->exponent(),
                                                            fmt::format("mt940 line {}: :{}: amount", f.line, f.tag)));
  if (amount < 0) return at(f.line, f.tag, "expected an unsigned amount (the sign is C or D)");
  b.amount = v[0] == 'C' ? amount : -amount;
  return b;
}

Result<BankEntry> entry_of(const Field& f, const std::string& currency, int exponent) {
  BankEntry e;
  e.location = fmt::format("line {}", f.line);
  e.currency = currency;
  const std::string first = first_line(f.value);
  std::string_view v = first;
  SETTLE_ASSIGN_OR_RETURN(Date value_date, yymmdd(v, f.line, f.tag, "value date"));
  e.value_date = value_date;
  v.remove_prefix(6);
  e.booking_date = value_date;
  if (v.size() >= 4 && std::all_of(v.begin(), v.begin() + 4, is_digit)) {
    const unsigned mm = static_cast<unsigned>((v[0] - '0') * 10 + (v[1] - '0'));
    const unsigned dd = static_cast<unsigned>((v[2] - '0') * 10 + (v[3] - '0'));
    if (mm < 1 || mm > 12 || dd < 1 || dd > 31) {
      return at(f.line, f.tag, fmt::format("expected the entry date as MMDD, found '{}'", v.substr(0, 4)));
    }
    const CivilDate vd = civil_from_date(value_date);
    int year = vd.year;
    // The entry date has no year: the one nearest the value date.
    if (static_cast<int>(mm) - static_cast<int>(vd.month) > 6) --year;
    if (static_cast<int>(vd.month) - static_cast<int>(mm) > 6) ++year;
    e.booking_date = date_from_civil(year, mm, dd);
    v.remove_prefix(4);
  }
  int sign = 0;
  if (v.starts_with("RC")) {
    sign = -1, e.reversal = true, v.remove_prefix(2);
  } else if (v.starts_with("RD")) {
    sign = 1, e.reversal = true, v.remove_prefix(2);
  } else if (v.starts_with("C")) {
    sign = 1, v.remove_prefix(1);
  } else if (v.starts_with("D")) {
    sign = -1, v.remove_prefix(1);
  } else {
    return at(f.line, f.tag,
              fmt::format("expected a mark C, D, RC or RD after the dates, found '{}'", v.substr(0, 2)));
  }
  if (!v.empty() && is_alpha(v.front())) v.remove_prefix(1);  // funds code (third letter of the currency)
  std::size_t n = 0;
  while (n < v.size() && (is_digit(v[n]) || v[n] == ',' || v[n] == '.')) ++n;
  if (n == 0) return at(f.line, f.tag, fmt::format("expected an amount after the mark, found '{}'", v.substr(0, 8)));
  SETTLE_ASSIGN_OR_RETURN(Minor amount, parse_decimal_minor(v.substr(0, n), exponent,
                                                            fmt::format("mt940 line {}: :61: amount", f.line)));
  e.amount = sign * amount;
  v.remove_prefix(n);
  // Transaction type: N/F/S and three characters (NTRF, N037, FINT); some banks omit it.
  if (v.size() >= 4 && (v[0] == 'N' || v[0] == 'F' || v[0] == 'S')) v.remove_prefix(4);
  const std::size_t slashes = v.find("//");
  e.entry_ref = trim(v.substr(0, slashes));
  if (e.entry_ref == "NONREF") e.entry_ref.clear();
  if (slashes != std::string_view::npos) e.bank_ref = trim(v.substr(slashes + 2));
  if (f.value.size() > first.size()) e.info = f.value.substr(first.size() + 1);
  return e;
}

bool balance_tag(const std::string& tag, char kind) {
  return tag.size() == 3 && tag[0] == '6' && tag[1] == kind && (tag[2] == 'F' || tag[2] == 'M');
}

}  // namespace

Result<std::vector<BankStatement>> parse_mt940(std::string_view text) {
  const std::vector<Field> fields = fields_of(text);
  std::vector<BankStatement> out;
  BankStatement* s = nullptr;
  int exponent = 2;
  int opened_line = 0;
  bool last_was_entry = false;
  auto finish = [&](int line) -> Status {
    if (s == nullptr) return ok_status();
    if (!s->opening) return at(opened_line, "20", "expected an opening balance :60F: or :60M: in this statement");
    if (!s->closing) return at(line, "62F", "expected a closing balance :62F: or :62M: before the statement ends");
    Minor sum = s->opening->amount;
    for (const BankEntry& e : s->entries) {
      SETTLE_ASSIGN_OR_RETURN(sum, checked_add(sum, e.amount));
    }
    if (sum != s->closing->amount) {
      return at(line, s->closing_is_final ? "62F" : "62M",
                fmt::format("closing balance {} is not opening {} + entries {} = {} ({} {})",
                            format_minor(s->closing->amount, exponent), format_minor(s->opening->amount, exponent),
                            format_minor(sum - s->opening->amount, exponent), format_minor(sum, exponent),
                            s->currency, s->id));
    }
    std::optional<Date> lo, hi;
    for (const BankEntry& e : s->entries) {
      const Date d = *e.booking_date;
      if (!lo || d < *lo) lo = d;
      if (!hi || d > *hi) hi = d;
    }
    s->from = lo ? lo : std::optional<Date>(s->opening->date);
    s->to = hi ? hi : std::optional<Date>(s->closing->date);
    s = nullptr;
    return ok_status();
  };
  int closing_line = 0;
  for (const Field& f : fields) {
    if (f.tag == "20") {
      if (s != nullptr) SETTLE_TRY(finish(closing_line != 0 ? closing_line : f.line));
      out.emplace_back();
      s = &out.back();
      s->id = trim(first_line(f.value));
      opened_line = f.line;
      closing_line = 0;
      last_was_entry = false;
      continue;
    }
    if (s == nullptr) {
      if (f.tag == "86") continue;  // a trailing statement-level :86: after the message
      return at(f.line, f.tag, "expected :20: to start a statement first");
    }
    if (f.tag == "25") {
      s->account = trim(first_line(f.value));
    } else if (f.tag == "28C" || f.tag == "28") {
      const std::string seq = trim(first_line(f.value));
      if (!seq.empty()) s->id += "/" + seq;
    } else if (balance_tag(f.tag, '0')) {
      SETTLE_ASSIGN_OR_RETURN(BankBalance b, balance_of(f));
      s->opening = b;
      s->currency = b.currency;
      exponent = find_currency(b.currency)->exponent();
    } else if (f.tag == "61") {
      if (!s->opening) return at(f.line, f.tag, "expected an opening balance :60F: or :60M: before the first entry");
      SETTLE_ASSIGN_OR_RETURN(BankEntry e, entry_of(f, s->currency, exponent));
      s->entries.push_back(std::move(e));
      last_was_entry = true;
      continue;
    } else if (f.tag == "86") {
      if (last_was_entry && !s->entries.empty()) {
        BankEntry& e = s->entries.back();
        e.info = e.info.empty() ? f.value : e.info + "\n" + f.value;
        // Keep attaching continuation :86: fields (some banks repeat the tag).
        continue;
      }
    } else if (balance_tag(f.tag, '2')) {
      SETTLE_ASSIGN_OR_RETURN(BankBalance b, balance_of(f));
      if (b.currency != s->currency) {
        return at(f.line, f.tag, fmt::format("expected the currency of the opening balance ({}), found {}",
                                             s->currency, b.currency));
      }
      s->closing = b;
      s->closing_is_final = f.tag == "62F";
      closing_line = f.line;
    }
    last_was_entry = false;
  }
  if (s != nullptr) SETTLE_TRY(finish(closing_line != 0 ? closing_line : (fields.empty() ? 0 : fields.back().line)));
  if (out.empty()) return make_error(ErrorCode::kInvalidArgument, "mt940: no statement (no :20: tag) in the file");
  return out;
}

Result<std::vector<BankStatement>> join_statement_parts(std::vector<BankStatement> parts) {
  std::vector<BankStatement> out;
  for (BankStatement& p : parts) {
    if (!out.empty()) {
      BankStatement& prev = out.back();
      if (!prev.closing_is_final && prev.account == p.account && prev.currency == p.currency) {
        if (!prev.closing || !p.opening || prev.closing->amount != p.opening->amount) {
          return make_error(ErrorCode::kInvalidArgument,
                            fmt::format("statement {} continues {} of account {}, but its opening balance does not "
                                        "equal the intermediate closing balance",
                                        p.id, prev.id, p.account));
        }
        for (BankEntry& e : p.entries) prev.entries.push_back(std::move(e));
        prev.closing = p.closing;
        prev.closing_is_final = p.closing_is_final;
        if (p.to && (!prev.to || *p.to > *prev.to)) prev.to = p.to;
        if (p.from && (!prev.from || *p.from < *prev.from)) prev.from = p.from;
        continue;
      }
    }
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace settle::reconcile
