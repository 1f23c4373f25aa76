#include "client/evidence_file.h"

#include <functional>

#include "client/connection.h"
#include "shared/attest/evidence.h"
#include "shared/attest/snp/snp_platform_verifier.h"
#include "shared/attest/snp/snp_report.h"
#include "shared/attest/tdx/tdx_platform_verifier.h"
#include "shared/attest/tdx/tdx_quote.h"
#include "shared/attest/verifier.h"
#include "shared/base/file_system.h"

namespace chiron::client {
namespace {

constexpr size_t kMaxEvidenceFileSize = 1 << 20;

constexpr char kTdxCollateralNeeded[] =
    "Intel's TCB info (tcb_info.json), QE identity (qe_identity.json) and CRLs (pckcrl, "
    "rootcrl.der), as Intel's PCS serves them";
constexpr char kSnpCollateralNeeded[] =
    "the VCEK (vcek.der) and the ASK/ARK chain (cert_chain.pem)";
constexpr char kAcceptUnchecked[] =
    "\"tdx\": {\"tcb_status_unchecked\": \"accept\"}";

// A raw SEV-SNP report has a fixed size and version 2 or higher.
bool LooksLikeSnpReport(ByteSpan b) {
  return b.size() == attest::snp::kSnpReportSize && b[0] >= 2 && b[1] == 0 && b[2] == 0 &&
         b[3] == 0;
}

Result<Bytes> WrapTsm(attest::PlatformId platform, std::string_view provider, Bytes outblob) {
  attest::TsmEvidenceBody body{std::string(provider), std::move(outblob), {}};
  CHIRON_ASSIGN_OR_RETURN(Bytes payload, attest::SerializeTsmBody(body));
  return attest::SerializeEvidence({platform, std::move(payload)});
}

using Clock = std::function<std::chrono::system_clock::time_point()>;

// SEV-SNP with no collateral of its own: the evidence's certificate table must supply it.
std::unique_ptr<attest::PlatformVerifier> SnpFromEvidence(Clock clock) {
  attest::snp::SnpPlatformVerifierOptions options;
  options.clock = std::move(clock);
  return attest::snp::NewSnpPlatformVerifier(std::move(options));
}

// TDX with `collateral` (possibly none: then the policy decides, tcb_status_unchecked).
std::unique_ptr<attest::PlatformVerifier> Tdx(attest::tdx::TdxCollateral collateral, Clock clock) {
  attest::tdx::TdxPlatformVerifierOptions options;
  options.collateral = std::move(collateral);
  options.clock = std::move(clock);
  return attest::tdx::NewTdxPlatformVerifier(std::move(options));
}

}  // namespace

std::vector<std::unique_ptr<attest::PlatformVerifier>> LivePlatformVerifiers() {
  std::vector<std::unique_ptr<attest::PlatformVerifier>> verifiers =
      attest::BuiltinPlatformVerifiers();
  auto now = [] { return std::chrono::system_clock::now(); };
  verifiers.push_back(SnpFromEvidence(now));
  verifiers.push_back(Tdx({}, now));
  return verifiers;
}

std::string_view EvidenceFileKindName(EvidenceFileKind kind) {
  switch (kind) {
    case EvidenceFileKind::kTranscript: return "attestation transcript";
    case EvidenceFileKind::kEnvelope: return "Chiron evidence";
    case EvidenceFileKind::kTdxQuote: return "Intel TDX quote";
    case EvidenceFileKind::kSnpReport: return "AMD SEV-SNP report";
  }
  return "evidence";
}

Result<VerifiedEvidenceFile> VerifyEvidenceFile(const std::string& path, attest::Policy policy,
                                                const EvidenceFileOptions& options,
                                                EvidenceFileFailure* failure) {
  auto fail = [failure](EvidenceFileFailure kind, Status status) {
    if (failure != nullptr) *failure = kind;
    return status;
  };
  auto missing = [&fail](std::string message) {
    return fail(EvidenceFileFailure::kMissingInput, InvalidArgumentError(std::move(message)));
  };
  // Fail closed: every return before the end is an error of some kind.
  if (failure != nullptr) *failure = EvidenceFileFailure::kRefused;
  auto content = FileSystem::Default()->ReadFile(path, kMaxEvidenceFileSize);
  if (!content.ok()) return fail(EvidenceFileFailure::kUnreadable, content.status());
  VerifiedEvidenceFile result;
  Bytes envelope;
  Bytes expected;
  const auto time = options.verification_time;
  const Clock clock = [time] { return time; };
  const bool have_collateral = !options.collateral_dir.empty();
  const bool accept_unchecked = policy.tdx.accept_unchecked_tcb_status;
  // An empty or absent directory is the same mistake as no --collateral at all.
  auto empty_collateral = [&](std::string_view needed) {
    return missing("--collateral " + options.collateral_dir + " holds none of the collateral " +
                   "files: put " + std::string(needed) + " there");
  };
  std::vector<std::unique_ptr<attest::PlatformVerifier>> verifiers;
  verifiers.push_back(attest::NewSimPlatformVerifier());
  const auto intel_quote = attest::tdx::RecognizeIntelQuote(*content);

  if (!content->empty() && (*content)[0] == '{') {
    result.kind = EvidenceFileKind::kTranscript;
    auto transcript = AttestationTranscript::FromJson(ToString(*content));
    if (!transcript.ok()) return transcript.status().WithContext(path);
    envelope = transcript->evidence;
    expected = transcript->ExpectedReportData();
    result.report_data_checked = true;
  } else if (intel_quote) {
    result.kind = EvidenceFileKind::kTdxQuote;
    const std::string named = path + " is an " + attest::tdx::DescribeIntelQuote(*intel_quote);
    if (!intel_quote->tdx()) {
      return InvalidArgumentError(named +
                                  ", not a TDX quote: Chiron verifies Intel TDX quotes (version "
                                  "4) and AMD SEV-SNP reports");
    }
    auto quote = attest::tdx::ParseTdxQuote(*content);
    if (!quote.ok()) {
      return InvalidArgumentError(named + " that this build cannot verify: " +
                                  quote.status().message());
    }
    expected.assign(quote->body.report_data.begin(), quote->body.report_data.end());
    attest::tdx::TdxCollateral collateral;
    if (have_collateral) {
      auto loaded = attest::tdx::LoadTdxCollateralDir(options.collateral_dir);
      if (!loaded.ok()) {
        if (loaded.status().code() == StatusCode::kNotFound) {
          return empty_collateral(kTdxCollateralNeeded);
        }
        return fail(EvidenceFileFailure::kUnreadable, loaded.status().WithContext("--collateral"));
      }
      collateral = std::move(*loaded);
    } else if (!accept_unchecked) {
      return missing(path + " is a raw Intel TDX quote: pass --collateral DIR with " +
                     kTdxCollateralNeeded + " (or, to accept it with its TCB status NOT "
                     "CHECKED, set " + kAcceptUnchecked + " in the policy)");
    }
    verifiers.push_back(Tdx(std::move(collateral), clock));
    CHIRON_ASSIGN_OR_RETURN(envelope, WrapTsm(attest::PlatformId::kTdx, attest::kTsmProviderTdx,
                                              std::move(*content)));
  } else if (LooksLikeSnpReport(*content)) {
    result.kind = EvidenceFileKind::kSnpReport;
    if (!have_collateral) {
      return missing(path + " is a raw AMD SEV-SNP report: pass --collateral DIR with " +
                     kSnpCollateralNeeded);
    }
    CHIRON_ASSIGN_OR_RETURN(attest::snp::SnpReport report,
                            attest::snp::ParseSnpReport(*content));
    expected.assign(report.report_data.begin(), report.report_data.end());
    auto collateral = attest::snp::LoadSnpCollateralDir(options.collateral_dir);
    if (!collateral.ok()) {
      if (collateral.status().code() == StatusCode::kNotFound) {
        return empty_collateral(kSnpCollateralNeeded);
      }
      return fail(EvidenceFileFailure::kUnreadable,
                  collateral.status().WithContext("--collateral"));
    }
    attest::snp::SnpPlatformVerifierOptions snp_options;
    snp_options.collateral = std::move(*collateral);
    snp_options.clock = clock;
    verifiers.push_back(attest::snp::NewSnpPlatformVerifier(std::move(snp_options)));
    CHIRON_ASSIGN_OR_RETURN(envelope, WrapTsm(attest::PlatformId::kSevSnp,
                                              attest::kTsmProviderSevSnp, std::move(*content)));
  } else {
    result.kind = EvidenceFileKind::kEnvelope;
    if (!options.report_data) {
      return missing(path + " is raw Chiron evidence: pass --report-data HEX (the 64 bytes it "
                            "must bind), or verify a transcript saved by `chiron attest --save`");
    }
    envelope = std::move(*content);
    expected = *options.report_data;
    result.report_data_checked = true;
  }
  if (result.kind == EvidenceFileKind::kTranscript || result.kind == EvidenceFileKind::kEnvelope) {
    // Evidence of a tsm runtime (a TDX quote or SEV-SNP report in an envelope) verifies with the
    // same collateral as the raw artifact.
    auto parsed = attest::ParseEvidence(envelope);
    const bool tdx = parsed.ok() && parsed->platform == attest::PlatformId::kTdx;
    if (have_collateral) {
      auto tdx_collateral = attest::tdx::LoadTdxCollateralDir(options.collateral_dir);
      if (tdx_collateral.ok()) {
        verifiers.push_back(Tdx(std::move(*tdx_collateral), clock));
      } else if (tdx) {
        return empty_collateral(kTdxCollateralNeeded);
      }
      auto snp_collateral = attest::snp::LoadSnpCollateralDir(options.collateral_dir);
      if (snp_collateral.ok()) {
        attest::snp::SnpPlatformVerifierOptions snp_options;
        snp_options.collateral = std::move(*snp_collateral);
        snp_options.clock = clock;
        verifiers.push_back(attest::snp::NewSnpPlatformVerifier(std::move(snp_options)));
      }
      if (verifiers.size() == 1) {
        return empty_collateral(std::string(kTdxCollateralNeeded) + " (TDX), or " +
                                kSnpCollateralNeeded + " (SEV-SNP)");
      }
    } else if (tdx) {
      if (!accept_unchecked) {
        return missing(path + " holds Intel TDX evidence: pass --collateral DIR with " +
                       kTdxCollateralNeeded + " (or, to accept it with its TCB status NOT "
                       "CHECKED, set " + kAcceptUnchecked + " in the policy)");
      }
      verifiers.push_back(Tdx({}, clock));
    }
  }
  if (result.kind == EvidenceFileKind::kTdxQuote || result.kind == EvidenceFileKind::kSnpReport) {
    if (options.report_data) {
      expected = *options.report_data;
      result.report_data_checked = true;
    }
  }

  // SEV-SNP evidence carrying its certificate table verifies without collateral.
  bool have_snp = false;
  for (const auto& v : verifiers) have_snp |= v->platform() == attest::PlatformId::kSevSnp;
  if (!have_snp) verifiers.push_back(SnpFromEvidence(clock));
  CHIRON_ASSIGN_OR_RETURN(attest::Verifier verifier,
                          attest::Verifier::Create(std::move(policy), std::move(verifiers)));
  CHIRON_ASSIGN_OR_RETURN(result.claims, verifier.Verify(envelope, expected));
  if (failure != nullptr) *failure = EvidenceFileFailure::kNone;
  return result;
}

}  // namespace chiron::client
