// Attestation evidence: the versioned envelope every platform's evidence travels in, and the
// bodies of the platforms Chiron produces itself (sim, and configfs-tsm for TDX / SEV-SNP).
// The byte layout, versions and limits are specified in docs/formats/evidence.md.
//
// Envelope (all integers little-endian):
//   magic "CHEV" | format_version u16 (=1) | platform u16 | payload_size u32 | payload
// with no bytes after the payload and at most kMaxEvidenceSize bytes in all.
//
// Parsers here take untrusted bytes. Each copies its input into memory it owns before reading
// it (so a hostile shared buffer cannot change between check and use), checks every length
// against a fixed bound, requires exact sizes for fixed fields and rejects trailing bytes. They
// never abort on bad input: every error is InvalidArgument naming the field.
//
// Parsing proves nothing about authenticity: only the Verifier (verifier.h) does.
//
// Thread safety: free functions on values; safe from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "shared/base/bytes.h"
#include "shared/base/status.h"
#include "shared/crypto/keys.h"

namespace chiron::attest {

inline constexpr char kEvidenceMagic[4] = {'C', 'H', 'E', 'V'};
inline constexpr uint16_t kEvidenceFormatVersion = 1;
// Header: magic 4 + version 2 + platform 2 + payload size 4.
inline constexpr size_t kEvidenceHeaderSize = 12;
// Whole serialized envelope. A TDX quote with its PCK chain or an SEV-SNP report with its
// certificate table is well under this.
inline constexpr size_t kMaxEvidenceSize = 64 * 1024;

inline constexpr size_t kReportDataSize = 64;   // bytes of caller data bound into evidence
inline constexpr size_t kMeasurementSize = 48;  // SHA-384 / MRTD / SNP MEASUREMENT

// Platform identifiers on the wire. Values are never reused.
enum class PlatformId : uint16_t {
  kSim = 1,     // software simulation: INSECURE, for machines without TEE hardware
  kTdx = 2,     // Intel TDX quote (from configfs-tsm provider "tdx_guest")
  kSevSnp = 3,  // AMD SEV-SNP attestation report (configfs-tsm provider "sev_guest")
};

// "sim", "tdx", "sev-snp": the names used in policy files and messages.
std::string_view PlatformName(PlatformId platform);
// Inverse of PlatformName. InvalidArgument listing the known names otherwise.
Result<PlatformId> PlatformIdFromName(std::string_view name);
// True for the ids above (the wire value of an unknown platform is rejected by the parser).
bool IsKnownPlatform(uint16_t wire_value);

// The parsed envelope. `payload` is platform specific (SimEvidenceBody / TsmEvidenceBody).
struct Evidence {
  PlatformId platform = PlatformId::kSim;
  Bytes payload;
};

// InvalidArgument if the payload would push the envelope past kMaxEvidenceSize.
Result<Bytes> SerializeEvidence(const Evidence& evidence);
// Errors (all InvalidArgument, each beginning "evidence: "): too large, too short, bad magic,
// unknown format version ("unknown format version 7; this verifier reads version 1"), unknown
// platform id, payload size disagreeing with the bytes present, trailing bytes.
Result<Evidence> ParseEvidence(ByteSpan serialized);

// ---- sim platform ----------------------------------------------------------------------------
//
// Body (217 bytes, fixed): version u16 (=1) | platform u16 (=1, sim) | measurement 48 |
// report_data 64 | flags u8 (bit 0: debug; other bits must be 0) | svn u32 |
// root_public_key 32 (Ed25519) | signature 64.
// The signature is Ed25519 by the root key over SimSignedMessage(body), a domain-separated
// encoding of every field before the signature.

inline constexpr uint16_t kSimBodyVersion = 1;
inline constexpr size_t kSimRootKeySize = 32;    // Ed25519 public key
inline constexpr size_t kSimSignatureSize = 64;  // Ed25519 signature
inline constexpr size_t kSimBodySize =
    2 + 2 + kMeasurementSize + kReportDataSize + 1 + 4 + kSimRootKeySize + kSimSignatureSize;
inline constexpr uint8_t kSimFlagDebug = 0x01;
// Prefix of the signed message (followed by a NUL so no other Chiron signature can collide).
// A char array, not a string_view: one object, so begin and end always point into it.
inline constexpr char kSimSignatureDomain[] = "CHIRON-SIM-EVIDENCE-V1";

struct SimEvidenceBody {
  uint16_t version = kSimBodyVersion;
  Bytes measurement;  // kMeasurementSize
  Bytes report_data;  // kReportDataSize
  bool debug = false;
  uint32_t svn = 0;
  Bytes root_public_key;  // kSimRootKeySize
  Bytes signature;        // kSimSignatureSize
};

// The bytes the root key signs: domain || 0x00 || the body up to (not including) the signature.
// InvalidArgument if a fixed-size field has the wrong size.
Result<Bytes> SimSignedMessage(const SimEvidenceBody& body);
Result<Bytes> SerializeSimBody(const SimEvidenceBody& body);
// Exact size required; errors begin "sim evidence: ". Does not check the signature.
Result<SimEvidenceBody> ParseSimBody(ByteSpan payload);

// Builds and signs a complete sim evidence envelope. `root_key` must be Ed25519; its public key
// is written into the body. InvalidArgument on wrong sizes.
Result<Bytes> CreateSimEvidence(const crypto::PrivateKey& root_key, ByteSpan measurement,
                                ByteSpan report_data, bool debug, uint32_t svn);

// ---- configfs-tsm platforms (TDX, SEV-SNP) ----------------------------------------------------
//
// Body: provider_size u8 | provider | outblob_size u32 | outblob | auxblob_size u32 | auxblob.
// `provider` is the kernel's provider name ("tdx_guest" or "sev_guest") and must match the
// envelope's platform; `outblob` is the quote / report exactly as the kernel returned it;
// `auxblob` is optional supplemental data (e.g. the SEV-SNP certificate table), empty if none.

inline constexpr size_t kMaxTsmProviderSize = 32;
inline constexpr std::string_view kTsmProviderTdx = "tdx_guest";
inline constexpr std::string_view kTsmProviderSevSnp = "sev_guest";

struct TsmEvidenceBody {
  std::string provider;
  Bytes outblob;  // non-empty
  Bytes auxblob;  // may be empty
};

// The platform a configfs-tsm provider name stands for; InvalidArgument for any other name.
Result<PlatformId> PlatformForTsmProvider(std::string_view provider);

// Body only (the envelope is added by SerializeEvidence). Errors begin "tsm evidence: ".
Result<Bytes> SerializeTsmBody(const TsmEvidenceBody& body);
// `platform` is the envelope's platform; the provider must belong to it.
Result<TsmEvidenceBody> ParseTsmBody(PlatformId platform, ByteSpan payload);

}  // namespace chiron::attest
