#include "shared/attest/tdx/tdx_quote.h"

#include "shared/attest/tdx/strict_pem.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string_view>

namespace chiron::attest::tdx {
namespace {

Status QuoteError(std::string message) { return InvalidArgumentError("tdx quote: " + message); }

// Re-labels a ByteReader overrun ("truncated input: ...") as a quote error.
Status Truncated(const Status& status) { return QuoteError(status.message()); }

template <size_t N>
Status ReadArray(ByteReader& reader, std::array<uint8_t, N>& out, std::string_view what) {
  Result<ByteSpan> bytes = reader.Take(N, what);
  if (!bytes.ok()) return Truncated(bytes.status());
  std::copy(bytes->begin(), bytes->end(), out.begin());
  return Status::Ok();
}

Status SkipReserved(ByteReader& reader, size_t count, std::string_view what) {
  Status status = reader.Skip(count, what);
  return status.ok() ? status : Truncated(status);
}

template <typename T>
Status ReadInt(ByteReader& reader, T& out, std::string_view what) {
  if constexpr (sizeof(T) == 2) {
    Result<uint16_t> v = reader.U16Le(what);
    if (!v.ok()) return Truncated(v.status());
    out = *v;
  } else if constexpr (sizeof(T) == 4) {
    Result<uint32_t> v = reader.U32Le(what);
    if (!v.ok()) return Truncated(v.status());
    out = *v;
  } else {
    Result<uint64_t> v = reader.U64Le(what);
    if (!v.ok()) return Truncated(v.status());
    out = *v;
  }
  return Status::Ok();
}

Status ParseHeader(ByteReader& reader, TdxQuoteHeader& header) {
  CHIRON_RETURN_IF_ERROR(ReadInt(reader, header.version, "header version"));
  if (header.version == 5) {
    return QuoteError(
        "quote version 5 (the TDX 1.5 layout, whose TD report body is typed and may be larger) "
        "is not supported; this verifier reads version 4 quotes");
  }
  if (header.version != kTdxQuoteVersion) {
    return QuoteError("unsupported quote version " + std::to_string(header.version) +
                      "; this verifier reads version 4");
  }
  CHIRON_RETURN_IF_ERROR(ReadInt(reader, header.attestation_key_type, "attestation key type"));
  if (header.attestation_key_type != kAttestationKeyTypeEcdsaP256) {
    return QuoteError("unsupported attestation key type " +
                      std::to_string(header.attestation_key_type) + " (expected 2, ECDSA P-256)");
  }
  CHIRON_RETURN_IF_ERROR(ReadInt(reader, header.tee_type, "TEE type"));
  if (header.tee_type != kTeeTypeTdx) {
    return QuoteError("TEE type " + std::to_string(header.tee_type) +
                      " is not TDX (0x81); SGX quotes are not accepted here");
  }
  uint16_t reserved = 0;
  CHIRON_RETURN_IF_ERROR(ReadInt(reader, reserved, "header reserved field"));
  CHIRON_RETURN_IF_ERROR(ReadInt(reader, reserved, "header reserved field"));
  CHIRON_RETURN_IF_ERROR(ReadArray(reader, header.qe_vendor_id, "QE vendor id"));
  return ReadArray(reader, header.user_data, "header user data");
}

Status ParseBody(ByteReader& reader, TdReportBody& body) {
  CHIRON_RETURN_IF_ERROR(ReadArray(reader, body.tee_tcb_svn, "TEE_TCB_SVN"));
  CHIRON_RETURN_IF_ERROR(ReadArray(reader, body.mr_seam, "MRSEAM"));
  CHIRON_RETURN_IF_ERROR(ReadArray(reader, body.mr_signer_seam, "MRSIGNERSEAM"));
  CHIRON_RETURN_IF_ERROR(ReadInt(reader, body.seam_attributes, "SEAMATTRIBUTES"));
  CHIRON_RETURN_IF_ERROR(ReadInt(reader, body.td_attributes, "TDATTRIBUTES"));
  CHIRON_RETURN_IF_ERROR(ReadInt(reader, body.xfam, "XFAM"));
  CHIRON_RETURN_IF_ERROR(ReadArray(reader, body.mr_td, "MRTD"));
  CHIRON_RETURN_IF_ERROR(ReadArray(reader, body.mr_config_id, "MRCONFIGID"));
  CHIRON_RETURN_IF_ERROR(ReadArray(reader, body.mr_owner, "MROWNER"));
  CHIRON_RETURN_IF_ERROR(ReadArray(reader, body.mr_owner_config, "MROWNERCONFIG"));
  for (size_t i = 0; i < body.rtmr.size(); ++i) {
    CHIRON_RETURN_IF_ERROR(ReadArray(reader, body.rtmr[i], "RTMR" + std::to_string(i)));
  }
  return ReadArray(reader, body.report_data, "REPORTDATA");
}

// Reads a "type u16 | size u32 | data" certification data element of the expected type; the
// data must fit in what remains.
Result<ByteSpan> ReadCertificationData(ByteReader& reader, uint16_t expected_type,
                                       std::string_view what) {
  uint16_t type = 0;
  uint32_t size = 0;
  CHIRON_RETURN_IF_ERROR(ReadInt(reader, type, std::string(what) + " type"));
  if (type != expected_type) {
    return QuoteError(std::string(what) + " has type " + std::to_string(type) + ", expected " +
                      std::to_string(expected_type));
  }
  CHIRON_RETURN_IF_ERROR(ReadInt(reader, size, std::string(what) + " size"));
  if (size != reader.remaining()) {
    return QuoteError(std::string(what) + " size " + std::to_string(size) +
                      " disagrees with the " + std::to_string(reader.remaining()) +
                      " byte(s) its container holds");
  }
  Result<ByteSpan> data = reader.Take(size, what);
  if (!data.ok()) return Truncated(data.status());
  return *data;
}

}  // namespace

Result<SgxReportBody> ParseSgxReportBody(ByteSpan bytes) {
  if (bytes.size() != kSgxReportBodySize) {
    return QuoteError("QE report is " + std::to_string(bytes.size()) + " bytes, expected 384");
  }
  ByteReader reader(bytes);
  SgxReportBody report;
  CHIRON_RETURN_IF_ERROR(ReadArray(reader, report.cpu_svn, "QE report CPUSVN"));
  CHIRON_RETURN_IF_ERROR(ReadInt(reader, report.misc_select, "QE report MISCSELECT"));
  CHIRON_RETURN_IF_ERROR(SkipReserved(reader, 28, "QE report reserved field"));
  CHIRON_RETURN_IF_ERROR(ReadArray(reader, report.attributes, "QE report ATTRIBUTES"));
  CHIRON_RETURN_IF_ERROR(ReadArray(reader, report.mr_enclave, "QE report MRENCLAVE"));
  CHIRON_RETURN_IF_ERROR(SkipReserved(reader, 32, "QE report reserved field"));
  CHIRON_RETURN_IF_ERROR(ReadArray(reader, report.mr_signer, "QE report MRSIGNER"));
  CHIRON_RETURN_IF_ERROR(SkipReserved(reader, 96, "QE report reserved field"));
  CHIRON_RETURN_IF_ERROR(ReadInt(reader, report.isv_prod_id, "QE report ISVPRODID"));
  CHIRON_RETURN_IF_ERROR(ReadInt(reader, report.isv_svn, "QE report ISVSVN"));
  CHIRON_RETURN_IF_ERROR(SkipReserved(reader, 60, "QE report reserved field"));
  CHIRON_RETURN_IF_ERROR(ReadArray(reader, report.report_data, "QE report REPORTDATA"));
  return report;
}

Result<TdxQuote> ParseTdxQuote(ByteSpan input) {
  if (input.size() > kMaxTdxQuoteSize) {
    return QuoteError("quote is " + std::to_string(input.size()) + " bytes, more than the " +
                      std::to_string(kMaxTdxQuoteSize) + "-byte limit");
  }
  // Copy, then check: every later read sees these bytes, never the caller's buffer.
  const Bytes owned(input.begin(), input.end());
  ByteReader reader(owned);
  TdxQuote quote;
  CHIRON_RETURN_IF_ERROR(ParseHeader(reader, quote.header));
  CHIRON_RETURN_IF_ERROR(ParseBody(reader, quote.body));
  quote.signed_bytes.assign(owned.begin(), owned.begin() + kQuoteHeaderSize + kTdReportBodySize);

  uint32_t signature_data_size = 0;
  CHIRON_RETURN_IF_ERROR(ReadInt(reader, signature_data_size, "signature data size"));
  if (signature_data_size > reader.remaining()) {
    return QuoteError("signature data size " + std::to_string(signature_data_size) +
                      " exceeds the " + std::to_string(reader.remaining()) +
                      " byte(s) left in the quote");
  }
  ByteSpan signature_data = *reader.Take(signature_data_size, "signature data");
  quote.trailing_size = reader.remaining();

  ByteReader sig_reader(signature_data);
  CHIRON_RETURN_IF_ERROR(ReadArray(sig_reader, quote.signature, "quote signature"));
  CHIRON_RETURN_IF_ERROR(ReadArray(sig_reader, quote.attestation_key, "attestation key"));
  CHIRON_ASSIGN_OR_RETURN(ByteSpan qe_cert_data,
                          ReadCertificationData(sig_reader, kCertDataTypeQeReport,
                                                "QE report certification data"));

  ByteReader qe_reader(qe_cert_data);
  Result<ByteSpan> qe_report = qe_reader.Take(kSgxReportBodySize, "QE report");
  if (!qe_report.ok()) return Truncated(qe_report.status());
  quote.qe_report_bytes.assign(qe_report->begin(), qe_report->end());
  CHIRON_ASSIGN_OR_RETURN(quote.qe_report, ParseSgxReportBody(*qe_report));
  CHIRON_RETURN_IF_ERROR(ReadArray(qe_reader, quote.qe_report_signature, "QE report signature"));
  uint16_t auth_size = 0;
  CHIRON_RETURN_IF_ERROR(ReadInt(qe_reader, auth_size, "QE authentication data size"));
  Result<ByteSpan> auth = qe_reader.Take(auth_size, "QE authentication data");
  if (!auth.ok()) return Truncated(auth.status());
  quote.qe_auth_data.assign(auth->begin(), auth->end());
  CHIRON_ASSIGN_OR_RETURN(ByteSpan pem, ReadCertificationData(qe_reader, kCertDataTypePckChain,
                                                              "PCK certificate chain data"));
  Result<std::vector<Bytes>> chain = DecodeStrictPemCertificates(pem);
  if (!chain.ok()) return QuoteError("PCK certificate chain: " + chain.status().message());
  quote.pck_chain_der = std::move(chain).value();
  return quote;
}

std::optional<IntelQuoteHeader> RecognizeIntelQuote(ByteSpan bytes) {
  if (bytes.size() < kQuoteHeaderSize) return std::nullopt;
  IntelQuoteHeader header;
  header.version = static_cast<uint16_t>(bytes[0] | (bytes[1] << 8));
  header.attestation_key_type = static_cast<uint16_t>(bytes[2] | (bytes[3] << 8));
  header.tee_type = static_cast<uint32_t>(bytes[4]) | (static_cast<uint32_t>(bytes[5]) << 8) |
                    (static_cast<uint32_t>(bytes[6]) << 16) |
                    (static_cast<uint32_t>(bytes[7]) << 24);
  const bool intel_vendor =
      std::equal(kIntelQeVendorId.begin(), kIntelQeVendorId.end(), bytes.begin() + 12);
  const bool plausible = header.version >= 3 && header.version <= 5 &&
                         (header.attestation_key_type == 2 || header.attestation_key_type == 3) &&
                         (header.tdx() || header.sgx());
  if (!intel_vendor && !plausible) return std::nullopt;
  return header;
}

std::string DescribeIntelQuote(const IntelQuoteHeader& header) {
  std::string kind;
  if (header.tdx()) {
    kind = "Intel TDX quote";
  } else if (header.sgx()) {
    kind = "Intel SGX quote";
  } else {
    char hex[16];
    std::snprintf(hex, sizeof hex, "0x%x", header.tee_type);
    kind = std::string("Intel quote with TEE type ") + hex;
  }
  return kind + " (version " + std::to_string(header.version) + ")";
}

}  // namespace chiron::attest::tdx
