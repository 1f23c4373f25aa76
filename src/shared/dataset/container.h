// The encrypted dataset container: a header, then AES-256-GCM chunks of whole records.
//
// The byte layout, limits and what each binding stops are specified in docs/formats/dataset.md.
// In short:
//
//   container = header || sealed_chunk[0] || ... || sealed_chunk[chunk_count - 1]
//   header    = body || nonce_prefix (7) || header_tag (32)
//   body      = magic "CHIRONDS", version, header size, dataset id, key check,
//               samples per chunk, schema
//   chunk i   = AeadStream chunk i over `samples_in_chunk(i)` records (label || sample), with the
//               body as the stream's associated data, so every chunk binds the dataset id, the
//               schema, its own index and whether it is the last one.
//
// Keys: the 32-byte dataset key never touches data directly. HKDF-SHA256 (salt = dataset id)
// derives a chunk key, a header MAC key and a public 16-byte key check, so a wrong key is
// reported as such before any chunk is opened and a tampered header is rejected on open.
//
// Every chunk except the last holds exactly samples_per_chunk records, so the offset and size of
// chunk i follow from the header alone: the runtime can random-access chunks of a stored
// container, and any missing, extra or resized chunk is detected.
//
// Thread safety: DatasetWriter and DatasetReader are not thread safe; ContainerHeader is a value.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "shared/base/bytes.h"
#include "shared/base/secret.h"
#include "shared/base/status.h"
#include "shared/crypto/aead_stream.h"
#include "shared/dataset/schema.h"

namespace chiron::dataset {

inline constexpr uint16_t kContainerVersion = 1;
inline constexpr size_t kDatasetKeySize = 32;
inline constexpr size_t kDatasetIdSize = 16;
inline constexpr size_t kKeyCheckSize = 16;
inline constexpr size_t kHeaderTagSize = 32;
inline constexpr size_t kChunkTagSize = 16;
// Magic, version and header size: enough to learn how many header bytes follow.
inline constexpr size_t kHeaderPrefixSize = 14;
inline constexpr size_t kMaxHeaderSize = size_t{1} << 20;
inline constexpr uint64_t kMaxChunkPlaintextSize = uint64_t{64} << 20;
inline constexpr uint64_t kDefaultChunkTargetSize = uint64_t{1} << 20;

using DatasetId = std::array<uint8_t, kDatasetIdSize>;

// A fresh random id. Internal error only if the system DRBG fails.
Result<DatasetId> NewDatasetId();
std::string DatasetIdHex(const DatasetId& id);

// A parsed header. Produced by ParseContainerHeader (unauthenticated: it has not been checked
// against a key yet) or by DatasetReader/DatasetWriter (authenticated).
struct ContainerHeader {
  uint16_t version = kContainerVersion;
  DatasetId dataset_id{};
  Bytes key_check;  // kKeyCheckSize bytes
  uint32_t samples_per_chunk = 0;
  DatasetSchema schema;
  Bytes nonce_prefix;    // crypto::kStreamNoncePrefixSize bytes
  Bytes tag;             // kHeaderTagSize bytes
  Bytes encoded;         // the exact header bytes
  size_t body_size = 0;  // encoded[0, body_size) is the chunks' stream AAD

  ByteSpan stream_aad() const { return ByteSpan(encoded).first(body_size); }
  size_t header_size() const { return encoded.size(); }
  uint64_t chunk_count() const;
  // Preconditions for the per-chunk accessors: index < chunk_count().
  uint64_t samples_in_chunk(uint64_t index) const;
  uint64_t plaintext_chunk_size(uint64_t index) const;
  uint64_t sealed_chunk_size(uint64_t index) const;
  // Offset of chunk `index` from the start of the container.
  uint64_t chunk_offset(uint64_t index) const;
  // Header plus all chunks: the exact size of a complete container.
  uint64_t container_size() const;
};

// Given the first kHeaderPrefixSize (or more) bytes of a container, returns the header's total
// size after checking the magic, the version and the size limits. InvalidArgument otherwise.
Result<size_t> PeekHeaderSize(ByteSpan prefix);

// Parses the header at the start of `data` (which may continue with chunks) without a key:
// structure and limits only. Use DatasetReader::Open to authenticate it. InvalidArgument names the
// field that is wrong.
Result<ContainerHeader> ParseContainerHeader(ByteSpan data);

// One piece of a container as the writer emits it, in order: the header, then chunk 0, 1, ...
struct ContainerPiece {
  enum class Kind { kHeader, kChunk };
  Kind kind = Kind::kHeader;
  uint64_t chunk_index = 0;  // kChunk only
  bool last = false;         // kChunk only: true for the final chunk
  ByteSpan bytes;            // valid only during the sink call
};
// Receives container pieces (e.g. writes them to a file or sends them to the runtime). A non-OK
// status stops the writer and is returned from the call that triggered it.
using ContainerSink = std::function<Status(const ContainerPiece& piece)>;

struct DatasetWriterOptions {
  // Plaintext bytes per chunk to aim for; rounded down to whole records (at least one record).
  // Must be in 1..kMaxChunkPlaintextSize.
  uint64_t target_chunk_size = kDefaultChunkTargetSize;
  // Empty: a fresh random nonce prefix. Set only to re-create, for a resumed upload, the exact
  // container an interrupted run began (same key, id, schema, chunk size and unchanged input);
  // sealing different samples under a reused prefix destroys confidentiality
  // (crypto::AeadStreamSealer::CreateToReseal).
  Bytes reseal_nonce_prefix;
  // Set: where to seal each chunk (`sealed_size` bytes: ciphertext || tag) instead of in place
  // in the writer's own buffer; the piece the sink then receives points there. For a sink that
  // hands chunks to another thread without copying them (the data-plane sender). An empty span
  // means in place after all. The chunk's plaintext then stays in the writer's buffer until the
  // next chunk overwrites it or the writer is destroyed (which zeroes it).
  std::function<MutableByteSpan(uint64_t chunk_index, size_t sealed_size)> seal_into;
};

// Encrypts samples as they stream in. Holds at most one chunk of plaintext, in memory that is
// zeroed when released; sends the header from Create and each chunk as soon as it is full.
class DatasetWriter {
 public:
  // `key` is the 32-byte dataset key; `schema` must validate and declares the exact sample count
  // that will be added. Emits the header through `sink` before returning.
  static Result<std::unique_ptr<DatasetWriter>> Create(ByteSpan key, const DatasetId& dataset_id,
                                                       DatasetSchema schema, ContainerSink sink,
                                                       DatasetWriterOptions options = {});
  ~DatasetWriter();

