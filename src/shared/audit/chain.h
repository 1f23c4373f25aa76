// The audit chain: per-principal, append-only, hash-chained records of security-relevant events.
//
// Shared by the runtime (which appends records, src/runtime/store) and the owner's client (which
// verifies the records it fetches with `chiron audit --verify`). Byte layout, hash input and
// limits: docs/formats/audit.md.
//
// Each principal has its own chain, so an owner can fetch and verify exactly their own records
// without learning anything about anyone else's activity:
//
//   record n (n >= 1): sequence n, time, principal, event, subject,
//                      previous_hash = hash of record n-1 (32 zero bytes for n = 1),
//                      hash = SHA-256(CanonicalAuditEncoding(record))
//
// What the chain proves (and what it does not): a removed, altered, inserted or reordered record
// breaks the chain at a sequence number VerifyAuditChain names. Truncation of the tail (or a
// rollback of the whole runtime state to an earlier snapshot) leaves a valid but shorter chain; a
// verifier detects it only if it remembers the head it saw last time (`previously_seen`), which is
// why the client keeps that head on disk.
//
// Thread safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shared/base/bytes.h"
#include "shared/base/status.h"

namespace chiron::audit {

inline constexpr size_t kAuditHashSize = 32;  // SHA-256
// Field limits (bytes). Enforced by ValidateAuditFields, DecodeAuditRecord and the verifier, so
// a hostile server cannot make a client hash or print unbounded strings.
inline constexpr size_t kMaxPrincipalIdSize = 128;
inline constexpr size_t kMaxEventSize = 64;
inline constexpr size_t kMaxSubjectSize = 512;
// Largest encoded record (DecodeAuditRecord refuses more).
inline constexpr size_t kMaxEncodedAuditRecordSize = 2048;

struct AuditRecord {
  uint64_t sequence = 0;     // 1, 2, 3 ... within one principal's chain
  int64_t time_unix = 0;     // seconds since 1970 (runtime clock; informative, not verified)
  std::string principal_id;  // whose chain (hex SHA-256 of the principal's SPKI)
  std::string event;         // "dataset.upload", "dataset.delete", "job.train", ...
  std::string subject;       // the dataset / job / model concerned (may be empty)
  Bytes previous_hash;       // kAuditHashSize bytes
  Bytes hash;                // kAuditHashSize bytes

  friend bool operator==(const AuditRecord&, const AuditRecord&) = default;
};

// The last record a verifier has seen of a chain: enough to anchor the next verification.
struct AuditHead {
  uint64_t sequence = 0;
  Bytes hash;

  friend bool operator==(const AuditHead&, const AuditHead&) = default;
};

// InvalidArgument naming the field if principal_id is empty or longer than kMaxPrincipalIdSize,
// event is empty, longer than kMaxEventSize or not made of [a-z0-9._-], or subject is longer
// than kMaxSubjectSize or holds a control character (records are printed on terminals).
Status ValidateAuditFields(std::string_view principal_id, std::string_view event,
                           std::string_view subject);

// The exact bytes the hash covers (docs/formats/audit.md, "Hash input"): a domain separator and
// every field but `hash`, each length-prefixed, so no two records share an encoding.
Bytes CanonicalAuditEncoding(const AuditRecord& record);
// SHA-256 over CanonicalAuditEncoding(record).
Bytes ComputeAuditHash(const AuditRecord& record);

// Builds the record that follows `previous` (nullopt: the first record of the chain), filling
// sequence, previous_hash and hash. InvalidArgument from ValidateAuditFields; FailedPrecondition
// if `previous` belongs to another principal.
Result<AuditRecord> MakeNextAuditRecord(const std::optional<AuditRecord>& previous,
                                        int64_t time_unix, std::string principal_id,
                                        std::string event, std::string subject);

// Serialization of one whole record (including its hash), used for the runtime's sealed-at-rest
// storage. DecodeAuditRecord parses untrusted bytes: InvalidArgument names the field that is
// short, oversized or malformed; it checks structure and limits only, not the hash (that is the
// verifier's job, so it can say which record in a chain is wrong).
Bytes EncodeAuditRecord(const AuditRecord& record);
Result<AuditRecord> DecodeAuditRecord(ByteSpan data);

// Verifies one principal's chain, in the order given.
//
// `records` must be consecutive. They start either at sequence 1 (anchored by the all-zero
// previous hash; if a head was seen before, the chain must reach it and match its hash), or at
// previously_seen.sequence + 1 (anchored by its hash: incremental verification). Any other start
// is refused, so a server cannot hide the first records of a requested range.
//
// `expected_principal`, if not empty, must be every record's principal_id (a server cannot slip
// another principal's record into a chain).
//
// Every failure is DataLoss and the message names the sequence number and what is wrong:
//   "audit record 7: hash does not match its contents (the record was altered)"
//   "audit record 7: previous_hash does not match record 6 (a record was removed, inserted or
//    reordered)"
//   "audit chain: expected record 7 after record 6 but got record 9 (records 7..8 are missing)"
//   "audit chain ends at record 4 but record 6 was seen before (the log was truncated or rolled
//    back)"
//   "audit record 6: hash differs from the one seen before (the history was rewritten)"
// FailedPrecondition if the records start anywhere else ("fetch from sequence 1").
Status VerifyAuditChain(const std::vector<AuditRecord>& records,
                        std::optional<AuditHead> previously_seen,
                        std::string_view expected_principal = {});

// The head of a verified chain: the last record, or `previously_seen` if `records` is empty.
// Preconditions: VerifyAuditChain(records, previously_seen) returned OK.
std::optional<AuditHead> ChainHead(const std::vector<AuditRecord>& records,
                                   std::optional<AuditHead> previously_seen);

}  // namespace chiron::audit
