#include "shared/attest/policy.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

namespace chiron::attest {
namespace {

using nlohmann::json;

constexpr char kSeeDocs[] = "; see docs/formats/policy.md";
constexpr size_t kMaxJsonDepth = 8;

// Builds messages of the form "policy <source>: field 'x' ...; see docs/formats/policy.md".
class Fields {
 public:
  explicit Fields(std::string_view source) : source_(source) {}

  Status Error(std::string_view field, std::string_view problem) const {
    return InvalidArgumentError("policy " + source_ + ": field '" + std::string(field) + "' " +
                                std::string(problem) + kSeeDocs);
  }
  Status TopError(std::string_view problem) const {
    return InvalidArgumentError("policy " + source_ + ": " + std::string(problem) + kSeeDocs);
  }

  Result<bool> Bool(const json& v, std::string_view field) const {
    if (!v.is_boolean())
      return Error(field, "must be true or false, e.g. \"" + std::string(field) + "\": false");
    return v.get<bool>();
  }
  Result<uint32_t> U32(const json& v, std::string_view field, uint64_t max = UINT32_MAX) const {
    if (!v.is_number_unsigned()) {
      return Error(field, "must be an unsigned integer, e.g. \"" + std::string(field) + "\": 1");
    }
    uint64_t n = v.get<uint64_t>();
    if (n > max) return Error(field, "must be at most " + std::to_string(max));
    return static_cast<uint32_t>(n);
  }
  Result<std::vector<std::string>> Strings(const json& v, std::string_view field) const {
    if (!v.is_array()) return Error(field, "must be a list of strings, e.g. [\"...\"]");
    std::vector<std::string> out;
    for (const json& item : v) {
      if (!item.is_string()) return Error(field, "must contain only strings");
      out.push_back(item.get<std::string>());
    }
    return out;
  }
  // A list of hex strings each decoding to exactly `size` bytes.
  Result<std::vector<Bytes>> HexList(const json& v, std::string_view field, size_t size,
                                     std::string_view what) const {
    CHIRON_ASSIGN_OR_RETURN(std::vector<std::string> items, Strings(v, field));
    std::vector<Bytes> out;
    for (const std::string& item : items) {
      Result<Bytes> bytes = HexDecode(item);
      if (!bytes.ok() || bytes->size() != size) {
        return Error(field, "entry \"" + item.substr(0, 2 * size + 8) + "\" is not a " +
                                std::string(what) + ": write " + std::to_string(2 * size) +
                                " hex digits");
      }
      out.push_back(std::move(*bytes));
    }
    return out;
  }
  Status RejectUnknown(const json& object, std::string_view where,
                       std::initializer_list<std::string_view> known) const {
    for (const auto& [key, unused] : object.items()) {
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        std::string list;
        for (std::string_view k : known) list += (list.empty() ? "" : ", ") + std::string(k);
        return TopError(
            "unknown field '" + std::string(where) + key +
            "' (a misspelt field would silently loosen the policy); known fields: " + list);
      }
    }
    return Status::Ok();
  }

