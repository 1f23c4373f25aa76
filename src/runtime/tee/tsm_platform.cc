#include "runtime/tee/tsm_platform.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <mutex>
#include <string>

#include "shared/attest/evidence.h"
#include "shared/crypto/random.h"

namespace chiron::tee {
namespace {

constexpr size_t kMaxGenerationSize = 32;
constexpr size_t kMaxProviderFileSize = 64;

Status Errno(const std::string& what, const std::string& path, int err) {
  std::string msg = "configfs-tsm: " + what + " '" + path + "': " + std::strerror(err);
  switch (err) {
    case ENOENT: return NotFoundError(msg);
    case EACCES:
    case EPERM: return PermissionDeniedError(msg + " (chirond needs write access to configfs-tsm)");
    case EBUSY:
    case EAGAIN: return UnavailableError(msg + " (the TSM is busy; retry)");
    default: return UnavailableError(msg);
  }
}

class PosixTsmFiles final : public TsmFiles {
 public:
  Result<bool> IsDirectory(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
      if (errno == ENOENT || errno == ENOTDIR) return false;
      return Errno("cannot stat", path, errno);
    }
    return S_ISDIR(st.st_mode);
  }
  Status MakeDirectory(const std::string& path) override {
    if (::mkdir(path.c_str(), 0700) != 0) return Errno("cannot create report entry", path, errno);
    return Status::Ok();
  }
  Status RemoveDirectory(const std::string& path) override {
    if (::rmdir(path.c_str()) != 0 && errno != ENOENT) {
      return Errno("cannot remove report entry", path, errno);
    }
    return Status::Ok();
  }
  Status WriteAttribute(const std::string& path, ByteSpan data) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return Errno("cannot open", path, errno);
    ssize_t n;
    do {
      n = ::write(fd, data.data(), data.size());
    } while (n < 0 && errno == EINTR);
    const int err = errno;
    ::close(fd);
    if (n < 0) return Errno("cannot write", path, err);
    if (static_cast<size_t>(n) != data.size()) {
      return UnavailableError("configfs-tsm: short write to '" + path + "'");
    }
    return Status::Ok();
  }
  Result<Bytes> ReadAttribute(const std::string& path, size_t max_size) override {
    // configfs reports a nominal st_size (a page), so read to EOF instead of trusting it.
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Errno("cannot open", path, errno);
    Bytes out;
    uint8_t buf[8192];
    while (true) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        const int err = errno;
        ::close(fd);
        return Errno("cannot read", path, err);
      }
      if (n == 0) break;
      if (out.size() + static_cast<size_t>(n) > max_size) {
        ::close(fd);
        return ResourceExhaustedError("configfs-tsm: '" + path + "' is larger than " +
                                      std::to_string(max_size) + " bytes");
      }
      out.insert(out.end(), buf, buf + n);
    }
    ::close(fd);
    return out;
  }
};

// "7\n" -> 7. The kernel prints an unsigned decimal and a newline; anything else is refused.
Result<uint64_t> ParseGeneration(const Bytes& text, const std::string& path) {
  std::string s = ToString(text);
  if (!s.empty() && s.back() == '\n') s.pop_back();
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) {
    return UnavailableError("configfs-tsm: '" + path + "' does not hold a generation number");
  }
  return value;
}

class TsmPlatform final : public Platform {
 public:
  TsmPlatform(std::string root, TsmFiles* files, Bytes measurement)
      : root_(std::move(root)), files_(files), measurement_(std::move(measurement)) {}

  std::string_view name() const override { return "tsm"; }

  Result<Bytes> GetEvidence(ByteSpan report_data) override {
    if (report_data.size() != kReportDataSize) {
      return InvalidArgumentError("tsm platform: report data must be " +
                                  std::to_string(kReportDataSize) + " bytes, got " +
                                  std::to_string(report_data.size()));
    }
    // One report at a time from this process; other processes are detected via generation.
    std::lock_guard<std::mutex> lock(mutex_);
    CHIRON_ASSIGN_OR_RETURN(Bytes suffix, crypto::RandomBytes(8));
    const std::string entry =
        JoinPath(root_, "chiron-" + std::to_string(::getpid()) + "-" + HexEncode(suffix));
    CHIRON_RETURN_IF_ERROR(files_->MakeDirectory(entry));
    Result<Bytes> evidence = Generate(entry, report_data);
    // Best effort: a leftover entry is harmless (and private to root) but clutters configfs.
    files_->RemoveDirectory(entry).IgnoreError();
    return evidence;
  }

  Bytes measurement() const override { return measurement_; }

