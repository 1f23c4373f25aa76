// docs/api.md cannot fall behind the API: every `service`/`rpc` in proto/chiron/v1/*.proto has
// a row (`Service.Rpc`) in its table, every row names a real RPC, and the role a row gives is
// the role the service checks in src/runtime/service/*.cc (RequireRole(..., Role::kOwner,
// "Service.Rpc") is "owner", RequireRegistered(..., "Service.Rpc") is "registered", a call that
// checks neither is "any").
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>

namespace {

namespace fs = std::filesystem;

std::string SourceDir() {
  const char* dir = std::getenv("CHIRON_SOURCE_DIR");
  EXPECT_NE(dir, nullptr) << "run through ctest (it sets CHIRON_SOURCE_DIR)";
  return dir ? dir : ".";
}

std::string ReadText(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// "Service.Rpc" for every rpc of every service in the protos.
std::set<std::string> ProtoRpcs() {
  std::set<std::string> rpcs;
  const std::regex service_re(R"(^\s*service\s+(\w+)\s*\{)");
  const std::regex rpc_re(R"(^\s*rpc\s+(\w+)\s*\()");
  for (const auto& entry : fs::directory_iterator(SourceDir() + "/proto/chiron/v1")) {
    if (entry.path().extension() != ".proto") continue;
    std::stringstream in(ReadText(entry.path()));
    std::string line, service;
    std::smatch match;
    while (std::getline(in, line)) {
      if (std::regex_search(line, match, service_re)) service = match[1];
      else if (line.find('}') == 0) service.clear();
      else if (std::regex_search(line, match, rpc_re)) {
        EXPECT_FALSE(service.empty()) << entry.path() << ": rpc outside a service: " << line;
        rpcs.insert(service + "." + std::string(match[1]));
      }
    }
  }
  return rpcs;
}

// "Service.Rpc" -> role column of docs/api.md's table.
std::map<std::string, std::string> DocumentedRoles() {
  std::map<std::string, std::string> roles;
  const std::regex row_re(R"(^\| `(\w+\.\w+)` \|[^|]*\| (\w+) \|)");
  std::stringstream in(ReadText(SourceDir() + "/docs/api.md"));
  std::string line;
  std::smatch match;
  while (std::getline(in, line)) {
    if (std::regex_search(line, match, row_re)) {
      EXPECT_EQ(roles.count(match[1]), 0u) << "listed twice: " << match[1];
      roles[match[1]] = match[2];
    }
  }
  return roles;
}

// "Service.Rpc" -> the role its implementation checks.
std::map<std::string, std::string> CheckedRoles() {
  std::map<std::string, std::string> roles;
  const std::regex role_re(R"(RequireRole\(\s*\*context,\s*store::Role::k(\w+),\s*"(\w+\.\w+)\")");
  const std::regex registered_re(R"(RequireRegistered\(\s*\*context,\s*"(\w+\.\w+)\")");
  for (const auto& entry : fs::directory_iterator(SourceDir() + "/src/runtime/service")) {
    if (entry.path().extension() != ".cc" || entry.path().stem().string().find("_test") !=
                                                 std::string::npos) {
      continue;
    }
    std::string text = ReadText(entry.path());
    for (std::sregex_iterator it(text.begin(), text.end(), role_re), end; it != end; ++it) {
      std::string role = (*it)[1];
      for (auto& c : role) c = static_cast<char>(std::tolower(c));
      roles[(*it)[2]] = role;
    }
    for (std::sregex_iterator it(text.begin(), text.end(), registered_re), end; it != end;
         ++it) {
      roles[(*it)[1]] = "registered";
    }
  }
  return roles;
}

TEST(ApiDocTest, EveryRpcIsDocumentedWithTheRoleTheServiceChecks) {
  const std::set<std::string> rpcs = ProtoRpcs();
  const auto documented = DocumentedRoles();
  const auto checked = CheckedRoles();
  // The parsers found something real (the API has dozens of calls, and most check a role).
  EXPECT_GE(rpcs.size(), 15u);
  EXPECT_GE(checked.size(), 10u);
  for (const auto& rpc : rpcs) {
    auto doc = documented.find(rpc);
    if (doc == documented.end()) {
      ADD_FAILURE() << rpc << " (in proto/chiron/v1) is missing from docs/api.md's table";
      continue;
    }
    auto code = checked.find(rpc);
    const std::string expected = code == checked.end() ? "any" : code->second;
    EXPECT_EQ(doc->second, expected) << rpc << ": docs/api.md says '" << doc->second
                                     << "', the service checks '" << expected << "'";
  }
  for (const auto& [rpc, role] : documented) {
    EXPECT_EQ(rpcs.count(rpc), 1u) << "docs/api.md lists " << rpc << ", which no proto defines";
  }
  for (const auto& [rpc, role] : checked) {
    EXPECT_EQ(rpcs.count(rpc), 1u) << "src/runtime/service checks a role for " << rpc
                                   << ", which no proto defines (a typo in the call name?)";
  }
}

}  // namespace
