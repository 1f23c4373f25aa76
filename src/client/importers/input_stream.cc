#include "client/importers/input_stream.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>

#include "shared/base/secret.h"

namespace chiron::importers {
namespace {

constexpr size_t kBufferSize = 64 * 1024;

class FileStream : public InputStream {
 public:
  FileStream(int fd, std::string path) : fd_(fd), name_(std::move(path)) {}
  ~FileStream() override { ::close(fd_); }

  Result<size_t> Read(MutableByteSpan out) override {
    while (true) {
      ssize_t got = ::read(fd_, out.data(), out.size());
      if (got >= 0) return static_cast<size_t>(got);
      if (errno == EINTR) continue;
      return InternalError(name_ + ": read failed: " + std::strerror(errno));
    }
  }
  const std::string& name() const override { return name_; }

 private:
  int fd_;
  std::string name_;
};

class BufferStream : public InputStream {
 public:
  BufferStream(ByteSpan data, std::string name) : data_(data), name_(std::move(name)) {}

  Result<size_t> Read(MutableByteSpan out) override {
    size_t count = std::min(out.size(), data_.size() - offset_);
    if (count > 0) std::memcpy(out.data(), data_.data() + offset_, count);
    offset_ += count;
    return count;
  }
  const std::string& name() const override { return name_; }

 private:
  ByteSpan data_;
  size_t offset_ = 0;
  std::string name_;
};

// Serves the bytes already read from `raw` while sniffing the format, then reads `raw` directly
// (plain input) or inflates it (gzip input).
class SniffedStream : public InputStream {
 public:
  SniffedStream(std::unique_ptr<InputStream> raw, Bytes buffer, size_t filled, bool gzip)
      : raw_(std::move(raw)), buffer_(std::move(buffer)), filled_(filled), gzip_(gzip) {}

  ~SniffedStream() override {
    if (inflating_) inflateEnd(&zs_);
    SecureZero(buffer_.data(), buffer_.size());  // plain input is owner data too
  }

  Status Init() {
    if (!gzip_) return Status::Ok();
    std::memset(&zs_, 0, sizeof(zs_));
    // 16 + MAX_WBITS: gzip wrapper only, so a zlib or raw stream is reported as corrupt.
    if (inflateInit2(&zs_, 16 + MAX_WBITS) != Z_OK) {
      return InternalError(raw_->name() + ": zlib initialisation failed");
    }
    inflating_ = true;
    zs_.next_in = buffer_.data();
    zs_.avail_in = static_cast<uInt>(filled_);
    return Status::Ok();
  }

  Result<size_t> Read(MutableByteSpan out) override {
    if (out.empty()) return size_t{0};
    if (!gzip_) {
      // Buffered, so that importers reading one small record at a time do not pay a system
      // call per record.
      if (consumed_ == filled_) {
        if (out.size() >= buffer_.size()) return raw_->Read(out);
        CHIRON_ASSIGN_OR_RETURN(filled_, raw_->Read(MutableByteSpan(buffer_)));
        consumed_ = 0;
        if (filled_ == 0) return size_t{0};
      }
      size_t count = std::min(out.size(), filled_ - consumed_);
      std::memcpy(out.data(), buffer_.data() + consumed_, count);
      consumed_ += count;
      return count;
    }
    // Inflate in large blocks: zlib's fast path needs room for a whole match, and importers
    // often ask for one small record at a time.
    if (decoded_pos_ == decoded_fill_) {
      if (out.size() >= decoded_.size()) return Inflate(out);
      CHIRON_ASSIGN_OR_RETURN(decoded_fill_, Inflate(decoded_.mutable_span()));
      decoded_pos_ = 0;
      if (decoded_fill_ == 0) return size_t{0};
    }
    size_t count = std::min(out.size(), decoded_fill_ - decoded_pos_);
    std::memcpy(out.data(), decoded_.data() + decoded_pos_, count);
    decoded_pos_ += count;
    return count;
  }
  const std::string& name() const override { return raw_->name(); }

