// libFuzzer target for the attestation evidence parsers and the Verifier (untrusted bytes from
// peers: evidence in RA-TLS certificates and attestation RPCs).
//
//   make fuzz   (or: cmake -DCHIRON_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++-14 ...)
//   build/bin/fuzz_evidence fuzz/corpus/fuzz_evidence
//
// Every input goes through ParseEvidence; whatever parses goes through the body parser of its
// platform (sim, or the configfs-tsm body for tdx / sev-snp) and through a Verifier whose policy
// trusts the fixed sim root below, so mutations of valid seeds reach the signature and policy
// checks. Oracles beyond "no crash, no sanitizer report":
//  - a parsed envelope / body re-serializes to exactly the input bytes (the formats have one
//    encoding, so a parser that accepts two encodings of one value is a bug);
//  - Verify never accepts evidence whose sim signature does not verify under the trusted key,
//    and accepted sim claims are always marked simulated and carry the INSECURE warning.
//
// Seed corpus (fuzz/corpus/fuzz_evidence): valid sim evidence signed by kFuzzRootSeed (plain and
// debug), tdx and sev-snp configfs-tsm envelopes with small fake outblobs, and a bare header.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "shared/attest/evidence.h"
#include "shared/attest/verifier.h"
#include "shared/crypto/keys.h"

namespace {

using namespace chiron;          // NOLINT(build/namespaces): fuzz driver
using namespace chiron::attest;  // NOLINT(build/namespaces)

// The Ed25519 private key (RFC 8032 seed) of the seeds' sim root: bytes 1..32.
Bytes FuzzRootPkcs8() {
  Bytes der = {0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06,
               0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20};
  for (uint8_t i = 1; i <= 32; ++i) der.push_back(i);
  return der;
}

void Check(bool condition) {
  if (!condition) std::abort();
}

struct Fixture {
  Bytes report_data = Bytes(kReportDataSize, 0x52);   // 'R'
  Bytes measurement = Bytes(kMeasurementSize, 0x4d);  // 'M'
  Bytes root_public;
  Verifier verifier;
};

Fixture* MakeFixture() {
  Result<crypto::PrivateKey> root = crypto::PrivateKey::FromPkcs8Der(FuzzRootPkcs8());
  Check(root.ok());
  Policy policy;
  policy.allowed_platforms = {PlatformId::kSim, PlatformId::kTdx, PlatformId::kSevSnp};
  Bytes measurement(kMeasurementSize, 0x4d);
  policy.allowed_measurements["*"] = {measurement};
  policy.allow_debug = true;
  Result<Bytes> root_public = root->public_key().ToRaw();
  Check(root_public.ok());
  policy.trusted_sim_roots = {*root_public};
  Result<Verifier> verifier = Verifier::Create(std::move(policy));
  Check(verifier.ok());
  return new Fixture{Bytes(kReportDataSize, 0x52), measurement, *root_public, std::move(*verifier)};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture* fixture = MakeFixture();
  const ByteSpan input(data, size);

  Result<Evidence> evidence = ParseEvidence(input);
  if (evidence.ok()) {
    Result<Bytes> again = SerializeEvidence(*evidence);
    Check(again.ok() && std::equal(again->begin(), again->end(), input.begin(), input.end()));
    if (evidence->platform == PlatformId::kSim) {
      Result<SimEvidenceBody> body = ParseSimBody(evidence->payload);
      if (body.ok()) {
        Result<Bytes> body_again = SerializeSimBody(*body);
        Check(body_again.ok() && *body_again == evidence->payload);
      }
    } else {
      Result<TsmEvidenceBody> body = ParseTsmBody(evidence->platform, evidence->payload);
      if (body.ok()) {
        Result<Bytes> body_again = SerializeTsmBody(*body);
        Check(body_again.ok() && *body_again == evidence->payload);
      }
    }
  }

  Result<Claims> claims = fixture->verifier.Verify(input, fixture->report_data);
  if (claims.ok()) {
    // No hardware evidence can bind the fixed report data and measurement above, so only sim
    // evidence can be accepted, and only if it really is signed by the trusted root over
    // exactly these claims.
    Check(evidence.ok() && evidence->platform == PlatformId::kSim);
    Check(claims->simulated && !claims->warnings.empty() &&
          claims->warnings[0] == kSimInsecureWarning);
    Check(claims->measurement == fixture->measurement);
    Check(claims->report_data == fixture->report_data);
    Result<SimEvidenceBody> body = ParseSimBody(evidence->payload);
    Check(body.ok() && body->root_public_key == fixture->root_public);
    Result<crypto::PublicKey> key =
        crypto::PublicKey::FromRaw(crypto::SignatureScheme::kEd25519, fixture->root_public);
    Result<Bytes> message = SimSignedMessage(*body);
    Check(key.ok() && message.ok() && key->Verify(*message, body->signature).ok());
  }
  return 0;
}
