// Policy: what a relying party (the owner's or provider's client, or a peer chirond) accepts as
// evidence of a trustworthy Chiron runtime. The file format (JSON; TOML is not supported in this
// build) is specified, field by field with examples, in docs/formats/policy.md.
//
// A Policy fails closed: an empty policy accepts nothing. The sim platform is accepted only if
// "sim" is in allowed_platforms AND the evidence's root key is listed in trusted_sim_roots.
// Unknown fields in a file are rejected (a misspelt "min_svn" must not silently loosen the
// policy).
//
// Thread safety: a value type; const access from many threads is safe.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "shared/attest/evidence.h"
#include "shared/base/bytes.h"
#include "shared/base/file_system.h"
#include "shared/base/status.h"

namespace chiron::attest {

inline constexpr size_t kMaxPolicyFileSize = 1024 * 1024;
inline constexpr int kPolicyFormatVersion = 1;

// Reserved for the TDX verifier (platform "tdx"). Each list, when non-empty, is the set of
// accepted values of that register (48 bytes each); an empty list places no constraint beyond
// the generic checks.
struct TdxPolicy {
  std::vector<Bytes> mrtd;
  std::array<std::vector<Bytes>, 4> rtmr;  // rtmr0..rtmr3
  // Intel TCB statuses accepted from the collateral, e.g. "UpToDate". Empty means only
  // "UpToDate" (the verifier's default; fail closed).
  std::vector<std::string> accepted_tcb_statuses;
  // Minimum TCB evaluation data number of the collateral, if set.
  std::optional<uint32_t> min_tcb_evaluation_data_number;
  // JSON "tcb_status_unchecked": "accept" (default "refuse"). Accept a quote whose signatures
  // and PCK chain verify although its TCB status could not be evaluated because Intel's TCB info
  // and QE identity were not at hand. Such claims say "TCB status NOT CHECKED" (detail
  // tcb_status and a warning). Off by default: without collateral a quote is refused.
  bool accept_unchecked_tcb_status = false;
  // JSON "reject_trailing_bytes": refuse a quote with bytes after its signature data (covered
  // by no signature; quote services often pad). Default false: they are ignored with a warning.
  bool reject_trailing_bytes = false;
};

// Reserved for the SEV-SNP verifier (platform "sev-snp").
struct SevSnpPolicy {
  std::vector<Bytes> measurement;  // accepted launch MEASUREMENTs (48 bytes each)
  // Minimum reported TCB components (SNP "REPORTED_TCB"), each unset = no minimum.
  std::optional<uint8_t> min_bootloader_svn;
  std::optional<uint8_t> min_tee_svn;
  std::optional<uint8_t> min_snp_svn;
  std::optional<uint8_t> min_microcode_svn;
};

struct Policy {
  // Platform names (PlatformName): "sim", "tdx", "sev-snp". Evidence from any other platform is
  // rejected before its signature is even checked.
  std::vector<PlatformId> allowed_platforms;
  // Accepted runtime measurements (48 bytes each). Keyed by platform name, or "*" for a list
  // that applies to every platform. Evidence whose measurement is in neither its platform's
  // list nor "*" is rejected; if both are empty for its platform, everything is rejected.
  std::map<std::string, std::vector<Bytes>> allowed_measurements;
  // Accept evidence from a debug-mode TEE (host can read its memory). Default false.
  bool allow_debug = false;
  // Minimum security version number (Claims::svn). Default 0.
  uint32_t min_svn = 0;
  // Ed25519 public keys (32 bytes each) of sim "hardware roots" accepted. INSECURE: listing a
  // key trusts whoever holds its private key, which is a file on some machine's disk.
  std::vector<Bytes> trusted_sim_roots;

  TdxPolicy tdx;
  SevSnpPolicy sev_snp;

  // Parses JSON policy text. `source` names the origin in messages (a file path, or
  // "<inline>"). Errors are InvalidArgument: "policy <source>: field 'min_svn' must be an
  // unsigned integer, e.g. \"min_svn\": 2; see docs/formats/policy.md".
  static Result<Policy> FromJson(std::string_view text, std::string_view source = "<inline>");
  // Reads and parses a policy file (at most kMaxPolicyFileSize). A ".toml" path is rejected with
  // a message asking for JSON.
  static Result<Policy> LoadFile(const std::string& path, FileSystem* fs = FileSystem::Default());
  // Serializes to the JSON format FromJson reads (round-trips).
  std::string ToJson() const;

  // Checks internal consistency: sizes of every listed measurement / key, known platform names
  // in allowed_measurements. FromJson already calls it; Verifier::Create calls it again for
  // policies built in code.
  Status Validate() const;

  bool AllowsPlatform(PlatformId platform) const;
  // The union of allowed_measurements[PlatformName(platform)] and allowed_measurements["*"].
  std::vector<Bytes> MeasurementsFor(PlatformId platform) const;
};

// For refusals that must say what was expected: "the policy accepts a, b" (hex, at most the first
// eight values, then "and N more"), or "the policy lists none" for an empty list.
std::string DescribeAccepted(const std::vector<Bytes>& accepted);

}  // namespace chiron::attest
