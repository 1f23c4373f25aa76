#include "shared/dataset/container.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "shared/crypto/aead_stream.h"
#include "shared/crypto/hkdf.h"
#include "shared/crypto/random.h"

namespace chiron::dataset {
namespace {

struct Sample {
  uint32_t label;
  Bytes data;
};

// A container as the writer emitted it, piece by piece.
struct Written {
  Bytes header;
  std::vector<Bytes> chunks;
  std::vector<bool> last_flags;

  Bytes Container() const {
    Bytes out = header;
    for (const Bytes& chunk : chunks) Append(out, chunk);
    return out;
  }
};

Bytes KeyFromSeed(uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes key(kDatasetKeySize);
  for (uint8_t& b : key) b = static_cast<uint8_t>(rng());
  return key;
}

DatasetId IdFromSeed(uint32_t seed) {
  std::mt19937 rng(seed);
  DatasetId id;
  for (uint8_t& b : id) b = static_cast<uint8_t>(rng());
  return id;
}

// 4x3 uint8 samples, 3 classes, 10 samples; with a 40-byte target, 3 records (13 bytes each)
// per chunk: chunks of 3, 3, 3, 1.
DatasetSchema SmallSchema(uint64_t count = 10) {
  DatasetSchema schema;
  schema.shape = {4, 3};
  schema.class_names = {"cat", "dog", "bird"};
  schema.sample_count = count;
  return schema;
}

std::vector<Sample> MakeSamples(const DatasetSchema& schema, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<Sample> samples;
  for (uint64_t i = 0; i < schema.sample_count; ++i) {
    Sample sample;
    sample.label = static_cast<uint32_t>(rng() % schema.class_count());
    sample.data.resize(schema.sample_size());
    for (uint8_t& b : sample.data) b = static_cast<uint8_t>(rng());
    samples.push_back(std::move(sample));
  }
  return samples;
}

Written Write(ByteSpan key, const DatasetId& id, const DatasetSchema& schema,
              const std::vector<Sample>& samples, uint64_t target_chunk_size = 40) {
  Written written;
  ContainerSink sink = [&](const ContainerPiece& piece) {
    if (piece.kind == ContainerPiece::Kind::kHeader) {
      EXPECT_TRUE(written.chunks.empty());
      written.header.assign(piece.bytes.begin(), piece.bytes.end());
    } else {
      EXPECT_EQ(piece.chunk_index, written.chunks.size());
      written.chunks.emplace_back(piece.bytes.begin(), piece.bytes.end());
      written.last_flags.push_back(piece.last);
    }
    return Status::Ok();
  };
  DatasetWriterOptions options;
  options.target_chunk_size = target_chunk_size;
  auto writer = DatasetWriter::Create(key, id, schema, sink, options);
  EXPECT_TRUE(writer.ok()) << writer.status().ToString();
  if (!writer.ok()) return written;
  EXPECT_FALSE(written.header.empty()) << "the header is sent from Create";
  for (const Sample& sample : samples) {
    Status status = (*writer)->Add(sample.label, sample.data);
    EXPECT_TRUE(status.ok()) << status.ToString();
  }
  Status finished = (*writer)->Finish();
  EXPECT_TRUE(finished.ok()) << finished.ToString();
  return written;
}

std::vector<Sample> ReadAll(ByteSpan key, ByteSpan container, Status* status) {
  std::vector<Sample> out;
  *status = ReadContainer(key, container, [&](const Record& record) {
    out.push_back({record.label, Bytes(record.sample.begin(), record.sample.end())});
    return Status::Ok();
  });
  return out;
}

void ExpectSame(const std::vector<Sample>& a, const std::vector<Sample>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].label, b[i].label) << "sample " << i;
    EXPECT_EQ(a[i].data, b[i].data) << "sample " << i;
  }
}

void ExpectError(const Status& status, StatusCode code, std::string_view needle) {
  EXPECT_EQ(status.code(), code) << status.ToString();
  EXPECT_NE(status.message().find(needle), std::string::npos) << status.ToString();
}

