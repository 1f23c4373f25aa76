#include "runtime/sandbox/channels.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

namespace chiron::sandbox {

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) close(fd_);
  fd_ = fd;
}

Mapping::~Mapping() {
  if (data_ != nullptr) munmap(data_, size_);
}

Mapping& Mapping::operator=(Mapping&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) munmap(data_, size_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

Status ErrnoStatus(const std::string& what) {
  return FailedPreconditionError(what + ": " + std::strerror(errno));
}

namespace {

Result<UniqueFd> CreateMemfd(const char* name, uint64_t size) {
  UniqueFd fd(memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd.valid()) return ErrnoStatus(std::string("memfd_create ") + name);
  if (ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
    return ErrnoStatus(std::string("size memfd ") + name);
  }
  return fd;
}

Status AddSeals(int fd, int seals, const char* name) {
  if (fcntl(fd, F_ADD_SEALS, seals) != 0) return ErrnoStatus(std::string("seal ") + name);
  const int present = fcntl(fd, F_GET_SEALS);
  if (present < 0 || (present & seals) != seals) {
    return FailedPreconditionError(std::string("memfd ") + name + " lacks its seals");
  }
  return Status::Ok();
}

}  // namespace

Result<UniqueFd> CreateSealedMemfd(const char* name, ByteSpan contents) {
  CHIRON_ASSIGN_OR_RETURN(UniqueFd fd, CreateMemfd(name, contents.size()));
  size_t done = 0;
  while (done < contents.size()) {
    ssize_t n = pwrite(fd.get(), contents.data() + done, contents.size() - done,
                       static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ErrnoStatus(std::string("fill memfd ") + name);
    done += static_cast<size_t>(n);
  }
  CHIRON_RETURN_IF_ERROR(
      AddSeals(fd.get(), F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL, name));
  return fd;
}

Result<UniqueFd> ReopenReadOnly(int fd) {
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  UniqueFd reopened(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!reopened.valid()) return ErrnoStatus("reopen " + path + " read-only");
  if ((fcntl(reopened.get(), F_GETFL) & O_ACCMODE) != O_RDONLY) {
    return FailedPreconditionError("reopened descriptor is not read-only");
  }
  return reopened;
}

Result<ReadOnlyArena> CreateRuntimeWritableArena(const char* name, uint64_t size) {
  CHIRON_ASSIGN_OR_RETURN(UniqueFd fd, CreateMemfd(name, size));
  void* data = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (data == MAP_FAILED) return ErrnoStatus(std::string("map arena ") + name);
  ReadOnlyArena arena;
  arena.runtime_mapping = Mapping(data, size);
  // FUTURE_WRITE after our mapping exists: ours stays writable, no other can ever be made.
  CHIRON_RETURN_IF_ERROR(AddSeals(
      fd.get(), F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL, name));
  CHIRON_ASSIGN_OR_RETURN(arena.worker_fd, ReopenReadOnly(fd.get()));
  return arena;
}

Result<WorkerWritableArena> CreateWorkerWritableArena(const char* name, uint64_t size) {
  CHIRON_ASSIGN_OR_RETURN(UniqueFd fd, CreateMemfd(name, size));
  CHIRON_RETURN_IF_ERROR(AddSeals(fd.get(), F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL, name));
  void* data = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd.get(), 0);
  if (data == MAP_FAILED) return ErrnoStatus(std::string("map arena ") + name);
  WorkerWritableArena arena;
  arena.runtime_mapping = Mapping(data, size);
  arena.worker_fd = std::move(fd);
  return arena;
}

}  // namespace chiron::sandbox
