#include "shared/attest/tdx/tdx_verify.h"

#include <algorithm>

#include "shared/crypto/hash.h"
#include "shared/crypto/keys.h"
#include "shared/crypto/x509.h"

namespace chiron::attest::tdx {

const std::array<uint8_t, 64> kIntelSgxRootPublicKey = {
    0x0b, 0xa9, 0xc4, 0xc0, 0xc0, 0xc8, 0x61, 0x93, 0xa3, 0xfe, 0x23, 0xd6, 0xb0, 0x2c, 0xda, 0x10,
    0xa8, 0xbb, 0xd4, 0xe8, 0x8e, 0x48, 0xb4, 0x45, 0x85, 0x61, 0xa3, 0x6e, 0x70, 0x55, 0x25, 0xf5,
    0x67, 0x91, 0x8e, 0x2e, 0xdc, 0x88, 0xe4, 0x0d, 0x86, 0x0b, 0xd0, 0xcc, 0x4e, 0xe2, 0x6a, 0xac,
    0xc9, 0x88, 0xe5, 0x05, 0xa9, 0x53, 0x55, 0x8c, 0x45, 0x3f, 0x6b, 0x09, 0x04, 0xae, 0x73, 0x94};

namespace {

using crypto::Certificate;
using crypto::PublicKey;
using crypto::SignatureScheme;

// Intel SGX TCB Signing certificate (CN=Intel SGX TCB Signing, issued by the Intel SGX Root CA,
// valid 2018-05-21 to 2025-05-21). PCS sends it in the TCB-Info-Issuer-Chain header, which a
// saved response body lacks. Trust still comes only from the pinned root key: this certificate
// is chain-verified like one supplied by the caller.
constexpr char kIntelTcbSigningCertPem[] = R"(-----BEGIN CERTIFICATE-----
MIICizCCAjKgAwIBAgIUfjiC1ftVKUpASY5FhAPpFJG99FUwCgYIKoZIzj0EAwIw
aDEaMBgGA1UEAwwRSW50ZWwgU0dYIFJvb3QgQ0ExGjAYBgNVBAoMEUludGVsIENv
cnBvcmF0aW9uMRQwEgYDVQQHDAtTYW50YSBDbGFyYTELMAkGA1UECAwCQ0ExCzAJ
BgNVBAYTAlVTMB4XDTE4MDUyMTEwNTAxMFoXDTI1MDUyMTEwNTAxMFowbDEeMBwG
A1UEAwwVSW50ZWwgU0dYIFRDQiBTaWduaW5nMRowGAYDVQQKDBFJbnRlbCBDb3Jw
b3JhdGlvbjEUMBIGA1UEBwwLU2FudGEgQ2xhcmExCzAJBgNVBAgMAkNBMQswCQYD
VQQGEwJVUzBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABENFG8xzydWRfK92bmGv
P+mAh91PEyV7Jh6FGJd5ndE9aBH7R3E4A7ubrlh/zN3C4xvpoouGlirMba+W2lju
ypajgbUwgbIwHwYDVR0jBBgwFoAUImUM1lqdNInzg7SVUr9QGzknBqwwUgYDVR0f
BEswSTBHoEWgQ4ZBaHR0cHM6Ly9jZXJ0aWZpY2F0ZXMudHJ1c3RlZHNlcnZpY2Vz
LmludGVsLmNvbS9JbnRlbFNHWFJvb3RDQS5kZXIwHQYDVR0OBBYEFH44gtX7VSlK
QEmORYQD6RSRvfRVMA4GA1UdDwEB/wQEAwIGwDAMBgNVHRMBAf8EAjAAMAoGCCqG
SM49BAMCA0cAMEQCIB9C8wOAN/ImxDtGACV246KcqjagZOR0kyctyBrsGGJVAiAj
ftbrNGsGU8YH211dRiYNoPPu19Zp/ze8JmhujB0oBw==
-----END CERTIFICATE-----
)";

constexpr size_t kMaxCollateralFileSize = 1024 * 1024;

Status Fail(StatusCode code, std::string_view check, const std::string& detail) {
  return Status(code, "tdx: " + std::string(check) + ": " + detail);
}

// True if the one-line subject has the RDN "CN=<common_name>".
bool HasCommonName(const std::string& subject, std::string_view common_name) {
  std::string wanted = "CN=" + std::string(common_name);
  size_t start = 0;
  while (start <= subject.size()) {
    size_t end = subject.find(',', start);
    if (end == std::string::npos) end = subject.size();
    if (subject.compare(start, end - start, wanted) == 0) return true;
    start = end + 1;
  }
  return false;
}

// The pinned root: a self-signed certificate carrying Intel's root key.
Status CheckPinnedRoot(const Certificate& root, std::string_view check) {
  Result<PublicKey> key = root.public_key();
  Result<Bytes> raw = key.ok() ? key->ToRaw() : Result<Bytes>(key.status());
  if (!raw.ok() || raw->size() != 65 ||
      !std::equal(kIntelSgxRootPublicKey.begin(), kIntelSgxRootPublicKey.end(), raw->begin() + 1)) {
    return Fail(StatusCode::kUnauthenticated, check,
                "the chain's root '" + root.subject() +
                    "' does not carry the Intel SGX Root CA public key pinned in Chiron");
  }
  Status self = root.VerifySignature(*key);
  if (!self.ok()) {
    return Fail(StatusCode::kUnauthenticated, check,
                "the Intel SGX Root CA certificate's self-signature is invalid");
  }
  return Status::Ok();
}

Result<std::vector<Certificate>> ToCertificates(const std::vector<Bytes>& ders,
                                                std::string_view check) {
  std::vector<Certificate> certs;
  for (size_t i = 0; i < ders.size(); ++i) {
    Result<Certificate> cert = Certificate::FromDer(ders[i]);
    if (!cert.ok()) {
      return Fail(StatusCode::kInvalidArgument, check,
                  "certificate " + std::to_string(i) + " is not valid DER: " +
                      cert.status().message());
    }
    certs.push_back(std::move(cert).value());
  }
  return certs;
}

Status VerifyRaw(const PublicKey& key, ByteSpan message, ByteSpan signature_rs) {
  return key.VerifyEcdsaRaw(message, signature_rs.subspan(0, 32), signature_rs.subspan(32, 32));
}

// Verifies a collateral signature with the TCB Signing chain, and its validity window.
Status VerifyCollateralItem(std::string_view name, const std::string& signed_text,
                            const Bytes& signature, TimePoint issue_date, TimePoint next_update,
                            const Certificate& signing_cert, TimePoint now) {
  std::string check = "collateral " + std::string(name);
  Result<PublicKey> key = signing_cert.public_key();
  if (!key.ok() || key->scheme() != SignatureScheme::kEcdsaP256Sha256) {
    return Fail(StatusCode::kUnauthenticated, check, "TCB Signing key is not ECDSA P-256");
  }
  if (!VerifyRaw(*key, AsBytes(signed_text), signature).ok()) {
    return Fail(StatusCode::kUnauthenticated, check,
                "signature by Intel's TCB Signing key is invalid (altered or not from Intel)");
  }
  if (now < issue_date) {
    return Fail(StatusCode::kFailedPrecondition, check,
                "issued " + FormatTime(issue_date) + ", after the verification time " +
                    FormatTime(now));
  }
  if (now > next_update) {
    return Fail(StatusCode::kFailedPrecondition, check,
                "expired: nextUpdate " + FormatTime(next_update) + " is before the verification time " +
                    FormatTime(now) + "; fetch fresh collateral");
  }
  return Status::Ok();
}

}  // namespace