class ContainerTest : public ::testing::Test {
 protected:
  Bytes key_ = KeyFromSeed(1);
  DatasetId id_ = IdFromSeed(2);
  DatasetSchema schema_ = SmallSchema();
  std::vector<Sample> samples_ = MakeSamples(schema_, 3);
  Written written_ = Write(key_, id_, schema_, samples_);
};

TEST_F(ContainerTest, LayoutFollowsFromTheHeader) {
  ASSERT_EQ(written_.chunks.size(), 4u);
  EXPECT_EQ(written_.last_flags, (std::vector<bool>{false, false, false, true}));
  auto header = ParseContainerHeader(written_.header);
  ASSERT_TRUE(header.ok()) << header.status().ToString();
  EXPECT_EQ(header->header_size(), written_.header.size());
  EXPECT_EQ(header->dataset_id, id_);
  EXPECT_EQ(header->schema, schema_);
  EXPECT_EQ(header->samples_per_chunk, 3u);
  EXPECT_EQ(header->chunk_count(), 4u);
  EXPECT_EQ(header->samples_in_chunk(3), 1u);
  Bytes container = written_.Container();
  EXPECT_EQ(header->container_size(), container.size());
  uint64_t offset = written_.header.size();
  for (uint64_t i = 0; i < 4; ++i) {
    EXPECT_EQ(header->chunk_offset(i), offset);
    EXPECT_EQ(header->sealed_chunk_size(i), written_.chunks[i].size());
    offset += written_.chunks[i].size();
  }
  auto peeked = PeekHeaderSize(ByteSpan(container).first(kHeaderPrefixSize));
  ASSERT_TRUE(peeked.ok());
  EXPECT_EQ(*peeked, written_.header.size());
}

TEST_F(ContainerTest, RoundTripsInOrderAndByRandomAccess) {
  Status status;
  ExpectSame(ReadAll(key_, written_.Container(), &status), samples_);
  ASSERT_TRUE(status.ok()) << status.ToString();

  auto reader = DatasetReader::Open(key_, written_.header);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  auto chunk = reader->OpenChunk(2, written_.chunks[2]);
  ASSERT_TRUE(chunk.ok()) << chunk.status().ToString();
  for (uint64_t i = 0; i < 3; ++i) {
    Record record = reader->RecordAt(chunk->span(), i);
    EXPECT_EQ(record.label, samples_[6 + i].label);
    EXPECT_EQ(Bytes(record.sample.begin(), record.sample.end()), samples_[6 + i].data);
  }
}

TEST_F(ContainerTest, CiphertextHidesTheSamples) {
  Bytes container = written_.Container();
  std::string haystack(container.begin(), container.end());
  for (const Sample& sample : samples_) {
    EXPECT_EQ(haystack.find(std::string(sample.data.begin(), sample.data.end())),
              std::string::npos);
  }
}

TEST(ContainerRoundTripTest, Float32SamplesWithU16LabelsAndOneRecordPerChunk) {
  DatasetSchema schema;
  schema.element_type = ElementType::kFloat32;
  schema.shape = {2, 2, 5};
  schema.label_type = LabelType::kUint16;
  for (int i = 0; i < 300; ++i) schema.class_names.push_back("class " + std::to_string(i));
  schema.sample_count = 7;
  std::vector<Sample> samples = MakeSamples(schema, 9);
  Bytes key = KeyFromSeed(10);
  Written written = Write(key, IdFromSeed(11), schema, samples, /*target_chunk_size=*/1);
  EXPECT_EQ(written.chunks.size(), 7u);
  Status status;
  ExpectSame(ReadAll(key, written.Container(), &status), samples);
  EXPECT_TRUE(status.ok()) << status.ToString();
}

