#include "reconcile/bai2_parser.h"

#include <fmt/format.h>

#include <limits>
#include <optional>
#include <string>

namespace settle::reconcile {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool is_code(std::string_view c) {
  return c == "01" || c == "02" || c == "03" || c == "16" || c == "88" || c == "49" || c == "98" || c == "99";
}

Error at(int line, std::string_view code, const std::string& what) {
  return make_error(ErrorCode::kInvalidArgument, fmt::format("bai2 line {}: {}: {}", line, code, what));
}

Error at_line(int line, const std::string& what) {
  return make_error(ErrorCode::kInvalidArgument, fmt::format("bai2 line {}: {}", line, what));
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A record's content without its '/' terminator (and the blanks around it).
std::string_view unterminated(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  if (!s.empty() && s.back() == '/') s.remove_suffix(1);
  return s;
}

// A physical record: its code and what follows "NN,".
struct Raw {
  std::string code;
  std::string body;
  int line = 0;
};

// A record with its 88 continuations.
struct Logical {
  std::string code;
  std::vector<std::string> parts;  // the record's body, then each 88's
  int line = 0;
  std::int64_t records = 0;  // physical records: 1 + its 88s
};

// Splits the text into physical records.
Result<std::vector<Raw>> records_of(std::string_view text) {
  std::vector<Raw> out;
  int line_no = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line_no == 1 && line.starts_with("\xEF\xBB\xBF")) line.remove_prefix(3);
    if (trim(line).empty()) continue;
    const bool coded = line.size() >= 3 && is_digit(line[0]) && is_digit(line[1]) && line[2] == ',';
    if (!coded) {
      if (line.size() >= 3 && is_digit(line[0]) && is_digit(line[1]) && !is_digit(line[2])) {
        return at_line(line_no, fmt::format("expected a record code and ',' (e.g. '88,'), found '{}'",
                                            line.substr(0, 3)));
      }
      if (out.empty()) {
        return at_line(line_no, fmt::format("expected the 01 file header, found '{}'", line.substr(0, 20)));
      }
      // A record's text wrapped onto the next line.
      out.back().body += ' ';
      out.back().body += trim(line);
      continue;
    }
    std::string_view rest = line;
    while (!rest.empty()) {
      const std::string_view code = rest.substr(0, 2);
      if (!is_code(code)) {
        return at_line(line_no, fmt::format("unknown record code '{}' (expected 01, 02, 03, 16, 88, 49, 98 or 99)",
                                            code));
      }
      // Another record on the same line: '/', blanks, then "NN,".
      std::size_t end = std::string_view::npos, next = 0;
      for (std::size_t i = rest.find('/', 3); i != std::string_view::npos; i = rest.find('/', i + 1)) {
        std::size_t j = i + 1;
        while (j < rest.size() && rest[j] == ' ') ++j;
        if (j > i + 1 && j + 3 <= rest.size() && rest[j + 2] == ',' && is_code(rest.substr(j, 2))) {
          end = i + 1;
          next = j;
          break;
        }
      }
      out.push_back(Raw{std::string(code), std::string(rest.substr(3, end == std::string_view::npos ? end : end - 3)),
                        line_no});
      if (end == std::string_view::npos) break;
      rest = rest.substr(next);
    }
  }
  return out;
}

// Comma-separated fields, taken one at a time.
class Cursor {
 public:
  explicit Cursor(std::string_view s) : s_(s) {}
  // The next field; "" once the record is exhausted.
  std::string_view take() {
    if (end_) return {};
    const std::size_t c = s_.find(',', pos_);
    if (c == std::string_view::npos) {
      end_ = true;
      return s_.substr(pos_);
    }
    const std::string_view v = s_.substr(pos_, c - pos_);
    pos_ = c + 1;
    return v;
  }
  bool end() const { return end_; }
  std::string_view rest() const { return end_ ? std::string_view() : s_.substr(pos_); }

 private:
  std::string_view s_;
  std::size_t pos_ = 0;
  bool end_ = false;
};

// Signed (balances, totals) or unsigned (a 16's amount) digits, as minor units.
Result<Minor> parse_amount(std::string_view v, bool allow_sign, int line, std::string_view code, std::string_view what) {
  std::string_view s = trim(v);
  bool negative = false;
  if (allow_sign && !s.empty() && (s.front() == '+' || s.front() == '-')) {
    negative = s.front() == '-';
    s.remove_prefix(1);
  }
  if (s.empty()) return at(line, code, fmt::format("{}: expected an amount, found nothing", what));
  __int128 units = 0;
  for (char c : s) {
    if (!is_digit(c)) {
      return at(line, code,
                fmt::format("{} '{}' is not {}digits (BAI2 amounts have no decimal point: minor units)", what, v,
                            allow_sign ? "optionally signed " : ""));
    }
    units = units * 10 + (c - '0');
    if (units > static_cast<__int128>(std::numeric_limits<Minor>::max())) {
      return at(line, code, fmt::format("{} '{}' is out of range", what, v));
    }
  }
  return static_cast<Minor>(negative ? -units : units);
}

