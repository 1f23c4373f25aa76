// Profile: a principal's identity and settings on the client machine.
//
// A profile is a directory (default $CHIRON_HOME, else ~/.config/chiron; for chiron-operator
// $CHIRON_OPERATOR_HOME, else ~/.config/chiron-operator) holding:
//
//   principal.key     the principal's ECDSA P-256 private key, PKCS#8 DER, mode 0600. Its public
//                     key names the principal (hex SHA-256 of the SPKI) and authenticates every
//                     call in mutual TLS. Never leaves this machine.
//   profile.json      role ("owner" | "provider"), display name, default server and policy path
//   audit-heads.json  per server: the last verified head of this principal's audit chain, so a
//                     truncated or rolled-back log is detected on the next `chiron audit --verify`
//   uploads/NAME.json an interrupted upload's resume state (dataset id, data key, header, input
//                     fingerprint), mode 0600; removed when the upload completes
//
// The directory is created 0700. Formats: docs/cli.md, "Profile".
//
// Thread safety: a Profile is a value; concurrent CLI processes on one profile may race on
// audit-heads.json and uploads/ (each file is replaced atomically, so never torn).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "shared/audit/chain.h"
#include "shared/base/status.h"
#include "shared/crypto/keys.h"
#include "shared/ratls/ratls.h"

namespace chiron::client {

enum class ProfileRole { kOwner, kProvider };
std::string_view ProfileRoleName(ProfileRole role);  // "owner", "provider"
Result<ProfileRole> ParseProfileRole(std::string_view name);

struct ProfileSettings {
  ProfileRole role = ProfileRole::kOwner;
  std::string display_name;
  std::string server;       // host:port; empty if not set
  std::string policy_path;  // absolute path of the attestation policy; empty if not set
};

class Profile {
 public:
  // $CHIRON_HOME (or $CHIRON_OPERATOR_HOME for `operator_defaults`), else
  // $HOME/.config/chiron (or chiron-operator).
  static std::string DefaultDirectory(bool operator_defaults);

  // Creates the directory, a fresh key and profile.json. AlreadyExists if `dir` already holds a
  // key, unless `overwrite` (the old key is then lost: it can no longer act as that principal).
  static Result<Profile> Create(const std::string& dir, ProfileSettings settings, bool overwrite);
  // NotFound ("no profile in DIR: run `chiron init`") if there is none; InvalidArgument for a
  // malformed file, naming it; PermissionDenied if the key file is readable by others.
  static Result<Profile> Load(const std::string& dir);

  const std::string& dir() const { return dir_; }
  const ProfileSettings& settings() const { return settings_; }
  ProfileSettings& mutable_settings() { return settings_; }
  Status SaveSettings() const;

  const crypto::PrivateKey& key() const { return key_; }
  // Hex SHA-256 of the key's SPKI, as the server names this principal.
  const std::string& principal_id() const { return principal_id_; }
  // A TLS identity (self-signed certificate) for this key, for mutual TLS.
  Result<std::shared_ptr<const ratls::TlsIdentity>> TlsIdentity() const;

  // The last verified audit head for `server` (nullopt if never verified there).
  Result<std::optional<audit::AuditHead>> LoadAuditHead(const std::string& server) const;
  Status SaveAuditHead(const std::string& server, const audit::AuditHead& head) const;

  // uploads/<hex of name>.json: resume state files (see dataset upload).
  std::string UploadStatePath(const std::string& dataset_name) const;

 private:
  Profile(std::string dir, ProfileSettings settings, crypto::PrivateKey key);

  std::string dir_;
  ProfileSettings settings_;
  crypto::PrivateKey key_;
  std::string principal_id_;
};

}  // namespace chiron::client
