// libFuzzer target for the X.509 and public-key parsers (untrusted bytes from peers: RA-TLS
// certificates, PCK/VCEK chains, attestation keys).
//
//   make fuzz   (or: cmake -DCHIRON_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++-14 ...)
//   build/bin/fuzz_x509 fuzz/corpus/fuzz_x509
//
// The input goes to Certificate::FromDer, FromPem, ChainFromPem and PublicKey::FromSpkiDer;
// whatever parses is then read through every accessor, so a certificate that parses but has
// odd contents (huge serial, strange times, duplicate extensions) is exercised too.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "shared/crypto/keys.h"
#include "shared/crypto/x509.h"

namespace {

using namespace chiron;          // NOLINT(build/namespaces): fuzz driver
using namespace chiron::crypto;  // NOLINT(build/namespaces)

void Exercise(const Certificate& cert) {
  (void)cert.subject();
  (void)cert.issuer();
  (void)cert.not_before();
  (void)cert.not_after();
  (void)cert.serial_number();
  (void)cert.ToPem();
  auto der = cert.ToDer();
  if (der.ok()) (void)Certificate::FromDer(*der);
  (void)cert.FindExtension("2.5.29.19");
  (void)cert.FindExtension("1.3.6.1.4.1.99999.1");
  auto key = cert.public_key();
  if (key.ok()) {
    (void)key->ToRaw();
    (void)cert.VerifySignature(*key);
  }
  ChainVerifyOptions options;
  (void)VerifyCertificateChain(cert, {}, {cert}, options);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteSpan bytes(data, size);
  auto from_der = Certificate::FromDer(bytes);
  if (from_der.ok()) Exercise(*from_der);

  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto from_pem = Certificate::FromPem(text);
  if (from_pem.ok()) Exercise(*from_pem);
  auto chain = Certificate::ChainFromPem(text);
  if (chain.ok()) {
    for (const Certificate& cert : *chain) Exercise(cert);
  }

  auto key = PublicKey::FromSpkiDer(bytes);
  if (key.ok()) {
    (void)key->ToSpkiDer();
    (void)key->ToRaw();
    (void)key->Verify(bytes, bytes);
    if (key->scheme() != SignatureScheme::kEd25519) {
      size_t half = size / 2;
      (void)key->VerifyEcdsaRaw(bytes, bytes.first(half), bytes.subspan(half));
    }
  }
  return 0;
}
