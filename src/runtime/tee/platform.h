// Platform: the trusted runtime's view of the TEE it runs in (STYLE.md #5: a seam, so tests and
// machines without TEE hardware run every code path).
//
// One interface, two backends:
//  - "sim": a software "hardware root" (an Ed25519 key created on first start in the state
//    directory) signs evidence. INSECURE by design; every creation logs a loud warning and
//    insecure() is true so CLIs and logs can say so. See docs/attestation.md.
//  - "tsm": Linux configfs-tsm (/sys/kernel/config/tsm/report), as on TDX and SEV-SNP guests.
//
// The runtime's measurement is a SHA-384 over everything it trusts to enforce its promises: the
// chirond executable, the worker/sandbox launcher executable and the sandbox policy (swapping
// the launcher would void the sandbox, so measuring chirond alone would not do). See
// MeasureComponents for the exact encoding.
//
// Thread safety: implementations are safe for concurrent use.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "shared/base/bytes.h"
#include "shared/base/file_system.h"
#include "shared/base/secret.h"
#include "shared/base/status.h"

namespace chiron::tee {

inline constexpr size_t kReportDataSize = 64;
inline constexpr size_t kSealingKeySize = 32;
inline constexpr char kDefaultTsmReportRoot[] = "/sys/kernel/config/tsm/report";
// Largest component file measured (a chirond binary is tens of MB).
inline constexpr size_t kMaxMeasuredFileSize = size_t{1} << 30;

class Platform {
 public:
  virtual ~Platform() = default;

  // "sim" or "tsm".
  virtual std::string_view name() const = 0;

  // Evidence binding exactly kReportDataSize bytes of caller data (typically a hash of the TLS
  // public key and a nonce): a serialized envelope (shared/attest/evidence.h) ready for
  // attest::Verifier. InvalidArgument if report_data is not 64 bytes; Aborted (tsm) if another
  // writer raced on the report entry (retry); Unavailable if the platform cannot produce evidence.
  virtual Result<Bytes> GetEvidence(ByteSpan report_data) = 0;

  // The runtime's own measurement (48 bytes; see MeasureComponents).
  virtual Bytes measurement() const = 0;

  // A 32-byte key bound to this platform instance and this measurement: a runtime built from
  // different components derives a different key. `purpose` separates keys ("store", "audit").
  // Unimplemented on tsm (see docs/attestation.md).
  virtual Result<SecretBytes> DeriveSealingKey(std::string_view purpose) = 0;

  // True for sim: its evidence proves nothing. Callers print this wherever evidence is shown.
  virtual bool insecure() const = 0;

  // One line for logs and CLIs: the backend, its measurement and, for sim, the root public key
  // a relying party must list in trusted_sim_roots.
  virtual std::string Describe() const = 0;
};

// One file the runtime trusts, measured under a stable name (e.g. "chirond", "chiron-worker",
// "sandbox-policy") so that moving a file does not change the measurement.
struct MeasuredComponent {
  std::string name;
  std::string path;
};

struct PlatformOptions {
  std::string name = "sim";  // "sim" | "tsm"
  // Where sim keeps its root key and sealing secret (created 0700 if missing). Required for sim.
  std::string state_dir;
  // Files measured into the runtime's measurement. At least one; names unique and non-empty.
  std::vector<MeasuredComponent> measured_components;
  // configfs-tsm report directory (tsm only).
  std::string tsm_root = kDefaultTsmReportRoot;
  // sim only: the debug flag and security version written into its evidence.
  bool sim_debug = false;
  uint32_t sim_svn = 0;
  // sim only, for tests of what a platform without sealing (tsm) does: DeriveSealingKey then
  // answers Unimplemented as tsm does, so the store key must come from the cluster.
  bool sim_no_sealing = false;
  // File system for the state directory and measured files; nullptr means the real one.
  FileSystem* fs = nullptr;
};

// Creates the named backend. InvalidArgument for an unknown name or bad options; errors from
// reading measured files or the state directory name the file.
Result<std::unique_ptr<Platform>> CreatePlatform(const PlatformOptions& options);

// SHA-384 over a domain-separated, length-prefixed list, sorted by component name:
//   "CHIRON-MEASUREMENT-V1" 0x00 | count u32le | for each: name_size u32le | name |
//   digest_size u32le | SHA-384(file contents)
// InvalidArgument for an empty list, an empty or duplicate name; file errors name the path.
Result<Bytes> MeasureComponents(const std::vector<MeasuredComponent>& components,
                                FileSystem* fs = FileSystem::Default());

}  // namespace chiron::tee
