// The sim backend of Platform (platform.h). INSECURE by design: a software "hardware root" key
// kept in the state directory signs evidence, so anyone who can read that directory can forge
// evidence for any measurement. It exists so every code path runs on machines without TEE
// hardware; docs/attestation.md says what it does and does not prove.
//
// State directory files (created on first start, mode 0600, written atomically):
//   sim-root-key.pkcs8     the Ed25519 root key (PKCS#8 DER)
//   sim-sealing-secret     32 random bytes, the root of DeriveSealingKey
#pragma once

#include <memory>

#include "runtime/tee/platform.h"

namespace chiron::tee {

inline constexpr char kSimRootKeyFile[] = "sim-root-key.pkcs8";
inline constexpr char kSimSealingSecretFile[] = "sim-sealing-secret";

// Loads or creates the root key and sealing secret in options.state_dir, measures
// options.measured_components, and writes a loud INSECURE line to stderr.
Result<std::unique_ptr<Platform>> CreateSimPlatform(const PlatformOptions& options);

}  // namespace chiron::tee
