// The tsm backend of Platform (platform.h): Linux configfs-tsm, the kernel's common interface to
// TDX and SEV-SNP attestation reports (Documentation/ABI/testing/configfs-tsm-report):
//
//   mkdir /sys/kernel/config/tsm/report/$name        a private report entry
//   generation  (RO)  counts writes to the entry's inputs
//   inblob      (WO)  up to 64 bytes of report data, one write
//   outblob     (RO)  the quote / report over inblob, format given by `provider`
//   provider    (RO)  "tdx_guest" or "sev_guest"
//   auxblob     (RO)  optional supplemental data (SEV-SNP certificate table)
//
// GetEvidence reads `generation` before writing inblob and again after reading outblob, provider
// and auxblob; unless it advanced by exactly our one write, another process wrote the entry
// concurrently and the outblob may be over its data, so the call fails with Aborted (retry).
//
// DeriveSealingKey is Unimplemented: the hardware sealing keys (TDX has none for guests; SEV-SNP
// MSG_KEY_REQ through /dev/sev-guest) are not reachable through configfs-tsm. See
// docs/attestation.md.
#pragma once

#include <memory>
#include <string>

#include "runtime/tee/platform.h"
#include "shared/base/bytes.h"
#include "shared/base/status.h"

namespace chiron::tee {

// The configfs seam: the real implementation makes plain syscalls on /sys/kernel/config; tests
// put a fake kernel behind it that works on a temporary directory.
class TsmFiles {
 public:
  virtual ~TsmFiles() = default;
  virtual Result<bool> IsDirectory(const std::string& path) = 0;
  virtual Status MakeDirectory(const std::string& path) = 0;
  virtual Status RemoveDirectory(const std::string& path) = 0;
  // Writes `data` to an existing attribute with a single write(2) (configfs attributes take
  // their value in one write).
  virtual Status WriteAttribute(const std::string& path, ByteSpan data) = 0;
  // Reads an attribute to EOF. NotFound if absent; ResourceExhausted past max_size.
  virtual Result<Bytes> ReadAttribute(const std::string& path, size_t max_size) = 0;

  // The real file system. Never null; lives forever.
  static TsmFiles* Posix();
};

// `files` must outlive the platform. Unavailable if options.tsm_root is not a directory.
Result<std::unique_ptr<Platform>> CreateTsmPlatform(const PlatformOptions& options,
                                                    TsmFiles* files);

}  // namespace chiron::tee
