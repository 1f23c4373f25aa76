// Fuzzes the audit record decoder and the chain verifier (docs/formats/audit.md) with hostile
// bytes, as a malicious server's `Audit.List` answer would supply them to `chiron audit --verify`.
// Input: a sequence of frames, each u16le length || an encoded record. Every record that decodes
// must re-encode to the same bytes (the encoding is canonical); the decoded list goes through
// VerifyAuditChain with and without a remembered head, which must never crash and must accept a
// chain only if every link and hash holds.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "shared/audit/chain.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace chiron;
  ByteReader reader(ByteSpan(data, size));
  std::vector<audit::AuditRecord> records;
  while (!reader.empty() && records.size() < 64) {
    auto length = reader.U16Le("frame length");
    if (!length.ok()) break;
    auto frame = reader.Take(*length, "frame");
    if (!frame.ok()) break;
    auto record = audit::DecodeAuditRecord(*frame);
    if (!record.ok()) continue;
    Bytes encoded = audit::EncodeAuditRecord(*record);
    if (encoded.size() != frame->size() ||
        !std::equal(encoded.begin(), encoded.end(), frame->begin())) {
      __builtin_trap();
    }
    records.push_back(std::move(*record));
  }
  Status plain = audit::VerifyAuditChain(records, std::nullopt);
  if (plain.ok()) {
    // An accepted chain really is a chain.
    for (size_t i = 0; i < records.size(); ++i) {
      if (records[i].sequence != i + 1) __builtin_trap();
      if (audit::ComputeAuditHash(records[i]) != records[i].hash) __builtin_trap();
      if (i > 0 && records[i].previous_hash != records[i - 1].hash) __builtin_trap();
    }
  }
  if (!records.empty()) {
    audit::AuditHead head{records.back().sequence, records.back().hash};
    audit::VerifyAuditChain(records, head).IgnoreError();
    audit::AuditHead future{records.back().sequence + 1, records.back().hash};
    if (audit::VerifyAuditChain(records, future).ok()) __builtin_trap();  // truncation missed
  }
  return 0;
}
