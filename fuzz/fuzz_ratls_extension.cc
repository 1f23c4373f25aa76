// libFuzzer target: the RA-TLS evidence extension (src/shared/ratls/evidence_extension.h), the
// bytes a peer chose for its certificate.
//
//   make fuzz   (or: cmake -DCHIRON_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++-14 ...)
//   build/bin/fuzz_ratls_extension fuzz/corpus/fuzz_ratls_extension
//
// Each input is decoded as an extension value (DecodeEvidenceExtension) and, as DER and as PEM,
// parsed as a whole certificate whose evidence is looked up (CertificateEvidence). Oracles beyond
// "no crash, no sanitizer report":
//  - the encoding is unique: a decoded three-item record re-encodes to exactly the input bytes;
//  - EncodeEvidenceExtension of any decoded value decodes back to it;
//  - every refusal is an "evidence extension: " message (a fixed text per defect).
// Seeds (fuzz/corpus/fuzz_ratls_extension): a real extension value with sim evidence, the same
// as a two-item record, and a whole runtime certificate (DER) from ratls_certificate_writer.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "shared/crypto/x509.h"
#include "shared/ratls/evidence_extension.h"

namespace {

using namespace chiron;  // NOLINT(build/namespaces): fuzz driver

void Check(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteSpan input(data, size);
  auto decoded = ratls::DecodeEvidenceExtension(input);
  if (decoded.ok()) {
    auto encoded = ratls::EncodeEvidenceExtension(*decoded);
    Check(encoded.ok());
    if (size > 0 && data[0] == 0x83) Check(Bytes(input.begin(), input.end()) == *encoded);
    auto again = ratls::DecodeEvidenceExtension(*encoded);
    Check(again.ok() && *again == *decoded);
  } else {
    Check(decoded.status().message().rfind("evidence extension: ", 0) == 0);
  }

  auto from_der = crypto::Certificate::FromDer(input);
  if (from_der.ok()) ratls::CertificateEvidence(*from_der).status().IgnoreError();
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto from_pem = crypto::Certificate::FromPem(text);
  if (from_pem.ok()) ratls::CertificateEvidence(*from_pem).status().IgnoreError();
  return 0;
}
