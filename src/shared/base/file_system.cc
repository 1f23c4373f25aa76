#include "shared/base/file_system.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

namespace chiron {
namespace {

// O_DIRECT alignment (the logical block size of every disk this runs on is at most 4096), and
// the write size from which it pays off (below it, the page cache is cheaper than a wait for
// the device).
constexpr uint64_t kBlock = 4096;
constexpr size_t kDirectWriteMin = size_t{256} << 10;

Status ErrnoStatus(const std::string& what, const std::string& path, int err) {
  std::string msg = what + " '" + path + "': " + std::strerror(err);
  switch (err) {
    case ENOENT: return NotFoundError(msg);
    case EINVAL: return InvalidArgumentError(msg);
    case EACCES:
    case EPERM: return PermissionDeniedError(msg + " (check the file's owner and mode)");
    case ENOSPC:
    case EDQUOT: return ResourceExhaustedError(msg + " (free disk space and retry)");
    default: return InternalError(msg);
  }
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int Release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

std::string DirName(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// pwritev of `pieces` back to back from `offset`, in batches of at most 1024 vectors, resuming
// after short writes. `wrote_any` tells whether any byte went out (before an error).
Status WriteVectors(int fd, const std::string& path, uint64_t offset,
                    const std::vector<ByteSpan>& pieces, bool* wrote_any) {
  std::vector<struct iovec> iov;
  iov.reserve(pieces.size());
  for (ByteSpan piece : pieces) {
    if (!piece.empty()) iov.push_back({const_cast<uint8_t*>(piece.data()), piece.size()});
  }
  size_t next = 0;
  uint64_t position = offset;
  while (next < iov.size()) {
    int count = static_cast<int>(std::min<size_t>(iov.size() - next, 1024));
    ssize_t n = ::pwritev(fd, &iov[next], count, static_cast<off_t>(position));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("cannot write", path, errno);
    }
    *wrote_any = *wrote_any || n > 0;
    position += static_cast<uint64_t>(n);
    size_t written = static_cast<size_t>(n);
    while (next < iov.size() && written >= iov[next].iov_len) {
      written -= iov[next].iov_len;
      ++next;
    }
    if (next < iov.size() && written > 0) {
      iov[next].iov_base = static_cast<uint8_t*>(iov[next].iov_base) + written;
      iov[next].iov_len -= written;
    }
  }
  return Status::Ok();
}

class PosixFileSystem final : public FileSystem {
 public:
  Result<Bytes> ReadFile(const std::string& path, size_t max_size) override {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return ErrnoStatus("cannot open", path, errno);
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return ErrnoStatus("cannot stat", path, errno);
    if (!S_ISREG(st.st_mode)) return InvalidArgumentError("'" + path + "' is not a regular file");
    if (static_cast<uint64_t>(st.st_size) > max_size) {
      return ResourceExhaustedError("'" + path + "' is " + std::to_string(st.st_size) +
                                    " bytes, more than the limit of " +
                                    std::to_string(max_size));
    }
    Bytes out;
    out.reserve(static_cast<size_t>(st.st_size));
    uint8_t buf[65536];
    while (true) {
      ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("cannot read", path, errno);
      }
      if (n == 0) break;
      if (out.size() + static_cast<size_t>(n) > max_size) {
        return ResourceExhaustedError("'" + path + "' grew past the limit of " +
                                      std::to_string(max_size) + " bytes while being read");
      }
      out.insert(out.end(), buf, buf + n);
    }
    return out;
  }

  Status WriteFileAtomic(const std::string& path, ByteSpan data, int mode) override {
    std::string tmp = path + ".tmp." + std::to_string(::getpid());
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
    if (fd.get() < 0) return ErrnoStatus("cannot create", tmp, errno);
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        int err = errno;
        ::unlink(tmp.c_str());
        return ErrnoStatus("cannot write", tmp, err);
      }
      done += static_cast<size_t>(n);
    }
    if (::fsync(fd.get()) != 0) {
      int err = errno;
      ::unlink(tmp.c_str());
      return ErrnoStatus("cannot fsync", tmp, err);
    }
    if (::close(fd.Release()) != 0) {
      int err = errno;
      ::unlink(tmp.c_str());
      return ErrnoStatus("cannot close", tmp, err);
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      int err = errno;
      ::unlink(tmp.c_str());
      return ErrnoStatus("cannot rename into", path, err);
    }
    return SyncDirectory(DirName(path));
  }

  Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return ErrnoStatus("cannot remove", path, errno);
    }
    return Status::Ok();
  }

  Result<bool> Exists(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) return true;
    if (errno == ENOENT) return false;
    return ErrnoStatus("cannot stat", path, errno);
  }

  Status CreateDirectories(const std::string& path, int mode) override {
    if (path.empty()) return InvalidArgumentError("empty directory path");
    size_t pos = 0;
    while (pos != std::string::npos) {
      pos = path.find('/', pos + 1);
      std::string prefix = path.substr(0, pos);
      if (prefix.empty()) continue;
      if (::mkdir(prefix.c_str(), static_cast<mode_t>(mode)) != 0 && errno != EEXIST) {
        return ErrnoStatus("cannot create directory", prefix, errno);
      }
    }
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return ErrnoStatus("cannot stat", path, errno);
    if (!S_ISDIR(st.st_mode)) return FailedPreconditionError("'" + path + "' is not a directory");
    return Status::Ok();
  }

  Result<std::vector<std::string>> ListDirectory(const std::string& path) override {
    DIR* dir = ::opendir(path.c_str());
    if (dir == nullptr) return ErrnoStatus("cannot open directory", path, errno);
    std::vector<std::string> names;
    while (struct dirent* e = ::readdir(dir)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(std::move(name));
    }
    ::closedir(dir);
    std::sort(names.begin(), names.end());
    return names;
  }

  Status SyncDirectory(const std::string& path) override {
    Fd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.get() < 0) return ErrnoStatus("cannot open directory", path, errno);
    if (::fsync(fd.get()) != 0) return ErrnoStatus("cannot fsync directory", path, errno);
    return Status::Ok();
  }

  Status WriteAtDurable(const std::string& path, uint64_t offset,
                        const std::vector<ByteSpan>& pieces, int mode) override {
    bool created = false;
    Result<bool> direct = WriteAtDirect(path, offset, pieces, mode, &created);
    if (!direct.ok()) return direct.status();
    if (*direct) return Status::Ok();
    int raw = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (raw < 0 && errno == ENOENT) {
      raw = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, mode);
      created = true;
    }
    Fd fd(raw);
    if (fd.get() < 0) return ErrnoStatus("cannot open", path, errno);
    bool wrote_any = false;
    CHIRON_RETURN_IF_ERROR(WriteVectors(fd.get(), path, offset, pieces, &wrote_any));
    if (::fdatasync(fd.get()) != 0) return ErrnoStatus("cannot fdatasync", path, errno);
    if (::close(fd.Release()) != 0) return ErrnoStatus("cannot close", path, errno);
    if (created) return SyncDirectory(DirName(path));
    return Status::Ok();
  }

  // Large writes whose offset and pieces are all aligned (the store's dataset segments, fed
  // with AlignedBuffer chunks) bypass the page cache: O_DIRECT from the caller's memory, with no
  // copy into page-cache pages and no write-back later; that copy cost more CPU than the
  // upload's AES passes (upload_bench). Returns false (nothing written) where the file system
  // refuses O_DIRECT (tmpfs) or the pieces are not aligned, for the buffered path to do it.
  // `created_out` is set when this call created the file (also if it then returns false).
  Result<bool> WriteAtDirect(const std::string& path, uint64_t offset,
                             const std::vector<ByteSpan>& pieces, int mode, bool* created_out) {
    auto aligned = [](uint64_t v) { return v % kBlock == 0; };
    size_t total = 0;
    if (!aligned(offset)) return false;
    for (ByteSpan piece : pieces) {
      if (!aligned(reinterpret_cast<uintptr_t>(piece.data())) || !aligned(piece.size())) {
        return false;
      }
      total += piece.size();
    }
    if (total < kDirectWriteMin) return false;
    int raw = ::open(path.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
    if (raw < 0 && errno == ENOENT) {
      raw = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_DIRECT | O_CLOEXEC, mode);
      *created_out = true;  // a file system without O_DIRECT may create it, then refuse
    }
    if (raw < 0 && errno == EINVAL) return false;
    Fd fd(raw);
    if (fd.get() < 0) return ErrnoStatus("cannot open", path, errno);
    bool wrote_any = false;
    Status written = WriteVectors(fd.get(), path, offset, pieces, &wrote_any);
    if (!written.ok() && !wrote_any && written.code() == StatusCode::kInvalidArgument) {
      return false;  // EINVAL on the first write: O_DIRECT not supported after all
    }
    CHIRON_RETURN_IF_ERROR(written);
    // O_DIRECT skips the page cache, not the disk's cache nor the size in the inode: sync both.
    if (::fdatasync(fd.get()) != 0) return ErrnoStatus("cannot fdatasync", path, errno);
    if (::close(fd.Release()) != 0) return ErrnoStatus("cannot close", path, errno);
    if (*created_out) CHIRON_RETURN_IF_ERROR(SyncDirectory(DirName(path)));
    return true;
  }

  Result<Bytes> ReadAt(const std::string& path, uint64_t offset, size_t size) override {
    Bytes out(size);
    CHIRON_RETURN_IF_ERROR(ReadAtInto(path, offset, out));
    return out;
  }

  Status ReadAtInto(const std::string& path, uint64_t offset, MutableByteSpan out) override {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return ErrnoStatus("cannot open", path, errno);
    const size_t size = out.size();
    size_t done = 0;
    while (done < size) {
      ssize_t n = ::pread(fd.get(), out.data() + done, size - done,
                          static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("cannot read", path, errno);
      }
      if (n == 0) {
        return OutOfRangeError("'" + path + "' ends at byte " + std::to_string(offset + done) +
                               ", before the " + std::to_string(size) + " bytes at offset " +
                               std::to_string(offset));
      }
      done += static_cast<size_t>(n);
    }
    return Status::Ok();
  }
};

}  // namespace

Status FileSystem::ReadAtInto(const std::string& path, uint64_t offset, MutableByteSpan out) {
  CHIRON_ASSIGN_OR_RETURN(Bytes bytes, ReadAt(path, offset, out.size()));
  std::copy(bytes.begin(), bytes.end(), out.begin());
  return Status::Ok();
}

FileSystem* FileSystem::Default() {
  static PosixFileSystem* fs = new PosixFileSystem();
  return fs;
}

std::string JoinPath(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  bool a_slash = a.back() == '/';
  bool b_slash = b.front() == '/';
  if (a_slash && b_slash) return a + b.substr(1);
  if (a_slash || b_slash) return a + b;
  return a + "/" + b;
}

}  // namespace chiron