Result<std::int64_t> parse_count(std::string_view v, int line, std::string_view code, std::string_view what) {
  const std::string_view s = trim(v);
  if (s.empty() || s.size() > 12) {
    return at(line, code, fmt::format("{}: expected a number, found '{}'", what, v));
  }
  std::int64_t n = 0;
  for (char c : s) {
    if (!is_digit(c)) return at(line, code, fmt::format("{}: expected a number, found '{}'", what, v));
    n = n * 10 + (c - '0');
  }
  return n;
}

// YYMMDD; years 70-99 are 19YY, 00-69 20YY.
Result<Date> parse_yymmdd(std::string_view v, int line, std::string_view code, std::string_view what) {
  const std::string_view s = trim(v);
  bool digits = s.size() == 6;
  for (char c : s) digits = digits && is_digit(c);
  if (!digits) return at(line, code, fmt::format("{}: expected a date YYMMDD, found '{}'", what, v));
  const int yy = (s[0] - '0') * 10 + (s[1] - '0');
  auto d = parse_date(fmt::format("{}{}-{}-{}", yy >= 70 ? "19" : "20", s.substr(0, 2), s.substr(2, 2), s.substr(4, 2)));
  if (!d.ok()) return at(line, code, fmt::format("{}: '{}' is not a date YYMMDD", what, v));
  return *d;
}

// The availability fields after a funds type: V date and time, S three
// amounts, D a count and that many (days, amount) pairs; 0, 1, 2, Z and
// blank none. Returns the V date when given.
Result<std::optional<Date>> skip_funds(Cursor& c, std::string_view funds, int line, std::string_view code) {
  const std::string_view f = trim(funds);
  if (f.empty() || f == "0" || f == "1" || f == "2" || f == "Z") return std::optional<Date>();
  if (f == "V") {
    const std::string_view date = c.take();
    c.take();  // time, HHMM (optional)
    if (trim(date).empty()) return std::optional<Date>();
    SETTLE_ASSIGN_OR_RETURN(Date d, parse_yymmdd(date, line, code, "funds type V value date"));
    return std::optional<Date>(d);
  }
  if (f == "S") {
    for (const char* what : {"immediate availability", "one-day availability", "two-or-more-day availability"}) {
      const std::string_view v = c.take();
      if (!trim(v).empty()) SETTLE_TRY(parse_amount(v, true, line, code, what));
    }
    return std::optional<Date>();
  }
  if (f == "D") {
    SETTLE_ASSIGN_OR_RETURN(const std::int64_t n, parse_count(c.take(), line, code, "funds type D distributions"));
    if (n > 1000) return at(line, code, fmt::format("funds type D: {} distributions is not plausible", n));
    for (std::int64_t i = 0; i < n; ++i) {
      SETTLE_TRY(parse_count(c.take(), line, code, "funds type D days"));
      SETTLE_TRY(parse_amount(c.take(), true, line, code, "funds type D amount"));
    }
    return std::optional<Date>();
  }
  return at(line, code, fmt::format("funds type must be 0, 1, 2, S, V, D, Z or blank, found '{}'", funds));
}

bool is_type_code(std::string_view t) { return t.size() == 3 && is_digit(t[0]) && is_digit(t[1]) && is_digit(t[2]); }

struct Detail {
  int type = 0;
  Minor amount = 0;
  std::optional<Date> value_date;
  std::string bank_ref, customer_ref, text;
  bool has_text = false;
};

Result<Detail> parse_detail(std::string_view body, int line) {
  constexpr std::string_view kCode = "16";
  Cursor c(body);
  Detail d;
  const std::string_view type = trim(c.take());
  if (!is_type_code(type)) return at(line, kCode, fmt::format("expected a 3-digit type code, found '{}'", type));
  d.type = (type[0] - '0') * 100 + (type[1] - '0') * 10 + (type[2] - '0');
  if (c.end()) return at(line, kCode, "expected an amount after the type code");
  SETTLE_ASSIGN_OR_RETURN(d.amount, parse_amount(c.take(), false, line, kCode, "amount"));
  SETTLE_ASSIGN_OR_RETURN(d.value_date, skip_funds(c, c.take(), line, kCode));
  d.bank_ref = std::string(trim(c.take()));
  d.customer_ref = std::string(trim(c.take()));
  d.has_text = !c.end();
  d.text = std::string(trim(c.rest()));
  return d;
}