TEST(ContainerRoundTripTest, RealRandomKeyAndIdAndDefaultChunking) {
  auto key = crypto::RandomBytes(kDatasetKeySize);
  auto id = NewDatasetId();
  ASSERT_TRUE(key.ok() && id.ok());
  DatasetSchema schema = SmallSchema(5000);
  std::vector<Sample> samples = MakeSamples(schema, 12);
  Written written = Write(*key, *id, schema, samples, kDefaultChunkTargetSize);
  EXPECT_EQ(written.chunks.size(), 1u);  // 65 kB fit one 1 MiB chunk
  Status status;
  ExpectSame(ReadAll(*key, written.Container(), &status), samples);
  EXPECT_TRUE(status.ok()) << status.ToString();
}

TEST_F(ContainerTest, TamperedHeaderByteIsRejectedAtEveryOffset) {
  Bytes container = written_.Container();
  for (size_t i = 0; i < written_.header.size(); ++i) {
    for (uint8_t flip : {0x01, 0x80}) {
      Bytes tampered = container;
      tampered[i] ^= flip;
      Status status;
      ReadAll(key_, tampered, &status);
      EXPECT_FALSE(status.ok()) << "flipping header byte " << i << " went unnoticed";
      EXPECT_TRUE(status.code() == StatusCode::kInvalidArgument ||
                  status.code() == StatusCode::kDataLoss)
          << status.ToString();
      EXPECT_FALSE(status.message().empty());
    }
  }
}

TEST_F(ContainerTest, TamperedHeaderFieldsGiveSpecificErrors) {
  auto check = [&](size_t offset, StatusCode code, std::string_view needle) {
    Bytes tampered = written_.header;
    tampered[offset] ^= 0x01;
    auto reader = DatasetReader::Open(key_, tampered);
    ASSERT_FALSE(reader.ok()) << "offset " << offset;
    ExpectError(reader.status(), code, needle);
  };
  check(0, StatusCode::kInvalidArgument, "bad magic");
  check(8, StatusCode::kInvalidArgument, "version");
  check(10, StatusCode::kInvalidArgument, "header");
  check(14, StatusCode::kDataLoss, "wrong key");              // dataset id: keys differ
  check(30, StatusCode::kDataLoss, "wrong key");              // key check
  check(46, StatusCode::kDataLoss, "header authentication");  // samples per chunk
  check(50, StatusCode::kInvalidArgument, "element type");    // schema element type 1 -> 0
  check(written_.header.size() - 39, StatusCode::kDataLoss, "header authentication");  // nonce
  check(written_.header.size() - 1, StatusCode::kDataLoss, "header authentication");   // tag
}

TEST_F(ContainerTest, TamperedChunkByteIsRejected) {
  auto reader = DatasetReader::Open(key_, written_.header);
  ASSERT_TRUE(reader.ok());
  for (size_t chunk = 0; chunk < written_.chunks.size(); ++chunk) {
    for (size_t i = 0; i < written_.chunks[chunk].size(); ++i) {
      Bytes tampered = written_.chunks[chunk];
      tampered[i] ^= 0x04;
      auto opened = reader->OpenChunk(chunk, tampered);
      ASSERT_FALSE(opened.ok());
      ExpectError(opened.status(), StatusCode::kDataLoss, "failed authentication");
    }
  }
}

// AuthenticateChunk (tag only, labels decrypted) must judge every chunk exactly as OpenChunk.
TEST_F(ContainerTest, AuthenticateChunkAgreesWithOpenChunk) {
  auto reader = DatasetReader::Open(key_, written_.header);
  ASSERT_TRUE(reader.ok());
  for (size_t chunk = 0; chunk < written_.chunks.size(); ++chunk) {
    EXPECT_TRUE(reader->AuthenticateChunk(chunk, written_.chunks[chunk]).ok());
    for (size_t i = 0; i < written_.chunks[chunk].size(); ++i) {
      Bytes tampered = written_.chunks[chunk];
      tampered[i] ^= 0x10;
      Status status = reader->AuthenticateChunk(chunk, tampered);
      ExpectError(status, StatusCode::kDataLoss, "failed authentication");
    }
    // At another index, and cut short.
    size_t other = (chunk + 1) % written_.chunks.size();
    if (written_.chunks[other].size() == written_.chunks[chunk].size()) {
      EXPECT_EQ(reader->AuthenticateChunk(other, written_.chunks[chunk]).code(),
                StatusCode::kDataLoss);
    }
    Bytes cut(written_.chunks[chunk].begin(), written_.chunks[chunk].end() - 1);
    EXPECT_EQ(reader->AuthenticateChunk(chunk, cut).code(), StatusCode::kDataLoss);
  }
  EXPECT_EQ(reader->AuthenticateChunk(99, written_.chunks[0]).code(), StatusCode::kDataLoss);
}

