// Printing verified claims for people (text) and scripts (--json).
#pragma once

#include <string>

#include "shared/attest/claims.h"

namespace chiron::client {

// Multi-line human-readable summary; warnings (e.g. the sim platform's INSECURE notice) first.
std::string ClaimsToText(const attest::Claims& claims);
// A JSON object: platform, measurement, report_data, debug, svn, simulated, details, warnings.
std::string ClaimsToJson(const attest::Claims& claims, bool verified);

}  // namespace chiron::client