Result<TdxVerification> VerifyTdxQuote(ByteSpan quote_bytes, const TdxCollateral& collateral,
                                       const TdxVerifyOptions& options) {
  if (!options.verification_time) {
    return InvalidArgumentError("tdx: options: verification_time must be set explicitly");
  }
  const TimePoint now = *options.verification_time;
  Result<TdxQuote> parsed = ParseTdxQuote(quote_bytes);
  if (!parsed.ok()) return parsed.status();
  TdxVerification v;
  v.quote = std::move(parsed).value();
  const TdxQuote& quote = v.quote;
  if (quote.trailing_size > 0) {
    if (options.reject_trailing_bytes) {
      return Fail(StatusCode::kInvalidArgument, "trailing bytes",
                  std::to_string(quote.trailing_size) +
                      " byte(s) after the signature data, covered by no signature, and "
                      "tdx.reject_trailing_bytes refuses them");
    }
    v.warnings.push_back(std::to_string(quote.trailing_size) +
                         " unauthenticated byte(s) after the quote's signature data were ignored");
  }

  // 1. PCK certificate chain to the pinned Intel SGX Root CA.
  constexpr std::string_view kChain = "PCK certificate chain";
  if (quote.pck_chain_der.size() < 2 || quote.pck_chain_der.size() > 4) {
    return Fail(StatusCode::kInvalidArgument, kChain,
                "holds " + std::to_string(quote.pck_chain_der.size()) +
                    " certificates; expected leaf, intermediate CA(s) and root");
  }
  CHIRON_ASSIGN_OR_RETURN(std::vector<Certificate> chain,
                          ToCertificates(quote.pck_chain_der, kChain));
  const Certificate& pck_cert = chain.front();
  const Certificate& root = chain.back();
  CHIRON_RETURN_IF_ERROR(CheckPinnedRoot(root, kChain));
  crypto::ChainVerifyOptions chain_options;
  chain_options.verification_time = now;
  if (collateral.pck_crl_der) chain_options.crls_der.push_back(*collateral.pck_crl_der);
  if (collateral.root_crl_der) chain_options.crls_der.push_back(*collateral.root_crl_der);
  std::vector<Certificate> intermediates(chain.begin() + 1, chain.end() - 1);
  Status chain_status = crypto::VerifyCertificateChain(pck_cert, intermediates, {root}, chain_options);
  if (!chain_status.ok()) {
    return Fail(chain_status.code(), kChain, chain_status.message());
  }
  v.pck_subject = pck_cert.subject();
  if (!HasCommonName(v.pck_subject, "Intel SGX PCK Certificate")) {
    return Fail(StatusCode::kUnauthenticated, kChain,
                "leaf '" + v.pck_subject + "' is not an Intel SGX PCK Certificate");
  }

  // 2. The QE report, signed by the PCK key.
  Result<PublicKey> pck_key = pck_cert.public_key();
  if (!pck_key.ok() || pck_key->scheme() != SignatureScheme::kEcdsaP256Sha256) {
    return Fail(StatusCode::kUnauthenticated, "QE report signature", "PCK key is not P-256");
  }
  if (!VerifyRaw(*pck_key, quote.qe_report_bytes, quote.qe_report_signature).ok()) {
    return Fail(StatusCode::kUnauthenticated, "QE report signature",
                "the QE report is not signed by the PCK certificate's key");
  }

  // 3. The QE report binds the attestation key and the QE authentication data.
  Bytes bound(quote.attestation_key.begin(), quote.attestation_key.end());
  Append(bound, quote.qe_auth_data);
  Bytes expected = crypto::Sha256(bound);
  expected.resize(64, 0);
  if (!ConstantTimeEqual(expected, quote.qe_report.report_data)) {
    return Fail(StatusCode::kUnauthenticated, "QE binding",
                "QE report data is not SHA-256(attestation key || QE authentication data) "
                "followed by zeros: the attestation key was not certified by this QE");
  }

  // 4. The quote, signed by the attestation key.
  Bytes point = {0x04};
  point.insert(point.end(), quote.attestation_key.begin(), quote.attestation_key.end());
  Result<PublicKey> attestation_key = PublicKey::FromRaw(SignatureScheme::kEcdsaP256Sha256, point);
  if (!attestation_key.ok()) {
    return Fail(StatusCode::kUnauthenticated, "quote signature",
                "attestation key is not a P-256 point: " + attestation_key.status().message());
  }
  if (!VerifyRaw(*attestation_key, quote.signed_bytes, quote.signature).ok()) {
    return Fail(StatusCode::kUnauthenticated, "quote signature",
                "header and TD report body are not signed by the attestation key");
  }

  // 5. The PCK certificate's SGX extension (authenticated by step 1).
  Result<crypto::CertificateExtension> ext = pck_cert.FindExtension(kSgxExtensionOid);
  if (!ext.ok()) return Fail(StatusCode::kInvalidArgument, "PCK extensions", ext.status().message());
  Result<PckExtensions> pck = ParsePckExtensions(ext->value);
  if (!pck.ok()) return Fail(StatusCode::kInvalidArgument, "PCK extensions", pck.status().message());
  v.pck = *pck;

  // 6. Collateral: TCB info and QE identity.
  bool have_tcb = collateral.tcb_info_json.has_value();
  bool have_qe = collateral.qe_identity_json.has_value();
  if (have_tcb != have_qe) {
    return Fail(StatusCode::kInvalidArgument, "collateral",
                "TCB info and QE identity must be given together");
  }
  if (!collateral.pck_crl_der && !collateral.root_crl_der) {
    v.warnings.push_back("no CRLs given: revocation of the PCK certificate chain NOT CHECKED");
  }
  if (!have_tcb) {
    if (options.require_collateral) {
      return Fail(StatusCode::kFailedPrecondition, "collateral",
                  "TCB info and QE identity are required to judge the platform's TCB");
    }
    v.warnings.insert(v.warnings.begin(), kTcbStatusNotCheckedWarning);
    return v;
  }
  CHIRON_ASSIGN_OR_RETURN(TdxTcbInfo tcb_info, ParseTdxTcbInfo(*collateral.tcb_info_json));
  CHIRON_ASSIGN_OR_RETURN(TdxQeIdentity qe_identity,
                          ParseTdxQeIdentity(*collateral.qe_identity_json));

  constexpr std::string_view kSigning = "TCB Signing chain";
  const std::string& signing_pem = collateral.tcb_signing_chain_pem.empty()
                                       ? std::string(kIntelTcbSigningCertPem)
                                       : collateral.tcb_signing_chain_pem;
  Result<std::vector<Bytes>> signing_der = chiron::attest::DecodeStrictPemCertificates(AsBytes(signing_pem));
  if (!signing_der.ok()) {
    return Fail(StatusCode::kInvalidArgument, kSigning, signing_der.status().message());
  }
  CHIRON_ASSIGN_OR_RETURN(std::vector<Certificate> signing_chain,
                          ToCertificates(*signing_der, kSigning));
  // Anchor: the chain's own root if it has one (it must carry the pinned key), else the
  // quote's already-checked Intel root.
  Certificate signing_root = root;
  std::vector<Certificate> signing_intermediates;
  if (signing_chain.size() > 1) {
    signing_root = signing_chain.back();
    CHIRON_RETURN_IF_ERROR(CheckPinnedRoot(signing_root, kSigning));
    signing_intermediates.assign(signing_chain.begin() + 1, signing_chain.end() - 1);
  }
  crypto::ChainVerifyOptions signing_options;
  signing_options.verification_time = now;
  if (collateral.root_crl_der) signing_options.crls_der.push_back(*collateral.root_crl_der);
  Status signing_status = crypto::VerifyCertificateChain(signing_chain.front(), signing_intermediates,
                                                         {signing_root}, signing_options);
  if (!signing_status.ok()) return Fail(signing_status.code(), kSigning, signing_status.message());
  if (!HasCommonName(signing_chain.front().subject(), "Intel SGX TCB Signing")) {
    return Fail(StatusCode::kUnauthenticated, kSigning,
                "leaf '" + signing_chain.front().subject() + "' is not Intel's TCB Signing certificate");
  }
  CHIRON_RETURN_IF_ERROR(VerifyCollateralItem("tcbInfo", tcb_info.signed_text, tcb_info.signature,
                                              tcb_info.issue_date, tcb_info.next_update,
                                              signing_chain.front(), now));
  CHIRON_RETURN_IF_ERROR(VerifyCollateralItem("qeIdentity", qe_identity.signed_text,
                                              qe_identity.signature, qe_identity.issue_date,
                                              qe_identity.next_update, signing_chain.front(), now));
  Result<TcbEvaluation> eval = EvaluateTdxTcb(tcb_info, qe_identity, v.pck, quote);
  if (!eval.ok()) return Fail(eval.status().code(), "TCB evaluation", eval.status().message());
  v.tcb = *eval;
  v.tcb_evaluation_data_number = tcb_info.tcb_evaluation_data_number;
  return v;
}