// A chunk sealed correctly under the dataset's keys but carrying a label past the class table
// (an owner's client that skips DatasetWriter's check): both ways of opening it refuse it.
TEST_F(ContainerTest, OutOfRangeLabelInAProperlySealedChunkIsRefused) {
  auto reader = DatasetReader::Open(key_, written_.header);
  ASSERT_TRUE(reader.ok());
  const ContainerHeader& header = reader->header();
  auto plain = reader->OpenChunk(0, written_.chunks[0]);
  ASSERT_TRUE(plain.ok());
  Bytes forged_plain(plain->span().begin(), plain->span().end());
  forged_plain[header.schema.record_size()] = static_cast<uint8_t>(header.schema.class_count());
  auto chunk_key = crypto::Hkdf(crypto::HashAlgorithm::kSha256, key_, header.dataset_id,
                                AsBytes("chiron dataset v1 chunk key"), 32);
  ASSERT_TRUE(chunk_key.ok());
  auto sealer = crypto::AeadStreamSealer::CreateWithNoncePrefixForTesting(
      chunk_key->span(), header.stream_aad(), header.nonce_prefix);
  ASSERT_TRUE(sealer.ok());
  auto forged = sealer->SealChunk(forged_plain, /*last=*/header.chunk_count() == 1);
  ASSERT_TRUE(forged.ok());
  // The control: the same sealer over the real plaintext reproduces the real chunk.
  auto control = crypto::AeadStreamSealer::CreateWithNoncePrefixForTesting(
      chunk_key->span(), header.stream_aad(), header.nonce_prefix);
  ASSERT_TRUE(control.ok());
  EXPECT_EQ(*control->SealChunk(plain->span(), header.chunk_count() == 1), written_.chunks[0]);

  ExpectError(reader->AuthenticateChunk(0, *forged), StatusCode::kInvalidArgument,
              "record 1: label");
  auto opened = reader->OpenChunk(0, *forged);
  ASSERT_FALSE(opened.ok());
  ExpectError(opened.status(), StatusCode::kInvalidArgument, "record 1: label");
}

TEST_F(ContainerTest, ReorderedChunksAreRejected) {
  Written swapped = written_;
  std::swap(swapped.chunks[0], swapped.chunks[1]);
  Status status;
  ReadAll(key_, swapped.Container(), &status);
  ExpectError(status, StatusCode::kDataLoss, "chunk 0 of 4 failed authentication");

  auto reader = DatasetReader::Open(key_, written_.header);
  ASSERT_TRUE(reader.ok());
  EXPECT_FALSE(reader->OpenChunk(2, written_.chunks[1]).ok());
}

TEST_F(ContainerTest, DroppedFinalChunkIsDetected) {
  Written truncated = written_;
  truncated.chunks.pop_back();
  Status status;
  ReadAll(key_, truncated.Container(), &status);
  ExpectError(status, StatusCode::kDataLoss, "truncated");

  // A sequential reader that sees the stream end early refuses to finish.
  auto reader = DatasetReader::Open(key_, written_.header);
  ASSERT_TRUE(reader.ok());
  for (const Bytes& chunk : truncated.chunks) ASSERT_TRUE(reader->OpenNextChunk(chunk).ok());
  ExpectError(reader->Finish(), StatusCode::kDataLoss, "3 of 4 chunks");
}

