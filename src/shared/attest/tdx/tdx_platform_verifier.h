// The TDX PlatformVerifier: plugs VerifyTdxQuote into the generic attest::Verifier
// (verifier.h) for PlatformId::kTdx. Library chiron_tdx_platform (kept apart from chiron_tdx so
// that chiron_attest need not depend on it; a build that wants TDX in BuiltinPlatformVerifiers
// links this library and pushes NewTdxPlatformVerifier there).
//
// Payload: a configfs-tsm body (evidence.h) from provider "tdx_guest" whose outblob is the raw
// quote. Checks: VerifyTdxQuote with the collateral given here at clock() (refusing trailing
// bytes if these options or policy.tdx.reject_trailing_bytes say so), then policy.tdx (mrtd,
// rtmr0..3, accepted_tcb_statuses, min_tcb_evaluation_data_number, tcb_status_unchecked). The
// Verifier then applies report data, allow_debug, min_svn and allowed_measurements.
//
// Without TCB info / QE identity in the collateral a quote is refused unless the policy says
// tcb_status_unchecked = accept; then its claims carry tcb_status "NOT CHECKED" and, first among
// the warnings, kTcbStatusNotCheckedWarning.
//
// Claims: measurement = MRTD; report_data = REPORTDATA; debug = TDATTRIBUTES.DEBUG; svn =
// TEE_TCB_SVN[0] (the TDX module's SVN: TDX has no per-guest SVN); details: mrtd, rtmr0..3,
// tcb_status, fmspc, ... (DescribeTdxVerification).
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "shared/attest/tdx/tdx_verify.h"
#include "shared/attest/verifier.h"

namespace chiron::attest::tdx {

struct TdxPlatformVerifierOptions {
  TdxCollateral collateral;
  // The verification time for each call; tests pin it.
  std::function<std::chrono::system_clock::time_point()> clock = [] {
    return std::chrono::system_clock::now();
  };
  // Refuse bytes after the quote's signature data whatever the policy says.
  bool reject_trailing_bytes = false;
};

std::unique_ptr<PlatformVerifier> NewTdxPlatformVerifier(TdxPlatformVerifierOptions options);

}  // namespace chiron::attest::tdx