namespace {

// "the policy accepts a, b" (hex, the first eight, then "and N more"): a refusal says what was
// expected. (attest::DescribeAccepted's twin: chiron_tdx does not link chiron_attest.)
std::string AcceptedValues(const std::vector<Bytes>& accepted) {
  constexpr size_t kShown = 8;
  std::string out = "the policy accepts ";
  for (size_t i = 0; i < accepted.size() && i < kShown; ++i) {
    out += (i == 0 ? "" : ", ") + HexEncode(accepted[i]);
  }
  if (accepted.size() > kShown) out += " and " + std::to_string(accepted.size() - kShown) + " more";
  return out;
}

}  // namespace

Status CheckTdxExpectations(const TdxVerification& v, const TdxExpectations& e) {
  const TdReportBody& body = v.quote.body;
  if (e.report_data && !ConstantTimeEqual(*e.report_data, body.report_data)) {
    return UnauthenticatedError(
        "tdx: report data mismatch: the quote is not bound to this key / nonce");
  }
  if (body.debug() && !e.allow_debug) {
    return PermissionDeniedError("policy: the TD runs in debug mode (TDATTRIBUTES.DEBUG set) and "
                                 "the policy forbids debug");
  }
  auto listed = [](const std::vector<Bytes>& list, ByteSpan value) {
    return list.empty() || std::any_of(list.begin(), list.end(), [&](const Bytes& b) {
             return std::equal(b.begin(), b.end(), value.begin(), value.end());
           });
  };
  if (!listed(e.mrtd, body.mr_td)) {
    return PermissionDeniedError("policy: MRTD " + HexEncode(body.mr_td) +
                                 " is not accepted (tdx.mrtd): " + AcceptedValues(e.mrtd));
  }
  for (size_t i = 0; i < 4; ++i) {
    if (!listed(e.rtmr[i], body.rtmr[i])) {
      const std::string name = "rtmr" + std::to_string(i);
      return PermissionDeniedError("policy: RTMR" + std::to_string(i) + " " +
                                   HexEncode(body.rtmr[i]) + " is not accepted (tdx." + name +
                                   "): " + AcceptedValues(e.rtmr[i]));
    }
  }
  if (!v.tcb) {
    if (e.min_tcb_evaluation_data_number) {
      return PermissionDeniedError(
          "policy: tdx.min_tcb_evaluation_data_number needs Intel's TCB info, which was not "
          "given (`chiron evidence verify --collateral DIR` takes it)");
    }
    if (e.accept_unchecked_tcb_status) return Status::Ok();
    return PermissionDeniedError(
        "policy: no TCB status: Intel's TCB info and QE identity were not given (`chiron "
        "evidence verify --collateral DIR` takes them); to accept a quote whose signatures and "
        "chain verify with its TCB status NOT CHECKED, set \"tdx\": {\"tcb_status_unchecked\": "
        "\"accept\"} in the policy");
  }
  std::vector<std::string> accepted = e.accepted_tcb_statuses;
  if (accepted.empty()) accepted.push_back("UpToDate");
  std::string_view status = TcbStatusName(v.tcb->status);
  if (std::find(accepted.begin(), accepted.end(), status) == accepted.end()) {
    return PermissionDeniedError("policy: TCB status " + std::string(status) +
                                 " is not among the accepted statuses");
  }
  if (e.min_tcb_evaluation_data_number &&
      v.tcb_evaluation_data_number < *e.min_tcb_evaluation_data_number) {
    return PermissionDeniedError("policy: TCB evaluation data number " +
                                 std::to_string(v.tcb_evaluation_data_number) +
                                 " is below the minimum " +
                                 std::to_string(*e.min_tcb_evaluation_data_number));
  }
  return Status::Ok();
}

