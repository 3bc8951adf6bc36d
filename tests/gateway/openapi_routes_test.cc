// docs/openapi.yaml and the route tables of the gateway and the notify server
// describe the same API: every route they answer is documented, and nothing
// else is.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <string>

#include "gateway/api.h"
#include "notify/server.h"

namespace settle::gateway {
namespace {

// "METHOD /path" for every operation under `paths:` (two-space indented
// paths, four-space indented methods).
std::set<std::string> documented_operations(const std::string& file) {
  std::ifstream in(file);
  EXPECT_TRUE(in) << file;
  std::set<std::string> out;
  std::string line;
  bool in_paths = false;
  std::string path;
  while (std::getline(in, line)) {
    if (line == "paths:") {
      in_paths = true;
      continue;
    }
    if (!in_paths) continue;
    if (!line.empty() && line[0] != ' ') break;  // the next top-level key
    if (line.rfind("  /", 0) == 0 && line.back() == ':') {
      path = line.substr(2, line.size() - 3);
      continue;
    }
    for (const char* m : {"get", "put", "post", "delete", "patch"}) {
      if (line == std::string("    ") + m + ":") {
        std::string upper(m);
        for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        out.insert(upper + " " + path);
      }
    }
  }
  return out;
}

TEST(OpenApi, DocumentsExactlyTheServersRoutes) {
  std::set<std::string> served;
  for (const Route& r : route_table()) served.insert(std::string(r.method) + " " + r.path);
  for (const auto& r : notify::notify_route_table()) served.insert(std::string(r.method) + " " + r.path);
  const auto documented = documented_operations(std::string(SETTLE_SOURCE_DIR) + "/docs/openapi.yaml");
  EXPECT_FALSE(documented.empty());
  for (const auto& op : served) EXPECT_TRUE(documented.count(op)) << op << " is served but not in docs/openapi.yaml";
  for (const auto& op : documented) EXPECT_TRUE(served.count(op)) << op << " is documented but not served";
}

TEST(OpenApi, ValidationMessagesSplitIntoFieldAndReason) {
  const Detail d = detail_of("field 'amount': must be > 0 for a capture", "[3].");
  EXPECT_EQ(d.field, "[3].amount");
  EXPECT_EQ(d.reason, "must be > 0 for a capture");
  const Detail whole = detail_of("not valid JSON", "[2].");
  EXPECT_EQ(whole.field, "[2]");
  EXPECT_EQ(whole.reason, "not valid JSON");
}

}  // namespace
}  // namespace settle::gateway
