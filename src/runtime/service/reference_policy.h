// The reference policy of a running sim platform: the policy that accepts exactly this runtime
// (its measurement and its sim root key). chirond writes it with --write-sim-policy so that
// tests and the demo can hand it to clients; a real deployment's relying parties instead build
// their policy from reproducible-build measurements and hardware roots (docs/formats/policy.md).
#pragma once

#include "runtime/tee/platform.h"
#include "shared/attest/policy.h"
#include "shared/base/status.h"

namespace chiron::runtime {

// FailedPrecondition unless the platform is sim. The policy allows platform "sim", the
// platform's measurement, its root key, no debug (unless the platform runs with sim_debug, in
// which case allow_debug is true) and min_svn equal to the platform's svn.
Result<attest::Policy> SimReferencePolicy(tee::Platform& platform);

}  // namespace chiron::runtime