Result<TdxCollateral> LoadTdxCollateralDir(const std::string& dir, FileSystem* fs) {
  TdxCollateral c;
  bool any = false;
  auto read = [&](std::initializer_list<const char*> names) -> Result<std::optional<Bytes>> {
    for (const char* name : names) {
      Result<Bytes> data = fs->ReadFile(JoinPath(dir, name), kMaxCollateralFileSize);
      if (data.ok()) {
        any = true;
        return std::optional<Bytes>(std::move(data).value());
      }
      if (data.status().code() != StatusCode::kNotFound) return data.status();
    }
    return std::optional<Bytes>();
  };
  CHIRON_ASSIGN_OR_RETURN(auto tcb, read({"tcb_info.json", "sample_tcbInfo_response"}));
  CHIRON_ASSIGN_OR_RETURN(auto qe, read({"qe_identity.json", "sample_qeIdentity_response"}));
  CHIRON_ASSIGN_OR_RETURN(auto chain, read({"tcb_signing_chain.pem"}));
  CHIRON_ASSIGN_OR_RETURN(c.pck_crl_der, read({"pckcrl", "pck_crl.der"}));
  CHIRON_ASSIGN_OR_RETURN(c.root_crl_der, read({"rootcrl.der", "root_crl.der"}));
  if (tcb) c.tcb_info_json = ToString(*tcb);
  if (qe) c.qe_identity_json = ToString(*qe);
  if (chain) c.tcb_signing_chain_pem = ToString(*chain);
  if (!any) return NotFoundError("tdx collateral directory " + dir + " holds no collateral file");
  return c;
}