  Result<SecretBytes> DeriveSealingKey(std::string_view purpose) override {
    return UnimplementedError(
        "tsm platform: sealing keys are not available through configfs-tsm (TDX gives guests "
        "no sealing key; SEV-SNP derives one with MSG_KEY_REQ via /dev/sev-guest, which Chiron "
        "does not use yet). In a cluster the store key comes from an attested peer "
        "(--cluster-store-key); see docs/distributed.md");
  }

  bool insecure() const override { return false; }

  std::string Describe() const override {
    return "platform=tsm root=" + root_ + " measurement=" + HexEncode(measurement_) +
           " (components measured by the runtime; the hardware launch measurement is in the "
           "evidence)";
  }

 private:
  Result<uint64_t> ReadGeneration(const std::string& entry) {
    const std::string path = JoinPath(entry, "generation");
    CHIRON_ASSIGN_OR_RETURN(Bytes text, files_->ReadAttribute(path, kMaxGenerationSize));
    return ParseGeneration(text, path);
  }

  Result<Bytes> Generate(const std::string& entry, ByteSpan report_data) {
    CHIRON_ASSIGN_OR_RETURN(uint64_t before, ReadGeneration(entry));
    CHIRON_RETURN_IF_ERROR(files_->WriteAttribute(JoinPath(entry, "inblob"), report_data));
    // Reading outblob makes the kernel ask the TSM for a report over the current inblob.
    CHIRON_ASSIGN_OR_RETURN(
        Bytes outblob, files_->ReadAttribute(JoinPath(entry, "outblob"), attest::kMaxEvidenceSize));
    CHIRON_ASSIGN_OR_RETURN(Bytes provider_text, files_->ReadAttribute(JoinPath(entry, "provider"),
                                                                       kMaxProviderFileSize));
    Bytes auxblob;
    Result<Bytes> aux = files_->ReadAttribute(JoinPath(entry, "auxblob"), attest::kMaxEvidenceSize);
    if (aux.ok()) {
      auxblob = std::move(*aux);
    } else if (aux.status().code() != StatusCode::kNotFound) {
      return aux.status();
    }
    CHIRON_ASSIGN_OR_RETURN(uint64_t after, ReadGeneration(entry));
    // Our write is the only one allowed between the two reads. Any other value means another
    // writer changed inblob, so outblob may bind someone else's report data.
    if (after != before + 1) {
      return AbortedError("configfs-tsm: report entry '" + entry +
                          "' was written concurrently by another process (generation " +
                          std::to_string(before) + " before our write, " + std::to_string(after) +
                          " after reading outblob, expected " + std::to_string(before + 1) +
                          "); the report may not bind our data. Retry");
    }
    std::string provider = ToString(provider_text);
    while (!provider.empty() && (provider.back() == '\n' || provider.back() == '\0')) {
      provider.pop_back();
    }
    Result<attest::PlatformId> platform = attest::PlatformForTsmProvider(provider);
    if (!platform.ok()) return UnavailableError(platform.status().message());
    if (outblob.empty()) {
      return UnavailableError("configfs-tsm: the kernel returned an empty outblob from '" + entry +
                              "'");
    }
    attest::TsmEvidenceBody body{provider, std::move(outblob), std::move(auxblob)};
    attest::Evidence evidence;
    evidence.platform = *platform;
    CHIRON_ASSIGN_OR_RETURN(evidence.payload, attest::SerializeTsmBody(body));
    return attest::SerializeEvidence(evidence);
  }

  const std::string root_;
  TsmFiles* const files_;
  const Bytes measurement_;
  std::mutex mutex_;
};

}  // namespace

TsmFiles* TsmFiles::Posix() {
  static PosixTsmFiles* files = new PosixTsmFiles();
  return files;
}

Result<std::unique_ptr<Platform>> CreateTsmPlatform(const PlatformOptions& options,
                                                    TsmFiles* files) {
  if (files == nullptr) return InvalidArgumentError("tsm platform: no TsmFiles");
  CHIRON_ASSIGN_OR_RETURN(bool present, files->IsDirectory(options.tsm_root));
  if (!present) {
    return UnavailableError(
        "tsm platform: '" + options.tsm_root +
        "' is not a directory: this is not a TDX or SEV-SNP guest with configfs-tsm (Linux 6.7+), "
        "or configfs is not mounted (mount -t configfs none /sys/kernel/config). Use the sim "
        "platform (INSECURE) for testing");
  }
  FileSystem* fs = options.fs != nullptr ? options.fs : FileSystem::Default();
  CHIRON_ASSIGN_OR_RETURN(Bytes measurement, MeasureComponents(options.measured_components, fs));
  return std::unique_ptr<Platform>(
      std::make_unique<TsmPlatform>(options.tsm_root, files, std::move(measurement)));
}

}  // namespace chiron::tee