  const ContainerHeader& header() const { return header_; }
  uint64_t samples_added() const { return samples_added_; }

  // Appends one sample (exactly schema().sample_size() bytes) with a class index below
  // class_count. InvalidArgument for a wrong size or label; FailedPrecondition past the declared
  // count, after Finish, or after an earlier error (the writer does not recover).
  Status Add(uint32_t label, ByteSpan sample);
  // Checks that exactly sample_count samples were added (the last chunk was then sent by Add).
  Status Finish();

 private:
  DatasetWriter(ContainerHeader header, crypto::AeadStreamSealer sealer, ContainerSink sink);
  Status Fail(Status status);

  ContainerHeader header_;
  crypto::AeadStreamSealer sealer_;
  ContainerSink sink_;
  SecretBytes chunk_;  // plaintext of the chunk being filled
  std::function<MutableByteSpan(uint64_t, size_t)> seal_into_;
  uint64_t chunk_fill_ = 0;
  uint64_t chunk_index_ = 0;
  uint64_t samples_added_ = 0;
  bool failed_ = false;
  bool finished_ = false;
};

// One record of an opened chunk.
struct Record {
  uint32_t label = 0;
  ByteSpan sample;
};

// Authenticates a header with the dataset key and opens its chunks.
class DatasetReader {
 public:
  // Parses `header_bytes` (exactly one header; see PeekHeaderSize), checks the key check
  // (DataLoss "wrong key" if it differs) and the header tag (DataLoss if the header was altered).
  static Result<DatasetReader> Open(ByteSpan key, ByteSpan header_bytes);

  const ContainerHeader& header() const { return header_; }
  const DatasetSchema& schema() const { return header_.schema; }

  // Opens chunk `index` of the container (random access). DataLoss if the chunk has the wrong
  // size or fails authentication (altered, moved to another index, taken from another dataset or
  // a different last flag); InvalidArgument if a record's label is out of range. The returned
  // plaintext holds samples_in_chunk(index) records; read them with RecordAt.
  Result<SecretBytes> OpenChunk(uint64_t index, ByteSpan sealed_chunk) const;
  // OpenChunk without an allocation: the plaintext goes into `plaintext`, which must have
  // exactly plaintext_chunk_size(index) bytes (InvalidArgument otherwise). On any error it holds
  // zeros, never unauthenticated plaintext.
  Status OpenChunkInto(uint64_t index, ByteSpan sealed_chunk, MutableByteSpan plaintext) const;
  // The checks of OpenChunk without decrypting the chunk: its tag is checked (GHASH only) and
  // only the records' labels are decrypted, to check them against the class count. For a caller
  // that stores the chunk sealed (the runtime receiving an upload). Same errors as OpenChunk.
  Status AuthenticateChunk(uint64_t index, ByteSpan sealed_chunk) const;

  // Sequential use, e.g. while receiving an upload: opens the next chunk in order.
  Result<SecretBytes> OpenNextChunk(ByteSpan sealed_chunk);
  uint64_t next_chunk_index() const { return next_chunk_; }
  // DataLoss unless every chunk was opened by OpenNextChunk (the stream was truncated).
  Status Finish() const;

  // Record `i` of an opened chunk. Preconditions: plaintext came from OpenChunk for a chunk with
  // more than i records.
  Record RecordAt(ByteSpan plaintext, uint64_t i) const;

 private:
  // DataLoss unless `index` is a chunk of this container and `sealed_chunk` has its size; else
  // "dataset <id>: chunk i of n", for the caller's messages.
  Result<std::string> CheckPlace(uint64_t index, ByteSpan sealed_chunk) const;

  DatasetReader(ContainerHeader header, crypto::AeadStreamOpener opener)
      : header_(std::move(header)), opener_(std::move(opener)) {}

  ContainerHeader header_;
  crypto::AeadStreamOpener opener_;
  uint64_t next_chunk_ = 0;
};

// Verifies a complete in-memory container (header, every chunk in order, exact total size) and
// calls `visit` for each record in order. Returns the first error from parsing, authentication
// or `visit`.
Status ReadContainer(ByteSpan key, ByteSpan container,
                     const std::function<Status(const Record&)>& visit);

}  // namespace chiron::dataset