 private:
  std::string source_;
};

Status ParseTdx(const json& v, const Fields& f, TdxPolicy& out) {
  if (!v.is_object()) return f.Error("tdx", "must be an object, e.g. \"tdx\": {\"mrtd\": [...]}");
  CHIRON_RETURN_IF_ERROR(
      f.RejectUnknown(v, "tdx.",
                      {"mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3", "accepted_tcb_statuses",
                       "min_tcb_evaluation_data_number", "tcb_status_unchecked",
                       "reject_trailing_bytes"}));
  if (v.contains("mrtd")) {
    CHIRON_ASSIGN_OR_RETURN(out.mrtd, f.HexList(v["mrtd"], "tdx.mrtd", kMeasurementSize, "MRTD"));
  }
  for (size_t i = 0; i < out.rtmr.size(); ++i) {
    const std::string key = "rtmr" + std::to_string(i);
    if (v.contains(key)) {
      CHIRON_ASSIGN_OR_RETURN(out.rtmr[i],
                              f.HexList(v[key], "tdx." + key, kMeasurementSize, "RTMR value"));
    }
  }
  if (v.contains("accepted_tcb_statuses")) {
    CHIRON_ASSIGN_OR_RETURN(out.accepted_tcb_statuses,
                            f.Strings(v["accepted_tcb_statuses"], "tdx.accepted_tcb_statuses"));
  }
  if (v.contains("min_tcb_evaluation_data_number")) {
    CHIRON_ASSIGN_OR_RETURN(
        out.min_tcb_evaluation_data_number,
        f.U32(v["min_tcb_evaluation_data_number"], "tdx.min_tcb_evaluation_data_number"));
  }
  if (v.contains("tcb_status_unchecked")) {
    const json& choice = v["tcb_status_unchecked"];
    if (!choice.is_string() || (choice != "accept" && choice != "refuse")) {
      return f.Error("tdx.tcb_status_unchecked",
                     "must be \"accept\" or \"refuse\" (the default), e.g. "
                     "\"tcb_status_unchecked\": \"refuse\"");
    }
    out.accept_unchecked_tcb_status = choice == "accept";
  }
  if (v.contains("reject_trailing_bytes")) {
    CHIRON_ASSIGN_OR_RETURN(out.reject_trailing_bytes,
                            f.Bool(v["reject_trailing_bytes"], "tdx.reject_trailing_bytes"));
  }
  return Status::Ok();
}

Status ParseSevSnp(const json& v, const Fields& f, SevSnpPolicy& out) {
  if (!v.is_object()) {
    return f.Error("sev_snp", "must be an object, e.g. \"sev_snp\": {\"measurement\": [...]}");
  }
  CHIRON_RETURN_IF_ERROR(f.RejectUnknown(
      v, "sev_snp.",
      {"measurement", "min_bootloader_svn", "min_tee_svn", "min_snp_svn", "min_microcode_svn"}));
  if (v.contains("measurement")) {
    CHIRON_ASSIGN_OR_RETURN(out.measurement, f.HexList(v["measurement"], "sev_snp.measurement",
                                                       kMeasurementSize, "SNP measurement"));
  }
  for (auto [key, slot] : {std::pair{"min_bootloader_svn", &out.min_bootloader_svn},
                           {"min_tee_svn", &out.min_tee_svn},
                           {"min_snp_svn", &out.min_snp_svn},
                           {"min_microcode_svn", &out.min_microcode_svn}}) {
    if (v.contains(key)) {
      CHIRON_ASSIGN_OR_RETURN(uint32_t n, f.U32(v[key], std::string("sev_snp.") + key, 255));
      *slot = static_cast<uint8_t>(n);
    }
  }
  return Status::Ok();
}

Status ParseDocument(const json& doc, const Fields& f, Policy& policy) {
  if (!doc.is_object()) return f.TopError("the top level must be a JSON object { ... }");
  CHIRON_RETURN_IF_ERROR(
      f.RejectUnknown(doc, "",
                      {"version", "comment", "allowed_platforms", "allowed_measurements",
                       "allow_debug", "min_svn", "trusted_sim_roots", "tdx", "sev_snp"}));
  if (!doc.contains("version")) {
    return f.Error("version", "is missing: start the file with \"version\": 1");
  }
  CHIRON_ASSIGN_OR_RETURN(uint32_t version, f.U32(doc["version"], "version"));
  if (version != kPolicyFormatVersion) {
    return f.Error("version", "is " + std::to_string(version) + "; this build reads version " +
                                  std::to_string(kPolicyFormatVersion));
  }
  if (doc.contains("comment") && !doc["comment"].is_string()) {
    return f.Error("comment", "must be a string");
  }
  if (!doc.contains("allowed_platforms")) {
    return f.Error("allowed_platforms",
                   "is missing: list the platforms you accept, e.g. [\"tdx\", \"sev-snp\"]");
  }
  CHIRON_ASSIGN_OR_RETURN(std::vector<std::string> platforms,
                          f.Strings(doc["allowed_platforms"], "allowed_platforms"));
  for (const std::string& name : platforms) {
    Result<PlatformId> id = PlatformIdFromName(name);
    if (!id.ok()) return f.Error("allowed_platforms", id.status().message());
    policy.allowed_platforms.push_back(*id);
  }
  if (doc.contains("allowed_measurements")) {
    const json& m = doc["allowed_measurements"];
    if (m.is_array()) {
      CHIRON_ASSIGN_OR_RETURN(
          policy.allowed_measurements["*"],
          f.HexList(m, "allowed_measurements", kMeasurementSize, "48-byte measurement"));
    } else if (m.is_object()) {
      for (const auto& [key, list] : m.items()) {
        if (key != "*" && !PlatformIdFromName(key).ok()) {
          return f.Error("allowed_measurements", "has key '" + key +
                                                     "': use a platform name (\"sim\", \"tdx\", "
                                                     "\"sev-snp\") or \"*\" for every platform");
        }
        CHIRON_ASSIGN_OR_RETURN(policy.allowed_measurements[key],
                                f.HexList(list, "allowed_measurements." + key, kMeasurementSize,
                                          "48-byte measurement"));
      }
    } else {
      return f.Error("allowed_measurements",
                     "must be a list of hex measurements or an object {\"sim\": [...], ...}");
    }
  }
  if (doc.contains("allow_debug")) {
    CHIRON_ASSIGN_OR_RETURN(policy.allow_debug, f.Bool(doc["allow_debug"], "allow_debug"));
  }
  if (doc.contains("min_svn")) {
    CHIRON_ASSIGN_OR_RETURN(policy.min_svn, f.U32(doc["min_svn"], "min_svn"));
  }
  if (doc.contains("trusted_sim_roots")) {
    CHIRON_ASSIGN_OR_RETURN(policy.trusted_sim_roots,
                            f.HexList(doc["trusted_sim_roots"], "trusted_sim_roots",
                                      kSimRootKeySize, "sim root key (Ed25519 public key)"));
  }
  if (doc.contains("tdx")) CHIRON_RETURN_IF_ERROR(ParseTdx(doc["tdx"], f, policy.tdx));
  if (doc.contains("sev_snp")) {
    CHIRON_RETURN_IF_ERROR(ParseSevSnp(doc["sev_snp"], f, policy.sev_snp));
  }
  return Status::Ok();
}

json HexArray(const std::vector<Bytes>& list) {
  json out = json::array();
  for (const Bytes& b : list) out.push_back(HexEncode(b));
  return out;
}

bool Contains(const std::vector<Bytes>& list, ByteSpan value) {
  return std::any_of(list.begin(), list.end(), [&](const Bytes& b) {
    return b.size() == value.size() && std::equal(b.begin(), b.end(), value.begin());
  });
}

}  // namespace

