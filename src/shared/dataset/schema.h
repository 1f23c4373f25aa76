// DatasetSchema: what one sample of a dataset looks like, and how many there are.
//
// A dataset is a sequence of labelled samples. Every sample is a dense tensor of one element type
// and one shape (e.g. 28x28 uint8 for Fashion-MNIST, [3, 32, 32] for CIFAR-10, [n] float32 for a
// CSV table); every label is a class index below class_count, stored as u8 or u16.
//
// The schema travels in the dataset container header (docs/formats/dataset.md) in a canonical
// encoding: EncodeSchema(ParseSchema(b)) == b for every b that parses, so the header bytes that
// the chunks' associated data binds have exactly one meaning.
//
// Limits (kMax*) keep a hostile header from asking for absurd allocations; Validate() enforces
// them and every parser calls it.
//
// Thread safety: a plain value.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "shared/base/bytes.h"
#include "shared/base/status.h"

namespace chiron::dataset {

enum class ElementType : uint8_t {
  kUint8 = 1,
  kFloat32 = 2,  // IEEE 754 binary32, little-endian
};

enum class LabelType : uint8_t {
  kUint8 = 1,   // class index in one byte (at most 256 classes)
  kUint16 = 2,  // class index as u16 little-endian (at most 65536 classes)
};

inline constexpr size_t kMaxRank = 4;
inline constexpr uint64_t kMaxSampleSize = uint64_t{16} << 20;  // bytes of one sample
inline constexpr size_t kMaxClasses = 65536;
inline constexpr size_t kMaxClassNameSize = 255;  // bytes of UTF-8
inline constexpr uint64_t kMaxSampleCount = uint64_t{1} << 32;

std::string_view ElementTypeName(ElementType type);  // "uint8", "float32"
size_t ElementSize(ElementType type);                // 1 or 4
std::string_view LabelTypeName(LabelType type);      // "u8", "u16"
size_t LabelSize(LabelType type);                    // 1 or 2
// The smallest label type that can index `class_count` classes.
LabelType LabelTypeFor(size_t class_count);

struct DatasetSchema {
  ElementType element_type = ElementType::kUint8;
  std::vector<uint32_t> shape;  // 1..kMaxRank dimensions, each >= 1
  LabelType label_type = LabelType::kUint8;
  std::vector<std::string> class_names;  // class_count entries, unique, 1..255 printable bytes
  uint64_t sample_count = 0;             // >= 1

  size_t class_count() const { return class_names.size(); }
  // Elements in one sample (product of the shape). Preconditions: Validate() passed.
  uint64_t element_count() const;
  // Bytes of one sample.
  uint64_t sample_size() const { return element_count() * ElementSize(element_type); }
  // Bytes of one stored record: label then sample.
  uint64_t record_size() const { return LabelSize(label_type) + sample_size(); }

  // "28x28 uint8, 10 classes (u8 labels), 60000 samples".
  std::string Describe() const;

  // InvalidArgument naming the first violated rule (empty shape, zero dimension, sample larger
  // than kMaxSampleSize, no classes, duplicate or unprintable class name, label type too small
  // for the class count, no samples, more than kMaxSampleCount samples).
  Status Validate() const;

  friend bool operator==(const DatasetSchema&, const DatasetSchema&) = default;
};

// Canonical encoding (see docs/formats/dataset.md, "Schema"). Preconditions: Validate() passed.
void EncodeSchema(const DatasetSchema& schema, Bytes& out);
// Reads a schema from `reader` and validates it; InvalidArgument names the bad field.
Result<DatasetSchema> ParseSchema(ByteReader& reader);

}  // namespace chiron::dataset
