#include "runtime/service/reference_policy.h"

#include "shared/attest/evidence.h"

namespace chiron::runtime {

Result<attest::Policy> SimReferencePolicy(tee::Platform& platform) {
  if (platform.name() != "sim") {
    return FailedPreconditionError(
        "a reference policy can only be derived for the sim platform; for TDX or SEV-SNP take "
        "the measurement from a reproducible build (docs/formats/policy.md)");
  }
  // The platform's own evidence, over report data nobody relies on, carries its root key.
  CHIRON_ASSIGN_OR_RETURN(Bytes evidence, platform.GetEvidence(Bytes(tee::kReportDataSize, 0)));
  CHIRON_ASSIGN_OR_RETURN(attest::Evidence envelope, attest::ParseEvidence(evidence));
  CHIRON_ASSIGN_OR_RETURN(attest::SimEvidenceBody body, attest::ParseSimBody(envelope.payload));
  attest::Policy policy;
  policy.allowed_platforms = {attest::PlatformId::kSim};
  policy.allowed_measurements["sim"] = {platform.measurement()};
  policy.trusted_sim_roots = {body.root_public_key};
  policy.allow_debug = body.debug;
  policy.min_svn = body.svn;
  CHIRON_RETURN_IF_ERROR(policy.Validate());
  return policy;
}

}  // namespace chiron::runtime
