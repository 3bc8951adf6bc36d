#include "app/cli.h"

#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <sstream>

namespace settle::app {

Status apply_config_file(CLI::App& cli, int argc, char** argv) {
  CLI::App* sub = nullptr;
  std::string path;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (sub == nullptr && !arg.empty() && arg[0] != '-') {
      sub = cli.get_subcommand_ptr(std::string(arg)).get();
      continue;
    }
    if (arg == "--config" && i + 1 < argc) {
      path = argv[i + 1];
    } else if (arg.rfind("--config=", 0) == 0) {
      path = std::string(arg.substr(9));
    }
  }
  if (path.empty() || sub == nullptr) return ok_status();
  std::vector<CLI::ConfigItem> items;
  try {
    items = CLI::ConfigTOML().from_file(path);
  } catch (const CLI::Error& e) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("--config {}: {}", path, e.what()));
  }
  for (const CLI::ConfigItem& item : items) {
    if (!item.parents.empty()) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("--config {}: sections are not supported ('{}' is in [{}])", path, item.name,
                                    item.parents.front()));
    }
    CLI::Option* opt = sub->get_option_no_throw("--" + item.name);
    if (opt == nullptr || item.name == "config") {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("--config {}: unknown key '{}' for 'settled {}' (see settled {} --help)", path,
                                    item.name, sub->get_name(), sub->get_name()));
    }
    if (item.inputs.size() != 1) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("--config {}: key '{}' takes one value", path, item.name));
    }
    try {
      opt->default_val(item.inputs.front());
    } catch (const CLI::Error& e) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("--config {}: key '{}': {}", path, item.name, e.what()));
    }
  }
  return ok_status();
}

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
