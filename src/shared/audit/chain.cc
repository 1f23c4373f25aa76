#include "shared/audit/chain.h"

#include <string>
#include <utility>

#include "shared/crypto/hash.h"

namespace chiron::audit {
namespace {

// Domain separators: a hash input or an encoded record of one kind never parses as the other.
constexpr char kHashDomain[] = "CHIRON-AUDIT-V1";
constexpr char kRecordMagic[] = "CHAR";  // 4 bytes on the wire
constexpr uint16_t kRecordVersion = 1;

void AppendString(Bytes& out, std::string_view s) {
  AppendU32Le(out, static_cast<uint32_t>(s.size()));
  Append(out, AsBytes(s));
}

Result<std::string> ReadString(ByteReader& reader, std::string_view what, size_t max_size) {
  CHIRON_ASSIGN_OR_RETURN(uint32_t size, reader.U32Le(std::string(what) + " length"));
  if (size > max_size) {
    return InvalidArgumentError("audit record: " + std::string(what) + " is " +
                                std::to_string(size) + " bytes, more than the limit of " +
                                std::to_string(max_size));
  }
  CHIRON_ASSIGN_OR_RETURN(ByteSpan bytes, reader.Take(size, what));
  return ToString(bytes);
}

bool IsEventChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

std::string Seq(uint64_t sequence) { return "audit record " + std::to_string(sequence); }

}  // namespace

Status ValidateAuditFields(std::string_view principal_id, std::string_view event,
                           std::string_view subject) {
  if (principal_id.empty() || principal_id.size() > kMaxPrincipalIdSize) {
    return InvalidArgumentError("audit principal id must be 1.." +
                                std::to_string(kMaxPrincipalIdSize) + " bytes, got " +
                                std::to_string(principal_id.size()));
  }
  for (char c : principal_id) {
    if (static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7e) {
      return InvalidArgumentError("audit principal id holds a non-printable character");
    }
  }
  if (event.empty() || event.size() > kMaxEventSize) {
    return InvalidArgumentError("audit event must be 1.." + std::to_string(kMaxEventSize) +
                                " bytes, got " + std::to_string(event.size()));
  }
  for (char c : event) {
    if (!IsEventChar(c)) {
      return InvalidArgumentError("audit event '" + std::string(event) +
                                  "' may hold only [a-z0-9._-]");
    }
  }
  if (subject.size() > kMaxSubjectSize) {
    return InvalidArgumentError("audit subject is " + std::to_string(subject.size()) +
                                " bytes, more than the limit of " +
                                std::to_string(kMaxSubjectSize));
  }
  for (char c : subject) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      return InvalidArgumentError("audit subject holds a control character");
    }
  }
  return Status::Ok();
}

Bytes CanonicalAuditEncoding(const AuditRecord& record) {
  Bytes out;
  out.reserve(64 + record.principal_id.size() + record.event.size() + record.subject.size());
  Append(out, AsBytes(std::string_view(kHashDomain, sizeof kHashDomain)));  // includes the NUL
  AppendU64Le(out, record.sequence);
  AppendU64Le(out, static_cast<uint64_t>(record.time_unix));
  AppendString(out, record.principal_id);
  AppendString(out, record.event);
  AppendString(out, record.subject);
  AppendU32Le(out, static_cast<uint32_t>(record.previous_hash.size()));
  Append(out, record.previous_hash);
  return out;
}

Bytes ComputeAuditHash(const AuditRecord& record) {
  return crypto::Sha256(CanonicalAuditEncoding(record));
}

Result<AuditRecord> MakeNextAuditRecord(const std::optional<AuditRecord>& previous,
                                        int64_t time_unix, std::string principal_id,
                                        std::string event, std::string subject) {
  CHIRON_RETURN_IF_ERROR(ValidateAuditFields(principal_id, event, subject));
  AuditRecord record;
  if (previous.has_value()) {
    if (previous->principal_id != principal_id) {
      return FailedPreconditionError("audit: the previous record belongs to principal " +
                                     previous->principal_id + ", not " + principal_id);
    }
    if (previous->hash.size() != kAuditHashSize) {
      return FailedPreconditionError("audit: the previous record has no valid hash");
    }
    record.sequence = previous->sequence + 1;
    record.previous_hash = previous->hash;
  } else {
    record.sequence = 1;
    record.previous_hash = Bytes(kAuditHashSize, 0);
  }
  record.time_unix = time_unix;
  record.principal_id = std::move(principal_id);
  record.event = std::move(event);
  record.subject = std::move(subject);
  record.hash = ComputeAuditHash(record);
  return record;
}