Result<Policy> Policy::FromJson(std::string_view text, std::string_view source) {
  Fields f(source);
  Policy policy;
  // nlohmann reports errors by exception; they stop here, at the module boundary.
  try {
    // Reject duplicate keys (which JSON leaves undefined and nlohmann resolves silently by
    // keeping the last) and absurd nesting, during the parse.
    std::vector<std::set<std::string>> keys_per_object;
    std::string duplicate;
    json::parser_callback_t callback = [&](int depth, json::parse_event_t event, json& parsed) {
      if (static_cast<size_t>(depth) > kMaxJsonDepth) {
        throw std::length_error("nesting deeper than " + std::to_string(kMaxJsonDepth));
      }
      if (event == json::parse_event_t::object_start) keys_per_object.emplace_back();
      if (event == json::parse_event_t::object_end && !keys_per_object.empty()) {
        keys_per_object.pop_back();
      }
      if (event == json::parse_event_t::key && !keys_per_object.empty()) {
        const std::string key = parsed.get<std::string>();
        if (!keys_per_object.back().insert(key).second && duplicate.empty()) duplicate = key;
      }
      return true;
    };
    json doc = json::parse(text.begin(), text.end(), callback);
    if (!duplicate.empty()) {
      return f.TopError("field '" + duplicate + "' appears twice; keep exactly one");
    }
    CHIRON_RETURN_IF_ERROR(ParseDocument(doc, f, policy));
  } catch (const json::exception& e) {
    return f.TopError(std::string("not valid JSON: ") + e.what());
  } catch (const std::length_error& e) {
    return f.TopError(std::string("not accepted: ") + e.what());
  }
  Status valid = policy.Validate();
  if (!valid.ok()) {
    return InvalidArgumentError("policy " + std::string(source) + ": " + valid.message());
  }
  return policy;
}

