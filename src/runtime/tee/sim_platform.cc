#include "runtime/tee/sim_platform.h"

#include <cstdio>
#include <string>

#include "shared/attest/evidence.h"
#include "shared/crypto/hkdf.h"
#include "shared/crypto/keys.h"
#include "shared/crypto/random.h"

namespace chiron::tee {
namespace {

constexpr size_t kSealingSecretSize = 32;
constexpr size_t kMaxKeyFileSize = 4096;
constexpr int kSecretFileMode = 0600;
constexpr int kStateDirMode = 0700;
constexpr std::string_view kSealingSalt = "CHIRON-SIM-SEALING-V1";

Result<crypto::PrivateKey> LoadOrCreateRootKey(FileSystem& fs, const std::string& path) {
  Result<Bytes> stored = fs.ReadFile(path, kMaxKeyFileSize);
  if (stored.ok()) {
    SecretBytes der(*stored);
    SecureZero(stored->data(), stored->size());
    Result<crypto::PrivateKey> key = crypto::PrivateKey::FromPkcs8Der(der.span());
    if (!key.ok() || key->scheme() != crypto::SignatureScheme::kEd25519) {
      return DataLossError("sim root key '" + path +
                           "' is not an Ed25519 PKCS#8 key; restore it from backup, or delete it "
                           "to create a new root (relying parties must then trust the new key)");
    }
    return key;
  }
  if (stored.status().code() != StatusCode::kNotFound) {
    return stored.status().WithContext("cannot read sim root key");
  }
  CHIRON_ASSIGN_OR_RETURN(crypto::PrivateKey key,
                          crypto::PrivateKey::Generate(crypto::SignatureScheme::kEd25519));
  CHIRON_ASSIGN_OR_RETURN(SecretBytes der, key.ToPkcs8Der());
  CHIRON_RETURN_IF_ERROR(fs.WriteFileAtomic(path, der.span(), kSecretFileMode)
                             .WithContext("cannot store new sim root key"));
  return key;
}

Result<SecretBytes> LoadOrCreateSealingSecret(FileSystem& fs, const std::string& path) {
  Result<Bytes> stored = fs.ReadFile(path, kMaxKeyFileSize);
  if (stored.ok()) {
    SecretBytes secret(*stored);
    SecureZero(stored->data(), stored->size());
    if (secret.size() != kSealingSecretSize) {
      return DataLossError("sim sealing secret '" + path + "' is " + std::to_string(secret.size()) +
                           " bytes, not " + std::to_string(kSealingSecretSize) +
                           "; it is corrupt. Restore it from backup (sealed data cannot be opened "
                           "without it)");
    }
    return secret;
  }
  if (stored.status().code() != StatusCode::kNotFound) {
    return stored.status().WithContext("cannot read sim sealing secret");
  }
  CHIRON_ASSIGN_OR_RETURN(SecretBytes secret, crypto::RandomSecret(kSealingSecretSize));
  CHIRON_RETURN_IF_ERROR(fs.WriteFileAtomic(path, secret.span(), kSecretFileMode)
                             .WithContext("cannot store new sim sealing secret"));
  return secret;
}

class SimPlatform final : public Platform {
 public:
  SimPlatform(crypto::PrivateKey root, Bytes root_public, SecretBytes sealing_secret,
              Bytes measurement, bool debug, uint32_t svn, bool no_sealing)
      : no_sealing_(no_sealing),
        root_(std::move(root)),
        root_public_(std::move(root_public)),
        sealing_secret_(std::move(sealing_secret)),
        measurement_(std::move(measurement)),
        debug_(debug),
        svn_(svn) {}

  std::string_view name() const override { return "sim"; }

  Result<Bytes> GetEvidence(ByteSpan report_data) override {
    if (report_data.size() != kReportDataSize) {
      return InvalidArgumentError("sim platform: report data must be " +
                                  std::to_string(kReportDataSize) + " bytes, got " +
                                  std::to_string(report_data.size()));
    }
    return attest::CreateSimEvidence(root_, measurement_, report_data, debug_, svn_);
  }

  Bytes measurement() const override { return measurement_; }

  Result<SecretBytes> DeriveSealingKey(std::string_view purpose) override {
    if (no_sealing_) {
      return UnimplementedError(
          "sim platform started with --sim-no-sealing: no sealing key (as on tsm); the store key "
          "must come from the cluster (--cluster-store-key)");
    }
    if (purpose.empty()) return InvalidArgumentError("sealing key purpose must not be empty");
    // info = "sim" 0x00 | measurement size u32 | measurement | purpose size u32 | purpose:
    // length-prefixed so no (measurement, purpose) pair can collide with another.
    Bytes info = ToBytes("sim");
    info.push_back(0);
    AppendU32Le(info, static_cast<uint32_t>(measurement_.size()));
    Append(info, measurement_);
    AppendU32Le(info, static_cast<uint32_t>(purpose.size()));
    Append(info, AsBytes(purpose));
    return crypto::Hkdf(crypto::HashAlgorithm::kSha384, sealing_secret_.span(),
                        AsBytes(kSealingSalt), info, kSealingKeySize);
  }

  bool insecure() const override { return true; }

  std::string Describe() const override {
    return "platform=sim INSECURE (software root key; proves nothing about hardware) "
           "measurement=" +
           HexEncode(measurement_) + " sim_root_key=" + HexEncode(root_public_) +
           " debug=" + (debug_ ? "true" : "false") + " svn=" + std::to_string(svn_);
  }

 private:
  const bool no_sealing_;
  const crypto::PrivateKey root_;
  const Bytes root_public_;
  const SecretBytes sealing_secret_;
  const Bytes measurement_;
  const bool debug_;
  const uint32_t svn_;
};

}  // namespace

Result<std::unique_ptr<Platform>> CreateSimPlatform(const PlatformOptions& options) {
  FileSystem* fs = options.fs != nullptr ? options.fs : FileSystem::Default();
  if (options.state_dir.empty()) {
    return InvalidArgumentError(
        "sim platform: a state directory is required (it holds the sim "
        "root key and sealing secret)");
  }
  CHIRON_ASSIGN_OR_RETURN(Bytes measurement, MeasureComponents(options.measured_components, fs));
  CHIRON_RETURN_IF_ERROR(fs->CreateDirectories(options.state_dir, kStateDirMode)
                             .WithContext("sim platform state directory"));
  CHIRON_ASSIGN_OR_RETURN(crypto::PrivateKey root,
                          LoadOrCreateRootKey(*fs, JoinPath(options.state_dir, kSimRootKeyFile)));
  CHIRON_ASSIGN_OR_RETURN(Bytes root_public, root.public_key().ToRaw());
  CHIRON_ASSIGN_OR_RETURN(
      SecretBytes sealing_secret,
      LoadOrCreateSealingSecret(*fs, JoinPath(options.state_dir, kSimSealingSecretFile)));
  auto platform = std::make_unique<SimPlatform>(
      std::move(root), root_public, std::move(sealing_secret), measurement, options.sim_debug,
      options.sim_svn, options.sim_no_sealing);
  // Loud on purpose: nobody should run the sim platform by accident.
  const std::string line =
      "*** INSECURE: TEE platform 'sim' in use. Evidence is signed by a software key in " +
      options.state_dir +
      " and proves nothing about the hardware; never use it for real data. "
      "sim_root_key=" +
      HexEncode(root_public) + " measurement=" + HexEncode(measurement) + " ***\n";
  std::fputs(line.c_str(), stderr);
  return std::unique_ptr<Platform>(std::move(platform));
}

}  // namespace chiron::tee
