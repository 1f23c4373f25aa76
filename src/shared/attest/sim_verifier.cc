// The PlatformVerifier for sim evidence. INSECURE by design: it checks a signature by a
// software key that the policy explicitly lists; nothing about hardware.
#include <algorithm>

#include "shared/attest/verifier.h"
#include "shared/crypto/keys.h"

namespace chiron::attest {
namespace {

class SimPlatformVerifier final : public PlatformVerifier {
 public:
  PlatformId platform() const override { return PlatformId::kSim; }

  Result<Claims> VerifyPayload(ByteSpan payload, const Policy& policy) const override {
    // Strict parse: exact size, known body version, no unknown flag bits.
    CHIRON_ASSIGN_OR_RETURN(SimEvidenceBody body, ParseSimBody(payload));

    // Trust before crypto: a key nobody listed is rejected without further work. Stops an
    // attacker who signs evidence with a key of their own.
    const bool listed =
        std::any_of(policy.trusted_sim_roots.begin(), policy.trusted_sim_roots.end(),
                    [&](const Bytes& k) { return ConstantTimeEqual(k, body.root_public_key); });
    if (!listed) {
      return PermissionDeniedError("policy: sim root key " + HexEncode(body.root_public_key) +
                                   " is not in trusted_sim_roots");
    }

    // The signature covers every field before it, under a domain separator. Stops any change
    // to measurement, report data, debug flag or svn by whoever relays the evidence.
    Result<crypto::PublicKey> key =
        crypto::PublicKey::FromRaw(crypto::SignatureScheme::kEd25519, body.root_public_key);
    if (!key.ok()) {
      return UnauthenticatedError("sim evidence: root key is not a valid Ed25519 public key");
    }
    CHIRON_ASSIGN_OR_RETURN(Bytes message, SimSignedMessage(body));
    if (!key->Verify(message, body.signature).ok()) {
      return UnauthenticatedError("sim evidence: signature verification failed");
    }

    Claims claims;
    claims.platform = std::string(PlatformName(PlatformId::kSim));
    claims.measurement = std::move(body.measurement);
    claims.report_data = std::move(body.report_data);
    claims.debug = body.debug;
    claims.svn = body.svn;
    claims.simulated = true;
    claims.details["sim_root_key"] = HexEncode(body.root_public_key);
    claims.details["sim_body_version"] = std::to_string(body.version);
    claims.warnings.push_back(kSimInsecureWarning);
    return claims;
  }
};

}  // namespace

std::unique_ptr<PlatformVerifier> NewSimPlatformVerifier() {
  return std::make_unique<SimPlatformVerifier>();
}

}  // namespace chiron::attest
