// Helpers shared by the store's tests: temporary directories, test containers, raw catalog
// access (to play the hostile host) and byte scans of the state directory.
#pragma once

#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "runtime/store/store.h"
#include "shared/base/aligned_buffer.h"
#include "shared/base/bytes.h"
#include "shared/dataset/container.h"

namespace chiron::store::testing {

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "chiron-store-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline Bytes SeededBytes(uint32_t seed, size_t size) {
  std::mt19937 rng(seed);
  Bytes out(size);
  for (uint8_t& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

// A container exactly as the owner's client emits it.
struct TestContainer {
  Bytes key;
  Bytes header;
  std::vector<Bytes> chunks;
  std::string id;  // hex

  Bytes Whole() const {
    Bytes out = header;
    for (const Bytes& c : chunks) Append(out, c);
    return out;
  }
  // The dataset's segment file as the store lays it out (docs/store.md): each chunk in its slot,
  // zeros after it up to the next multiple of 4096 bytes.
  Bytes Segment() const {
    Bytes out;
    for (const Bytes& c : chunks) {
      Append(out, c);
      out.resize(AlignedBuffer::RoundUp(out.size()), 0);
    }
    return out;
  }
};

// `sample_count` samples of 8 uint8 elements, 3 classes; 4 records (9 bytes each) per chunk.
inline TestContainer MakeContainer(uint32_t seed, uint64_t sample_count = 22) {
  TestContainer out;
  out.key = SeededBytes(seed, dataset::kDatasetKeySize);
  dataset::DatasetId id;
  Bytes id_bytes = SeededBytes(seed + 1000, id.size());
  std::copy(id_bytes.begin(), id_bytes.end(), id.begin());
  out.id = dataset::DatasetIdHex(id);
  dataset::DatasetSchema schema;
  schema.shape = {8};
  schema.class_names = {"alpha", "beta", "gamma"};
  schema.sample_count = sample_count;
  auto sink = [&out](const dataset::ContainerPiece& piece) -> Status {
    Bytes bytes(piece.bytes.begin(), piece.bytes.end());
    if (piece.kind == dataset::ContainerPiece::Kind::kHeader) {
      out.header = std::move(bytes);
    } else {
      out.chunks.push_back(std::move(bytes));
    }
    return Status::Ok();
  };
  dataset::DatasetWriterOptions options;
  options.target_chunk_size = 36;
  auto writer = dataset::DatasetWriter::Create(out.key, id, schema, sink, options);
  EXPECT_TRUE(writer.ok()) << writer.status().ToString();
  std::mt19937 rng(seed + 2000);
  for (uint64_t i = 0; i < sample_count; ++i) {
    Bytes sample(8);
    for (uint8_t& b : sample) b = static_cast<uint8_t>(rng());
    EXPECT_TRUE((*writer)->Add(static_cast<uint32_t>(i % 3), sample).ok());
  }
  EXPECT_TRUE((*writer)->Finish().ok());
  return out;
}

// Runs SQL on the catalog directly, as a hostile host would (the store must be closed).
inline void ExecSql(const std::string& dir, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir + "/catalog.db").c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  EXPECT_EQ(rc, SQLITE_OK) << (error ? error : "") << " in " << sql;
  sqlite3_free(error);
  sqlite3_close(db);
}

// The first column of the first row of a query, as bytes.
inline Bytes QueryBlob(const std::string& dir, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2((dir + "/catalog.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr),
            SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK) << sql;
  Bytes out;
  if (sqlite3_step(stmt) == SQLITE_ROW) {
    const uint8_t* data = static_cast<const uint8_t*>(sqlite3_column_blob(stmt, 0));
    out.assign(data, data + sqlite3_column_bytes(stmt, 0));
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return out;
}

inline Bytes ReadWholeFile(const std::string& path) {
  Result<Bytes> bytes = FileSystem::Default()->ReadFile(path, size_t{1} << 30);
  EXPECT_TRUE(bytes.ok()) << bytes.status().ToString();
  return bytes.ok() ? *bytes : Bytes();
}

inline void WriteWholeFile(const std::string& path, ByteSpan data) {
  ASSERT_TRUE(FileSystem::Default()->WriteFileAtomic(path, data, 0600).ok());
}

// Every regular file under `dir` (recursively) that contains `needle`.
inline std::vector<std::string> FilesContaining(const std::string& dir, ByteSpan needle) {
  std::vector<std::string> hits;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    Bytes content = ReadWholeFile(entry.path().string());
    if (std::search(content.begin(), content.end(), needle.begin(), needle.end()) !=
        content.end()) {
      hits.push_back(entry.path().string());
    }
  }
  return hits;
}

inline std::vector<std::string> ListBlobFiles(const std::string& dir) {
  Result<std::vector<std::string>> names = FileSystem::Default()->ListDirectory(dir + "/blobs");
  EXPECT_TRUE(names.ok());
  return names.ok() ? *names : std::vector<std::string>();
}

}  // namespace chiron::store::testing
