#include "shared/dataset/container.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "shared/crypto/hash.h"
#include "shared/crypto/hkdf.h"
#include "shared/crypto/random.h"

namespace chiron::dataset {
namespace {

constexpr char kMagic[8] = {'C', 'H', 'I', 'R', 'O', 'N', 'D', 'S'};
// Bytes after the body: nonce prefix and header tag.
constexpr size_t kTrailerSize = crypto::kStreamNoncePrefixSize + kHeaderTagSize;

constexpr std::string_view kInfoKeyCheck = "chiron dataset v1 key check";
constexpr std::string_view kInfoHeaderMac = "chiron dataset v1 header mac key";
constexpr std::string_view kInfoChunkKey = "chiron dataset v1 chunk key";

// The three values derived from the dataset key (docs/formats/dataset.md, "Keys").
struct DerivedKeys {
  Bytes key_check;
  SecretBytes mac_key;
  SecretBytes chunk_key;
};

Result<DerivedKeys> DeriveKeys(ByteSpan key, const DatasetId& id) {
  if (key.size() != kDatasetKeySize) {
    return InvalidArgumentError("dataset key must be " + std::to_string(kDatasetKeySize) +
                                " bytes, not " + std::to_string(key.size()));
  }
  DerivedKeys keys;
  CHIRON_ASSIGN_OR_RETURN(SecretBytes check, crypto::Hkdf(crypto::HashAlgorithm::kSha256, key, id,
                                                          AsBytes(kInfoKeyCheck), kKeyCheckSize));
  keys.key_check.assign(check.span().begin(), check.span().end());
  CHIRON_ASSIGN_OR_RETURN(keys.mac_key, crypto::Hkdf(crypto::HashAlgorithm::kSha256, key, id,
                                                     AsBytes(kInfoHeaderMac), 32));
  CHIRON_ASSIGN_OR_RETURN(keys.chunk_key, crypto::Hkdf(crypto::HashAlgorithm::kSha256, key, id,
                                                       AsBytes(kInfoChunkKey), 32));
  return keys;
}

std::string ChunkName(uint64_t index, uint64_t count) {
  return "chunk " + std::to_string(index) + " of " + std::to_string(count);
}

}  // namespace

Result<DatasetId> NewDatasetId() {
  DatasetId id;
  CHIRON_RETURN_IF_ERROR(crypto::RandomFill(MutableByteSpan(id)));
  return id;
}

std::string DatasetIdHex(const DatasetId& id) {
  return HexEncode(id);
}

uint64_t ContainerHeader::chunk_count() const {
  return (schema.sample_count + samples_per_chunk - 1) / samples_per_chunk;
}

uint64_t ContainerHeader::samples_in_chunk(uint64_t index) const {
  if (index + 1 < chunk_count()) return samples_per_chunk;
  return schema.sample_count - index * samples_per_chunk;
}

uint64_t ContainerHeader::plaintext_chunk_size(uint64_t index) const {
  return samples_in_chunk(index) * schema.record_size();
}

uint64_t ContainerHeader::sealed_chunk_size(uint64_t index) const {
  return plaintext_chunk_size(index) + kChunkTagSize;
}

uint64_t ContainerHeader::chunk_offset(uint64_t index) const {
  return header_size() +
         index * (uint64_t{samples_per_chunk} * schema.record_size() + kChunkTagSize);
}

uint64_t ContainerHeader::container_size() const {
  uint64_t count = chunk_count();
  return chunk_offset(count - 1) + sealed_chunk_size(count - 1);
}

Result<size_t> PeekHeaderSize(ByteSpan prefix) {
  ByteReader reader(prefix);
  CHIRON_ASSIGN_OR_RETURN(ByteSpan magic, reader.Take(sizeof(kMagic), "container magic"));
  if (std::memcmp(magic.data(), kMagic, sizeof(kMagic)) != 0) {
    return InvalidArgumentError(
        "not a Chiron dataset container (bad magic); expected a file written by the Chiron "
        "client's dataset import");
  }
  CHIRON_ASSIGN_OR_RETURN(uint16_t version, reader.U16Le("container version"));
  if (version != kContainerVersion) {
    return InvalidArgumentError("dataset container version " + std::to_string(version) +
                                " is not supported (this build reads version " +
                                std::to_string(kContainerVersion) + ")");
  }
  CHIRON_ASSIGN_OR_RETURN(uint32_t header_size, reader.U32Le("header size"));
  if (header_size < kHeaderPrefixSize + kTrailerSize || header_size > kMaxHeaderSize) {
    return InvalidArgumentError(
        "dataset header size " + std::to_string(header_size) + " is outside the allowed range " +
        std::to_string(kHeaderPrefixSize + kTrailerSize) + ".." + std::to_string(kMaxHeaderSize));
  }
  return static_cast<size_t>(header_size);
}

Result<ContainerHeader> ParseContainerHeader(ByteSpan data) {
  CHIRON_ASSIGN_OR_RETURN(size_t header_size, PeekHeaderSize(data));
  if (data.size() < header_size) {
    return InvalidArgumentError("dataset header is truncated: it declares " +
                                std::to_string(header_size) + " bytes but only " +
                                std::to_string(data.size()) + " are present");
  }
  ContainerHeader header;
  header.encoded.assign(data.begin(), data.begin() + static_cast<ptrdiff_t>(header_size));
  header.body_size = header_size - kTrailerSize;
  ByteSpan body = ByteSpan(header.encoded).first(header.body_size);
  ByteReader reader(body);
  CHIRON_RETURN_IF_ERROR(reader.Skip(kHeaderPrefixSize, "header prefix"));
  header.version = kContainerVersion;
  CHIRON_ASSIGN_OR_RETURN(ByteSpan id, reader.Take(kDatasetIdSize, "dataset id"));
  std::copy(id.begin(), id.end(), header.dataset_id.begin());
  CHIRON_ASSIGN_OR_RETURN(ByteSpan key_check, reader.Take(kKeyCheckSize, "key check"));
  header.key_check.assign(key_check.begin(), key_check.end());
  CHIRON_ASSIGN_OR_RETURN(header.samples_per_chunk, reader.U32Le("samples per chunk"));
  auto schema = ParseSchema(reader);
  if (!schema.ok()) return schema.status().WithContext("dataset header");
  header.schema = std::move(schema).value();
  if (!reader.empty()) {
    // Canonical encoding: the declared size must be exactly what the fields need, so no bytes
    // can hide in the header.
    return InvalidArgumentError("dataset header has " + std::to_string(reader.remaining()) +
                                " unexpected byte(s) after the schema");
  }
  if (header.samples_per_chunk == 0 || header.samples_per_chunk > header.schema.sample_count) {
    return InvalidArgumentError("dataset header: samples per chunk " +
                                std::to_string(header.samples_per_chunk) + " is not in 1.." +
                                std::to_string(header.schema.sample_count));
  }
  if (uint64_t{header.samples_per_chunk} * header.schema.record_size() > kMaxChunkPlaintextSize &&
      header.samples_per_chunk > 1) {
    return InvalidArgumentError(
        "dataset header: chunks of " + std::to_string(header.samples_per_chunk) +
        " records exceed the chunk limit of " + std::to_string(kMaxChunkPlaintextSize) + " bytes");
  }
  ByteSpan trailer = ByteSpan(header.encoded).subspan(header.body_size);
  header.nonce_prefix.assign(trailer.begin(), trailer.begin() + crypto::kStreamNoncePrefixSize);
  header.tag.assign(trailer.begin() + crypto::kStreamNoncePrefixSize, trailer.end());
  return header;
}

// ---- DatasetWriter ----

DatasetWriter::DatasetWriter(ContainerHeader header, crypto::AeadStreamSealer sealer,
                             ContainerSink sink)
    : header_(std::move(header)), sealer_(std::move(sealer)), sink_(std::move(sink)) {}

DatasetWriter::~DatasetWriter() = default;

Result<std::unique_ptr<DatasetWriter>> DatasetWriter::Create(ByteSpan key,
                                                             const DatasetId& dataset_id,
                                                             DatasetSchema schema,
                                                             ContainerSink sink,
                                                             DatasetWriterOptions options) {
  CHIRON_RETURN_IF_ERROR(schema.Validate());
  if (!sink) return InvalidArgumentError("dataset writer needs a sink");
  if (options.target_chunk_size == 0 || options.target_chunk_size > kMaxChunkPlaintextSize) {
    return InvalidArgumentError("target chunk size " + std::to_string(options.target_chunk_size) +
                                " is not in 1.." + std::to_string(kMaxChunkPlaintextSize));
  }
  CHIRON_ASSIGN_OR_RETURN(DerivedKeys keys, DeriveKeys(key, dataset_id));

  ContainerHeader header;
  header.dataset_id = dataset_id;
  header.key_check = keys.key_check;
  uint64_t per_chunk = std::max<uint64_t>(1, options.target_chunk_size / schema.record_size());
  header.samples_per_chunk =
      static_cast<uint32_t>(std::min<uint64_t>(per_chunk, schema.sample_count));
  header.schema = std::move(schema);

  Bytes body(kMagic, kMagic + sizeof(kMagic));
  AppendU16Le(body, kContainerVersion);
  AppendU32Le(body, 0);  // header size, patched below
  Append(body, header.dataset_id);
  Append(body, header.key_check);
  AppendU32Le(body, header.samples_per_chunk);
  EncodeSchema(header.schema, body);
  uint64_t header_size = body.size() + kTrailerSize;
  if (header_size > kMaxHeaderSize) {
    return InvalidArgumentError("dataset header would be " + std::to_string(header_size) +
                                " bytes, over the limit of " + std::to_string(kMaxHeaderSize) +
                                "; use fewer or shorter class names");
  }
  for (int i = 0; i < 4; ++i) body[10 + i] = static_cast<uint8_t>(header_size >> (8 * i));
  header.body_size = body.size();

  CHIRON_ASSIGN_OR_RETURN(crypto::AeadStreamSealer sealer,
                          options.reseal_nonce_prefix.empty()
                              ? crypto::AeadStreamSealer::Create(keys.chunk_key.span(), body)
                              : crypto::AeadStreamSealer::CreateToReseal(
                                    keys.chunk_key.span(), body, options.reseal_nonce_prefix));
  header.nonce_prefix = sealer.nonce_prefix();
  Bytes mac_input = body;
  Append(mac_input, header.nonce_prefix);
  CHIRON_ASSIGN_OR_RETURN(header.tag, crypto::HmacSha256(keys.mac_key.span(), mac_input));
  header.encoded = std::move(mac_input);
  Append(header.encoded, header.tag);

  std::unique_ptr<DatasetWriter> writer(
      new DatasetWriter(std::move(header), std::move(sealer), std::move(sink)));
  writer->chunk_ = SecretBytes(writer->header_.plaintext_chunk_size(0) + kChunkTagSize);
  writer->seal_into_ = options.seal_into;
  ContainerPiece piece;
  piece.kind = ContainerPiece::Kind::kHeader;
  piece.bytes = writer->header_.encoded;
  CHIRON_RETURN_IF_ERROR(writer->sink_(piece));
  return writer;
}

Status DatasetWriter::Fail(Status status) {
  failed_ = true;
  return status;
}

Status DatasetWriter::Add(uint32_t label, ByteSpan sample) {
  if (failed_) return FailedPreconditionError("dataset writer stopped after an earlier error");
  if (finished_) return FailedPreconditionError("dataset writer: Add after Finish");
  const DatasetSchema& schema = header_.schema;
  if (samples_added_ >= schema.sample_count) {
    return FailedPreconditionError("dataset writer: all " + std::to_string(schema.sample_count) +
                                   " declared samples were already added");
  }
  if (sample.size() != schema.sample_size()) {
    return InvalidArgumentError("sample " + std::to_string(samples_added_) + " has " +
                                std::to_string(sample.size()) + " bytes; the schema needs " +
                                std::to_string(schema.sample_size()));
  }
  if (label >= schema.class_count()) {
    return InvalidArgumentError("sample " + std::to_string(samples_added_) + " has label " +
                                std::to_string(label) + " but there are only " +
                                std::to_string(schema.class_count()) + " classes");
  }
  uint8_t* out = chunk_.data() + chunk_fill_;
  out[0] = static_cast<uint8_t>(label);
  if (schema.label_type == LabelType::kUint16) out[1] = static_cast<uint8_t>(label >> 8);
  std::memcpy(out + LabelSize(schema.label_type), sample.data(), sample.size());
  chunk_fill_ += schema.record_size();
  ++samples_added_;

  if (chunk_fill_ < header_.plaintext_chunk_size(chunk_index_)) return Status::Ok();
  bool last = chunk_index_ + 1 == header_.chunk_count();
  // Seal in place (the buffer has room for the tag, and afterwards holds only ciphertext), or
  // where the sink asked.
  MutableByteSpan sealed(chunk_.data(), chunk_fill_ + kChunkTagSize);
  if (seal_into_) {
    MutableByteSpan elsewhere = seal_into_(chunk_index_, chunk_fill_ + kChunkTagSize);
    if (!elsewhere.empty() && elsewhere.size() != sealed.size()) {
      SecureZero(chunk_.data(), chunk_fill_);
      return Fail(InternalError("the sink offered " + std::to_string(elsewhere.size()) +
                                " bytes to seal a " + std::to_string(sealed.size()) +
                                "-byte chunk into"));
    }
    if (!elsewhere.empty()) sealed = elsewhere;
  }
  Status sealed_status = sealer_.SealChunkInto(ByteSpan(chunk_.data(), chunk_fill_), last, sealed);
  if (!sealed_status.ok()) {
    SecureZero(chunk_.data(), chunk_fill_);
    return Fail(sealed_status.WithContext("sealing dataset chunk"));
  }
  ContainerPiece piece;
  piece.kind = ContainerPiece::Kind::kChunk;
  piece.chunk_index = chunk_index_;
  piece.last = last;
  piece.bytes = sealed;
  Status sent = sink_(piece);
  if (!sent.ok()) return Fail(sent);
  chunk_fill_ = 0;
  ++chunk_index_;
  return Status::Ok();
}

Status DatasetWriter::Finish() {
  if (failed_) return FailedPreconditionError("dataset writer stopped after an earlier error");
  if (samples_added_ != header_.schema.sample_count) {
    return Fail(FailedPreconditionError(
        "dataset writer finished after " + std::to_string(samples_added_) +
        " samples but the header declares " + std::to_string(header_.schema.sample_count)));
  }
  finished_ = true;
  return Status::Ok();
}

// ---- DatasetReader ----

Result<DatasetReader> DatasetReader::Open(ByteSpan key, ByteSpan header_bytes) {
  CHIRON_ASSIGN_OR_RETURN(ContainerHeader header, ParseContainerHeader(header_bytes));
  if (header_bytes.size() != header.header_size()) {
    return InvalidArgumentError("expected exactly the " + std::to_string(header.header_size()) +
                                " header bytes, got " + std::to_string(header_bytes.size()));
  }
  std::string id = DatasetIdHex(header.dataset_id);
  CHIRON_ASSIGN_OR_RETURN(DerivedKeys keys, DeriveKeys(key, header.dataset_id));
  if (!ConstantTimeEqual(keys.key_check, header.key_check)) {
    return DataLossError("dataset " + id +
                         ": wrong key (the key check does not match); use the key this dataset "
                         "was encrypted with");
  }
  ByteSpan mac_input = ByteSpan(header.encoded).first(header.header_size() - kHeaderTagSize);
  CHIRON_ASSIGN_OR_RETURN(Bytes tag, crypto::HmacSha256(keys.mac_key.span(), mac_input));
  if (!ConstantTimeEqual(tag, header.tag)) {
    return DataLossError("dataset " + id +
                         ": header authentication failed; the header was altered");
  }
  CHIRON_ASSIGN_OR_RETURN(crypto::AeadStreamOpener opener,
                          crypto::AeadStreamOpener::Create(
                              keys.chunk_key.span(), header.stream_aad(), header.nonce_prefix));
  return DatasetReader(std::move(header), std::move(opener));
}

Result<SecretBytes> DatasetReader::OpenChunk(uint64_t index, ByteSpan sealed_chunk) const {
  SecretBytes plaintext(sealed_chunk.size() >= crypto::kStreamTagSize
                            ? sealed_chunk.size() - crypto::kStreamTagSize
                            : 0);
  CHIRON_RETURN_IF_ERROR(OpenChunkInto(index, sealed_chunk, plaintext.mutable_span()));
  return plaintext;
}

Result<std::string> DatasetReader::CheckPlace(uint64_t index, ByteSpan sealed_chunk) const {
  uint64_t count = header_.chunk_count();
  if (index >= count) {
    return DataLossError("dataset " + DatasetIdHex(header_.dataset_id) + ": chunk index " +
                         std::to_string(index) + " is past the last chunk (" +
                         std::to_string(count) + " chunks); the container was extended");
  }
  std::string where =
      "dataset " + DatasetIdHex(header_.dataset_id) + ": " + ChunkName(index, count);
  if (sealed_chunk.size() != header_.sealed_chunk_size(index)) {
    return DataLossError(where + " has " + std::to_string(sealed_chunk.size()) +
                         " bytes but must have " +
                         std::to_string(header_.sealed_chunk_size(index)) +
                         "; it was truncated, extended or taken from elsewhere");
  }
  return where;
}

Status DatasetReader::OpenChunkInto(uint64_t index, ByteSpan sealed_chunk,
                                    MutableByteSpan plaintext) const {
  CHIRON_ASSIGN_OR_RETURN(std::string where, CheckPlace(index, sealed_chunk));
  const uint64_t count = header_.chunk_count();
  if (plaintext.size() + crypto::kStreamTagSize != sealed_chunk.size()) {
    return InvalidArgumentError(where + ": the plaintext buffer has " +
                                std::to_string(plaintext.size()) + " bytes, not " +
                                std::to_string(sealed_chunk.size() - crypto::kStreamTagSize));
  }
  bool last = index + 1 == count;
  if (!opener_.OpenChunkInto(index, sealed_chunk, last, plaintext).ok()) {
    return DataLossError(where +
                         " failed authentication: it was altered, reordered, or taken from "
                         "another dataset or position");
  }
  // Labels come from the owner, who is not trusted by the runtime: check them here so no consumer
  // indexes past the class table.
  const DatasetSchema& schema = header_.schema;
  uint64_t records = header_.samples_in_chunk(index);
  for (uint64_t i = 0; i < records; ++i) {
    Record record = RecordAt(plaintext, i);
    if (record.label >= schema.class_count()) {
      SecureZero(plaintext.data(), plaintext.size());
      return InvalidArgumentError(where + ", record " + std::to_string(i) + ": label " +
                                  std::to_string(record.label) + " is not below the class count " +
                                  std::to_string(schema.class_count()));
    }
  }
  return Status::Ok();
}

Status DatasetReader::AuthenticateChunk(uint64_t index, ByteSpan sealed_chunk) const {
  CHIRON_ASSIGN_OR_RETURN(std::string where, CheckPlace(index, sealed_chunk));
  const uint64_t count = header_.chunk_count();
  bool last = index + 1 == count;
  if (!opener_.VerifyChunk(index, sealed_chunk, last).ok()) {
    return DataLossError(where +
                         " failed authentication: it was altered, reordered, or taken from "
                         "another dataset or position");
  }
  const DatasetSchema& schema = header_.schema;
  const size_t label_size = LabelSize(schema.label_type);
  const uint64_t records = header_.samples_in_chunk(index);
  Bytes labels(records * label_size);
  CHIRON_RETURN_IF_ERROR(opener_.DecryptStrided(index, sealed_chunk, last, schema.record_size(),
                                                label_size, labels));
  for (uint64_t i = 0; i < records; ++i) {
    uint32_t label = labels[i * label_size];
    if (label_size == 2) label |= uint32_t{labels[i * label_size + 1]} << 8;
    if (label >= schema.class_count()) {
      return InvalidArgumentError(where + ", record " + std::to_string(i) + ": label " +
                                  std::to_string(label) + " is not below the class count " +
                                  std::to_string(schema.class_count()));
    }
  }
  return Status::Ok();
}

Result<SecretBytes> DatasetReader::OpenNextChunk(ByteSpan sealed_chunk) {
  CHIRON_ASSIGN_OR_RETURN(SecretBytes plaintext, OpenChunk(next_chunk_, sealed_chunk));
  ++next_chunk_;
  return plaintext;
}

Status DatasetReader::Finish() const {
  if (next_chunk_ != header_.chunk_count()) {
    return DataLossError("dataset " + DatasetIdHex(header_.dataset_id) +
                         " is truncated: " + std::to_string(next_chunk_) + " of " +
                         std::to_string(header_.chunk_count()) + " chunks were received");
  }
  return Status::Ok();
}

Record DatasetReader::RecordAt(ByteSpan plaintext, uint64_t i) const {
  const DatasetSchema& schema = header_.schema;
  ByteSpan bytes = plaintext.subspan(i * schema.record_size(), schema.record_size());
  Record record;
  record.label = bytes[0];
  if (schema.label_type == LabelType::kUint16) record.label |= uint32_t{bytes[1]} << 8;
  record.sample = bytes.subspan(LabelSize(schema.label_type));
  return record;
}

Status ReadContainer(ByteSpan key, ByteSpan container,
                     const std::function<Status(const Record&)>& visit) {
  CHIRON_ASSIGN_OR_RETURN(size_t header_size, PeekHeaderSize(container));
  if (container.size() < header_size) {
    return DataLossError("dataset container is truncated inside its header (" +
                         std::to_string(container.size()) + " of " + std::to_string(header_size) +
                         " bytes)");
  }
  CHIRON_ASSIGN_OR_RETURN(DatasetReader reader,
                          DatasetReader::Open(key, container.first(header_size)));
  const ContainerHeader& header = reader.header();
  uint64_t count = header.chunk_count();
  uint64_t offset = header_size;
  for (uint64_t index = 0; index < count; ++index) {
    uint64_t size = header.sealed_chunk_size(index);
    if (container.size() - offset < size) {
      return DataLossError("dataset " + DatasetIdHex(header.dataset_id) +
                           " is truncated: " + ChunkName(index, count) + " needs " +
                           std::to_string(size) + " bytes but only " +
                           std::to_string(container.size() - offset) + " remain");
    }
    CHIRON_ASSIGN_OR_RETURN(SecretBytes plaintext,
                            reader.OpenNextChunk(container.subspan(offset, size)));
    offset += size;
    for (uint64_t i = 0; i < header.samples_in_chunk(index); ++i) {
      CHIRON_RETURN_IF_ERROR(visit(reader.RecordAt(plaintext.span(), i)));
    }
  }
  if (offset != container.size()) {
    return DataLossError("dataset " + DatasetIdHex(header.dataset_id) + " has " +
                         std::to_string(container.size() - offset) +
                         " unexpected byte(s) after its last chunk");
  }
  return reader.Finish();
}

}  // namespace chiron::dataset
