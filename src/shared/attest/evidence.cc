#include "shared/attest/evidence.h"

#include <cstring>
#include <string>

namespace chiron::attest {
namespace {

std::string Num(uint64_t v) {
  return std::to_string(v);
}

Status CheckSize(ByteSpan field, size_t want, std::string_view what, std::string_view prefix) {
  if (field.size() != want) {
    return InvalidArgumentError(std::string(prefix) + std::string(what) + " must be " + Num(want) +
                                " bytes, got " + Num(field.size()));
  }
  return Status::Ok();
}

// Fixed fields of a sim body before the signature, in wire order.
Status AppendSimSignedFields(const SimEvidenceBody& body, Bytes& out) {
  constexpr std::string_view kPrefix = "sim evidence: ";
  CHIRON_RETURN_IF_ERROR(CheckSize(body.measurement, kMeasurementSize, "measurement", kPrefix));
  CHIRON_RETURN_IF_ERROR(CheckSize(body.report_data, kReportDataSize, "report data", kPrefix));
  CHIRON_RETURN_IF_ERROR(
      CheckSize(body.root_public_key, kSimRootKeySize, "root public key", kPrefix));
  AppendU16Le(out, body.version);
  AppendU16Le(out, static_cast<uint16_t>(PlatformId::kSim));
  Append(out, body.measurement);
  Append(out, body.report_data);
  out.push_back(body.debug ? kSimFlagDebug : 0);
  AppendU32Le(out, body.svn);
  Append(out, body.root_public_key);
  return Status::Ok();
}

}  // namespace

std::string_view PlatformName(PlatformId platform) {
  switch (platform) {
    case PlatformId::kSim: return "sim";
    case PlatformId::kTdx: return "tdx";
    case PlatformId::kSevSnp: return "sev-snp";
  }
  return "unknown";
}

Result<PlatformId> PlatformIdFromName(std::string_view name) {
  for (PlatformId id : {PlatformId::kSim, PlatformId::kTdx, PlatformId::kSevSnp}) {
    if (PlatformName(id) == name) return id;
  }
  return InvalidArgumentError("unknown platform '" + std::string(name) +
                              "'; known platforms are \"sim\", \"tdx\" and \"sev-snp\"");
}

bool IsKnownPlatform(uint16_t wire_value) {
  return wire_value >= static_cast<uint16_t>(PlatformId::kSim) &&
         wire_value <= static_cast<uint16_t>(PlatformId::kSevSnp);
}

Result<Bytes> SerializeEvidence(const Evidence& evidence) {
  if (!IsKnownPlatform(static_cast<uint16_t>(evidence.platform))) {
    return InvalidArgumentError("evidence: unknown platform id " +
                                Num(static_cast<uint16_t>(evidence.platform)));
  }
  if (evidence.payload.size() > kMaxEvidenceSize - kEvidenceHeaderSize) {
    return InvalidArgumentError("evidence: payload of " + Num(evidence.payload.size()) +
                                " bytes does not fit the " + Num(kMaxEvidenceSize) +
                                "-byte evidence limit");
  }
  Bytes out;
  out.reserve(kEvidenceHeaderSize + evidence.payload.size());
  out.insert(out.end(), kEvidenceMagic, kEvidenceMagic + sizeof kEvidenceMagic);
  AppendU16Le(out, kEvidenceFormatVersion);
  AppendU16Le(out, static_cast<uint16_t>(evidence.platform));
  AppendU32Le(out, static_cast<uint32_t>(evidence.payload.size()));
  Append(out, evidence.payload);
  return out;
}

Result<Evidence> ParseEvidence(ByteSpan serialized) {
  // Size first, before copying: stops memory exhaustion by a huge blob.
  if (serialized.size() > kMaxEvidenceSize) {
    return InvalidArgumentError("evidence: " + Num(serialized.size()) +
                                " bytes exceeds the limit of " + Num(kMaxEvidenceSize));
  }
  // Copy, then check (STYLE.md #4): stops a writer changing shared bytes between check and use.
  const Bytes copy(serialized.begin(), serialized.end());
  if (copy.size() < kEvidenceHeaderSize) {
    return InvalidArgumentError("evidence: truncated: " + Num(copy.size()) +
                                " bytes is shorter than the " + Num(kEvidenceHeaderSize) +
                                "-byte header");
  }
  ByteReader reader(copy);
  CHIRON_ASSIGN_OR_RETURN(ByteSpan magic, reader.Take(sizeof kEvidenceMagic, "magic"));
  if (std::memcmp(magic.data(), kEvidenceMagic, sizeof kEvidenceMagic) != 0) {
    return InvalidArgumentError("evidence: bad magic (not Chiron evidence; expected \"CHEV\")");
  }
  CHIRON_ASSIGN_OR_RETURN(uint16_t version, reader.U16Le("format version"));
  if (version != kEvidenceFormatVersion) {
    return InvalidArgumentError("evidence: unknown format version " + Num(version) +
                                "; this verifier reads version " + Num(kEvidenceFormatVersion));
  }
  CHIRON_ASSIGN_OR_RETURN(uint16_t platform, reader.U16Le("platform"));
  if (!IsKnownPlatform(platform)) {
    return InvalidArgumentError("evidence: unknown platform id " + Num(platform) +
                                "; this verifier knows 1 (sim), 2 (tdx), 3 (sev-snp)");
  }
  CHIRON_ASSIGN_OR_RETURN(uint32_t payload_size, reader.U32Le("payload size"));
  if (payload_size != reader.remaining()) {
    // Distinguish truncation from trailing data: both are rejected, but the message helps.
    if (payload_size > reader.remaining()) {
      return InvalidArgumentError("evidence: truncated: header announces a " + Num(payload_size) +
                                  "-byte payload but only " + Num(reader.remaining()) +
                                  " bytes follow");
    }
    return InvalidArgumentError("evidence: " + Num(reader.remaining() - payload_size) +
                                " unexpected trailing bytes after the payload");
  }
  Evidence evidence;
  evidence.platform = static_cast<PlatformId>(platform);
  CHIRON_ASSIGN_OR_RETURN(ByteSpan payload, reader.Take(payload_size, "payload"));
  evidence.payload.assign(payload.begin(), payload.end());
  return evidence;
}

Result<Bytes> SimSignedMessage(const SimEvidenceBody& body) {
  Bytes out = ToBytes(kSimSignatureDomain);
  out.push_back(0);
  CHIRON_RETURN_IF_ERROR(AppendSimSignedFields(body, out));
  return out;
}

Result<Bytes> SerializeSimBody(const SimEvidenceBody& body) {
  Bytes out;
  out.reserve(kSimBodySize);
  CHIRON_RETURN_IF_ERROR(AppendSimSignedFields(body, out));
  CHIRON_RETURN_IF_ERROR(
      CheckSize(body.signature, kSimSignatureSize, "signature", "sim evidence: "));
  Append(out, body.signature);
  return out;
}

Result<SimEvidenceBody> ParseSimBody(ByteSpan payload) {
  const Bytes copy(payload.begin(), payload.end());
  if (copy.size() != kSimBodySize) {
    return InvalidArgumentError("sim evidence: body must be exactly " + Num(kSimBodySize) +
                                " bytes, got " + Num(copy.size()));
  }
  ByteReader reader(copy);
  SimEvidenceBody body;
  CHIRON_ASSIGN_OR_RETURN(body.version, reader.U16Le("sim body version"));
  if (body.version != kSimBodyVersion) {
    return InvalidArgumentError("sim evidence: unknown body version " + Num(body.version) +
                                "; this verifier reads version " + Num(kSimBodyVersion));
  }
  CHIRON_ASSIGN_OR_RETURN(uint16_t platform, reader.U16Le("sim body platform"));
  if (platform != static_cast<uint16_t>(PlatformId::kSim)) {
    return InvalidArgumentError("sim evidence: body names platform " + Num(platform) +
                                ", not 1 (sim)");
  }
  auto take = [&reader](size_t n, std::string_view what) -> Result<Bytes> {
    CHIRON_ASSIGN_OR_RETURN(ByteSpan s, reader.Take(n, what));
    return Bytes(s.begin(), s.end());
  };
  CHIRON_ASSIGN_OR_RETURN(body.measurement, take(kMeasurementSize, "measurement"));
  CHIRON_ASSIGN_OR_RETURN(body.report_data, take(kReportDataSize, "report data"));
  CHIRON_ASSIGN_OR_RETURN(uint8_t flags, reader.U8("flags"));
  if ((flags & ~kSimFlagDebug) != 0) {
    // Unknown flags may carry meaning a newer producer relies on: refuse rather than ignore.
    return InvalidArgumentError("sim evidence: unknown flag bits 0x" +
                                HexEncode(ByteSpan(&flags, 1)));
  }
  body.debug = (flags & kSimFlagDebug) != 0;
  CHIRON_ASSIGN_OR_RETURN(body.svn, reader.U32Le("svn"));
  CHIRON_ASSIGN_OR_RETURN(body.root_public_key, take(kSimRootKeySize, "root public key"));
  CHIRON_ASSIGN_OR_RETURN(body.signature, take(kSimSignatureSize, "signature"));
  if (!reader.empty()) return InternalError("sim evidence: size arithmetic is inconsistent");
  return body;
}

Result<Bytes> CreateSimEvidence(const crypto::PrivateKey& root_key, ByteSpan measurement,
                                ByteSpan report_data, bool debug, uint32_t svn) {
  if (root_key.scheme() != crypto::SignatureScheme::kEd25519) {
    return InvalidArgumentError("sim evidence: the root key must be Ed25519");
  }
  SimEvidenceBody body;
  body.measurement.assign(measurement.begin(), measurement.end());
  body.report_data.assign(report_data.begin(), report_data.end());
  body.debug = debug;
  body.svn = svn;
  CHIRON_ASSIGN_OR_RETURN(body.root_public_key, root_key.public_key().ToRaw());
  CHIRON_ASSIGN_OR_RETURN(Bytes message, SimSignedMessage(body));
  CHIRON_ASSIGN_OR_RETURN(body.signature, root_key.Sign(message));
  Evidence evidence;
  evidence.platform = PlatformId::kSim;
  CHIRON_ASSIGN_OR_RETURN(evidence.payload, SerializeSimBody(body));
  return SerializeEvidence(evidence);
}

Result<PlatformId> PlatformForTsmProvider(std::string_view provider) {
  if (provider == kTsmProviderTdx) return PlatformId::kTdx;
  if (provider == kTsmProviderSevSnp) return PlatformId::kSevSnp;
  return InvalidArgumentError("tsm evidence: unknown configfs-tsm provider '" +
                              std::string(provider) + "'; Chiron knows \"" +
                              std::string(kTsmProviderTdx) + "\" and \"" +
                              std::string(kTsmProviderSevSnp) + "\"");
}

Result<Bytes> SerializeTsmBody(const TsmEvidenceBody& body) {
  if (body.provider.empty() || body.provider.size() > kMaxTsmProviderSize) {
    return InvalidArgumentError("tsm evidence: provider name must be 1.." +
                                Num(kMaxTsmProviderSize) + " bytes");
  }
  if (body.outblob.empty()) return InvalidArgumentError("tsm evidence: outblob is empty");
  const size_t total = 1 + body.provider.size() + 4 + body.outblob.size() + 4 + body.auxblob.size();
  if (total > kMaxEvidenceSize - kEvidenceHeaderSize) {
    return InvalidArgumentError("tsm evidence: outblob and auxblob (" + Num(total) +
                                " bytes) do not fit the " + Num(kMaxEvidenceSize) +
                                "-byte evidence limit");
  }
  Bytes out;
  out.reserve(total);
  out.push_back(static_cast<uint8_t>(body.provider.size()));
  Append(out, AsBytes(body.provider));
  AppendU32Le(out, static_cast<uint32_t>(body.outblob.size()));
  Append(out, body.outblob);
  AppendU32Le(out, static_cast<uint32_t>(body.auxblob.size()));
  Append(out, body.auxblob);
  return out;
}

Result<TsmEvidenceBody> ParseTsmBody(PlatformId platform, ByteSpan payload) {
  if (payload.size() > kMaxEvidenceSize) {
    return InvalidArgumentError("tsm evidence: body of " + Num(payload.size()) +
                                " bytes exceeds the limit of " + Num(kMaxEvidenceSize));
  }
  const Bytes copy(payload.begin(), payload.end());
  ByteReader reader(copy);
  auto wrap = [](const Status& s) { return s.WithContext("tsm evidence"); };
  Result<uint8_t> provider_size = reader.U8("provider size");
  if (!provider_size.ok()) return wrap(provider_size.status());
  if (*provider_size == 0 || *provider_size > kMaxTsmProviderSize) {
    return InvalidArgumentError("tsm evidence: provider name size " + Num(*provider_size) +
                                " is outside 1.." + Num(kMaxTsmProviderSize));
  }
  Result<ByteSpan> provider = reader.Take(*provider_size, "provider");
  if (!provider.ok()) return wrap(provider.status());
  TsmEvidenceBody body;
  body.provider = ToString(*provider);
  CHIRON_ASSIGN_OR_RETURN(PlatformId provider_platform, PlatformForTsmProvider(body.provider));
  if (provider_platform != platform) {
    return InvalidArgumentError("tsm evidence: provider '" + body.provider + "' produces " +
                                std::string(PlatformName(provider_platform)) +
                                " evidence but the envelope says " +
                                std::string(PlatformName(platform)));
  }
  for (auto [blob, name] : {std::pair{&body.outblob, "outblob"}, {&body.auxblob, "auxblob"}}) {
    Result<uint32_t> size = reader.U32Le(std::string(name) + " size");
    if (!size.ok()) return wrap(size.status());
    if (*size > reader.remaining()) {
      return InvalidArgumentError("tsm evidence: truncated: " + std::string(name) + " announces " +
                                  Num(*size) + " bytes but only " + Num(reader.remaining()) +
                                  " remain");
    }
    Result<ByteSpan> data = reader.Take(*size, name);
    if (!data.ok()) return wrap(data.status());
    blob->assign(data->begin(), data->end());
  }
  if (body.outblob.empty()) return InvalidArgumentError("tsm evidence: outblob is empty");
  if (!reader.empty()) {
    return InvalidArgumentError("tsm evidence: " + Num(reader.remaining()) +
                                " unexpected trailing bytes");
  }
  return body;
}

}  // namespace chiron::attest
