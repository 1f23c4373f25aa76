#include "runtime/tee/platform.h"

#include <algorithm>
#include <set>

#include "runtime/tee/sim_platform.h"
#include "runtime/tee/tsm_platform.h"
#include "shared/crypto/hash.h"

namespace chiron::tee {

Result<Bytes> MeasureComponents(const std::vector<MeasuredComponent>& components, FileSystem* fs) {
  if (fs == nullptr) fs = FileSystem::Default();
  if (components.empty()) {
    return InvalidArgumentError(
        "measurement: no measured components; list the chirond executable, the worker "
        "launcher executable and the sandbox policy file");
  }
  std::vector<const MeasuredComponent*> sorted;
  std::set<std::string> names;
  for (const MeasuredComponent& c : components) {
    if (c.name.empty()) {
      return InvalidArgumentError("measurement: component for '" + c.path + "' has no name");
    }
    if (!names.insert(c.name).second) {
      return InvalidArgumentError("measurement: component name '" + c.name + "' appears twice");
    }
    sorted.push_back(&c);
  }
  // Sorted by name so that the order of command-line flags does not change the measurement.
  std::sort(
      sorted.begin(), sorted.end(),
      [](const MeasuredComponent* a, const MeasuredComponent* b) { return a->name < b->name; });

  crypto::Hasher hasher(crypto::HashAlgorithm::kSha384);
  constexpr std::string_view kDomain = "CHIRON-MEASUREMENT-V1";
  hasher.Update(AsBytes(kDomain));
  hasher.Update(Bytes{0});
  Bytes header;
  AppendU32Le(header, static_cast<uint32_t>(sorted.size()));
  hasher.Update(header);
  for (const MeasuredComponent* c : sorted) {
    Result<Bytes> contents = fs->ReadFile(c->path, kMaxMeasuredFileSize);
    if (!contents.ok()) {
      return contents.status().WithContext("measurement: cannot read component '" + c->name + "'");
    }
    const Bytes digest = crypto::Sha384(*contents);
    Bytes entry;
    AppendU32Le(entry, static_cast<uint32_t>(c->name.size()));
    Append(entry, AsBytes(c->name));
    AppendU32Le(entry, static_cast<uint32_t>(digest.size()));
    Append(entry, digest);
    hasher.Update(entry);
  }
  return hasher.Finish();
}

Result<std::unique_ptr<Platform>> CreatePlatform(const PlatformOptions& options) {
  if (options.name == "sim") return CreateSimPlatform(options);
  if (options.name == "tsm") return CreateTsmPlatform(options, TsmFiles::Posix());
  return InvalidArgumentError("unknown TEE platform '" + options.name +
                              "'; use \"tsm\" on a TDX or SEV-SNP guest, or \"sim\" (INSECURE, "
                              "for testing) elsewhere");
}

}  // namespace chiron::tee
