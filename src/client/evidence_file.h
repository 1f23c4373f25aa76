// Offline verification of a saved evidence file, whatever produced it:
//  - a transcript saved by `chiron attest --save` (JSON): report data recomputed from its nonce
//    and the two TLS keys it records;
//  - a Chiron evidence envelope (docs/formats/evidence.md): report data given by the caller;
//  - a raw Intel TDX quote (version 4) or a raw AMD SEV-SNP attestation report, as a TDX or
//    SEV-SNP guest's configfs-tsm outblob holds it, verified with collateral from a directory
//    (Intel PCS responses and CRLs; AMD VCEK and ASK/ARK) at an explicit verification time.
//    An Intel quote this build cannot verify (version 5, an SGX quote, a damaged header) is
//    recognised by its header (tdx::RecognizeIntelQuote) and refused as such, with the reason.
//    A TDX quote verifies without TCB collateral only if the policy says
//    tdx.tcb_status_unchecked = accept; its claims then say "TCB status NOT CHECKED".
// Every kind goes through the one attest::Verifier and its policy.
#pragma once

#include <chrono>
#include <memory>
#include <vector>
#include <optional>
#include <string>

#include "shared/attest/claims.h"
#include "shared/attest/policy.h"
#include "shared/attest/verifier.h"
#include "shared/base/status.h"

namespace chiron::client {

enum class EvidenceFileKind { kTranscript, kEnvelope, kTdxQuote, kSnpReport };

struct EvidenceFileOptions {
  // 64 bytes the evidence must bind. Required for envelopes; optional for raw quotes/reports,
  // whose own report data is then reported but not checked against anything.
  std::optional<Bytes> report_data;
  std::string collateral_dir;  // raw TDX / SEV-SNP only
  std::chrono::system_clock::time_point verification_time = std::chrono::system_clock::now();
};

struct VerifiedEvidenceFile {
  EvidenceFileKind kind;
  attest::Claims claims;
  bool report_data_checked = false;
};

// Why VerifyEvidenceFile failed, for the caller's exit code.
enum class EvidenceFileFailure {
  kNone,
  kUnreadable,    // the file could not be read (missing, too large, permissions)
  kMissingInput,  // an input the caller must give is missing: --collateral (none given, or a
                  // directory holding none of the platform's collateral files) or
                  // --report-data; the message names the flag and what to put there
  kRefused,       // the evidence was refused: malformed, unsupported, or a check failed
};

// Errors name the failed check (from the verifier) or say which input is missing; `failure`,
// when given, receives the kind (kNone on success).
Result<VerifiedEvidenceFile> VerifyEvidenceFile(const std::string& path, attest::Policy policy,
                                                const EvidenceFileOptions& options,
                                                EvidenceFileFailure* failure = nullptr);

std::string_view EvidenceFileKindName(EvidenceFileKind kind);

// The platform verifiers for evidence without collateral (a live runtime's, over RA-TLS): the
// built-in sim verifier and SEV-SNP taking the chip's certificates from the evidence's own
// certificate table (auxblob), the chain ending in the ARK pinned in Chiron, and TDX without
// collateral. TDX evidence needs Intel's TCB collateral, which evidence does not carry: it is
// refused unless the policy says tdx.tcb_status_unchecked = accept; otherwise save it with
// `chiron attest --save` and check it with `chiron evidence verify --collateral`.
std::vector<std::unique_ptr<attest::PlatformVerifier>> LivePlatformVerifiers();

}  // namespace chiron::client
