// Verifier: turns serialized evidence into Claims, or into an error that names the exact check
// that failed. This is the only way Chiron code obtains Claims.
//
//   CHIRON_ASSIGN_OR_RETURN(Policy policy, Policy::LoadFile(path));
//   CHIRON_ASSIGN_OR_RETURN(Verifier verifier, Verifier::Create(std::move(policy)));
//   CHIRON_ASSIGN_OR_RETURN(Claims claims, verifier.Verify(evidence, expected_report_data));
//   for (const auto& w : claims.warnings) ShowWarning(w);
//
// Verify runs, in this order, and stops at the first failure (fail closed):
//   1. envelope: size limit, magic, format version, known platform id, exact length
//        -> InvalidArgument "evidence: ..."
//   2. policy: platform in allowed_platforms        -> PermissionDenied "policy: platform ..."
//   3. a PlatformVerifier is registered for it       -> FailedPrecondition "evidence: no verifier"
//   4. platform verification (body parse, trusted root, signature, platform-specific policy)
//        e.g. -> Unauthenticated "sim evidence: signature verification failed"
//             -> PermissionDenied "policy: sim root key ab12... is not in trusted_sim_roots"
//   5. report data equals expected_report_data (constant time)
//        -> Unauthenticated "report data mismatch: evidence is not bound to this TLS key/nonce"
//   6. policy: debug                                 -> PermissionDenied "policy: ... debug ..."
//   7. policy: svn >= min_svn                        -> PermissionDenied "policy: security version"
//   8. policy: measurement listed                    -> PermissionDenied "policy: measurement ...
//        is not in allowed_measurements for platform 'tdx': the policy accepts <hex>, ..."
//
// Thread safety: a Verifier is immutable after Create; Verify may be called concurrently.
#pragma once

#include <map>
#include <memory>
#include <vector>

#include "shared/attest/claims.h"
#include "shared/attest/evidence.h"
#include "shared/attest/policy.h"
#include "shared/base/bytes.h"
#include "shared/base/status.h"

namespace chiron::attest {

// The extension point for hardware platforms: one implementation per PlatformId.
//
// VerifyPayload receives the envelope's payload (already copied into verifier-owned memory) and
// must: parse it strictly, verify its signature chain to a root it trusts, apply the
// platform-specific parts of the policy (e.g. trusted_sim_roots, policy.tdx, policy.sev_snp),
// and fill Claims (platform, measurement, report_data, debug, svn, simulated, details,
// warnings). The generic checks (report data, debug, svn, allowed_measurements) are applied
// afterwards by the Verifier and need not be repeated. Implementations must be thread safe.
class PlatformVerifier {
 public:
  virtual ~PlatformVerifier() = default;
  virtual PlatformId platform() const = 0;
  virtual Result<Claims> VerifyPayload(ByteSpan payload, const Policy& policy) const = 0;
};

// The verifier for PlatformId::kSim (Ed25519 software root; INSECURE, always warns).
std::unique_ptr<PlatformVerifier> NewSimPlatformVerifier();

// Every platform verifier built into this binary. Add new platforms (TDX, SEV-SNP) here, in
// builtin_verifiers.cc.
std::vector<std::unique_ptr<PlatformVerifier>> BuiltinPlatformVerifiers();

inline constexpr char kSimInsecureWarning[] =
    "INSECURE: sim platform evidence is signed by a software key; it proves nothing about the "
    "hardware";

class Verifier {
 public:
  // Uses BuiltinPlatformVerifiers(). InvalidArgument if the policy is inconsistent.
  static Result<Verifier> Create(Policy policy);
  // Uses exactly `verifiers` (tests; custom builds). InvalidArgument on a null entry or two
  // verifiers for one platform.
  static Result<Verifier> Create(Policy policy,
                                 std::vector<std::unique_ptr<PlatformVerifier>> verifiers);

  // `serialized_evidence` is untrusted. `expected_report_data` is the 64 bytes the caller
  // computed for this connection (InvalidArgument if not 64 bytes). Returns Claims only if every
  // check listed at the top of this file passed.
  Result<Claims> Verify(ByteSpan serialized_evidence, ByteSpan expected_report_data) const;

  const Policy& policy() const { return *policy_; }

 private:
  Verifier() = default;
  std::shared_ptr<const Policy> policy_;
  std::map<PlatformId, std::shared_ptr<const PlatformVerifier>> verifiers_;
};

}  // namespace chiron::attest
