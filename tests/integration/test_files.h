// Input files the integration tests make: generated IDX datasets and slices of Debian's
// Fashion-MNIST, shared so that each test does not carry its own copy of the format code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace chiron::testing {

// Appends `v` big-endian (the IDX header's byte order).
void AppendU32Be(std::string& out, uint32_t v);

// Writes DIR/STEM-images-idx3-ubyte and DIR/STEM-labels-idx1-ubyte: `count` seeded random 28x28
// images and labels 0..9, uncompressed. Returns the images path.
std::string WriteGeneratedIdx(const std::string& dir, const std::string& stem, uint32_t count,
                              uint32_t seed);

// The first `count` records of a gzip IDX file (a header of `header_size` bytes, then
// `item_size` bytes per record), without the header. Empty on error.
std::string ReadGzipRecords(const std::string& path, size_t header_size, size_t item_size,
                            uint32_t count);

// Writes "<dir>/fashion-<stem>-images-idx3-ubyte" and its labels file (plain IDX) with the first
// `count` samples of Debian's Fashion-MNIST `source` ("train" or "t10k"). "fashion" in the name
// makes the importer name the classes (T-shirt/top, Trouser, ...). Returns the images path, or
// empty if the dataset is not installed.
std::string WriteFashionSubset(const std::string& dir, const std::string& source,
                               const std::string& stem, uint32_t count);

}  // namespace chiron::testing
