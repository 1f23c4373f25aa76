// Writes a runtime certificate exactly as chirond makes it, for ratls_certificate_test.py: the sim
// TEE platform (tee::CreatePlatform, as chirond calls it, measuring this binary) produces the
// evidence, ratls::CreateAttestedIdentity builds the certificate.
//
//   ratls_certificate_writer OUT.pem STATE_DIR
//
// Writes OUT.pem and prints one JSON object on stdout with what the C++ side embedded, for the
// test to compare against what Python's X.509 parser finds:
//   {"oid": ..., "media_type": ..., "extension_value_hex": ..., "evidence_hex": ...,
//    "spki_hex": ..., "report_data_hex": ...}
// Exit status 0 on success, 1 with a message on stderr otherwise.
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "runtime/tee/platform.h"
#include "shared/base/file_system.h"
#include "shared/ratls/evidence_extension.h"
#include "shared/ratls/ratls.h"

namespace {

int Fail(const std::string& what, const chiron::Status& status) {
  std::fprintf(stderr, "ratls_certificate_writer: %s: %s\n", what.c_str(),
               status.message().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace chiron;  // NOLINT(build/namespaces): test helper
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s OUT.pem STATE_DIR\n", argv[0]);
    return 1;
  }
  tee::PlatformOptions options;
  options.name = "sim";
  options.state_dir = argv[2];
  options.measured_components = {{"ratls_certificate_writer", "/proc/self/exe"}};
  auto platform = tee::CreatePlatform(options);
  if (!platform.ok()) return Fail("sim platform", platform.status());
  tee::Platform* raw = platform->get();
  auto identity = ratls::CreateAttestedIdentity(
      [raw](ByteSpan report_data) { return raw->GetEvidence(report_data); }, "chirond");
  if (!identity.ok()) return Fail("attested identity", identity.status());
  auto extension = identity->certificate.FindExtension(ratls::kEvidenceExtensionOid);
  if (!extension.ok()) return Fail("evidence extension", extension.status());
  auto evidence = ratls::CertificateEvidence(identity->certificate);
  if (!evidence.ok()) return Fail("evidence", evidence.status());
  Status written =
      FileSystem::Default()->WriteFileAtomic(argv[1], AsBytes(identity->cert_pem), 0644);
  if (!written.ok()) return Fail("writing the certificate", written);

  nlohmann::json out;
  out["oid"] = ratls::kEvidenceExtensionOid;
  out["media_type"] = ratls::kEvidenceMediaType;
  out["extension_value_hex"] = HexEncode(extension->value);
  out["evidence_hex"] = HexEncode(*evidence);
  out["spki_hex"] = HexEncode(identity->spki_der);
  out["report_data_hex"] = HexEncode(ratls::CertificateReportData(identity->spki_der));
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
