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

// A raw TDX quote starts with version 4 (u16le), attestation key type 2 (ECDSA P-256) and TEE
// type 0x81 (u32le); a raw SEV-SNP report has a fixed size and version 2 or higher.
bool LooksLikeTdxQuote(ByteSpan b) {
  return b.size() > 8 && b[0] == 4 && b[1] == 0 && b[2] == 2 && b[3] == 0 && b[4] == 0x81 &&
         b[5] == 0 && b[6] == 0 && b[7] == 0;
}
bool LooksLikeSnpReport(ByteSpan b) {
  return b.size() == attest::snp::kSnpReportSize && b[0] >= 2 && b[1] == 0 && b[2] == 0 &&
         b[3] == 0;
}

Result<Bytes> WrapTsm(attest::PlatformId platform, std::string_view provider, Bytes outblob) {
  attest::TsmEvidenceBody body{std::string(provider), std::move(outblob), {}};
  CHIRON_ASSIGN_OR_RETURN(Bytes payload, attest::SerializeTsmBody(body));
  return attest::SerializeEvidence({platform, std::move(payload)});
}

// SEV-SNP with no collateral of its own: the evidence's certificate table must supply it.
std::unique_ptr<attest::PlatformVerifier> SnpFromEvidence(
    std::function<std::chrono::system_clock::time_point()> clock) {
  attest::snp::SnpPlatformVerifierOptions options;
  options.clock = std::move(clock);
  return attest::snp::NewSnpPlatformVerifier(std::move(options));
}

}  // namespace

std::vector<std::unique_ptr<attest::PlatformVerifier>> LivePlatformVerifiers() {
  std::vector<std::unique_ptr<attest::PlatformVerifier>> verifiers =
      attest::BuiltinPlatformVerifiers();
  verifiers.push_back(SnpFromEvidence([] { return std::chrono::system_clock::now(); }));
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
                                                const EvidenceFileOptions& options) {
  CHIRON_ASSIGN_OR_RETURN(Bytes content,
                          FileSystem::Default()->ReadFile(path, kMaxEvidenceFileSize));
  VerifiedEvidenceFile result;
  Bytes envelope;
  Bytes expected;
  auto time = options.verification_time;
  std::vector<std::unique_ptr<attest::PlatformVerifier>> verifiers;
  verifiers.push_back(attest::NewSimPlatformVerifier());

  if (!content.empty() && content[0] == '{') {
    result.kind = EvidenceFileKind::kTranscript;
    auto transcript = AttestationTranscript::FromJson(ToString(content));
    if (!transcript.ok()) return transcript.status().WithContext(path);
    envelope = transcript->evidence;
    expected = transcript->ExpectedReportData();
    result.report_data_checked = true;
  } else if (LooksLikeTdxQuote(content) || LooksLikeSnpReport(content)) {
    bool tdx = LooksLikeTdxQuote(content);
    result.kind = tdx ? EvidenceFileKind::kTdxQuote : EvidenceFileKind::kSnpReport;
    if (options.collateral_dir.empty()) {
      return InvalidArgumentError(
          path + " is a raw " + std::string(EvidenceFileKindName(result.kind)) +
          ": pass --collateral DIR with " +
          (tdx ? "Intel's TCB info, QE identity and CRLs" : "the VCEK and the ASK/ARK chain"));
    }
    if (tdx) {
      CHIRON_ASSIGN_OR_RETURN(attest::tdx::TdxQuote quote, attest::tdx::ParseTdxQuote(content));
      expected.assign(quote.body.report_data.begin(), quote.body.report_data.end());
      attest::tdx::TdxPlatformVerifierOptions tdx_options;
      auto collateral = attest::tdx::LoadTdxCollateralDir(options.collateral_dir);
      if (!collateral.ok()) return collateral.status().WithContext("--collateral");
      tdx_options.collateral = std::move(*collateral);
      tdx_options.clock = [time] { return time; };
      verifiers.push_back(attest::tdx::NewTdxPlatformVerifier(std::move(tdx_options)));
      CHIRON_ASSIGN_OR_RETURN(envelope, WrapTsm(attest::PlatformId::kTdx,
                                                attest::kTsmProviderTdx, std::move(content)));
    } else {
      CHIRON_ASSIGN_OR_RETURN(attest::snp::SnpReport report, attest::snp::ParseSnpReport(content));
      expected.assign(report.report_data.begin(), report.report_data.end());
      attest::snp::SnpPlatformVerifierOptions snp_options;
      auto collateral = attest::snp::LoadSnpCollateralDir(options.collateral_dir);
      if (!collateral.ok()) return collateral.status().WithContext("--collateral");
      snp_options.collateral = std::move(*collateral);
      snp_options.clock = [time] { return time; };
      verifiers.push_back(attest::snp::NewSnpPlatformVerifier(std::move(snp_options)));
      CHIRON_ASSIGN_OR_RETURN(envelope, WrapTsm(attest::PlatformId::kSevSnp,
                                                attest::kTsmProviderSevSnp, std::move(content)));
    }
    if (options.report_data) {
      expected = *options.report_data;
      result.report_data_checked = true;
    }
  } else {
    result.kind = EvidenceFileKind::kEnvelope;
    // A tsm runtime's evidence (a TDX quote or SEV-SNP report in an envelope) verifies with the
    // same collateral as the raw artifact.
    if (!options.collateral_dir.empty()) {
      auto tdx_collateral = attest::tdx::LoadTdxCollateralDir(options.collateral_dir);
      if (tdx_collateral.ok()) {
        attest::tdx::TdxPlatformVerifierOptions tdx_options;
        tdx_options.collateral = std::move(*tdx_collateral);
        tdx_options.clock = [time] { return time; };
        verifiers.push_back(attest::tdx::NewTdxPlatformVerifier(std::move(tdx_options)));
      }
      auto snp_collateral = attest::snp::LoadSnpCollateralDir(options.collateral_dir);
      if (snp_collateral.ok()) {
        attest::snp::SnpPlatformVerifierOptions snp_options;
        snp_options.collateral = std::move(*snp_collateral);
        snp_options.clock = [time] { return time; };
        verifiers.push_back(attest::snp::NewSnpPlatformVerifier(std::move(snp_options)));
      }
      if (verifiers.size() == 1) {
        return InvalidArgumentError("--collateral " + options.collateral_dir +
                                    " holds neither TDX nor SEV-SNP collateral");
      }
    }
    if (!options.report_data) {
      return InvalidArgumentError(
          path + " is raw Chiron evidence: pass --report-data HEX (the 64 bytes it must bind), "
                 "or verify a transcript saved by `chiron attest --save`");
    }
    envelope = std::move(content);
    expected = *options.report_data;
    result.report_data_checked = true;
  }

  // SEV-SNP evidence carrying its certificate table verifies without collateral.
  bool have_snp = false;
  for (const auto& v : verifiers) have_snp |= v->platform() == attest::PlatformId::kSevSnp;
  if (!have_snp) verifiers.push_back(SnpFromEvidence([time] { return time; }));
  CHIRON_ASSIGN_OR_RETURN(attest::Verifier verifier,
                          attest::Verifier::Create(std::move(policy), std::move(verifiers)));
  CHIRON_ASSIGN_OR_RETURN(result.claims, verifier.Verify(envelope, expected));
  return result;
}

}  // namespace chiron::client