// A 16 with its continuations: an 88 continues its fields until the text
// has begun, then the text (joined with a space).
Result<Detail> detail_of(const Logical& r) {
  std::string body(unterminated(r.parts[0]));
  for (std::size_t i = 1; i < r.parts.size(); ++i) {
    auto so_far = parse_detail(body, r.line);
    if (so_far.ok() && so_far->has_text) {
      body += ' ';
    } else {
      body += ',';
    }
    body += unterminated(r.parts[i]);
  }
  return parse_detail(body, r.line);
}

std::string joined(const Logical& r) {
  std::string s(unterminated(r.parts[0]));
  for (std::size_t i = 1; i < r.parts.size(); ++i) {
    s += ',';
    s += unterminated(r.parts[i]);
  }
  return s;
}

Status check_total(const Logical& r, std::string_view what, std::string_view declared, __int128 sum) {
  SETTLE_ASSIGN_OR_RETURN(const Minor total, parse_amount(declared, true, r.line, r.code, what));
  if (static_cast<__int128>(total) != sum) {
    return at(r.line, r.code,
              fmt::format("{} {} does not match the sum of the amounts it covers, {}", what, total,
                          static_cast<long long>(sum)));
  }
  return ok_status();
}

Status check_count(const Logical& r, std::string_view what, std::string_view declared, std::int64_t actual) {
  SETTLE_ASSIGN_OR_RETURN(const std::int64_t n, parse_count(declared, r.line, r.code, what));
  if (n != actual) return at(r.line, r.code, fmt::format("{} {} does not match the {} found", what, n, actual));
  return ok_status();
}

}  // namespace