Result<Policy> Policy::LoadFile(const std::string& path, FileSystem* fs) {
  if (path.size() >= 5 && path.compare(path.size() - 5, 5, ".toml") == 0) {
    return InvalidArgumentError("policy " + path +
                                ": TOML policies are not supported by this build; write the same "
                                "fields as JSON (docs/formats/policy.md)");
  }
  Result<Bytes> text = fs->ReadFile(path, kMaxPolicyFileSize);
  if (!text.ok()) return text.status().WithContext("cannot read policy file");
  return FromJson(ToString(*text), path);
}

std::string Policy::ToJson() const {
  json doc;
  doc["version"] = kPolicyFormatVersion;
  doc["allowed_platforms"] = json::array();
  for (PlatformId id : allowed_platforms) doc["allowed_platforms"].push_back(PlatformName(id));
  doc["allowed_measurements"] = json::object();
  for (const auto& [key, list] : allowed_measurements) {
    doc["allowed_measurements"][key] = HexArray(list);
  }
  doc["allow_debug"] = allow_debug;
  doc["min_svn"] = min_svn;
  doc["trusted_sim_roots"] = HexArray(trusted_sim_roots);
  json t = json::object();
  if (!tdx.mrtd.empty()) t["mrtd"] = HexArray(tdx.mrtd);
  for (size_t i = 0; i < tdx.rtmr.size(); ++i) {
    if (!tdx.rtmr[i].empty()) t["rtmr" + std::to_string(i)] = HexArray(tdx.rtmr[i]);
  }
  if (!tdx.accepted_tcb_statuses.empty()) t["accepted_tcb_statuses"] = tdx.accepted_tcb_statuses;
  if (tdx.min_tcb_evaluation_data_number) {
    t["min_tcb_evaluation_data_number"] = *tdx.min_tcb_evaluation_data_number;
  }
  if (tdx.accept_unchecked_tcb_status) t["tcb_status_unchecked"] = "accept";
  if (tdx.reject_trailing_bytes) t["reject_trailing_bytes"] = true;
  if (!t.empty()) doc["tdx"] = t;
  json s = json::object();
  if (!sev_snp.measurement.empty()) s["measurement"] = HexArray(sev_snp.measurement);
  for (auto [key, slot] : {std::pair{"min_bootloader_svn", &sev_snp.min_bootloader_svn},
                           {"min_tee_svn", &sev_snp.min_tee_svn},
                           {"min_snp_svn", &sev_snp.min_snp_svn},
                           {"min_microcode_svn", &sev_snp.min_microcode_svn}}) {
    if (*slot) s[key] = static_cast<uint32_t>(**slot);
  }
  if (!s.empty()) doc["sev_snp"] = s;
  return doc.dump(2);
}

