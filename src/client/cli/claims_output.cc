#include "client/cli/claims_output.h"

#include <nlohmann/json.hpp>

namespace chiron::client {

std::string ClaimsToText(const attest::Claims& claims) {
  std::string out;
  for (const auto& warning : claims.warnings) out += "WARNING: " + warning + "\n";
  out += "verified: yes\n";
  out += "platform:      " + claims.platform + (claims.simulated ? " (SIMULATED, INSECURE)" : "") +
         "\n";
  out += "measurement:   " + HexEncode(claims.measurement) + "\n";
  out += "report data:   " + HexEncode(claims.report_data) + "\n";
  out += "debug:         " + std::string(claims.debug ? "yes" : "no") + "\n";
  out += "security ver.: " + std::to_string(claims.svn) + "\n";
  for (const auto& [key, value] : claims.details) {
    std::string label = key + ":";
    if (label.size() < 15) label.resize(15, ' ');
    out += label + value + "\n";
  }
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