Result<std::vector<BankStatement>> parse_bai2(std::string_view text) {
  SETTLE_ASSIGN_OR_RETURN(std::vector<Raw> raw, records_of(text));
  if (raw.empty()) return make_error(ErrorCode::kInvalidArgument, "bai2: empty file (expected the 01 file header)");
  std::vector<Logical> recs;
  for (Raw& r : raw) {
    if (r.code == "88") {
      if (recs.empty()) return at(r.line, "88", "a continuation with no record before it");
      recs.back().parts.push_back(std::move(r.body));
      ++recs.back().records;
      continue;
    }
    recs.push_back(Logical{r.code, {std::move(r.body)}, r.line, 1});
  }

  enum class State { kStart, kFile, kGroup, kAccount, kDone };
  State state = State::kStart;
  std::vector<BankStatement> out;
  std::string file_id;
  Date as_of;
  std::string group_currency;
  std::size_t account = 0;  // index in out of the open account
  __int128 account_sum = 0, group_sum = 0, file_sum = 0;
  std::int64_t account_records = 0, group_records = 0, file_records = 0, group_accounts = 0, groups = 0;

  auto expected = [&](const Logical& r) {
    const char* what = "";
    switch (state) {
      case State::kStart: what = "the 01 file header"; break;
      case State::kFile: what = "a 02 group header or the 99 file trailer"; break;
      case State::kGroup: what = "an 03 account identifier or the 98 group trailer"; break;
      case State::kAccount: what = "a 16 transaction detail, an 88 continuation or the 49 account trailer"; break;
      case State::kDone: what = "nothing after the 99 file trailer"; break;
    }
    return at_line(r.line, fmt::format("expected {}, found a {} record", what, r.code));
  };

  for (const Logical& r : recs) {
    file_records += r.records;
    group_records += r.records;
    account_records += r.records;
    if (r.code == "01") {
      if (state != State::kStart) return expected(r);
      const std::string s = joined(r);
      Cursor c(s);
      c.take();  // sender
      c.take();  // receiver
      SETTLE_TRY(parse_yymmdd(c.take(), r.line, r.code, "file creation date"));
      c.take();  // creation time (HHMM; some banks write HH:MM:SS)
      file_id = std::string(trim(c.take()));
      c.take();  // physical record length
      c.take();  // block size
      const std::string_view version = trim(c.take());
      if (version != "2") {
        return at(r.line, r.code, fmt::format("version '{}' is not 2 (only BAI2 files are read)", version));
      }
      state = State::kFile;
    } else if (r.code == "02") {
      if (state != State::kFile) return expected(r);
      const std::string s = joined(r);
      Cursor c(s);
      c.take();  // ultimate receiver
      c.take();  // originator
      const std::string_view status = trim(c.take());
      if (status != "1" && status != "2" && status != "3" && status != "4") {
        return at(r.line, r.code, fmt::format("group status must be 1, 2, 3 or 4, found '{}'", status));
      }
      SETTLE_ASSIGN_OR_RETURN(as_of, parse_yymmdd(c.take(), r.line, r.code, "as-of date"));
      c.take();  // as-of time
      group_currency = std::string(trim(c.take()));
      group_sum = 0;
      group_records = r.records;
      group_accounts = 0;
      state = State::kGroup;
    } else if (r.code == "03") {
      if (state != State::kGroup) return expected(r);
      const std::string s = joined(r);
      Cursor c(s);
      BankStatement st;
      st.account = std::string(trim(c.take()));
      if (st.account.empty()) return at(r.line, r.code, "expected the customer account number, found nothing");
      std::string currency(trim(c.take()));
      if (currency.empty()) currency = group_currency.empty() ? "USD" : group_currency;
      if (!find_currency(currency).ok()) {
        return at(r.line, r.code, fmt::format("currency '{}' is not an ISO 4217 currency", currency));
      }
      st.currency = currency;
      st.id = fmt::format("{}/{}/{}", file_id, st.account, format_date(as_of));
      st.from = as_of;
      st.to = as_of;
      account_sum = 0;
      account_records = r.records;
      while (!c.end()) {
        const std::string_view type = trim(c.take());
        if (type.empty()) continue;  // a blank field where a type code may start (",,,/" endings)
        if (!is_type_code(type)) return at(r.line, r.code, fmt::format("expected a 3-digit type code, found '{}'", type));
        const std::string_view amount = c.take();
        const std::string_view count = trim(c.take());
        const std::string_view funds = c.take();
        if (!count.empty()) SETTLE_TRY(parse_count(count, r.line, r.code, fmt::format("type {} item count", type)));
        SETTLE_TRY(skip_funds(c, funds, r.line, r.code));
        if (trim(amount).empty()) continue;
        SETTLE_ASSIGN_OR_RETURN(const Minor a, parse_amount(amount, true, r.line, r.code,
                                                            fmt::format("type {} amount", type)));
        account_sum += a;
        if (type == "010") st.opening = BankBalance{a, currency, as_of};
        if (type == "015") st.closing = BankBalance{a, currency, as_of};
      }
      account = out.size();
      out.push_back(std::move(st));
      ++group_accounts;
      state = State::kAccount;
    } else if (r.code == "16") {
      if (state != State::kAccount) return expected(r);
      SETTLE_ASSIGN_OR_RETURN(Detail d, detail_of(r));
      BankEntry e;
      e.currency = out[account].currency;
      if ((d.type >= 100 && d.type <= 399) || (d.type >= 920 && d.type <= 959)) {
        e.amount = d.amount;
      } else if ((d.type >= 400 && d.type <= 699) || (d.type >= 960 && d.type <= 999)) {
        e.amount = -d.amount;
      } else if (d.type == 890) {
        e.amount = d.amount;
        e.status = "INFO";
      } else {
        return at(r.line, r.code,
                  fmt::format("type code {:03} is not a transaction code (credits 100-399 and 920-959, debits "
                              "400-699 and 960-999, 890 non-monetary)",
                              d.type));
      }
      account_sum += d.amount;
      e.booking_date = as_of;
      e.value_date = d.value_date ? *d.value_date : as_of;
      e.bank_ref = d.bank_ref;
      e.entry_ref = d.customer_ref;
      e.info = d.text;
      e.location = fmt::format("line {}", r.line);
      out[account].entries.push_back(std::move(e));
    } else if (r.code == "49") {
      if (state != State::kAccount) return expected(r);
      const std::string s = joined(r);
      Cursor c(s);
      SETTLE_TRY(check_total(r, "account control total", c.take(), account_sum));
      SETTLE_TRY(check_count(r, "number of records", c.take(), account_records));
      group_sum += account_sum;
      state = State::kGroup;
    } else if (r.code == "98") {
      if (state != State::kGroup) return expected(r);
      const std::string s = joined(r);
      Cursor c(s);
      SETTLE_TRY(check_total(r, "group control total", c.take(), group_sum));
      SETTLE_TRY(check_count(r, "number of accounts", c.take(), group_accounts));
      SETTLE_TRY(check_count(r, "number of records", c.take(), group_records));
      file_sum += group_sum;
      ++groups;
      state = State::kFile;
    } else if (r.code == "99") {
      if (state != State::kFile) return expected(r);
      const std::string s = joined(r);
      Cursor c(s);
      SETTLE_TRY(check_total(r, "file control total", c.take(), file_sum));
      SETTLE_TRY(check_count(r, "number of groups", c.take(), groups));
      SETTLE_TRY(check_count(r, "number of records", c.take(), file_records));
      state = State::kDone;
    } else {
      return expected(r);
    }
    if (state == State::kDone && &r != &recs.back()) return expected(*(&r + 1));
  }
  if (state != State::kDone) {
    const char* where = state == State::kAccount ? "inside an account (expected the 49 account trailer)"
                        : state == State::kGroup ? "inside a group (expected the 98 group trailer)"
                                                 : "before the 99 file trailer";
    return at_line(recs.back().line, fmt::format("the file ends {}", where));
  }
  return out;
}

}  // namespace settle::reconcile
