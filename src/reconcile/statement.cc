#include "reconcile/statement.h"

#include <fmt/format.h>

#include <limits>

namespace settle::reconcile {

std::string_view format_name(StatementFormat format) {
  switch (format) {
    case StatementFormat::kCamt053: return "camt053";
    case StatementFormat::kMt940: return "mt940";
    case StatementFormat::kAcquirerCsv: return "acquirer-csv";
    case StatementFormat::kBai2: return "bai2";
  }
  return "?";
}

Result<StatementFormat> parse_format_name(std::string_view name) {
  if (name == "camt053" || name == "camt.053") return StatementFormat::kCamt053;
  if (name == "mt940") return StatementFormat::kMt940;
  if (name == "acquirer-csv" || name == "acquirer_csv" || name == "csv") return StatementFormat::kAcquirerCsv;
  if (name == "bai2") return StatementFormat::kBai2;
  return make_error(ErrorCode::kInvalidArgument,
                    fmt::format("unknown statement format '{}' (expected auto, camt053, mt940, bai2 or acquirer-csv)",
                                name));
}

Result<StatementFormat> detect_format(std::string_view content) {
  // Skip a UTF-8 BOM, an SOH byte some banks put first, and leading blank space.
  if (content.starts_with("\xEF\xBB\xBF")) content.remove_prefix(3);
  std::size_t i = 0;
  while (i < content.size() && (content[i] == '\x01' || content[i] == ' ' || content[i] == '\t' ||
                                content[i] == '\r' || content[i] == '\n')) {
    ++i;
  }
  const std::string_view head = content.substr(i, 4096);
  if (head.starts_with("<")) {
    if (head.find("camt.053") != std::string_view::npos || head.find("BkToCstmrStmt") != std::string_view::npos) {
      return StatementFormat::kCamt053;
    }
    return make_error(ErrorCode::kInvalidArgument,
                      "format auto: an XML document, but not a camt.053 statement (no camt.053 namespace "
                      "or BkToCstmrStmt in its first 4 KiB)");
  }
  if (head.starts_with("{1:") || head.starts_with(":20:") || head.find("\n:20:") != std::string_view::npos ||
      head.find("\n:25:") != std::string_view::npos) {
    return StatementFormat::kMt940;
  }
  const std::string_view first_line = head.substr(0, head.find('\n'));
  // A BAI2 file header: "01,sender,receiver,YYMMDD,HHMM,file id,...,2/".
  if (first_line.starts_with("01,") && first_line.find('/') != std::string_view::npos) {
    return StatementFormat::kBai2;
  }
  if (first_line.find(',') != std::string_view::npos || first_line.find(';') != std::string_view::npos) {
    return StatementFormat::kAcquirerCsv;
  }
  return make_error(ErrorCode::kInvalidArgument,
                    "format auto: not recognized as camt.053 (XML), MT940 (:20: tags), BAI2 (an 01 record) or an acquirer CSV "
                    "(a header line with commas); pass --format");
}

Result<Minor> parse_decimal_minor(std::string_view text, int exponent, std::string_view what) {
  auto bad = [&](std::string_view why) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("{}: '{}' {}", what, text, why));
  };
  std::string_view s = text;
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  bool negative = false;
  if (!s.empty() && (s.front() == '-' || s.front() == '+')) {
    negative = s.front() == '-';
    s.remove_prefix(1);
  }
  if (s.empty()) return bad("is not an amount (expected digits with an optional '.' or ',' decimal mark)");
  __int128 units = 0;
  int fraction_digits = 0;
  bool seen_mark = false;
  bool seen_digit = false;
  for (char c : s) {
    if (c >= '0' && c <= '9') {
      seen_digit = true;
      if (seen_mark) {
        ++fraction_digits;
        if (fraction_digits > exponent) {
          if (c != '0') {
            return bad(fmt::format("has more decimals than the currency's {} (not exact in minor units)",
                                   exponent));
          }
          continue;
        }
      }
      units = units * 10 + (c - '0');
      if (units > static_cast<__int128>(std::numeric_limits<Minor>::max())) return bad("is out of range");
    } else if ((c == '.' || c == ',') && !seen_mark) {
      seen_mark = true;
    } else {
      return bad(fmt::format("is not an amount (unexpected '{}'; expected digits with an optional '.' or ',' "
                             "decimal mark)",
                             c));
    }
  }
  if (!seen_digit) return bad("is not an amount (no digits)");
  for (int k = std::min(fraction_digits, exponent); k < exponent; ++k) {
    units *= 10;
    if (units > static_cast<__int128>(std::numeric_limits<Minor>::max())) return bad("is out of range");
  }
  return static_cast<Minor>(negative ? -units : units);
}

}  // namespace settle::reconcile
