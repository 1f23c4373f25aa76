// Byte streams for the importers: files, memory buffers and transparent gzip decompression.
//
// Importers read their inputs sequentially through InputStream so that a multi-gigabyte file is
// never held in memory: a gzip file is inflated block by block as samples are pulled. Every error
// names the stream (its file path) so the user knows which file is wrong.
//
// Thread safety: streams are not thread safe.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "shared/base/bytes.h"
#include "shared/base/status.h"

namespace chiron::importers {

class InputStream {
 public:
  virtual ~InputStream() = default;
  // Reads up to out.size() bytes. Returns 0 only at the end of the stream (or for an empty
  // `out`). InvalidArgument for corrupt or truncated compressed data; Internal/NotFound for I/O.
  virtual Result<size_t> Read(MutableByteSpan out) = 0;
  // The name used in error messages (a file path, or a label for in-memory data).
  virtual const std::string& name() const = 0;
};

// Opens a fresh stream over the same bytes each time it is called; importers that need two
// passes (a validation pass, then the streaming pass) take one of these.
using StreamFactory = std::function<Result<std::unique_ptr<InputStream>>()>;

// A file, read with plain read(2). NotFound if it does not exist.
Result<std::unique_ptr<InputStream>> OpenFileStream(const std::string& path);
// A view of `data` (not copied; it must outlive the stream).
std::unique_ptr<InputStream> MemoryStream(ByteSpan data, std::string name);
// If `raw` starts with the gzip magic (1f 8b), returns a stream of its decompressed contents
// (concatenated gzip members are supported, as gunzip does); otherwise returns `raw`'s bytes
// unchanged. A gzip stream that ends early is InvalidArgument "truncated gzip data"; a CRC or
// format error is InvalidArgument "corrupt gzip data".
Result<std::unique_ptr<InputStream>> MaybeDecompress(std::unique_ptr<InputStream> raw);

// Factories for the common cases: a file or a buffer, each decompressed if gzip.
StreamFactory FileFactory(const std::string& path);
StreamFactory MemoryFactory(ByteSpan data, std::string name);

// Reads until `out` is full or the stream ends; returns the number of bytes read.
Result<size_t> ReadFull(InputStream& stream, MutableByteSpan out);
// OK if the stream has no more bytes; otherwise InvalidArgument "<name>: <what>".
Status ExpectEnd(InputStream& stream, std::string_view what);

}  // namespace chiron::importers
