#include "client/profile.h"

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "shared/base/file_system.h"

namespace chiron::client {
namespace {

constexpr char kKeyFile[] = "principal.key";
constexpr char kSettingsFile[] = "profile.json";
constexpr char kAuditHeadsFile[] = "audit-heads.json";
constexpr char kProfileFormat[] = "chiron-profile-v1";
constexpr size_t kMaxProfileFileSize = 1 << 20;

Result<nlohmann::json> ReadJsonFile(const std::string& path) {
  CHIRON_ASSIGN_OR_RETURN(Bytes text, FileSystem::Default()->ReadFile(path, kMaxProfileFileSize));
  nlohmann::json j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return InvalidArgumentError(path + " is not a JSON object; fix or remove it");
  }
  return j;
}

Status WriteJsonFile(const std::string& path, const nlohmann::json& j, int mode) {
  return FileSystem::Default()->WriteFileAtomic(path, AsBytes(j.dump(2) + "\n"), mode);
}

std::string StringField(const nlohmann::json& j, const char* name) {
  auto it = j.find(name);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

std::string_view ProfileRoleName(ProfileRole role) {
  return role == ProfileRole::kOwner ? "owner" : "provider";
}

Result<ProfileRole> ParseProfileRole(std::string_view name) {
  if (name == "owner") return ProfileRole::kOwner;
  if (name == "provider") return ProfileRole::kProvider;
  return InvalidArgumentError("role '" + std::string(name) + "' is not 'owner' or 'provider'");
}

std::string Profile::DefaultDirectory(bool operator_defaults) {
  const char* explicit_home =
      std::getenv(operator_defaults ? "CHIRON_OPERATOR_HOME" : "CHIRON_HOME");
  if (explicit_home != nullptr && *explicit_home != '\0') return explicit_home;
  const char* home = std::getenv("HOME");
  std::string base = home != nullptr && *home != '\0' ? home : ".";
  return base + "/.config/" + (operator_defaults ? "chiron-operator" : "chiron");
}

Profile::Profile(std::string dir, ProfileSettings settings, crypto::PrivateKey key)
    : dir_(std::move(dir)), settings_(std::move(settings)), key_(std::move(key)) {
  auto spki = key_.public_key().ToSpkiDer();
  principal_id_ = spki.ok() ? ratls::PrincipalId(*spki) : std::string();
}

Result<Profile> Profile::Create(const std::string& dir, ProfileSettings settings, bool overwrite) {
  FileSystem* fs = FileSystem::Default();
  std::string key_path = JoinPath(dir, kKeyFile);
  CHIRON_ASSIGN_OR_RETURN(bool exists, fs->Exists(key_path));
  if (exists && !overwrite) {
    return AlreadyExistsError("profile " + dir +
                              " already has a principal key; use it as it is (`register --server "
                              "HOST:PORT --policy FILE` registers it with a server and saves "
                              "both in the profile), pass --profile DIR for another identity, "
                              "or --force to replace it (the old principal's datasets then "
                              "become unreachable)");
  }
  CHIRON_RETURN_IF_ERROR(fs->CreateDirectories(dir, 0700));
  CHIRON_RETURN_IF_ERROR(fs->CreateDirectories(JoinPath(dir, "uploads"), 0700));
  CHIRON_ASSIGN_OR_RETURN(crypto::PrivateKey key,
                          crypto::PrivateKey::Generate(crypto::SignatureScheme::kEcdsaP256Sha256));
  CHIRON_ASSIGN_OR_RETURN(SecretBytes der, key.ToPkcs8Der());
  CHIRON_RETURN_IF_ERROR(fs->WriteFileAtomic(key_path, der.span(), 0600));
  Profile profile(dir, std::move(settings), std::move(key));
  CHIRON_RETURN_IF_ERROR(profile.SaveSettings());
  if (exists) CHIRON_RETURN_IF_ERROR(fs->RemoveFile(JoinPath(dir, kAuditHeadsFile)));
  return profile;
}

Result<Profile> Profile::Load(const std::string& dir) {
  std::string key_path = JoinPath(dir, kKeyFile);
  struct stat st {};
  if (::stat(key_path.c_str(), &st) != 0) {
    return NotFoundError("no profile in " + dir +
                         ": run `chiron init` (or `chiron-operator init`) to create one, or "
                         "pass --profile DIR");
  }
  if ((st.st_mode & 0077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%03o", static_cast<unsigned>(st.st_mode & 0777));
    return PermissionDeniedError(key_path + " is accessible to other users (mode " + mode +
                                 "); run `chmod 600 " + key_path + "`");
  }
  CHIRON_ASSIGN_OR_RETURN(Bytes der, FileSystem::Default()->ReadFile(key_path, 64 * 1024));
  SecretBytes secret_der(der);
  SecureZero(der.data(), der.size());
  auto key = crypto::PrivateKey::FromPkcs8Der(secret_der.span());
  if (!key.ok()) return key.status().WithContext(key_path + " is not a PKCS#8 private key");

  CHIRON_ASSIGN_OR_RETURN(nlohmann::json j, ReadJsonFile(JoinPath(dir, kSettingsFile)));
  if (StringField(j, "format") != kProfileFormat) {
    return InvalidArgumentError(JoinPath(dir, kSettingsFile) + ": field 'format' must be \"" +
                                kProfileFormat + "\"");
  }
  ProfileSettings settings;
  auto role = ParseProfileRole(StringField(j, "role"));
  if (!role.ok()) return role.status().WithContext(JoinPath(dir, kSettingsFile));
  settings.role = *role;
  settings.display_name = StringField(j, "name");
  settings.server = StringField(j, "server");
  settings.policy_path = StringField(j, "policy");
  return Profile(dir, std::move(settings), std::move(*key));
}

Status Profile::SaveSettings() const {
  nlohmann::json j;
  j["format"] = kProfileFormat;
  j["role"] = std::string(ProfileRoleName(settings_.role));
  j["name"] = settings_.display_name;
  j["server"] = settings_.server;
  j["policy"] = settings_.policy_path;
  j["principal_id"] = principal_id_;  // informative; the key is authoritative
  return WriteJsonFile(JoinPath(dir_, kSettingsFile), j, 0600);
}

Result<std::shared_ptr<const ratls::TlsIdentity>> Profile::TlsIdentity() const {
  std::string name = settings_.display_name.empty() ? "chiron-principal" : settings_.display_name;
  CHIRON_ASSIGN_OR_RETURN(ratls::TlsIdentity identity, ratls::CreateClientIdentity(key_, name));
  return std::shared_ptr<const ratls::TlsIdentity>(
      std::make_shared<ratls::TlsIdentity>(std::move(identity)));
}

Result<std::optional<audit::AuditHead>> Profile::LoadAuditHead(const std::string& server) const {
  std::string path = JoinPath(dir_, kAuditHeadsFile);
  CHIRON_ASSIGN_OR_RETURN(bool exists, FileSystem::Default()->Exists(path));
  if (!exists) return std::optional<audit::AuditHead>();
  CHIRON_ASSIGN_OR_RETURN(nlohmann::json j, ReadJsonFile(path));
  auto it = j.find(server);
  if (it == j.end()) return std::optional<audit::AuditHead>();
  if (!it->is_object() || !(*it)["sequence"].is_number_unsigned() || !(*it)["hash"].is_string()) {
    return InvalidArgumentError(path + ": entry for " + server +
                                " needs 'sequence' (number) and 'hash' (hex); remove the file "
                                "to start over (rollback detection restarts from scratch)");
  }
  audit::AuditHead head;
  head.sequence = (*it)["sequence"].get<uint64_t>();
  auto hash = HexDecode((*it)["hash"].get<std::string>());
  if (!hash.ok()) return hash.status().WithContext(path);
  head.hash = std::move(*hash);
  return std::optional<audit::AuditHead>(std::move(head));
}

Status Profile::SaveAuditHead(const std::string& server, const audit::AuditHead& head) const {
  std::string path = JoinPath(dir_, kAuditHeadsFile);
  nlohmann::json j = nlohmann::json::object();
  CHIRON_ASSIGN_OR_RETURN(bool exists, FileSystem::Default()->Exists(path));
  if (exists) {
    CHIRON_ASSIGN_OR_RETURN(j, ReadJsonFile(path));
  }
  j[server] = {{"sequence", head.sequence}, {"hash", HexEncode(head.hash)}};
  return WriteJsonFile(path, j, 0600);
}

std::string Profile::UploadStatePath(const std::string& dataset_name) const {
  // Hex keeps any dataset name a safe file name.
  return JoinPath(JoinPath(dir_, "uploads"), HexEncode(AsBytes(dataset_name)) + ".json");
}

}  // namespace chiron::client