Bytes EncodeAuditRecord(const AuditRecord& record) {
  Bytes out;
  Append(out, AsBytes(std::string_view(kRecordMagic, 4)));
  AppendU16Le(out, kRecordVersion);
  AppendU64Le(out, record.sequence);
  AppendU64Le(out, static_cast<uint64_t>(record.time_unix));
  AppendString(out, record.principal_id);
  AppendString(out, record.event);
  AppendString(out, record.subject);
  AppendU32Le(out, static_cast<uint32_t>(record.previous_hash.size()));
  Append(out, record.previous_hash);
  AppendU32Le(out, static_cast<uint32_t>(record.hash.size()));
  Append(out, record.hash);
  return out;
}

Result<AuditRecord> DecodeAuditRecord(ByteSpan data) {
  if (data.size() > kMaxEncodedAuditRecordSize) {
    return InvalidArgumentError("audit record is " + std::to_string(data.size()) +
                                " bytes, more than the limit of " +
                                std::to_string(kMaxEncodedAuditRecordSize));
  }
  ByteReader reader(data);
  CHIRON_ASSIGN_OR_RETURN(ByteSpan magic, reader.Take(4, "audit record magic"));
  if (ToString(magic) != std::string_view(kRecordMagic, 4)) {
    return InvalidArgumentError("audit record: wrong magic (not an encoded audit record)");
  }
  CHIRON_ASSIGN_OR_RETURN(uint16_t version, reader.U16Le("audit record version"));
  if (version != kRecordVersion) {
    return InvalidArgumentError("audit record: unsupported version " + std::to_string(version) +
                                " (this build reads version " + std::to_string(kRecordVersion) +
                                ")");
  }
  AuditRecord record;
  CHIRON_ASSIGN_OR_RETURN(record.sequence, reader.U64Le("audit record sequence"));
  CHIRON_ASSIGN_OR_RETURN(uint64_t time, reader.U64Le("audit record time"));
  record.time_unix = static_cast<int64_t>(time);
  CHIRON_ASSIGN_OR_RETURN(record.principal_id,
                          ReadString(reader, "principal_id", kMaxPrincipalIdSize));
  CHIRON_ASSIGN_OR_RETURN(record.event, ReadString(reader, "event", kMaxEventSize));
  CHIRON_ASSIGN_OR_RETURN(record.subject, ReadString(reader, "subject", kMaxSubjectSize));
  for (Bytes* hash : {&record.previous_hash, &record.hash}) {
    const char* what = hash == &record.hash ? "hash" : "previous_hash";
    CHIRON_ASSIGN_OR_RETURN(uint32_t size, reader.U32Le(std::string(what) + " length"));
    if (size != kAuditHashSize) {
      return InvalidArgumentError("audit record: " + std::string(what) + " must be " +
                                  std::to_string(kAuditHashSize) + " bytes, got " +
                                  std::to_string(size));
    }
    CHIRON_ASSIGN_OR_RETURN(ByteSpan bytes, reader.Take(size, what));
    hash->assign(bytes.begin(), bytes.end());
  }
  if (!reader.empty()) {
    return InvalidArgumentError("audit record: " + std::to_string(reader.remaining()) +
                                " unexpected trailing bytes");
  }
  return record;
}

