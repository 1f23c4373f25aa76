#include "shared/attest/verifier.h"

#include <algorithm>
#include <string>

namespace chiron::attest {

Result<Verifier> Verifier::Create(Policy policy) {
  return Create(std::move(policy), BuiltinPlatformVerifiers());
}

Result<Verifier> Verifier::Create(Policy policy,
                                  std::vector<std::unique_ptr<PlatformVerifier>> verifiers) {
  CHIRON_RETURN_IF_ERROR(policy.Validate().WithContext("policy"));
  Verifier verifier;
  for (auto& v : verifiers) {
    if (v == nullptr) return InvalidArgumentError("verifier: null PlatformVerifier");
    const PlatformId id = v->platform();
    if (!verifier.verifiers_.emplace(id, std::shared_ptr<const PlatformVerifier>(std::move(v)))
             .second) {
      return InvalidArgumentError("verifier: two PlatformVerifiers for platform '" +
                                  std::string(PlatformName(id)) + "'");
    }
  }
  verifier.policy_ = std::make_shared<const Policy>(std::move(policy));
  return verifier;
}

Result<Claims> Verifier::Verify(ByteSpan serialized_evidence, ByteSpan expected_report_data) const {
  // Fail closed: `result` is an error until the very last check has passed.
  Result<Claims> result = InternalError("verifier: verification did not complete");
  if (policy_ == nullptr) return result;
  const Policy& policy = *policy_;

  if (expected_report_data.size() != kReportDataSize) {
    return InvalidArgumentError("verifier: expected report data must be " +
                                std::to_string(kReportDataSize) + " bytes, got " +
                                std::to_string(expected_report_data.size()));
  }

  // 1. Envelope (copies, then checks size, magic, version, platform id, exact length).
  CHIRON_ASSIGN_OR_RETURN(Evidence evidence, ParseEvidence(serialized_evidence));
  const std::string platform_name(PlatformName(evidence.platform));

  // 2. Platform allowed. Stops evidence from a platform the relying party does not trust (e.g.
  //    sim evidence presented to a production client) before any of its bytes are interpreted.
  if (!policy.AllowsPlatform(evidence.platform)) {
    return PermissionDeniedError("policy: platform '" + platform_name +
                                 "' is not in allowed_platforms");
  }

  // 3. A verifier for it exists in this build.
  auto it = verifiers_.find(evidence.platform);
  if (it == verifiers_.end()) {
    return FailedPreconditionError("evidence: no verifier for platform '" + platform_name +
                                   "' in this build; its evidence cannot be checked");
  }

  // 4. Platform signature chain and platform-specific policy.
  CHIRON_ASSIGN_OR_RETURN(Claims claims, it->second->VerifyPayload(evidence.payload, policy));
  if (claims.platform != platform_name || claims.report_data.size() != kReportDataSize ||
      claims.measurement.size() != kMeasurementSize) {
    return InternalError("verifier: the " + platform_name +
                         " platform verifier returned malformed claims");
  }

  // 5. Report data. Stops replay of evidence captured from another connection or session: the
  //    evidence must bind this TLS key / nonce.
  if (!ConstantTimeEqual(claims.report_data, expected_report_data)) {
    return UnauthenticatedError(
        "report data mismatch: evidence is not bound to this TLS key/nonce");
  }

  // 6. Debug. A debug-mode TEE lets the host read and change its memory.
  if (claims.debug && !policy.allow_debug) {
    return PermissionDeniedError("policy: evidence comes from a debug-mode " + platform_name +
                                 " TEE (the host can read its memory) and allow_debug is false");
  }
  if (claims.debug) {
    claims.warnings.push_back("debug-mode TEE accepted by policy: the host can read its memory");
  }

  // 7. Security version. Stops rollback to an older runtime/TCB with known flaws.
  if (claims.svn < policy.min_svn) {
    return PermissionDeniedError("policy: security version " + std::to_string(claims.svn) +
                                 " is below min_svn " + std::to_string(policy.min_svn));
  }

  // 8. Measurement. Stops any runtime other than the audited build (a modified chirond,
  //    launcher or sandbox policy).
  const std::vector<Bytes> allowed = policy.MeasurementsFor(evidence.platform);
  const bool measurement_ok = std::any_of(allowed.begin(), allowed.end(), [&](const Bytes& m) {
    return ConstantTimeEqual(m, claims.measurement);
  });
  if (!measurement_ok) {
    return PermissionDeniedError("policy: measurement " + HexEncode(claims.measurement) +
                                 " is not in allowed_measurements for platform '" + platform_name +
                                 "': " + DescribeAccepted(allowed));
  }

  result = std::move(claims);
  return result;
}

}  // namespace chiron::attest
