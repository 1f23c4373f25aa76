// FileSystem: the seam between Chiron and the disk.
//
// Everything that persists state goes through this interface so tests can inject faults (disk
// full, failed fsync, crash between steps) the way leveldb's Env does. The default instance is
// the real POSIX file system.
//
// Crash safety contract of WriteFileAtomic: after it returns OK the new contents are durable
// (file fsynced, renamed over the target, directory fsynced); if the process dies at any point
// before that, readers see either the old contents or none, never a torn file.
//
// Thread safety: implementations are safe for concurrent use.
#pragma once

#include <string>
#include <vector>

#include "shared/base/bytes.h"
#include "shared/base/status.h"

namespace chiron {

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  // NotFound if the file does not exist. Refuses files larger than max_size (ResourceExhausted),
  // so a hostile file cannot exhaust memory.
  virtual Result<Bytes> ReadFile(const std::string& path, size_t max_size) = 0;
  // Writes via a temporary in the same directory, fsync, rename, fsync of the directory.
  // `mode` applies to a newly created file.
  virtual Status WriteFileAtomic(const std::string& path, ByteSpan data, int mode) = 0;
  virtual Status RemoveFile(const std::string& path) = 0;  // OK if already absent
  virtual Result<bool> Exists(const std::string& path) = 0;
  // Creates the directory and its parents (mode for new ones); OK if it exists.
  virtual Status CreateDirectories(const std::string& path, int mode) = 0;
  // Names (not paths) of the entries of a directory, sorted.
  virtual Result<std::vector<std::string>> ListDirectory(const std::string& path) = 0;
  virtual Status SyncDirectory(const std::string& path) = 0;

  // Writes `pieces` back to back into `path` starting at byte `offset` (the file is created with
  // `mode` if absent, and grows as needed), then fdatasync; if the file was created, its
  // directory is fsynced too. When it returns OK the bytes are durable. On failure (or a crash)
  // any prefix of them may have reached the file: callers write only where nothing they rely on
  // lives (the store's dataset segments write past their committed end).
  virtual Status WriteAtDurable(const std::string& path, uint64_t offset,
                                const std::vector<ByteSpan>& pieces, int mode) = 0;
  // Exactly `size` bytes at `offset`. NotFound if the file is missing; OutOfRange if it ends
  // before offset + size.
  virtual Result<Bytes> ReadAt(const std::string& path, uint64_t offset, size_t size) = 0;
  // ReadAt into the caller's buffer: exactly out.size() bytes at `offset`, for a reader that
  // reuses one buffer (no allocation, no zero-fill). Same errors; on an error `out` holds
  // unspecified bytes. The default implementation calls ReadAt and copies.
  virtual Status ReadAtInto(const std::string& path, uint64_t offset, MutableByteSpan out);

  // The process-wide real file system. Never null; lives forever.
  static FileSystem* Default();
};

// Joins two path components with exactly one '/'.
std::string JoinPath(const std::string& a, const std::string& b);

}  // namespace chiron
