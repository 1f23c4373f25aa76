// Verification of Intel TDX quotes, offline, against Intel's SGX Root CA (pinned here by its
// public key) and, optionally, Intel PCS collateral.
//
//   TdxVerifyOptions options;
//   options.verification_time = ...;                      // required: tests pin it
//   CHIRON_ASSIGN_OR_RETURN(TdxCollateral collateral, LoadTdxCollateralDir(dir));
//   CHIRON_ASSIGN_OR_RETURN(TdxVerification v, VerifyTdxQuote(quote, collateral, options));
//   CHIRON_RETURN_IF_ERROR(CheckTdxExpectations(v, expectations));
//
// VerifyTdxQuote runs these checks in order and stops at the first failure (fail closed). Each
// error begins "tdx: <check>: " so a user sees which one failed:
//   parse              the strict layout of tdx_quote.h               InvalidArgument
//   trailing bytes     only when options.reject_trailing_bytes          InvalidArgument
//   PCK chain          leaf -> intermediate -> a root whose public key is Intel's SGX Root CA
//                      key, self-signature of that root, validity at verification_time, CA
//                      constraints, the PCK and root CRLs when given    Unauthenticated
//   QE report signature  ECDSA P-256 by the PCK leaf key over the 384-byte QE report
//   QE binding         QE REPORTDATA = SHA-256(attestation key || QE auth data) || 32 zeros
//   quote signature    ECDSA P-256 by the attestation key over header || TD report body
//   PCK extensions     FMSPC, PCE-ID and TCB from the (now authenticated) PCK certificate
//   collateral         (when given) TCB info and QE identity signatures by Intel's TCB Signing
//                      certificate chained to the same pinned root, their validity window
//                      around verification_time, FMSPC / TDX module / QE identity match, and the
//                      TCB status by Intel's rules (tdx_collateral.h)
// Policy (expected MRTD / RTMRs, debug, TCB statuses, report data) is applied separately by
// CheckTdxExpectations so a caller can show what was verified before it judges it.
//
// Thread safety: free functions; safe from any thread.
#pragma once

#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "shared/attest/tdx/pck_extensions.h"
#include "shared/attest/tdx/tdx_collateral.h"
#include "shared/attest/tdx/tdx_quote.h"
#include "shared/base/bytes.h"
#include "shared/base/file_system.h"
#include "shared/base/status.h"

namespace chiron::attest::tdx {

// X || Y of the Intel SGX Root CA's P-256 key ("CN=Intel SGX Root CA", valid 2018-05-21 to
// 2049-12-31), as published in Intel's PCK certificate and CRL profile.
extern const std::array<uint8_t, 64> kIntelSgxRootPublicKey;

// Everything is optional: without TCB info and QE identity no TCB status is computed; without
// CRLs revocation is not checked. Texts are the PCS response bodies exactly as received.
struct TdxCollateral {
  std::optional<std::string> tcb_info_json;    // GET /tdx/certification/v4/tcb
  std::optional<std::string> qe_identity_json;  // GET /tdx/certification/v4/qe/identity
  // The TCB Signing issuer chain (PCS sends it in a response header, PEM, leaf first). Empty:
  // the Intel SGX TCB Signing certificate compiled into this library, which is still verified
  // against the pinned root like any other.
  std::string tcb_signing_chain_pem;
  std::optional<Bytes> pck_crl_der;   // CRL of the PCK Platform/Processor CA
  std::optional<Bytes> root_crl_der;  // CRL of the Intel SGX Root CA
};

struct TdxVerifyOptions {
  // The time at which certificates, CRLs and collateral are judged. Required (an unset time is
  // InvalidArgument) so that results are reproducible and expiry is a deliberate decision.
  std::optional<std::chrono::system_clock::time_point> verification_time;
  // Refuse bytes after the signature data (real quote buffers are often padded; default off).
  bool reject_trailing_bytes = false;
  // Fail with FailedPrecondition unless TCB info and QE identity are given.
  bool require_collateral = false;
};

// What a verification without TCB info / QE identity says about the TCB: the detail
// "tcb_status" of DescribeTdxVerification, and the warning put first in its warnings.
inline constexpr char kTcbStatusNotChecked[] = "NOT CHECKED";
inline constexpr char kTcbStatusNotCheckedWarning[] =
    "TCB status NOT CHECKED: Intel's TCB info and QE identity were not given, so whether this "
    "platform's firmware and microcode are up to date, or revoked, is unknown";

struct TdxVerification {
  TdxQuote quote;
  PckExtensions pck;
  std::string pck_subject;
  // Set when TCB info and QE identity were given and verified.
  std::optional<TcbEvaluation> tcb;
  uint32_t tcb_evaluation_data_number = 0;  // of the TCB info, when given
  std::vector<std::string> warnings;
};

Result<TdxVerification> VerifyTdxQuote(ByteSpan quote, const TdxCollateral& collateral,
                                       const TdxVerifyOptions& options);

// What a relying party requires of a verified quote. Empty lists place no constraint.
struct TdxExpectations {
  std::optional<Bytes> report_data;  // 64 bytes, compared in constant time
  bool allow_debug = false;
  std::vector<Bytes> mrtd;                 // accepted MRTDs (48 bytes each)
  std::array<std::vector<Bytes>, 4> rtmr;  // accepted RTMR0..3 values
  // Accepted TCB statuses (Intel's names). Empty means {"UpToDate"}. A TCB status is required:
  // a verification without collateral fails here.
  std::vector<std::string> accepted_tcb_statuses;
  std::optional<uint32_t> min_tcb_evaluation_data_number;
  // Accept a verification without TCB status (no TCB info / QE identity given) instead of
  // failing; accepted_tcb_statuses then has nothing to judge. min_tcb_evaluation_data_number
  // still needs the TCB info.
  bool accept_unchecked_tcb_status = false;
};

// PermissionDenied "policy: ..." (or Unauthenticated for a report data mismatch) naming the
// first requirement not met; an MRTD or RTMR refusal lists the accepted values. Without a TCB
// status (and without accept_unchecked_tcb_status) the message says what to pass or set.
Status CheckTdxExpectations(const TdxVerification& verification,
                            const TdxExpectations& expectations);

// Reads the collateral files of a directory laid out like Intel's PCS responses:
// sample_tcbInfo_response or tcb_info.json, sample_qeIdentity_response or qe_identity.json,
// pckcrl (DER), rootcrl.der (DER), and optional tcb_signing_chain.pem. Missing files are left
// unset; NotFound only if the directory holds none of them.
Result<TdxCollateral> LoadTdxCollateralDir(const std::string& dir,
                                           FileSystem* fs = FileSystem::Default());

// For `chiron evidence verify`: reads a raw quote file (at most kMaxTdxQuoteSize bytes) and the
// collateral directory (may be empty for "no collateral") and verifies.
Result<TdxVerification> VerifyTdxQuoteFile(const std::string& quote_path,
                                           const std::string& collateral_dir,
                                           const TdxVerifyOptions& options,
                                           FileSystem* fs = FileSystem::Default());

// One line per verified fact, for CLIs: "mrtd: ...", "tcb_status: ...".
std::vector<std::pair<std::string, std::string>> DescribeTdxVerification(
    const TdxVerification& verification);

}  // namespace chiron::attest::tdx