Status Policy::Validate() const {
  auto bad = [](std::string m) { return InvalidArgumentError(std::move(m) + kSeeDocs); };
  std::set<PlatformId> seen;
  for (PlatformId id : allowed_platforms) {
    if (!IsKnownPlatform(static_cast<uint16_t>(id))) {
      return bad("allowed_platforms holds unknown platform id " +
                 std::to_string(static_cast<uint16_t>(id)));
    }
    seen.insert(id);
  }
  for (const auto& [key, list] : allowed_measurements) {
    if (key != "*" && !PlatformIdFromName(key).ok()) {
      return bad("allowed_measurements has unknown platform '" + key + "'");
    }
    for (const Bytes& m : list) {
      if (m.size() != kMeasurementSize) {
        return bad("allowed_measurements." + key + " holds a " + std::to_string(m.size()) +
                   "-byte value; measurements are " + std::to_string(kMeasurementSize) + " bytes");
      }
    }
  }
  for (const Bytes& k : trusted_sim_roots) {
    if (k.size() != kSimRootKeySize) {
      return bad("trusted_sim_roots holds a " + std::to_string(k.size()) +
                 "-byte key; sim root keys are " + std::to_string(kSimRootKeySize) +
                 "-byte Ed25519 public keys");
    }
  }
  auto check_sizes = [&](const std::vector<Bytes>& list, const std::string& name) -> Status {
    for (const Bytes& m : list) {
      if (m.size() != kMeasurementSize) {
        return bad(name + " holds a " + std::to_string(m.size()) + "-byte value, not " +
                   std::to_string(kMeasurementSize));
      }
    }
    return Status::Ok();
  };
  CHIRON_RETURN_IF_ERROR(check_sizes(tdx.mrtd, "tdx.mrtd"));
  for (size_t i = 0; i < tdx.rtmr.size(); ++i) {
    CHIRON_RETURN_IF_ERROR(check_sizes(tdx.rtmr[i], "tdx.rtmr" + std::to_string(i)));
  }
  CHIRON_RETURN_IF_ERROR(check_sizes(sev_snp.measurement, "sev_snp.measurement"));
  // Catch policies that can never accept anything for a platform they name: almost always a
  // configuration mistake, and the message says how to fix it.
  for (PlatformId id : seen) {
    if (MeasurementsFor(id).empty()) {
      return bad("platform '" + std::string(PlatformName(id)) +
                 "' is allowed but allowed_measurements lists no measurement for it; add the "
                 "runtime's measurement (chirond prints it at startup) under \"" +
                 std::string(PlatformName(id)) + "\" or \"*\"");
    }
  }
  if (seen.count(PlatformId::kSim) && trusted_sim_roots.empty()) {
    return bad(
        "'sim' is in allowed_platforms but trusted_sim_roots is empty; list the sim root "
        "key chirond prints at startup (INSECURE: for testing only)");
  }
  return Status::Ok();
}

bool Policy::AllowsPlatform(PlatformId platform) const {
  return std::find(allowed_platforms.begin(), allowed_platforms.end(), platform) !=
         allowed_platforms.end();
}

std::vector<Bytes> Policy::MeasurementsFor(PlatformId platform) const {
  std::vector<Bytes> out;
  for (const std::string& key : {std::string("*"), std::string(PlatformName(platform))}) {
    auto it = allowed_measurements.find(key);
    if (it == allowed_measurements.end()) continue;
    for (const Bytes& m : it->second) {
      if (!Contains(out, m)) out.push_back(m);
    }
  }
  return out;
}

std::string DescribeAccepted(const std::vector<Bytes>& accepted) {
  if (accepted.empty()) return "the policy lists none";
  constexpr size_t kShown = 8;
  std::string out = "the policy accepts ";
  for (size_t i = 0; i < accepted.size() && i < kShown; ++i) {
    out += (i == 0 ? "" : ", ") + HexEncode(accepted[i]);
  }
  if (accepted.size() > kShown) out += " and " + std::to_string(accepted.size() - kShown) + " more";
  return out;
}

}  // namespace chiron::attest
