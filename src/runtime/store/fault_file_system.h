// FaultInjectingFileSystem: a FileSystem wrapper for tests that injects the failures a real disk
// produces (test-only library chiron_store_testing; never linked into chirond).
//
//  - Disk full: SetSpaceLeft(n) lets WriteFileAtomic and WriteAtDurable store n more bytes in
//    total; a write that does not fit leaves what fitted behind (a partial temporary file beside
//    the target for WriteFileAtomic, as an ENOSPC in the middle of write(2) would, had the
//    cleanup not run; the first bytes of the range for WriteAtDurable) and fails with
//    ResourceExhausted, mentioning "No space left on device". SetSpaceLeft(std::nullopt) frees
//    the disk again.
//  - A chosen failure: FailWrite(n, status) makes the n-th write (either kind) from now fail
//    with `status` before touching the disk.
//  - Crash points: SetHook(hook) calls hook(path, phase, call_number) inside both writes at each
//    WritePhase, so a test can SIGKILL the process at an exact step. Both kinds of write share
//    one call counter.
//  - Reads: SetReadHook(hook) calls hook(path, offset) before every ReadAt and ReadAtInto, on
//    the reading thread and without any lock held, so a test can block a reader at an exact
//    chunk (and act meanwhile) or count reads.
//
// Thread safety: safe for concurrent use.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "shared/base/file_system.h"

namespace chiron::store {

enum class WritePhase {
  kBefore,          // nothing written yet
  kPartialTemp,     // WriteFileAtomic: a partial temporary file exists beside the target;
                    // WriteAtDurable: the first half of the bytes are in the file, not synced
  kAfterRename,     // the new contents are durable (renamed into place / written and synced)
};

class FaultInjectingFileSystem final : public FileSystem {
 public:
  using Hook = std::function<void(const std::string& path, WritePhase phase, int call_number)>;
  using ReadHook = std::function<void(const std::string& path, uint64_t offset)>;

  explicit FaultInjectingFileSystem(FileSystem* base) : base_(base) {}

  void SetSpaceLeft(std::optional<uint64_t> bytes);
  void FailWrite(int nth_from_now, Status status);
  void SetHook(Hook hook);
  void SetReadHook(ReadHook hook);
  // WriteFileAtomic calls so far (including failed ones).
  int write_calls() const;

  Result<Bytes> ReadFile(const std::string& path, size_t max_size) override;
  Status WriteFileAtomic(const std::string& path, ByteSpan data, int mode) override;
  Status RemoveFile(const std::string& path) override;
  Result<bool> Exists(const std::string& path) override;
  Status CreateDirectories(const std::string& path, int mode) override;
  Result<std::vector<std::string>> ListDirectory(const std::string& path) override;
  Status SyncDirectory(const std::string& path) override;
  Status WriteAtDurable(const std::string& path, uint64_t offset,
                        const std::vector<ByteSpan>& pieces, int mode) override;
  Result<Bytes> ReadAt(const std::string& path, uint64_t offset, size_t size) override;
  Status ReadAtInto(const std::string& path, uint64_t offset, MutableByteSpan out) override;

 private:
  void BeforeRead(const std::string& path, uint64_t offset);

  FileSystem* const base_;
  mutable std::mutex mu_;
  std::optional<uint64_t> space_left_;
  int write_calls_ = 0;
  int fail_at_call_ = 0;
  Status fail_status_;
  Hook hook_;
  ReadHook read_hook_;
};

}  // namespace chiron::store
