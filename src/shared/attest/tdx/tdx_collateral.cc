#include "shared/attest/tdx/tdx_collateral.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

namespace chiron::attest::tdx {
namespace {

using nlohmann::json;

constexpr std::pair<TcbStatus, std::string_view> kStatusNames[] = {
    {TcbStatus::kUpToDate, "UpToDate"},
    {TcbStatus::kSwHardeningNeeded, "SWHardeningNeeded"},
    {TcbStatus::kConfigurationNeeded, "ConfigurationNeeded"},
    {TcbStatus::kConfigurationAndSwHardeningNeeded, "ConfigurationAndSWHardeningNeeded"},
    {TcbStatus::kOutOfDate, "OutOfDate"},
    {TcbStatus::kOutOfDateConfigurationNeeded, "OutOfDateConfigurationNeeded"},
    {TcbStatus::kRevoked, "Revoked"},
    {TcbStatus::kNotSupported, "NotSupported"},
};

// Field readers: each throws std::runtime_error with a message naming the field; the public
// parse functions catch every exception at the boundary.
[[noreturn]] void Fail(const std::string& message) { throw std::runtime_error(message); }

const json& Member(const json& object, const char* name) {
  if (!object.is_object()) Fail(std::string("expected an object holding '") + name + "'");
  auto it = object.find(name);
  if (it == object.end()) Fail(std::string("field '") + name + "' is missing");
  return *it;
}
uint64_t Unsigned(const json& object, const char* name, uint64_t max) {
  const json& v = Member(object, name);
  if (!v.is_number_unsigned() || v.get<uint64_t>() > max) {
    Fail(std::string("field '") + name + "' must be an unsigned integer <= " + std::to_string(max));
  }
  return v.get<uint64_t>();
}
std::string String(const json& object, const char* name) {
  const json& v = Member(object, name);
  if (!v.is_string()) Fail(std::string("field '") + name + "' must be a string");
  return v.get<std::string>();
}
Bytes Hex(const json& object, const char* name, size_t size) {
  Result<Bytes> bytes = HexDecode(String(object, name));
  if (!bytes.ok() || bytes->size() != size) {
    Fail(std::string("field '") + name + "' must be " + std::to_string(size) + " bytes of hex");
  }
  return std::move(bytes).value();
}
template <size_t N>
std::array<uint8_t, N> HexArray(const json& object, const char* name) {
  Bytes bytes = Hex(object, name, N);
  std::array<uint8_t, N> out{};
  std::copy(bytes.begin(), bytes.end(), out.begin());
  return out;
}
uint64_t HexU64Le(const json& object, const char* name) {
  // Intel writes 8-byte attribute fields as hex of the little-endian bytes as they sit in
  // the report; read them in that byte order.
  Bytes bytes = Hex(object, name, 8);
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | bytes[i];
  return v;
}
uint32_t HexU32(const json& object, const char* name) {
  Bytes bytes = Hex(object, name, 4);
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = v << 8 | bytes[i];
  return v;
}
TimePoint Time(const json& object, const char* name) {
  Result<TimePoint> t = ParseIntelTime(String(object, name));
  if (!t.ok()) Fail(std::string("field '") + name + "': " + t.status().message());
  return *t;
}
TcbStatus Status_(const json& object) {
  Result<TcbStatus> s = TcbStatusFromName(String(object, "tcbStatus"));
  if (!s.ok() || *s == TcbStatus::kNotSupported) {
    Fail("field 'tcbStatus' is not one of Intel's TCB statuses");
  }
  return *s;
}
std::vector<std::string> Advisories(const json& level) {
  std::vector<std::string> ids;
  auto it = level.find("advisoryIDs");
  if (it == level.end()) return ids;
  if (!it->is_array()) Fail("field 'advisoryIDs' must be an array");
  for (const json& id : *it) {
    if (!id.is_string()) Fail("field 'advisoryIDs' must hold strings");
    ids.push_back(id.get<std::string>());
  }
  return ids;
}
std::array<uint8_t, 16> Components(const json& tcb, const char* name) {
  const json& list = Member(tcb, name);
  if (!list.is_array() || list.size() != 16) Fail(std::string("'") + name + "' must list 16");
  std::array<uint8_t, 16> out{};
  for (size_t i = 0; i < 16; ++i) out[i] = static_cast<uint8_t>(Unsigned(list[i], "svn", 255));
  return out;
}

// Skips one JSON value starting at text[pos] (structure only; content is validated by
// nlohmann). Returns the position after it, or npos on malformed input.
size_t SkipValue(std::string_view text, size_t pos) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = pos; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
        if (depth == 0) return i + 1;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (depth == 0) return i;  // end of the enclosing container: a scalar ended here
      if (--depth == 0) return i + 1;
    } else if (depth == 0 && (c == ',' || c == ' ' || c == '\n' || c == '\r' || c == '\t')) {
      return i;
    }
  }
  return std::string_view::npos;
}

