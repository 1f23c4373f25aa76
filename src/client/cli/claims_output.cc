#include "client/cli/claims_output.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace chiron::client {

std::string ClaimsToText(const attest::Claims& claims) {
  std::string out;
  for (const auto& warning : claims.warnings) out += "WARNING: " + warning + "\n";
  out += "verified: yes\n";
  auto line = [&out](const std::string& key, const std::string& value) {
    std::string label = key + ":";
    label.resize(std::max<size_t>(label.size() + 1, 16), ' ');
    out += label + value + "\n";
  };
  line("platform", claims.platform + (claims.simulated ? " (SIMULATED, INSECURE)" : ""));
  line("measurement", HexEncode(claims.measurement));
  line("report data", HexEncode(claims.report_data));
  line("debug", claims.debug ? "yes" : "no");
  line("security ver.", std::to_string(claims.svn));
  if (!claims.details.empty()) out += "details:\n";
  for (const auto& [key, value] : claims.details) line("  " + key, value);
  return out;
}

std::string ClaimsToJson(const attest::Claims& claims, bool verified) {
  nlohmann::json j;
  j["verified"] = verified;
  j["platform"] = claims.platform;
  j["simulated"] = claims.simulated;
  j["measurement"] = HexEncode(claims.measurement);
  j["report_data"] = HexEncode(claims.report_data);
  j["debug"] = claims.debug;
  j["svn"] = claims.svn;
  j["details"] = claims.details;
  j["warnings"] = claims.warnings;
  return j.dump(2);
}

}  // namespace chiron::client