TEST(ContainerTruncationTest, EvenlySizedChunksCannotPassAsTheLastOne) {
  // 9 samples in chunks of 3: every chunk has the same size, so only the last flag tells the
  // final chunk apart. Presenting chunk 1 as the final chunk must fail.
  DatasetSchema schema = SmallSchema(9);
  std::vector<Sample> samples = MakeSamples(schema, 4);
  Bytes key = KeyFromSeed(5);
  Written written = Write(key, IdFromSeed(6), schema, samples);
  ASSERT_EQ(written.chunks.size(), 3u);
  auto reader = DatasetReader::Open(key, written.header);
  ASSERT_TRUE(reader.ok());
  auto opened = reader->OpenChunk(2, written.chunks[1]);
  ExpectError(opened.status(), StatusCode::kDataLoss, "chunk 2 of 3 failed authentication");
}

TEST_F(ContainerTest, ExtraBytesAndExtraChunksAreDetected) {
  Bytes extended = written_.Container();
  extended.push_back(0);
  Status status;
  ReadAll(key_, extended, &status);
  ExpectError(status, StatusCode::kDataLoss, "unexpected byte(s) after its last chunk");

  auto reader = DatasetReader::Open(key_, written_.header);
  ASSERT_TRUE(reader.ok());
  ExpectError(reader->OpenChunk(4, written_.chunks[3]).status(), StatusCode::kDataLoss,
              "past the last chunk");
}

TEST_F(ContainerTest, ChunkSplicedFromAnotherDatasetWithTheSameKeyIsRejected) {
  // Same key, same schema, different id (and nonce prefix): chunk 1 of B must not pass in A.
  std::vector<Sample> other_samples = MakeSamples(schema_, 77);
  Written other = Write(key_, IdFromSeed(99), schema_, other_samples);
  Written spliced = written_;
  spliced.chunks[1] = other.chunks[1];
  Status status;
  ReadAll(key_, spliced.Container(), &status);
  ExpectError(status, StatusCode::kDataLoss, "chunk 1 of 4 failed authentication");

  // Even with the same dataset id (a re-upload), the fresh nonce prefix separates the streams.
  Written same_id = Write(key_, id_, schema_, other_samples);
  spliced = written_;
  spliced.chunks[2] = same_id.chunks[2];
  ReadAll(key_, spliced.Container(), &status);
  ExpectError(status, StatusCode::kDataLoss, "chunk 2 of 4 failed authentication");

  // And B's header in front of A's chunks fails on the first chunk.
  spliced = written_;
  spliced.header = other.header;
  ReadAll(key_, spliced.Container(), &status);
  ExpectError(status, StatusCode::kDataLoss, "chunk 0 of 4 failed authentication");
}

TEST_F(ContainerTest, WrongKeyIsReportedAsSuch) {
  Status status;
  ReadAll(KeyFromSeed(1234), written_.Container(), &status);
  ExpectError(status, StatusCode::kDataLoss, "wrong key");
  ExpectError(DatasetReader::Open(Bytes(16, 0), written_.header).status(),
              StatusCode::kInvalidArgument, "must be 32 bytes");
}

TEST_F(ContainerTest, TruncatedHeaderAndWrongSizedChunksAreRejected) {
  Bytes container = written_.Container();
  for (size_t size = 0; size < written_.header.size(); ++size) {
    Status status;
    ReadAll(key_, ByteSpan(container).first(size), &status);
    EXPECT_FALSE(status.ok()) << size;
  }
  auto reader = DatasetReader::Open(key_, written_.header);
  ASSERT_TRUE(reader.ok());
  Bytes shorter = written_.chunks[0];
  shorter.pop_back();
  ExpectError(reader->OpenChunk(0, shorter).status(), StatusCode::kDataLoss, "must have");
}