size_t SkipSpace(std::string_view text, size_t pos) {
  while (pos < text.size() &&
         (text[pos] == ' ' || text[pos] == '\n' || text[pos] == '\r' || text[pos] == '\t')) {
    ++pos;
  }
  return pos;
}

template <typename F>
auto CatchAtBoundary(std::string_view prefix, F&& parse) -> decltype(parse()) {
  try {
    return parse();
  } catch (const std::exception& e) {
    return InvalidArgumentError(std::string(prefix) + e.what());
  }
}

}  // namespace

std::string_view TcbStatusName(TcbStatus status) {
  for (const auto& [s, name] : kStatusNames) {
    if (s == status) return name;
  }
  return "NotSupported";
}

Result<TcbStatus> TcbStatusFromName(std::string_view name) {
  for (const auto& [s, n] : kStatusNames) {
    if (n == name) return s;
  }
  return InvalidArgumentError("unknown TCB status \"" + std::string(name) + "\"");
}

Result<TimePoint> ParseIntelTime(std::string_view text) {
  int y, mo, d, h, mi, s;
  char z;
  char tail;
  std::string copy(text);
  if (text.size() != 20 ||
      std::sscanf(copy.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c%c", &y, &mo, &d, &h, &mi, &s, &z,
                  &tail) != 7 ||
      z != 'Z' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) {
    return InvalidArgumentError("time \"" + copy + "\" is not of the form 2023-06-18T08:42:58Z");
  }
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::string FormatTime(TimePoint time) {
  std::time_t t = std::chrono::system_clock::to_time_t(time);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

Result<std::string_view> RawJsonMember(std::string_view text, std::string_view key) {
  size_t pos = SkipSpace(text, 0);
  if (pos >= text.size() || text[pos] != '{') {
    return InvalidArgumentError("not a JSON object");
  }
  pos = SkipSpace(text, pos + 1);
  std::optional<std::string_view> found;
  while (pos < text.size() && text[pos] != '}') {
    size_t key_end = SkipValue(text, pos);
    if (text[pos] != '"' || key_end == std::string_view::npos) {
      return InvalidArgumentError("malformed JSON member name");
    }
    std::string_view name = text.substr(pos + 1, key_end - pos - 2);
    pos = SkipSpace(text, key_end);
    if (pos >= text.size() || text[pos] != ':') return InvalidArgumentError("expected ':'");
    pos = SkipSpace(text, pos + 1);
    size_t value_end = SkipValue(text, pos);
    if (value_end == std::string_view::npos || value_end == pos) {
      return InvalidArgumentError("malformed JSON value");
    }
    if (name == key) {
      if (found) return InvalidArgumentError("member \"" + std::string(key) + "\" appears twice");
      found = text.substr(pos, value_end - pos);
    }
    pos = SkipSpace(text, value_end);
    if (pos < text.size() && text[pos] == ',') pos = SkipSpace(text, pos + 1);
  }
  if (!found) return NotFoundError("member \"" + std::string(key) + "\" is missing");
  return *found;
}

Result<TdxTcbInfo> ParseTdxTcbInfo(std::string_view body) {
  constexpr std::string_view kPrefix = "tdx tcbInfo: ";
  if (body.size() > kMaxCollateralJsonSize) {
    return InvalidArgumentError(std::string(kPrefix) + "response is larger than 1 MiB");
  }
  return CatchAtBoundary(kPrefix, [&]() -> Result<TdxTcbInfo> {
    json doc = json::parse(body);  // validates the whole text first
    TdxTcbInfo info;
    Result<std::string_view> raw = RawJsonMember(body, "tcbInfo");
    if (!raw.ok()) Fail(raw.status().message());
    info.signed_text = std::string(*raw);
    info.signature = Hex(doc, "signature", 64);
    const json& t = Member(doc, "tcbInfo");
    if (String(t, "id") != "TDX") Fail("id is not \"TDX\" (this is not TDX TCB info)");
    info.version = static_cast<uint32_t>(Unsigned(t, "version", 0xffffffff));
    if (info.version != 3) Fail("version " + std::to_string(info.version) + " (expected 3)");
    info.issue_date = Time(t, "issueDate");
    info.next_update = Time(t, "nextUpdate");
    info.fmspc = HexArray<6>(t, "fmspc");
    info.pce_id = HexArray<2>(t, "pceId");
    if (Unsigned(t, "tcbType", 0xffff) != 0) Fail("tcbType must be 0");
    info.tcb_evaluation_data_number =
        static_cast<uint32_t>(Unsigned(t, "tcbEvaluationDataNumber", 0xffffffff));
    const json& module = Member(t, "tdxModule");
    info.module_mr_signer = Hex(module, "mrsigner", 48);
    info.module_attributes = HexU64Le(module, "attributes");
    info.module_attributes_mask = HexU64Le(module, "attributesMask");
    if (auto it = t.find("tdxModuleIdentities"); it != t.end()) {
      if (!it->is_array()) Fail("'tdxModuleIdentities' must be an array");
      for (const json& m : *it) {
        TdxModuleIdentity identity;
        identity.id = String(m, "id");
        identity.mr_signer = Hex(m, "mrsigner", 48);
        identity.attributes = HexU64Le(m, "attributes");
        identity.attributes_mask = HexU64Le(m, "attributesMask");
        const json& levels = Member(m, "tcbLevels");
        if (!levels.is_array()) Fail("module 'tcbLevels' must be an array");
        for (const json& level : levels) {
          identity.levels.emplace_back(
              static_cast<uint16_t>(Unsigned(Member(level, "tcb"), "isvsvn", 0xffff)),
              Status_(level));
        }
        info.module_identities.push_back(std::move(identity));
      }
    }
    const json& levels = Member(t, "tcbLevels");
    if (!levels.is_array() || levels.empty()) Fail("'tcbLevels' must be a non-empty array");
    for (const json& level : levels) {
      TdxTcbLevel l;
      const json& tcb = Member(level, "tcb");
      l.sgx_components = Components(tcb, "sgxtcbcomponents");
      l.pce_svn = static_cast<uint16_t>(Unsigned(tcb, "pcesvn", 0xffff));
      l.tdx_components = Components(tcb, "tdxtcbcomponents");
      l.tcb_date = String(level, "tcbDate");
      l.status = Status_(level);
      l.advisory_ids = Advisories(level);
      info.levels.push_back(std::move(l));
    }
    return info;
  });
}

Result<TdxQeIdentity> ParseTdxQeIdentity(std::string_view body) {
  constexpr std::string_view kPrefix = "tdx qeIdentity: ";
  if (body.size() > kMaxCollateralJsonSize) {
    return InvalidArgumentError(std::string(kPrefix) + "response is larger than 1 MiB");
  }
  return CatchAtBoundary(kPrefix, [&]() -> Result<TdxQeIdentity> {
    json doc = json::parse(body);
    TdxQeIdentity qe;
    Result<std::string_view> raw = RawJsonMember(body, "enclaveIdentity");
    if (!raw.ok()) Fail(raw.status().message());
    qe.signed_text = std::string(*raw);
    qe.signature = Hex(doc, "signature", 64);
    const json& e = Member(doc, "enclaveIdentity");
    if (String(e, "id") != "TD_QE") Fail("id is not \"TD_QE\" (this is not the TDX QE identity)");
    qe.version = static_cast<uint32_t>(Unsigned(e, "version", 0xffffffff));
    if (qe.version != 2) Fail("version " + std::to_string(qe.version) + " (expected 2)");
    qe.issue_date = Time(e, "issueDate");
    qe.next_update = Time(e, "nextUpdate");
    qe.tcb_evaluation_data_number =
        static_cast<uint32_t>(Unsigned(e, "tcbEvaluationDataNumber", 0xffffffff));
    qe.misc_select = HexU32(e, "miscselect");
    qe.misc_select_mask = HexU32(e, "miscselectMask");
    qe.attributes = HexArray<16>(e, "attributes");
    qe.attributes_mask = HexArray<16>(e, "attributesMask");
    qe.mr_signer = HexArray<32>(e, "mrsigner");
    qe.isv_prod_id = static_cast<uint16_t>(Unsigned(e, "isvprodid", 0xffff));
    const json& levels = Member(e, "tcbLevels");
    if (!levels.is_array() || levels.empty()) Fail("'tcbLevels' must be a non-empty array");
    for (const json& level : levels) {
      QeIdentityLevel l;
      l.isv_svn = static_cast<uint16_t>(Unsigned(Member(level, "tcb"), "isvsvn", 0xffff));
      l.tcb_date = String(level, "tcbDate");
      l.status = Status_(level);
      l.advisory_ids = Advisories(level);
      qe.levels.push_back(std::move(l));
    }
    return qe;
  });
}

Result<TcbEvaluation> EvaluateTdxTcb(const TdxTcbInfo& info, const TdxQeIdentity& qe,
                                     const PckExtensions& pck, const TdxQuote& quote) {
  if (info.fmspc != pck.fmspc) {
    return FailedPreconditionError("tdx tcbInfo: FMSPC " + HexEncode(info.fmspc) +
                                   " is not the PCK certificate's " + HexEncode(pck.fmspc) +
                                   " (collateral for another platform)");
  }
  if (info.pce_id != pck.pce_id) {
    return FailedPreconditionError("tdx tcbInfo: PCE-ID differs from the PCK certificate's");
  }
  const TdReportBody& body = quote.body;
  // The TDX module must be Intel's: MRSIGNERSEAM and masked SEAMATTRIBUTES.
  if (!std::equal(info.module_mr_signer.begin(), info.module_mr_signer.end(),
                  body.mr_signer_seam.begin()) ||
      (body.seam_attributes & info.module_attributes_mask) != info.module_attributes) {
    return UnauthenticatedError(
        "tdx tcbInfo: the quote's MRSIGNERSEAM / SEAMATTRIBUTES do not match tdxModule");
  }
  TcbEvaluation eval;
  const auto& svn = body.tee_tcb_svn;
  size_t tdx_first = svn[1] > 0 ? 2 : 0;
  for (const TdxTcbLevel& level : info.levels) {
    bool sgx_ok = pck.pce_svn >= level.pce_svn;
    for (size_t i = 0; i < 16 && sgx_ok; ++i) sgx_ok = pck.tcb_components[i] >= level.sgx_components[i];
    if (!sgx_ok) continue;
    bool tdx_ok = true;
    for (size_t i = tdx_first; i < 16 && tdx_ok; ++i) tdx_ok = svn[i] >= level.tdx_components[i];
    if (!tdx_ok) continue;
    eval.platform_status = level.status;
    eval.tcb_date = level.tcb_date;
    eval.advisory_ids = level.advisory_ids;
    break;
  }
  // With a TDX module major version > 0, its SVN (TEE_TCB_SVN[0]) is judged by the identity
  // "TDX_<major>" and the worse of the two statuses stands.
  if (svn[1] > 0 && !info.module_identities.empty()) {
    char id[8];
    std::snprintf(id, sizeof(id), "TDX_%02X", svn[1]);
    auto it = std::find_if(info.module_identities.begin(), info.module_identities.end(),
                           [&](const TdxModuleIdentity& m) { return m.id == id; });
    if (it == info.module_identities.end()) {
      return FailedPreconditionError(std::string("tdx tcbInfo: no tdxModuleIdentities entry ") + id);
    }
    if (!std::equal(it->mr_signer.begin(), it->mr_signer.end(), body.mr_signer_seam.begin()) ||
        (body.seam_attributes & it->attributes_mask) != it->attributes) {
      return UnauthenticatedError(std::string("tdx tcbInfo: TDX module does not match ") + id);
    }
    TcbStatus module_status = TcbStatus::kNotSupported;
    for (const auto& [isv_svn, status] : it->levels) {
      if (svn[0] >= isv_svn) {
        module_status = status;
        break;
      }
    }
    if (module_status != TcbStatus::kUpToDate) eval.platform_status = module_status;
  }

  // QE identity: the QE must be Intel's TD quoting enclave.
  const SgxReportBody& qe_report = quote.qe_report;
  bool attributes_ok = true;
  for (size_t i = 0; i < 16; ++i) {
    attributes_ok &= (qe_report.attributes[i] & qe.attributes_mask[i]) == qe.attributes[i];
  }
  if (qe_report.mr_signer != qe.mr_signer || qe_report.isv_prod_id != qe.isv_prod_id ||
      (qe_report.misc_select & qe.misc_select_mask) != qe.misc_select || !attributes_ok) {
    return UnauthenticatedError(
        "tdx qeIdentity: the QE report's MRSIGNER / ISVPRODID / MISCSELECT / ATTRIBUTES do not "
        "match Intel's TD QE identity");
  }
  for (const QeIdentityLevel& level : qe.levels) {
    if (qe_report.isv_svn >= level.isv_svn) {
      eval.qe_status = level.status;
      break;
    }
  }

  // Convergence.
  eval.status = eval.platform_status;
  if (eval.platform_status == TcbStatus::kNotSupported ||
      eval.qe_status == TcbStatus::kNotSupported) {
    eval.status = TcbStatus::kNotSupported;
  } else if (eval.qe_status == TcbStatus::kRevoked) {
    eval.status = TcbStatus::kRevoked;
  } else if (eval.qe_status == TcbStatus::kOutOfDate) {
    switch (eval.platform_status) {
      case TcbStatus::kUpToDate:
      case TcbStatus::kSwHardeningNeeded:
        eval.status = TcbStatus::kOutOfDate;
        break;
      case TcbStatus::kConfigurationNeeded:
      case TcbStatus::kConfigurationAndSwHardeningNeeded:
        eval.status = TcbStatus::kOutOfDateConfigurationNeeded;
        break;
      default:
        break;
    }
  }
  return eval;
}

}  // namespace chiron::attest::tdx
