// Claims: what a successfully verified piece of evidence says about the runtime that produced
// it. Only Verifier::Verify (verifier.h) hands these out, and only after every signature and
// policy check passed, so holding a Claims means "this policy accepted this evidence".
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "shared/base/bytes.h"

namespace chiron::attest {

struct Claims {
  // "sim", "tdx" or "sev-snp" (PlatformName()).
  std::string platform;
  // The runtime's measurement (48 bytes): for sim the SHA-384 over chirond, the launcher and the
  // sandbox policy; for TDX the MRTD; for SEV-SNP the launch MEASUREMENT.
  Bytes measurement;
  // The 64 bytes the runtime bound into the evidence (e.g. hash of its TLS key and a nonce).
  Bytes report_data;
  // True if the TEE runs in debug mode (its memory is readable by the host).
  bool debug = false;
  // Security version number of the runtime / platform TCB as the platform defines it.
  uint32_t svn = 0;
  // True for the sim platform: the evidence is signed by a software key and proves nothing
  // about hardware. Callers must show this to users.
  bool simulated = false;
  // Platform-specific facts, hex or text: e.g. "sim_root_key", "mrtd", "rtmr0".."rtmr3",
  // "tcb_status", "provider".
  std::map<std::string, std::string> details;
  // Human-readable warnings to display (always non-empty for sim: the INSECURE warning).
  std::vector<std::string> warnings;
};

}  // namespace chiron::attest