Status VerifyAuditChain(const std::vector<AuditRecord>& records,
                        std::optional<AuditHead> previously_seen,
                        std::string_view expected_principal) {
  if (previously_seen.has_value() && previously_seen->sequence > 0 &&
      previously_seen->hash.size() != kAuditHashSize) {
    return InvalidArgumentError("audit chain: the previously seen head has a hash of " +
                                std::to_string(previously_seen->hash.size()) + " bytes, not " +
                                std::to_string(kAuditHashSize) + " (corrupt local state?)");
  }
  const uint64_t seen = previously_seen.has_value() ? previously_seen->sequence : 0;
  if (records.empty()) {
    if (seen > 0) {
      return DataLossError("audit chain is empty but record " + std::to_string(seen) +
                           " was seen before (the log was truncated or rolled back)");
    }
    return Status::Ok();
  }

  // Anchor the first record: genesis, the previously seen head, or a seen record inside the list.
  const AuditRecord& first = records.front();
  if (first.sequence == 0) {
    return DataLossError("audit record 0: sequence numbers start at 1");
  }
  Bytes expected_previous;
  if (first.sequence == 1) {
    expected_previous = Bytes(kAuditHashSize, 0);
  } else if (seen > 0 && first.sequence == seen + 1) {
    expected_previous = previously_seen->hash;
  } else {
    return FailedPreconditionError(
        "audit chain starts at record " + std::to_string(first.sequence) +
        " and no previously seen record anchors it: fetch from sequence 1" +
        (seen > 0 ? " or from " + std::to_string(seen + 1) : std::string()));
  }

  std::string principal(expected_principal);
  if (principal.empty()) principal = first.principal_id;
  const AuditRecord* previous = nullptr;
  bool matched_seen = seen == 0 || first.sequence == seen + 1;
  for (const AuditRecord& record : records) {
    if (previous != nullptr) {
      if (record.sequence <= previous->sequence) {
        return DataLossError(Seq(record.sequence) + " follows record " +
                             std::to_string(previous->sequence) +
                             " (records are out of order: the log was reordered or replayed)");
      }
      if (record.sequence != previous->sequence + 1) {
        return DataLossError("audit chain: expected record " +
                             std::to_string(previous->sequence + 1) + " after record " +
                             std::to_string(previous->sequence) + " but got record " +
                             std::to_string(record.sequence) + " (records " +
                             std::to_string(previous->sequence + 1) + ".." +
                             std::to_string(record.sequence - 1) + " are missing)");
      }
      expected_previous = previous->hash;
    }
    if (record.principal_id != principal) {
      return DataLossError(Seq(record.sequence) + " belongs to principal '" +
                           record.principal_id.substr(0, kMaxPrincipalIdSize) + "', not '" +
                           principal + "' (a record from another chain was inserted)");
    }
    Status fields = ValidateAuditFields(record.principal_id, record.event, record.subject);
    if (!fields.ok()) return DataLossError(Seq(record.sequence) + ": " + fields.message());
    if (record.previous_hash.size() != kAuditHashSize || record.hash.size() != kAuditHashSize) {
      return DataLossError(Seq(record.sequence) + ": hashes must be " +
                           std::to_string(kAuditHashSize) + " bytes");
    }
    if (!ConstantTimeEqual(record.previous_hash, expected_previous)) {
      return DataLossError(
          Seq(record.sequence) + ": previous_hash does not match " +
          (previous != nullptr ? "record " + std::to_string(previous->sequence)
                               : record.sequence == 1 ? std::string("the chain's start")
                                                      : "the previously seen record " +
                                                            std::to_string(seen)) +
          " (a record was removed, inserted or reordered)");
    }
    if (!ConstantTimeEqual(ComputeAuditHash(record), record.hash)) {
      return DataLossError(Seq(record.sequence) +
                           ": hash does not match its contents (the record was altered)");
    }
    if (seen > 0 && record.sequence == seen) {
      if (!ConstantTimeEqual(record.hash, previously_seen->hash)) {
        return DataLossError(Seq(record.sequence) +
                             ": hash differs from the one seen before (the history was "
                             "rewritten)");
      }
      matched_seen = true;
    }
    previous = &record;
  }
  if (!matched_seen) {
    return DataLossError("audit chain ends at record " + std::to_string(previous->sequence) +
                         " but record " + std::to_string(seen) +
                         " was seen before (the log was truncated or rolled back)");
  }
  return Status::Ok();
}

std::optional<AuditHead> ChainHead(const std::vector<AuditRecord>& records,
                                   std::optional<AuditHead> previously_seen) {
  if (records.empty()) return previously_seen;
  return AuditHead{records.back().sequence, records.back().hash};
}

}  // namespace chiron::audit