Result<TdxVerification> VerifyTdxQuoteFile(const std::string& quote_path,
                                           const std::string& collateral_dir,
                                           const TdxVerifyOptions& options, FileSystem* fs) {
  Result<Bytes> quote = fs->ReadFile(quote_path, kMaxTdxQuoteSize);
  if (!quote.ok()) return quote.status().WithContext("tdx quote file " + quote_path);
  TdxCollateral collateral;
  if (!collateral_dir.empty()) {
    CHIRON_ASSIGN_OR_RETURN(collateral, LoadTdxCollateralDir(collateral_dir, fs));
  }
  return VerifyTdxQuote(*quote, collateral, options);
}

std::vector<std::pair<std::string, std::string>> DescribeTdxVerification(const TdxVerification& v) {
  const TdReportBody& b = v.quote.body;
  std::vector<std::pair<std::string, std::string>> out = {
      {"mrtd", HexEncode(b.mr_td)},
      {"rtmr0", HexEncode(b.rtmr[0])},
      {"rtmr1", HexEncode(b.rtmr[1])},
      {"rtmr2", HexEncode(b.rtmr[2])},
      {"rtmr3", HexEncode(b.rtmr[3])},
      {"mrconfigid", HexEncode(b.mr_config_id)},
      {"mrowner", HexEncode(b.mr_owner)},
      {"mrownerconfig", HexEncode(b.mr_owner_config)},
      {"mrseam", HexEncode(b.mr_seam)},
      {"report_data", HexEncode(b.report_data)},
      {"td_attributes", HexEncode(Bytes{static_cast<uint8_t>(b.td_attributes >> 56),
                                        static_cast<uint8_t>(b.td_attributes >> 48),
                                        static_cast<uint8_t>(b.td_attributes >> 40),
                                        static_cast<uint8_t>(b.td_attributes >> 32),
                                        static_cast<uint8_t>(b.td_attributes >> 24),
                                        static_cast<uint8_t>(b.td_attributes >> 16),
                                        static_cast<uint8_t>(b.td_attributes >> 8),
                                        static_cast<uint8_t>(b.td_attributes)})},
      {"debug", b.debug() ? "true" : "false"},
      {"tee_tcb_svn", HexEncode(b.tee_tcb_svn)},
      {"fmspc", HexEncode(v.pck.fmspc)},
      {"pck_subject", v.pck_subject},
  };
  if (v.tcb) {
    out.emplace_back("tcb_status", std::string(TcbStatusName(v.tcb->status)));
    out.emplace_back("platform_tcb_status", std::string(TcbStatusName(v.tcb->platform_status)));
    out.emplace_back("qe_tcb_status", std::string(TcbStatusName(v.tcb->qe_status)));
    out.emplace_back("tcb_evaluation_data_number", std::to_string(v.tcb_evaluation_data_number));
  } else {
    out.emplace_back("tcb_status", kTcbStatusNotChecked);
  }
  return out;
}

}  // namespace chiron::attest::tdx
