// The platform verifiers compiled into Chiron. To add a platform (TDX, SEV-SNP): implement
// PlatformVerifier in its own file (e.g. tdx_verifier.cc), add a factory to verifier.h and push
// it here. Verifier::Create(Policy) picks the list up; evidence for a platform without an entry
// is rejected with "no verifier for platform ... in this build".
#include "shared/attest/verifier.h"

namespace chiron::attest {

std::vector<std::unique_ptr<PlatformVerifier>> BuiltinPlatformVerifiers() {
  std::vector<std::unique_ptr<PlatformVerifier>> verifiers;
  verifiers.push_back(NewSimPlatformVerifier());
  return verifiers;
}

}  // namespace chiron::attest
