// Intel TDX quote (version 4, ECDSA P-256 attestation key): a strict parser of the byte layout.
//
// This file is pure bytes: no cryptography, no trust decisions. ParseTdxQuote copies the input
// into memory the TdxQuote owns, checks every length against the bytes present and against the
// fixed sizes of Intel's "TDX DCAP Quote Generation Library and Quote Verification Library"
// specification (quote format v4), and fails with InvalidArgument naming the field on anything
// else. A successfully parsed quote proves nothing: VerifyTdxQuote (tdx_verify.h) does.
//
// Layout (all integers little-endian):
//   header (48)              version u16 = 4 | attestation key type u16 = 2 (ECDSA P-256) |
//                            TEE type u32 = 0x81 (TDX) | reserved u16 | reserved u16 |
//                            QE vendor id 16 | user data 20
//   TD report body (584)     TEE_TCB_SVN 16 | MRSEAM 48 | MRSIGNERSEAM 48 | SEAMATTRIBUTES 8 |
//                            TDATTRIBUTES 8 | XFAM 8 | MRTD 48 | MRCONFIGID 48 | MROWNER 48 |
//                            MROWNERCONFIG 48 | RTMR0..3 4x48 | REPORTDATA 64
//   signature data size u32, then exactly that many bytes:
//     quote signature 64     r || s, big-endian, over header || body
//     attestation key 64     X || Y of the P-256 key that signed the quote
//     certification data     type u16 = 6 (QE report certification data) | size u32 | data:
//       QE report 384        an SGX report body of the Quoting Enclave
//       QE report signature  64, r || s by the PCK key over the QE report
//       QE auth data         size u16 | data
//       certification data   type u16 = 5 (PCK certificate chain) | size u32 | PEM text
//   trailing bytes           anything after the signature data (see below)
//
// Trailing bytes: quote generation services hand the quote back in a larger buffer, and Intel's
// own sample quote carries a test string after the signature data. These bytes are covered by
// no signature and are never read; the parser only counts them (trailing_size), and a verifier
// option can refuse them.
//
// Thread safety: values; free functions.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "shared/attest/tdx/strict_pem.h"
#include "shared/base/bytes.h"
#include "shared/base/status.h"

namespace chiron::attest::tdx {

inline constexpr uint16_t kTdxQuoteVersion = 4;
inline constexpr uint16_t kAttestationKeyTypeEcdsaP256 = 2;
inline constexpr uint32_t kTeeTypeTdx = 0x81;
inline constexpr uint32_t kTeeTypeSgx = 0x00;
// Intel's Quoting Enclave vendor id (939A7233-F79C-4CA9-940A-0DB3957F0607), header offset 12.
inline constexpr std::array<uint8_t, 16> kIntelQeVendorId = {
    0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07};
inline constexpr size_t kQuoteHeaderSize = 48;
inline constexpr size_t kTdReportBodySize = 584;
inline constexpr size_t kSgxReportBodySize = 384;
inline constexpr size_t kEcdsaP256SignatureSize = 64;  // r || s
inline constexpr size_t kEcdsaP256KeySize = 64;        // X || Y
inline constexpr uint16_t kCertDataTypeQeReport = 6;
inline constexpr uint16_t kCertDataTypePckChain = 5;
// Refuse anything larger before reading it: a real quote with its PCK chain is about 5 KiB.
inline constexpr size_t kMaxTdxQuoteSize = 64 * 1024;
// TDATTRIBUTES bit 0: the TD runs in debug mode (the host can read and write its memory).
inline constexpr uint64_t kTdAttributeDebug = 1ull << 0;

using Measurement48 = std::array<uint8_t, 48>;

struct TdxQuoteHeader {
  uint16_t version = 0;
  uint16_t attestation_key_type = 0;
  uint32_t tee_type = 0;
  std::array<uint8_t, 16> qe_vendor_id{};
  std::array<uint8_t, 20> user_data{};
};

struct TdReportBody {
  std::array<uint8_t, 16> tee_tcb_svn{};
  Measurement48 mr_seam{};
  Measurement48 mr_signer_seam{};
  uint64_t seam_attributes = 0;
  uint64_t td_attributes = 0;
  uint64_t xfam = 0;
  Measurement48 mr_td{};
  Measurement48 mr_config_id{};
  Measurement48 mr_owner{};
  Measurement48 mr_owner_config{};
  std::array<Measurement48, 4> rtmr{};
  std::array<uint8_t, 64> report_data{};

  bool debug() const { return (td_attributes & kTdAttributeDebug) != 0; }
};

// SGX enclave report body (the Quoting Enclave's report inside the quote).
struct SgxReportBody {
  std::array<uint8_t, 16> cpu_svn{};
  uint32_t misc_select = 0;
  std::array<uint8_t, 16> attributes{};
  std::array<uint8_t, 32> mr_enclave{};
  std::array<uint8_t, 32> mr_signer{};
  uint16_t isv_prod_id = 0;
  uint16_t isv_svn = 0;
  std::array<uint8_t, 64> report_data{};
};

struct TdxQuote {
  TdxQuoteHeader header;
  TdReportBody body;
  // header || body exactly as received: the bytes the attestation key signed.
  Bytes signed_bytes;
  std::array<uint8_t, kEcdsaP256SignatureSize> signature{};
  std::array<uint8_t, kEcdsaP256KeySize> attestation_key{};
  SgxReportBody qe_report;
  Bytes qe_report_bytes;  // the 384 bytes the PCK key signed
  std::array<uint8_t, kEcdsaP256SignatureSize> qe_report_signature{};
  Bytes qe_auth_data;
  // The PCK certificate chain, DER, leaf first (decoded from the strict PEM text).
  std::vector<Bytes> pck_chain_der;
  // Bytes after the signature data: unauthenticated and never interpreted.
  size_t trailing_size = 0;
};

// What the first 48 bytes say about a buffer that may be an Intel DCAP quote, before any strict
// parse. Values are as written (possibly damaged).
struct IntelQuoteHeader {
  uint16_t version = 0;
  uint16_t attestation_key_type = 0;
  uint32_t tee_type = 0;
  bool tdx() const { return tee_type == kTeeTypeTdx; }
  bool sgx() const { return tee_type == kTeeTypeSgx; }
};

// Recognises an Intel quote (TDX or SGX, any version) by its header: Intel's QE vendor id at
// offset 12, or a plausible version (3 to 5), attestation key type (2 or 3) and TEE type (SGX or
// TDX). A quote of a version this build does not verify, or with one damaged header field, is
// thus named as a quote and refused for its real reason rather than taken for another format.
// nullopt if the buffer is shorter than a header or neither rule holds.
std::optional<IntelQuoteHeader> RecognizeIntelQuote(ByteSpan bytes);

// "Intel TDX quote (version 5)", "Intel SGX quote (version 3)", "Intel quote with TEE type 0x2
// (version 4)".
std::string DescribeIntelQuote(const IntelQuoteHeader& header);

// Strict parse of a version 4 TDX quote (see the layout above). Errors are InvalidArgument and
// begin "tdx quote: "; a version 5 quote (the TDX 1.5 layout) is refused as such.
Result<TdxQuote> ParseTdxQuote(ByteSpan quote);

// Parses a 384-byte SGX report body.
Result<SgxReportBody> ParseSgxReportBody(ByteSpan bytes);

}  // namespace chiron::attest::tdx
