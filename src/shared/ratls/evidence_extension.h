// The RA-TLS evidence extension: how a Chiron certificate carries its evidence so that every
// mainstream X.509 library (OpenSSL, Python `cryptography`, Go crypto/x509, rustls-webpki) can
// parse the certificate and find it. The choice and its reasons are in docs/attested-tls.md.
//
//   extnID     2.23.133.5.4.9  TCG DICE "tcg-dice-conceptual-message-wrapper" (formerly
//              tcg-dice-TaggedEvidence), the OID interoperable RA-TLS work uses (Gramine, Intel's
//              RA-TLS, librats / rats-rs). Every arc is small: parsers that keep arcs in machine
//              integers read it (the old 2.25.<128-bit UUID> arc broke them).
//   critical   FALSE (a library that does not know it must still accept the certificate)
//   extnValue  a RATS Conceptual Message Wrapper (CMW, draft-ietf-rats-msg-wrap), CBOR record:
//                83                                  array(3)
//                   78 1f "application/vnd.chiron.evidence"   type: Chiron's evidence format
//                   59 LL LL <evidence envelope>     value: byte string (docs/formats/evidence.md)
//                   04                               ind: Evidence (bit 2)
//              Lengths use CBOR's shortest form. The value is the evidence envelope ("CHEV" ...).
//
// Certificates of Chiron releases before this encoding put the bare envelope under the UUID OID
// kRetiredEvidenceExtensionOid; they are refused with a message saying the peer runs an older
// Chiron (CertificateEvidence).
//
// Parsers here take untrusted bytes (a peer's certificate): they copy, bound every length, accept
// only the encoding above (definite, shortest-form lengths, exactly this type, no trailing bytes)
// and never echo the peer's bytes in a message.
//
// Thread safety: free functions; safe from any thread.
#pragma once

#include <cstdint>

#include "shared/base/bytes.h"
#include "shared/base/status.h"
#include "shared/crypto/x509.h"

namespace chiron::ratls {

// OID of the evidence extension (TCG DICE conceptual message wrapper).
inline constexpr char kEvidenceExtensionOid[] = "2.23.133.5.4.9";
// The UUID OID (ITU-T X.667) Chiron used before; recognised only to explain the refusal.
inline constexpr char kRetiredEvidenceExtensionOid[] =
    "2.25.206920740590993702740307435259093383050";
// The CMW type naming Chiron's evidence envelope (a vendor media type, not IANA-registered).
inline constexpr char kEvidenceMediaType[] = "application/vnd.chiron.evidence";
// CMW indicator bitmap value for "Evidence" (bit 2 of the CMW Indicators registry).
inline constexpr uint8_t kCmwIndicatorEvidence = 1 << 2;

// Largest evidence envelope carried (evidence envelopes are bounded well below this).
inline constexpr size_t kMaxEvidenceExtensionSize = 64 * 1024;

// The extnValue for `evidence` (an evidence envelope). InvalidArgument if it is empty or larger
// than kMaxEvidenceExtensionSize.
Result<Bytes> EncodeEvidenceExtension(ByteSpan evidence);

// The evidence envelope inside an extnValue. Errors are InvalidArgument beginning "evidence
// extension: " and name the part that is wrong (never its bytes): not a CMW record, the type is
// not Chiron evidence, the indicator is not Evidence, a length not in shortest form, the value
// larger than the limit, trailing bytes. Does not parse or verify the envelope itself.
Result<Bytes> DecodeEvidenceExtension(ByteSpan extension_value);

// Finds the evidence extension of `certificate` and decodes it. Unauthenticated errors:
//   "... has no Chiron evidence extension ..."         neither OID present
//   "... runs an older Chiron release ..."              only the retired OID present
//   "certificate evidence extension: ..."               two extensions, or the decoder's error
Result<Bytes> CertificateEvidence(const crypto::Certificate& certificate);

}  // namespace chiron::ratls
