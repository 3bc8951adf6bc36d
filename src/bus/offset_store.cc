#include "bus/offset_store.h"

#include <charconv>
#include <optional>

#include <fmt/format.h>

#include "bus/posix_file.h"

namespace settle::bus {
namespace {

constexpr std::string_view kSuffix = ".offsets";
constexpr std::string_view kFirstLine = "# settle bus consumer-group offsets v1";
// Keeps <escaped group>.offsets within the 255 bytes of a file name.
constexpr std::size_t kEscapedGroupBytesMax = 200;

bool plain(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '_';
}

// A group name may be any bytes; its file name keeps [A-Za-z0-9_-] and
// writes every other byte as %XX (so "." and ".." cannot occur).
std::string escape_group(std::string_view group) {
  std::string out;
  for (char c : group) {
    if (plain(c)) {
      out += c;
    } else {
      out += fmt::format("%{:02X}", static_cast<unsigned char>(c));
    }
  }
  return out;
}

std::optional<std::string> unescape_group(std::string_view escaped) {
  std::string out;
  for (std::size_t i = 0; i < escaped.size(); ++i) {
    if (escaped[i] != '%') {
      if (!plain(escaped[i])) return std::nullopt;
      out += escaped[i];
      continue;
    }
    unsigned value = 0;
    if (i + 2 >= escaped.size()) return std::nullopt;
    auto [ptr, ec] = std::from_chars(escaped.data() + i + 1, escaped.data() + i + 3, value, 16);
    if (ec != std::errc() || ptr != escaped.data() + i + 3) return std::nullopt;
    out += static_cast<char>(value);
    i += 2;
  }
  return out;
}

template <typename Int>
bool parse_int(std::string_view text, Int* value) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), *value);
  return ec == std::errc() && ptr == text.data() + text.size();
}

}  // namespace

Result<std::unique_ptr<OffsetStore>> OffsetStore::open(std::filesystem::path dir) {
  SETTLE_TRY(make_dir(dir));
  std::unique_ptr<OffsetStore> store(new OffsetStore(std::move(dir)));
  SETTLE_ASSIGN_OR_RETURN(std::vector<std::string> names, list_dir(store->dir_));
  for (const std::string& name : names) {
    if (name.ends_with(".tmp")) {
      // A commit interrupted before its rename: the old file still stands.
      SETTLE_TRY(remove_file(store->dir_ / name));
    } else if (name.ends_with(kSuffix)) {
      SETTLE_TRY(store->load(name));
    }
  }
  return store;
}

Status OffsetStore::load(const std::string& file_name) {
  const std::filesystem::path path = dir_ / file_name;
  auto corrupt = [&](std::string_view what) {
    return make_error(ErrorCode::kCorruption,
                      fmt::format("consumer-group offsets {}: {}", path.string(), what));
  };
  std::optional<std::string> name =
      unescape_group(std::string_view(file_name).substr(0, file_name.size() - kSuffix.size()));
  if (!name || name->empty()) return corrupt("the file name is not an escaped group name");
  SETTLE_ASSIGN_OR_RETURN(std::string contents, read_whole_file(path));

  auto group = std::make_unique<Group>();
  std::string_view rest(contents);
  std::size_t line_number = 0;
  while (!rest.empty()) {
    const std::size_t eol = rest.find('\n');
    if (eol == std::string_view::npos) return corrupt("the last line has no newline");
    const std::string_view line = rest.substr(0, eol);
    rest.remove_prefix(eol + 1);
    ++line_number;
    if (line_number == 1) {
      if (line != kFirstLine) return corrupt("unknown first line");
      continue;
    }
    const std::size_t space1 = line.find(' ');
    const std::size_t space2 =
        space1 == std::string_view::npos ? space1 : line.find(' ', space1 + 1);
    std::int32_t partition = 0;
    std::int64_t offset = 0;
    if (space2 == std::string_view::npos || space1 == 0 ||
        !parse_int(line.substr(space1 + 1, space2 - space1 - 1), &partition) ||
        !parse_int(line.substr(space2 + 1), &offset) || partition < 0 || offset < 0) {
      return corrupt(fmt::format("line {} is not \"<topic> <partition> <offset>\"", line_number));
    }
    group->offsets[Key(std::string(line.substr(0, space1)), partition)] = offset;
  }
  if (line_number == 0) return corrupt("empty file");
  groups_.emplace(std::move(*name), std::move(group));
  return ok_status();
}

OffsetStore::Group* OffsetStore::find_group(std::string_view name) const {
  std::lock_guard lock(mu_);
  auto it = groups_.find(name);
  return it == groups_.end() ? nullptr : it->second.get();
}

Status OffsetStore::commit(std::string_view group_name, std::string_view topic,
                           std::int32_t partition, std::int64_t next_offset) {
  const std::string escaped = escape_group(group_name);
  if (group_name.empty() || escaped.size() > kEscapedGroupBytesMax) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("consumer group name must be 1 to {} bytes once escaped, "
                                  "got {} bytes",
                                  kEscapedGroupBytesMax, escaped.size()));
  }
  Group* group = nullptr;
  {
    std::lock_guard lock(mu_);
    auto it = groups_.find(group_name);
    if (it == groups_.end()) {
      it = groups_.emplace(std::string(group_name), std::make_unique<Group>()).first;
    }
    group = it->second.get();  // groups are never removed
  }

  // Writers of the group take turns; readers wait only for the swap below,
  // not for the fsyncs.
  std::lock_guard writing(group->write_mu);
  std::map<Key, std::int64_t> offsets;
  {
    std::lock_guard lock(group->mu);
    offsets = group->offsets;
  }
  offsets[Key(std::string(topic), partition)] = next_offset;
  std::string contents(kFirstLine);
  contents += '\n';
  for (const auto& [key, offset] : offsets) {
    contents += fmt::format("{} {} {}\n", key.first, key.second, offset);
  }
  SETTLE_TRY(write_file_atomically(dir_ / (escaped + std::string(kSuffix)), contents));
  std::lock_guard lock(group->mu);
  group->offsets = std::move(offsets);
  return ok_status();
}

std::int64_t OffsetStore::committed(std::string_view group_name, std::string_view topic,
                                    std::int32_t partition) const {
  const Group* group = find_group(group_name);
  if (group == nullptr) return 0;
  std::lock_guard lock(group->mu);
  auto it = group->offsets.find(Key(std::string(topic), partition));
  return it == group->offsets.end() ? 0 : it->second;
}

}  // namespace settle::bus