 private:
  Result<size_t> Inflate(MutableByteSpan out) {
    size_t produced = 0;
    while (produced == 0) {
      if (zs_.avail_in == 0 && !raw_eof_) {
        CHIRON_ASSIGN_OR_RETURN(size_t got, raw_->Read(MutableByteSpan(buffer_)));
        if (got == 0) raw_eof_ = true;
        zs_.next_in = buffer_.data();
        zs_.avail_in = static_cast<uInt>(got);
      }
      if (member_ended_) {
        // Between members: the end of input is a clean end; anything else must be a new member.
        if (zs_.avail_in == 0 && raw_eof_) return size_t{0};
        if (zs_.avail_in == 0) continue;
        if (inflateReset(&zs_) != Z_OK) return InternalError(name() + ": zlib reset failed");
        member_ended_ = false;
      }
      if (zs_.avail_in == 0 && raw_eof_) {
        return InvalidArgumentError(name() +
                                    ": truncated gzip data: the file ends before the end of the "
                                    "compressed stream; the file is incomplete, download it again");
      }
      zs_.next_out = out.data();
      zs_.avail_out = static_cast<uInt>(std::min<size_t>(out.size(), 1u << 30));
      int rc = inflate(&zs_, Z_NO_FLUSH);
      produced = static_cast<size_t>(zs_.next_out - out.data());
      if (rc == Z_STREAM_END) {
        member_ended_ = true;
      } else if (rc == Z_BUF_ERROR) {
        // No progress possible without more input; loop to read more (or report truncation).
        if (zs_.avail_in != 0) return InternalError(name() + ": zlib made no progress");
      } else if (rc != Z_OK) {
        return InvalidArgumentError(
            name() + ": corrupt gzip data (" +
            (zs_.msg != nullptr ? std::string(zs_.msg) : "zlib error " + std::to_string(rc)) + ")");
      }
    }
    return produced;
  }

  std::unique_ptr<InputStream> raw_;
  Bytes buffer_;
  size_t filled_;
  size_t consumed_ = 0;
  bool gzip_;
  z_stream zs_;
  bool inflating_ = false;
  bool raw_eof_ = false;
  bool member_ended_ = false;
  // Decompressed bytes not yet returned: owner data, so zeroed on release.
  SecretBytes decoded_{kBufferSize};
  size_t decoded_pos_ = 0;
  size_t decoded_fill_ = 0;
};

}  // namespace

Result<std::unique_ptr<InputStream>> OpenFileStream(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int error = errno;
    std::string message = path + ": cannot open: " + std::strerror(error);
    if (error == ENOENT) return NotFoundError(message);
    if (error == EACCES) return PermissionDeniedError(message);
    return InvalidArgumentError(message);
  }
  return std::unique_ptr<InputStream>(new FileStream(fd, path));
}

std::unique_ptr<InputStream> MemoryStream(ByteSpan data, std::string name) {
  return std::make_unique<BufferStream>(data, std::move(name));
}

Result<std::unique_ptr<InputStream>> MaybeDecompress(std::unique_ptr<InputStream> raw) {
  Bytes buffer(kBufferSize);
  // Fill at least the two magic bytes (a read may return fewer than asked).
  size_t filled = 0;
  while (filled < 2) {
    CHIRON_ASSIGN_OR_RETURN(size_t got, raw->Read(MutableByteSpan(buffer).subspan(filled)));
    if (got == 0) break;
    filled += got;
  }
  bool gzip = filled >= 2 && buffer[0] == 0x1f && buffer[1] == 0x8b;
  auto stream = std::make_unique<SniffedStream>(std::move(raw), std::move(buffer), filled, gzip);
  CHIRON_RETURN_IF_ERROR(stream->Init());
  return std::unique_ptr<InputStream>(std::move(stream));
}

StreamFactory FileFactory(const std::string& path) {
  return [path]() -> Result<std::unique_ptr<InputStream>> {
    CHIRON_ASSIGN_OR_RETURN(std::unique_ptr<InputStream> raw, OpenFileStream(path));
    return MaybeDecompress(std::move(raw));
  };
}

StreamFactory MemoryFactory(ByteSpan data, std::string name) {
  return [data, name]() { return MaybeDecompress(MemoryStream(data, name)); };
}

Result<size_t> ReadFull(InputStream& stream, MutableByteSpan out) {
  size_t filled = 0;
  while (filled < out.size()) {
    CHIRON_ASSIGN_OR_RETURN(size_t got, stream.Read(out.subspan(filled)));
    if (got == 0) break;
    filled += got;
  }
  return filled;
}

Status ExpectEnd(InputStream& stream, std::string_view what) {
  uint8_t byte;
  CHIRON_ASSIGN_OR_RETURN(size_t got, stream.Read(MutableByteSpan(&byte, 1)));
  if (got != 0) return InvalidArgumentError(stream.name() + ": " + std::string(what));
  return Status::Ok();
}

}  // namespace chiron::importers
