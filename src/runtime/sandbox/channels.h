// The worker's channels as kernel objects: memfds with seals, and the small RAII types that own
// descriptors and mappings. Internal to the sandbox module (sandbox.cc and its tests).
//
// Each function says which attack its seals stop; docs/sandbox.md has the full table.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <utility>

#include "shared/base/bytes.h"
#include "shared/base/status.h"

namespace chiron::sandbox {

// An owned descriptor, closed on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// An owned shared mapping, unmapped on destruction.
class Mapping {
 public:
  Mapping() = default;
  Mapping(void* data, size_t size) : data_(data), size_(size) {}
  ~Mapping();
  Mapping(Mapping&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  Mapping& operator=(Mapping&& other) noexcept;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;

  void* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

// FailedPrecondition "what: strerror(errno)".
Status ErrnoStatus(const std::string& what);

// A memfd holding `contents`, sealed against write, grow, shrink and further seals: the worker
// can neither change the data under the runtime nor use it as a channel back.
Result<UniqueFd> CreateSealedMemfd(const char* name, ByteSpan contents);

// A new O_RDONLY open file description of the same file (via /proc/self/fd): whatever the
// worker does with it, the kernel refuses PROT_WRITE shared mappings, write() and ftruncate().
Result<UniqueFd> ReopenReadOnly(int fd);

// The parameter arena: the runtime keeps a writable shared mapping; the worker gets an O_RDONLY
// descriptor of a memfd sealed with F_SEAL_FUTURE_WRITE (no new writable mapping or write by
// anyone, ever) and against grow/shrink (the runtime's mapping can never SIGBUS).
struct ReadOnlyArena {
  Mapping runtime_mapping;
  UniqueFd worker_fd;
};
Result<ReadOnlyArena> CreateRuntimeWritableArena(const char* name, uint64_t size);

// The gradient and output arenas: the worker writes, the runtime maps read-only. Sealed against
// grow and shrink (a worker truncating the file would SIGBUS the runtime on its next read) and
// further seals.
struct WorkerWritableArena {
  Mapping runtime_mapping;
  UniqueFd worker_fd;
};
Result<WorkerWritableArena> CreateWorkerWritableArena(const char* name, uint64_t size);

}  // namespace chiron::sandbox
