#include "runtime/store/fault_file_system.h"

#include <unistd.h>

#include <algorithm>
#include <utility>

namespace chiron::store {

void FaultInjectingFileSystem::SetSpaceLeft(std::optional<uint64_t> bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  space_left_ = bytes;
}

void FaultInjectingFileSystem::FailWrite(int nth_from_now, Status status) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_at_call_ = write_calls_ + nth_from_now;
  fail_status_ = std::move(status);
}

void FaultInjectingFileSystem::SetHook(Hook hook) {
  std::lock_guard<std::mutex> lock(mu_);
  hook_ = std::move(hook);
}

int FaultInjectingFileSystem::write_calls() const {
  std::lock_guard<std::mutex> lock(mu_);
  return write_calls_;
}

Result<Bytes> FaultInjectingFileSystem::ReadFile(const std::string& path, size_t max_size) {
  return base_->ReadFile(path, max_size);
}

Status FaultInjectingFileSystem::WriteFileAtomic(const std::string& path, ByteSpan data,
                                                 int mode) {
  Hook hook;
  int call = 0;
  bool fits = true;
  uint64_t partial = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    call = ++write_calls_;
    hook = hook_;
    if (call == fail_at_call_) return fail_status_;
    if (space_left_.has_value()) {
      fits = data.size() <= *space_left_;
      partial = fits ? data.size() : *space_left_;
      *space_left_ -= partial;
    }
  }
  if (hook) hook(path, WritePhase::kBefore, call);
  std::string temp = path + ".tmp." + std::to_string(::getpid());
  if (!fits) {
    // The partial temporary stays behind, as after a crash in the middle of the write.
    CHIRON_RETURN_IF_ERROR(base_->WriteFileAtomic(temp, data.first(partial), mode));
    if (hook) hook(path, WritePhase::kPartialTemp, call);
    return ResourceExhaustedError("cannot write '" + temp +
                                  "': No space left on device (free disk space and retry)");
  }
  if (hook && data.size() > 1) {
    CHIRON_RETURN_IF_ERROR(base_->WriteFileAtomic(temp, data.first(data.size() / 2), mode));
    hook(path, WritePhase::kPartialTemp, call);
  }
  CHIRON_RETURN_IF_ERROR(base_->WriteFileAtomic(path, data, mode));
  if (hook) {
    base_->RemoveFile(temp).IgnoreError();
    hook(path, WritePhase::kAfterRename, call);
  }
  return Status::Ok();
}

Status FaultInjectingFileSystem::RemoveFile(const std::string& path) {
  return base_->RemoveFile(path);
}

Result<bool> FaultInjectingFileSystem::Exists(const std::string& path) {
  return base_->Exists(path);
}

Status FaultInjectingFileSystem::CreateDirectories(const std::string& path, int mode) {
  return base_->CreateDirectories(path, mode);
}

Result<std::vector<std::string>> FaultInjectingFileSystem::ListDirectory(const std::string& path) {
  return base_->ListDirectory(path);
}

Status FaultInjectingFileSystem::SyncDirectory(const std::string& path) {
  return base_->SyncDirectory(path);
}

Status FaultInjectingFileSystem::WriteAtDurable(const std::string& path, uint64_t offset,
                                                const std::vector<ByteSpan>& pieces, int mode) {
  uint64_t total = 0;
  for (ByteSpan piece : pieces) total += piece.size();
  Hook hook;
  int call = 0;
  bool fits = true;
  uint64_t partial = total;
  {
    std::lock_guard<std::mutex> lock(mu_);
    call = ++write_calls_;
    hook = hook_;
    if (call == fail_at_call_) return fail_status_;
    if (space_left_.has_value()) {
      fits = total <= *space_left_;
      partial = fits ? total : *space_left_;
      *space_left_ -= partial;
    }
  }
  // The first `count` bytes of the pieces, as pieces.
  auto prefix = [&pieces](uint64_t count) {
    std::vector<ByteSpan> out;
    for (ByteSpan piece : pieces) {
      if (count == 0) break;
      size_t take = static_cast<size_t>(std::min<uint64_t>(count, piece.size()));
      out.push_back(piece.first(take));
      count -= take;
    }
    return out;
  };
  if (hook) hook(path, WritePhase::kBefore, call);
  if (!fits) {
    // What fitted stays in the file, as after an ENOSPC in the middle of write(2).
    CHIRON_RETURN_IF_ERROR(base_->WriteAtDurable(path, offset, prefix(partial), mode));
    if (hook) hook(path, WritePhase::kPartialTemp, call);
    return ResourceExhaustedError("cannot write '" + path +
                                  "': No space left on device (free disk space and retry)");
  }
  if (hook && total > 1) {
    CHIRON_RETURN_IF_ERROR(base_->WriteAtDurable(path, offset, prefix(total / 2), mode));
    hook(path, WritePhase::kPartialTemp, call);
  }
  CHIRON_RETURN_IF_ERROR(base_->WriteAtDurable(path, offset, pieces, mode));
  if (hook) hook(path, WritePhase::kAfterRename, call);
  return Status::Ok();
}

void FaultInjectingFileSystem::SetReadHook(ReadHook hook) {
  std::lock_guard<std::mutex> lock(mu_);
  read_hook_ = std::move(hook);
}

void FaultInjectingFileSystem::BeforeRead(const std::string& path, uint64_t offset) {
  ReadHook hook;
  {
    std::lock_guard<std::mutex> lock(mu_);
    hook = read_hook_;
  }
  if (hook) hook(path, offset);  // without mu_: the hook may block
}

Result<Bytes> FaultInjectingFileSystem::ReadAt(const std::string& path, uint64_t offset,
                                               size_t size) {
  BeforeRead(path, offset);
  return base_->ReadAt(path, offset, size);
}

Status FaultInjectingFileSystem::ReadAtInto(const std::string& path, uint64_t offset,
                                            MutableByteSpan out) {
  BeforeRead(path, offset);
  return base_->ReadAtInto(path, offset, out);
}

}  // namespace chiron::store
