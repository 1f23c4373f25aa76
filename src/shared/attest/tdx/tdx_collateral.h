// Intel TDX collateral in the formats of Intel's Provisioning Certification Service (PCS v4):
// TCB info ({"tcbInfo": {...}, "signature": "<hex r||s>"}) and QE identity
// ({"enclaveIdentity": {...}, "signature": "..."}), and Intel's rules for turning them, with a
// quote's TCB, into a TCB status.
//
// The signature covers the exact bytes of the "tcbInfo" / "enclaveIdentity" value as they appear
// in the response body, so the parser keeps that raw text (a structural scan of the top-level
// object) and never re-serializes. JSON content is read with nlohmann::json; its exceptions are
// caught here and become InvalidArgument. Nothing in this file checks signatures: tdx_verify.cc
// verifies `signature` over `signed_text` with Intel's TCB Signing key before using the rest.
//
// Thread safety: values; free functions.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "shared/attest/tdx/pck_extensions.h"
#include "shared/attest/tdx/tdx_quote.h"
#include "shared/base/bytes.h"
#include "shared/base/status.h"

namespace chiron::attest::tdx {

// Intel's TCB statuses. kNotSupported: no TCB level of the collateral is at or below the
// platform's TCB (Intel's "TCB not supported"); never acceptable by default.
enum class TcbStatus {
  kUpToDate,
  kSwHardeningNeeded,
  kConfigurationNeeded,
  kConfigurationAndSwHardeningNeeded,
  kOutOfDate,
  kOutOfDateConfigurationNeeded,
  kRevoked,
  kNotSupported,
};
// Intel's spelling ("UpToDate", "SWHardeningNeeded", ..., "NotSupported").
std::string_view TcbStatusName(TcbStatus status);
Result<TcbStatus> TcbStatusFromName(std::string_view name);

using TimePoint = std::chrono::system_clock::time_point;

struct TdxTcbLevel {
  std::array<uint8_t, 16> sgx_components{};
  uint16_t pce_svn = 0;
  std::array<uint8_t, 16> tdx_components{};
  std::string tcb_date;
  TcbStatus status = TcbStatus::kNotSupported;
  std::vector<std::string> advisory_ids;
};

struct TdxModuleIdentity {
  std::string id;  // "TDX_01", ...
  Bytes mr_signer;  // 48
  uint64_t attributes = 0;
  uint64_t attributes_mask = 0;
  // (isvsvn, status) pairs in Intel's order (highest first).
  std::vector<std::pair<uint16_t, TcbStatus>> levels;
};

struct TdxTcbInfo {
  std::string signed_text;  // the raw "tcbInfo" value: what Intel signed
  Bytes signature;          // 64 bytes, r || s
  uint32_t version = 0;
  TimePoint issue_date;
  TimePoint next_update;
  std::array<uint8_t, 6> fmspc{};
  std::array<uint8_t, 2> pce_id{};
  uint32_t tcb_evaluation_data_number = 0;
  Bytes module_mr_signer;  // 48
  uint64_t module_attributes = 0;
  uint64_t module_attributes_mask = 0;
  std::vector<TdxModuleIdentity> module_identities;
  std::vector<TdxTcbLevel> levels;
};

struct QeIdentityLevel {
  uint16_t isv_svn = 0;
  std::string tcb_date;
  TcbStatus status = TcbStatus::kNotSupported;
  std::vector<std::string> advisory_ids;
};

struct TdxQeIdentity {
  std::string signed_text;
  Bytes signature;
  uint32_t version = 0;
  TimePoint issue_date;
  TimePoint next_update;
  uint32_t tcb_evaluation_data_number = 0;
  uint32_t misc_select = 0;
  uint32_t misc_select_mask = 0;
  std::array<uint8_t, 16> attributes{};
  std::array<uint8_t, 16> attributes_mask{};
  std::array<uint8_t, 32> mr_signer{};
  uint16_t isv_prod_id = 0;
  std::vector<QeIdentityLevel> levels;
};

inline constexpr size_t kMaxCollateralJsonSize = 1024 * 1024;

// Parse a PCS response body. Requires id "TDX" and version 3 (TCB info), id "TD_QE" and
// version 2 (QE identity). InvalidArgument beginning "tdx tcbInfo: " / "tdx qeIdentity: ".
Result<TdxTcbInfo> ParseTdxTcbInfo(std::string_view response_body);
Result<TdxQeIdentity> ParseTdxQeIdentity(std::string_view response_body);

// The raw text of the value of `key` in the top-level JSON object `text` (exact bytes), or
// NotFound / InvalidArgument. Exposed for tests.
Result<std::string_view> RawJsonMember(std::string_view text, std::string_view key);

// "2023-06-18T08:42:58Z" (UTC, the only form Intel uses).
Result<TimePoint> ParseIntelTime(std::string_view text);
std::string FormatTime(TimePoint time);

struct TcbEvaluation {
  TcbStatus platform_status = TcbStatus::kNotSupported;  // from the TCB info level
  TcbStatus qe_status = TcbStatus::kNotSupported;        // from the QE identity level
  TcbStatus status = TcbStatus::kNotSupported;           // the two converged (Intel's rule)
  std::string tcb_date;
  std::vector<std::string> advisory_ids;
};

// Intel's matching rules (DCAP Quote Verification Library, TDX):
//  - the TCB info's FMSPC and PCE-ID must equal the PCK certificate's, and the TDX module's
//    MRSIGNERSEAM / SEAMATTRIBUTES must match tdxModule (with its mask) -> error otherwise;
//  - the platform level is the first TCB level whose 16 SGX components and PCESVN are each <=
//    the PCK certificate's, and whose TDX components are each <= the quote's TEE_TCB_SVN (from
//    index 2 when TEE_TCB_SVN[1], the module major version, is non-zero: then bytes 0-1 are
//    judged by the matching tdxModuleIdentities entry);
//  - the QE must match the identity's MRSIGNER, ISVPRODID, MISCSELECT and ATTRIBUTES (masked)
//    -> error otherwise; its level is the first with isvsvn <= the QE report's ISVSVN;
//  - convergence: a QE that is OutOfDate turns UpToDate / SWHardeningNeeded into OutOfDate and
//    ConfigurationNeeded / ConfigurationAndSWHardeningNeeded into OutOfDateConfigurationNeeded;
//    a Revoked QE makes the result Revoked; no matching level anywhere gives NotSupported.
Result<TcbEvaluation> EvaluateTdxTcb(const TdxTcbInfo& tcb_info, const TdxQeIdentity& qe_identity,
                                     const PckExtensions& pck, const TdxQuote& quote);

}  // namespace chiron::attest::tdx
