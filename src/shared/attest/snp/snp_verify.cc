#include "shared/attest/snp/snp_verify.h"

#include <openssl/x509.h>

#include <algorithm>

#include "shared/attest/tdx/pck_extensions.h"
#include "shared/attest/tdx/strict_pem.h"
#include "shared/crypto/hash.h"
#include "shared/crypto/keys.h"
#include "shared/crypto/x509.h"

namespace chiron::attest::snp {

const std::array<uint8_t, 32> kArkMilanSpkiSha256 = {
    0x9f, 0x05, 0x6b, 0xee, 0x44, 0x37, 0x7e, 0x29, 0x30, 0x8c, 0xb5, 0xff, 0xa8, 0x95, 0xbd, 0xfb,
    0x62, 0xd1, 0x88, 0x81, 0xfa, 0x6b, 0xed, 0x8d, 0x6f, 0x07, 0x5b, 0x02, 0x04, 0x08, 0x9c, 0xb9};

namespace {

using crypto::Certificate;

constexpr size_t kMaxCollateralFileSize = 64 * 1024;

// VCEK extension OIDs (AMD "Versioned Chip Endorsement Key (VCEK) Certificate and KDS
// Interface Specification").
constexpr char kOidBlSpl[] = "1.3.6.1.4.1.3704.1.3.1";
constexpr char kOidTeeSpl[] = "1.3.6.1.4.1.3704.1.3.2";
constexpr char kOidSnpSpl[] = "1.3.6.1.4.1.3704.1.3.3";
constexpr char kOidUcodeSpl[] = "1.3.6.1.4.1.3704.1.3.8";
constexpr char kOidHwId[] = "1.3.6.1.4.1.3704.1.4";

Status Fail(StatusCode code, std::string_view check, const std::string& detail) {
  return Status(code, "sev-snp: " + std::string(check) + ": " + detail);
}

// SHA-256 of the certificate's SubjectPublicKeyInfo DER (works for RSA keys, which
// crypto::PublicKey does not model).
Result<Bytes> SpkiSha256(const Certificate& cert) {
  X509_PUBKEY* spki = X509_get_X509_PUBKEY(cert.native());
  unsigned char* der = nullptr;
  int size = spki ? i2d_X509_PUBKEY(spki, &der) : -1;
  if (size <= 0) return InvalidArgumentError("cannot encode the public key");
  Bytes digest = crypto::Sha256(ByteSpan(der, static_cast<size_t>(size)));
  OPENSSL_free(der);
  return digest;
}

// The ARK must carry a pinned key and be validly self-signed (RSASSA-PSS): OpenSSL does not
// check a trust anchor's own signature, so a flipped byte in it would otherwise pass.
Status CheckPinnedArk(const Certificate& ark) {
  constexpr std::string_view kCheck = "certificate chain";
  Result<Bytes> digest = SpkiSha256(ark);
  if (!digest.ok() || !std::equal(kArkMilanSpkiSha256.begin(), kArkMilanSpkiSha256.end(),
                                  digest->begin(), digest->end())) {
    return Fail(StatusCode::kUnauthenticated, kCheck,
                "root '" + ark.subject() + "' does not carry an AMD root key (ARK) pinned in Chiron");
  }
  EVP_PKEY* key = X509_get0_pubkey(ark.native());
  if (key == nullptr || X509_verify(ark.native(), key) != 1) {
    return Fail(StatusCode::kUnauthenticated, kCheck, "the ARK's self-signature is invalid");
  }
  return Status::Ok();
}

Result<uint32_t> ExtensionInteger(const Certificate& vcek, const char* oid, const char* name) {
  Result<crypto::CertificateExtension> ext = vcek.FindExtension(oid);
  if (!ext.ok()) {
    return Fail(StatusCode::kInvalidArgument, "VCEK TCB",
                std::string(name) + " extension: " + ext.status().message());
  }
  Result<tdx::DerElement> element = tdx::ReadDerElement(ext->value);
  if (!element.ok() || element->tag != 0x02 || element->total_size != ext->value.size()) {
    return Fail(StatusCode::kInvalidArgument, "VCEK TCB",
                std::string(name) + " extension is not a DER INTEGER");
  }
  Result<uint32_t> value = tdx::ReadDerSmallUnsigned(element->content);
  if (!value.ok() || *value > 255) {
    return Fail(StatusCode::kInvalidArgument, "VCEK TCB",
                std::string(name) + " extension is not an SPL in 0..255");
  }
  return *value;
}

// "CN=SEV-Milan" (the ASK, i.e. the VCEK's issuer) -> "Milan".
std::string ProductOf(const std::string& issuer) {
  size_t at = issuer.find("CN=SEV-");
  if (at == std::string::npos) return "";
  size_t end = issuer.find(',', at);
  return issuer.substr(at + 7, end == std::string::npos ? std::string::npos : end - at - 7);
}

}  // namespace

Result<SnpVerification> VerifySnpReport(ByteSpan report_bytes, const SnpCollateral& collateral,
                                        const SnpVerifyOptions& options) {
  if (!options.verification_time) {
    return InvalidArgumentError("sev-snp: options: verification_time must be set explicitly");
  }
  Result<SnpReport> parsed = ParseSnpReport(report_bytes);
  if (!parsed.ok()) return parsed.status();
  SnpVerification v;
  v.report = std::move(parsed).value();
  const SnpReport& report = v.report;
  if (report.signing_key() != 0) {
    return Fail(StatusCode::kUnauthenticated, "signing key",
                "report is signed by key type " + std::to_string(report.signing_key()) +
                    " (only VCEK-signed reports, type 0, are accepted)");
  }

  // Certificate chain VCEK -> ASK -> ARK.
  constexpr std::string_view kChain = "certificate chain";
  Result<Certificate> vcek = Certificate::FromDer(collateral.vcek_der);
  if (!vcek.ok()) {
    return Fail(StatusCode::kInvalidArgument, kChain, "VCEK: " + vcek.status().message());
  }
  Result<std::vector<Bytes>> chain_der =
      DecodeStrictPemCertificates(AsBytes(collateral.ask_ark_pem));
  if (!chain_der.ok() || chain_der->size() != 2) {
    return Fail(StatusCode::kInvalidArgument, kChain,
                "ASK/ARK PEM must hold exactly the ASK then the ARK" +
                    (chain_der.ok() ? std::string() : ": " + chain_der.status().message()));
  }
  Result<Certificate> ask = Certificate::FromDer((*chain_der)[0]);
  Result<Certificate> ark = Certificate::FromDer((*chain_der)[1]);
  if (!ask.ok() || !ark.ok()) {
    return Fail(StatusCode::kInvalidArgument, kChain, "ASK or ARK is not valid DER");
  }
  CHIRON_RETURN_IF_ERROR(CheckPinnedArk(*ark));
  crypto::ChainVerifyOptions chain_options;
  chain_options.verification_time = *options.verification_time;
  if (collateral.crl_der) chain_options.crls_der.push_back(*collateral.crl_der);
  Status chain_status = crypto::VerifyCertificateChain(*vcek, {*ask}, {*ark}, chain_options);
  if (!chain_status.ok()) return Fail(chain_status.code(), kChain, chain_status.message());
  v.product = ProductOf(vcek->issuer());

  // Report signature by the VCEK.
  Result<crypto::PublicKey> key = vcek->public_key();
  if (!key.ok() || key->scheme() != crypto::SignatureScheme::kEcdsaP384Sha384) {
    return Fail(StatusCode::kUnauthenticated, "report signature", "VCEK key is not ECDSA P-384");
  }
  if (!key->VerifyEcdsaRaw(report.signed_bytes, report.signature_r, report.signature_s).ok()) {
    return Fail(StatusCode::kUnauthenticated, "report signature",
                "bytes 0x000..0x29F are not signed by the VCEK");
  }

  // The VCEK certifies one chip at one TCB: both must be the report's.
  const SnpTcbVersion& tcb = report.reported_tcb;
  struct Spl {
    const char* oid;
    const char* name;
    uint8_t reported;
  } spls[] = {{kOidBlSpl, "blSPL", tcb.bootloader},
              {kOidTeeSpl, "teeSPL", tcb.tee},
              {kOidSnpSpl, "snpSPL", tcb.snp},
              {kOidUcodeSpl, "ucodeSPL", tcb.microcode}};
  for (const Spl& spl : spls) {
    CHIRON_ASSIGN_OR_RETURN(uint32_t certified, ExtensionInteger(*vcek, spl.oid, spl.name));
    if (certified != spl.reported) {
      return Fail(StatusCode::kUnauthenticated, "VCEK TCB",
                  std::string(spl.name) + " " + std::to_string(certified) +
                      " in the VCEK differs from the report's REPORTED_TCB value " +
                      std::to_string(spl.reported) + " (VCEK for another TCB)");
    }
  }
  if (report.mask_chip_key()) {
    v.warnings.push_back("the guest masked CHIP_ID: the VCEK's hwID could not be compared");
  } else {
    Result<crypto::CertificateExtension> hwid = vcek->FindExtension(kOidHwId);
    if (!hwid.ok()) return Fail(StatusCode::kInvalidArgument, "VCEK TCB", "hwID extension missing");
    ByteSpan value = hwid->value;
    // AMD writes the 64 raw bytes; accept an OCTET STRING wrapping them as well.
    if (value.size() == 66 && value[0] == 0x04 && value[1] == 64) value = value.subspan(2);
    if (!std::equal(value.begin(), value.end(), report.chip_id.begin(), report.chip_id.end())) {
      return Fail(StatusCode::kUnauthenticated, "VCEK TCB",
                  "the VCEK's hwID is not the report's CHIP_ID (VCEK of another chip)");
    }
  }
  return v;
}

Status CheckSnpExpectations(const SnpVerification& v, const SnpExpectations& e) {
  const SnpReport& r = v.report;
  if (e.report_data && !ConstantTimeEqual(*e.report_data, r.report_data)) {
    return UnauthenticatedError(
        "sev-snp: report data mismatch: the report is not bound to this key / nonce");
  }
  if (r.debug_allowed() && !e.allow_debug) {
    return PermissionDeniedError("policy: the guest policy allows debugging (bit 19), so the "
                                 "host may read guest memory, and the policy forbids debug");
  }
  if (!e.measurement.empty() &&
      std::none_of(e.measurement.begin(), e.measurement.end(), [&](const Bytes& m) {
        return std::equal(m.begin(), m.end(), r.measurement.begin(), r.measurement.end());
      })) {
    std::string accepted;
    for (size_t i = 0; i < e.measurement.size() && i < 8; ++i) {
      accepted += (i == 0 ? "" : ", ") + HexEncode(e.measurement[i]);
    }
    if (e.measurement.size() > 8) {
      accepted += " and " + std::to_string(e.measurement.size() - 8) + " more";
    }
    return PermissionDeniedError("policy: measurement " + HexEncode(r.measurement) +
                                 " is not accepted (sev_snp.measurement): the policy accepts " +
                                 accepted);
  }
  if (e.host_data && !std::equal(e.host_data->begin(), e.host_data->end(), r.host_data.begin(),
                                 r.host_data.end())) {
    return PermissionDeniedError("policy: HOST_DATA " + HexEncode(r.host_data) + " is not expected");
  }
  const SnpTcbVersion& t = r.reported_tcb;
  auto below = [](std::optional<uint8_t> min, uint8_t value) { return min && value < *min; };
  if (below(e.min_bootloader_svn, t.bootloader) || below(e.min_tee_svn, t.tee) ||
      below(e.min_snp_svn, t.snp) || below(e.min_microcode_svn, t.microcode)) {
    return PermissionDeniedError(
        "policy: reported TCB (boot loader " + std::to_string(t.bootloader) + ", TEE " +
        std::to_string(t.tee) + ", SNP " + std::to_string(t.snp) + ", microcode " +
        std::to_string(t.microcode) + ") is below the minimum TCB");
  }
  if (e.max_vmpl && r.vmpl > *e.max_vmpl) {
    return PermissionDeniedError("policy: report requested from VMPL" + std::to_string(r.vmpl));
  }
  return Status::Ok();
}

Result<SnpCollateral> LoadSnpCollateralDir(const std::string& dir, FileSystem* fs) {
  auto read = [&](std::initializer_list<const char*> names,
                  const char* what) -> Result<Bytes> {
    for (const char* name : names) {
      Result<Bytes> data = fs->ReadFile(JoinPath(dir, name), kMaxCollateralFileSize);
      if (data.ok() || data.status().code() != StatusCode::kNotFound) return data;
    }
    return NotFoundError("sev-snp collateral directory " + dir + " has no " + what);
  };
  SnpCollateral c;
  CHIRON_ASSIGN_OR_RETURN(c.vcek_der, read({"vcek.der", "vcek.testcer"}, "VCEK (vcek.der)"));
  CHIRON_ASSIGN_OR_RETURN(Bytes chain, read({"cert_chain.pem", "ask_ark.pem", "milan.testcer"},
                                            "ASK/ARK chain (cert_chain.pem)"));
  c.ask_ark_pem = ToString(chain);
  Result<Bytes> crl = read({"crl.der"}, "CRL");
  if (crl.ok()) {
    c.crl_der = std::move(crl).value();
  } else if (crl.status().code() != StatusCode::kNotFound) {
    return crl.status();
  }
  return c;
}

Result<SnpVerification> VerifySnpReportFile(const std::string& report_path,
                                            const std::string& collateral_dir,
                                            const SnpVerifyOptions& options, FileSystem* fs) {
  Result<Bytes> report = fs->ReadFile(report_path, kSnpReportSize * 4);
  if (!report.ok()) return report.status().WithContext("sev-snp report file " + report_path);
  CHIRON_ASSIGN_OR_RETURN(SnpCollateral collateral, LoadSnpCollateralDir(collateral_dir, fs));
  return VerifySnpReport(*report, collateral, options);
}

std::vector<std::pair<std::string, std::string>> DescribeSnpVerification(const SnpVerification& v) {
  const SnpReport& r = v.report;
  auto tcb = [](const SnpTcbVersion& t) {
    return "bl=" + std::to_string(t.bootloader) + " tee=" + std::to_string(t.tee) +
           " snp=" + std::to_string(t.snp) + " ucode=" + std::to_string(t.microcode);
  };
  return {
      {"version", std::to_string(r.version)},
      {"product", v.product},
      {"measurement", HexEncode(r.measurement)},
      {"report_data", HexEncode(r.report_data)},
      {"host_data", HexEncode(r.host_data)},
      {"policy", "0x" + HexEncode(Bytes{static_cast<uint8_t>(r.policy >> 16),
                                        static_cast<uint8_t>(r.policy >> 8),
                                        static_cast<uint8_t>(r.policy)})},
      {"debug", r.debug_allowed() ? "true" : "false"},
      {"vmpl", std::to_string(r.vmpl)},
      {"guest_svn", std::to_string(r.guest_svn)},
      {"reported_tcb", tcb(r.reported_tcb)},
      {"committed_tcb", tcb(r.committed_tcb)},
      {"chip_id", HexEncode(r.chip_id)},
  };
}

}  // namespace chiron::attest::snp