// A resumed upload re-creates the interrupted container from unchanged input: with the header's
// nonce prefix the writer reproduces every byte, so chunks sent before and after the break fit
// together; a fresh writer (no prefix) does not.
TEST(DatasetWriterTest, ResealWithTheHeadersNoncePrefixReproducesTheContainer) {
  Bytes key = KeyFromSeed(7);
  DatasetId id = IdFromSeed(8);
  DatasetSchema schema = SmallSchema();
  auto samples = MakeSamples(schema, 9);
  Written first = Write(key, id, schema, samples);
  auto header = ParseContainerHeader(first.header);
  ASSERT_TRUE(header.ok()) << header.status().ToString();

  Written again;
  DatasetWriterOptions options;
  options.target_chunk_size = 40;
  options.reseal_nonce_prefix = header->nonce_prefix;
  auto writer = DatasetWriter::Create(
      key, id, schema,
      [&](const ContainerPiece& piece) {
        if (piece.kind == ContainerPiece::Kind::kHeader) {
          again.header.assign(piece.bytes.begin(), piece.bytes.end());
        } else {
          again.chunks.emplace_back(piece.bytes.begin(), piece.bytes.end());
        }
        return Status::Ok();
      },
      options);
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  for (const Sample& sample : samples) ASSERT_TRUE((*writer)->Add(sample.label, sample.data).ok());
  ASSERT_TRUE((*writer)->Finish().ok());
  EXPECT_EQ(again.header, first.header);
  EXPECT_EQ(again.chunks, first.chunks);

  Written fresh = Write(key, id, schema, samples);
  EXPECT_NE(fresh.header, first.header);

  options.reseal_nonce_prefix = Bytes(3, 0);
  auto bad = DatasetWriter::Create(
      key, id, schema, [](const ContainerPiece&) { return Status::Ok(); }, options);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("nonce prefix"), std::string::npos);
}

TEST(DatasetWriterTest, RejectsMisuseWithClearErrors) {
  DatasetSchema schema = SmallSchema(2);
  Bytes key = KeyFromSeed(1);
  ContainerSink sink = [](const ContainerPiece&) { return Status::Ok(); };
  auto writer = DatasetWriter::Create(key, IdFromSeed(2), schema, sink);
  ASSERT_TRUE(writer.ok());
  ExpectError((*writer)->Add(0, Bytes(11)), StatusCode::kInvalidArgument, "schema needs 12");
  ExpectError((*writer)->Add(3, Bytes(12)), StatusCode::kInvalidArgument, "only 3 classes");
  ASSERT_TRUE((*writer)->Add(0, Bytes(12)).ok());
  ExpectError((*writer)->Finish(), StatusCode::kFailedPrecondition, "declares 2");

  writer = DatasetWriter::Create(key, IdFromSeed(2), schema, sink);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Add(0, Bytes(12)).ok());
  ASSERT_TRUE((*writer)->Add(1, Bytes(12)).ok());
  ExpectError((*writer)->Add(1, Bytes(12)), StatusCode::kFailedPrecondition, "already added");
  EXPECT_TRUE((*writer)->Finish().ok());

  EXPECT_FALSE(DatasetWriter::Create(Bytes(31), IdFromSeed(2), schema, sink).ok());
  DatasetSchema empty = schema;
  empty.sample_count = 0;
  ExpectError(DatasetWriter::Create(key, IdFromSeed(2), empty, sink).status(),
              StatusCode::kInvalidArgument, "no samples");
}

TEST(DatasetWriterTest, SinkErrorStopsTheWriter) {
  DatasetSchema schema = SmallSchema(4);
  int calls = 0;
  ContainerSink sink = [&](const ContainerPiece& piece) {
    ++calls;
    if (piece.kind == ContainerPiece::Kind::kChunk) return UnavailableError("connection lost");
    return Status::Ok();
  };
  DatasetWriterOptions options;
  options.target_chunk_size = 13;
  auto writer = DatasetWriter::Create(KeyFromSeed(1), IdFromSeed(2), schema, sink, options);
  ASSERT_TRUE(writer.ok());
  ExpectError((*writer)->Add(0, Bytes(12)), StatusCode::kUnavailable, "connection lost");
  ExpectError((*writer)->Add(0, Bytes(12)), StatusCode::kFailedPrecondition, "earlier error");
  EXPECT_EQ(calls, 2);
}

}  // namespace
}  // namespace chiron::dataset
