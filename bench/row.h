// One line of bench/run's table, printed by each benchmark beside its own
// human-readable output:
//   ROW <tab> measure <tab> ours <tab> baseline <tab> ratio <tab> target <tab> verdict
// bench/run collects these lines from every benchmark into one table.
#pragma once

#include <fmt/format.h>

#include <cstdio>
#include <string>

namespace settle::bench {

// `ratio` and `verdict` may be empty (a measure without a baseline or target).
inline void print_row(const std::string& measure, const std::string& ours, const std::string& baseline,
                      const std::string& ratio, const std::string& target, const std::string& verdict) {
  std::printf("ROW\t%s\t%s\t%s\t%s\t%s\t%s\n", measure.c_str(), ours.c_str(), baseline.c_str(), ratio.c_str(),
              target.c_str(), verdict.c_str());
  std::fflush(stdout);
}

inline std::string ratio_text(double ours, double baseline) {
  return baseline > 0 ? fmt::format("{:.2f}x", ours / baseline) : std::string();
}

inline std::string met(bool ok) { return ok ? "met" : "NOT met"; }

}  // namespace settle::bench
