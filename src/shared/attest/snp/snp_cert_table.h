// The SEV-SNP certificate table: what a guest's extended attestation report request returns
// beside the report (SNP_GET_EXT_REPORT; configfs-tsm's `auxblob` for provider sev_guest), as
// laid out by AMD's GHCB specification (section "SNP Extended Guest Request"):
//
//   entries: guid[16] | offset u32 LE | length u32 LE      (24 bytes each)
//   an all-zero entry ends the table
//   then the certificates, each at `offset` bytes from the start of the blob, `length` long
//
// The host fills it (usually with the chip's VCEK and AMD's ASK and ARK), so it is untrusted: a
// certificate taken from it is only ever used as the start of a chain that must end in the
// pinned ARK (snp_verify.h). The parser is strict so that a malformed table gives a clear error
// instead of a surprising certificate: the terminator must be present; every entry's bytes must
// lie inside the blob after the table; no GUID may appear twice; lengths are non-zero. Bytes after
// the last certificate are allowed (hosts hand out page-sized buffers) but ignored.
//
// GUIDs are compared in the byte order of their text form (RFC 4122, as AMD's sev-guest tools
// write them with uuid_parse). Certificates are DER; a PEM "CERTIFICATE" block is accepted and
// decoded strictly.
//
// Thread safety: values; free functions.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "shared/base/bytes.h"
#include "shared/base/status.h"

namespace chiron::attest::snp {

inline constexpr size_t kSnpCertTableEntrySize = 24;
inline constexpr size_t kSnpCertTableMaxEntries = 64;

struct SnpCertTable {
  // DER, when the table has the entry.
  std::optional<Bytes> vcek, vlek, ask, ark, crl;
  std::vector<std::string> other_guids;  // entries of GUIDs this parser does not know, as text
};

// InvalidArgument naming the entry and the problem.
Result<SnpCertTable> ParseSnpCertTable(ByteSpan blob);

// The table for `certificates` (GUID text -> DER), in the given order, followed by a terminator:
// what a host writes. For tests and tools.
Result<Bytes> BuildSnpCertTable(const std::vector<std::pair<std::string, Bytes>>& certificates);

inline constexpr char kSnpVcekGuid[] = "63da758d-e664-4564-adc5-f4b93be8accd";
inline constexpr char kSnpVlekGuid[] = "a8074bc2-a25a-483e-aae6-39c045a0b8a1";
inline constexpr char kSnpAskGuid[] = "4ab7b379-bbac-4fe4-a02f-05aef327c782";
inline constexpr char kSnpArkGuid[] = "c0b406a4-a803-4952-9743-3fb6014cd0ae";
inline constexpr char kSnpCrlGuid[] = "92f81bc3-5811-4d3d-97ff-d19f88dc67ea";

}  // namespace chiron::attest::snp
