#include "app/cli.h"

#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <sstream>

namespace settle::app {

int fatal(const std::string& message) {
  std::fprintf(stderr, "settled: %s\n", message.c_str());
  return kExitFatal;
}

Result<std::string> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kNotFound, fmt::format("cannot open {}", path.string()));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace settle::app
