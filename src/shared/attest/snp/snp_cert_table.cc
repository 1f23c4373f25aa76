#include "shared/attest/snp/snp_cert_table.h"

#include <algorithm>
#include <set>

#include "shared/attest/tdx/strict_pem.h"

namespace chiron::attest::snp {
namespace {

constexpr size_t kGuidSize = 16;

// "63da758d-e664-..." -> 16 bytes in text order; empty if malformed.
Bytes GuidBytes(std::string_view text) {
  std::string hex;
  for (char c : text) {
    if (c != '-') hex.push_back(c);
  }
  if (text.size() != 36 || hex.size() != 32) return {};
  Result<Bytes> bytes = HexDecode(hex);
  return bytes.ok() ? *bytes : Bytes{};
}

std::string GuidText(ByteSpan guid) {
  std::string hex = HexEncode(guid);
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20);
}

Status Malformed(size_t entry, const std::string& problem) {
  return InvalidArgumentError("SEV-SNP certificate table entry " + std::to_string(entry) + ": " +
                              problem);
}

// DER as is; a PEM block decoded strictly (exactly one certificate).
Result<Bytes> CertificateDer(ByteSpan bytes, size_t entry) {
  constexpr std::string_view kPem = "-----BEGIN";
  if (bytes.size() >= kPem.size() && std::equal(kPem.begin(), kPem.end(), bytes.begin())) {
    Result<std::vector<Bytes>> der = DecodeStrictPemCertificates(bytes);
    if (!der.ok()) return Malformed(entry, "bad PEM: " + der.status().message());
    if (der->size() != 1) {
      return Malformed(entry, "PEM holds " + std::to_string(der->size()) +
                                  " certificates; one per entry is expected");
    }
    return std::move((*der)[0]);
  }
  return Bytes(bytes.begin(), bytes.end());
}

}  // namespace

Result<SnpCertTable> ParseSnpCertTable(ByteSpan blob) {
  // Pass 1: the entries up to the terminator.
  struct Entry {
    Bytes guid;
    uint32_t offset, length;
  };
  std::vector<Entry> entries;
  ByteReader reader(blob);
  for (;;) {
    if (entries.size() > kSnpCertTableMaxEntries) {
      return InvalidArgumentError("SEV-SNP certificate table: more than " +
                                  std::to_string(kSnpCertTableMaxEntries) +
                                  " entries without the all-zero terminator");
    }
    if (reader.remaining() < kSnpCertTableEntrySize) {
      return InvalidArgumentError(
          "SEV-SNP certificate table: ends after " + std::to_string(entries.size()) +
          " entries without the all-zero terminator entry (" + std::to_string(blob.size()) +
          " bytes): the auxblob is truncated or is not a certificate table");
    }
    Entry entry;
    ByteSpan guid = *reader.Take(kGuidSize, "guid");
    entry.guid.assign(guid.begin(), guid.end());
    entry.offset = *reader.U32Le("offset");
    entry.length = *reader.U32Le("length");
    if (std::all_of(guid.begin(), guid.end(), [](uint8_t b) { return b == 0; })) {
      if (entry.offset != 0 || entry.length != 0) {
        return Malformed(entries.size(), "the terminator (all-zero GUID) has a non-zero offset or "
                                         "length");
      }
      break;
    }
    entries.push_back(std::move(entry));
  }
  const size_t table_end = reader.offset();

  // Pass 2: each certificate inside the blob, after the table.
  SnpCertTable table;
  std::set<Bytes> seen;
  const std::pair<const char*, std::optional<Bytes> SnpCertTable::*> known[] = {
      {kSnpVcekGuid, &SnpCertTable::vcek}, {kSnpVlekGuid, &SnpCertTable::vlek},
      {kSnpAskGuid, &SnpCertTable::ask},   {kSnpArkGuid, &SnpCertTable::ark},
      {kSnpCrlGuid, &SnpCertTable::crl}};
  for (size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    const std::string name = GuidText(e.guid);
    if (!seen.insert(e.guid).second) return Malformed(i, "GUID " + name + " appears twice");
    if (e.length == 0) return Malformed(i, "GUID " + name + " has length 0");
    if (e.offset < table_end || uint64_t{e.offset} + e.length > blob.size()) {
      return Malformed(i, "GUID " + name + " points at bytes " + std::to_string(e.offset) + "+" +
                              std::to_string(e.length) + ", outside the " +
                              std::to_string(blob.size() - table_end) +
                              " bytes that follow the table (from byte " +
                              std::to_string(table_end) + ")");
    }
    ByteSpan bytes = blob.subspan(e.offset, e.length);
    bool matched = false;
    for (const auto& [guid, field] : known) {
      if (GuidBytes(guid) != e.guid) continue;
      matched = true;
      if (field == &SnpCertTable::crl) {
        table.crl = Bytes(bytes.begin(), bytes.end());
      } else {
        CHIRON_ASSIGN_OR_RETURN(table.*field, CertificateDer(bytes, i));
      }
    }
    if (!matched) table.other_guids.push_back(name);
  }
  return table;
}

Result<Bytes> BuildSnpCertTable(const std::vector<std::pair<std::string, Bytes>>& certificates) {
  Bytes out;
  size_t offset = (certificates.size() + 1) * kSnpCertTableEntrySize;
  for (const auto& [guid_text, der] : certificates) {
    Bytes guid = GuidBytes(guid_text);
    if (guid.empty()) return InvalidArgumentError("not a GUID: " + guid_text);
    Append(out, guid);
    AppendU32Le(out, static_cast<uint32_t>(offset));
    AppendU32Le(out, static_cast<uint32_t>(der.size()));
    offset += der.size();
  }
  out.resize(out.size() + kSnpCertTableEntrySize, 0);
  for (const auto& certificate : certificates) Append(out, certificate.second);
  return out;
}

}  // namespace chiron::attest::snp
