// chiron: the data owner's command-line tool.
//
// Exit codes (docs/cli.md): 0 success; 1 usage error; 2 verification failed (attestation,
// evidence, policy); 3 the server could not be reached; 4 any other error.
#include <time.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "client/cli/claims_output.h"
#include "client/connection.h"
#include "client/evidence_file.h"
#include "shared/attest/policy.h"
#include "shared/attest/verifier.h"
#include "shared/base/file_system.h"
#include "shared/crypto/keys.h"
#include "shared/ratls/ratls.h"

namespace chiron::client {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitVerificationFailed = 2;
constexpr int kExitUnreachable = 3;
constexpr int kExitError = 4;

int Fail(const Status& status) {
  std::fprintf(stderr, "chiron: %s\n", status.message().c_str());
  switch (status.code()) {
    case StatusCode::kUnauthenticated:
    case StatusCode::kPermissionDenied:
    case StatusCode::kDataLoss: return kExitVerificationFailed;
    case StatusCode::kUnavailable:
    case StatusCode::kDeadlineExceeded: return kExitUnreachable;
    default: return kExitError;
  }
}

// Verification failures of evidence are exit 2 whatever their code.
int FailVerification(const Status& status) {
  std::fprintf(stderr, "chiron: verification FAILED: %s\n", status.message().c_str());
  return kExitVerificationFailed;
}

Result<std::shared_ptr<const attest::Verifier>> LoadVerifier(const std::string& policy_path) {
  auto policy = attest::Policy::LoadFile(policy_path);
  if (!policy.ok()) return policy.status();
  auto verifier = attest::Verifier::Create(std::move(*policy));
  if (!verifier.ok()) return verifier.status().WithContext("policy " + policy_path);
  return std::shared_ptr<const attest::Verifier>(
      std::make_shared<attest::Verifier>(std::move(*verifier)));
}

void PrintClaims(const attest::Claims& claims, bool json) {
  if (json) {
    std::cout << ClaimsToJson(claims, true) << "\n";
  } else {
    std::cout << ClaimsToText(claims);
  }
  if (claims.simulated) {
    std::fprintf(stderr,
                 "chiron: WARNING: this server runs on the sim platform, a software simulation "
                 "with no hardware protection. Do not send real data to it.\n");
  }
}

struct AttestArgs {
  std::string server = "127.0.0.1:7443";
  std::string policy;
  std::string save;
  bool json = false;
};

int RunAttest(const AttestArgs& args) {
  auto verifier = LoadVerifier(args.policy);
  if (!verifier.ok()) return Fail(verifier.status());
  // Until `chiron init` creates a lasting identity, attestation uses a one-time key.
  auto key = crypto::PrivateKey::Generate(crypto::SignatureScheme::kEcdsaP256Sha256);
  if (!key.ok()) return Fail(key.status());
  auto identity = ratls::CreateClientIdentity(*key, "chiron-client");
  if (!identity.ok()) return Fail(identity.status());

  ConnectOptions options;
  options.server = args.server;
  options.verifier = *verifier;
  options.identity = std::make_shared<const ratls::TlsIdentity>(std::move(*identity));
  auto connection = Connection::Connect(options);
  if (!connection.ok()) {
    if (connection.status().code() == StatusCode::kUnauthenticated) {
      return FailVerification(connection.status());
    }
    return Fail(connection.status());
  }
  AttestationTranscript transcript;
  auto claims = (*connection)->FreshAttestation(&transcript);
  if (!claims.ok()) return FailVerification(claims.status());
  if (!args.save.empty()) {
    Status saved =
        FileSystem::Default()->WriteFileAtomic(args.save, AsBytes(transcript.ToJson()), 0644);
    if (!saved.ok()) return Fail(saved);
  }
  PrintClaims(*claims, args.json);
  return kExitOk;
}

struct EvidenceVerifyArgs {
  std::string file;
  std::string policy;
  std::string report_data_hex;
  std::string collateral;
  std::string at;
  bool json = false;
};

// "2023-07-01" or "2023-07-01T12:00:00Z" (UTC).
Result<std::chrono::system_clock::time_point> ParseTime(const std::string& text) {
  struct tm tm = {};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (end == nullptr || *end != '\0') {
    tm = {};
    end = strptime(text.c_str(), "%Y-%m-%d", &tm);
  }
  if (end == nullptr || *end != '\0') {
    return InvalidArgumentError("--at '" + text +
                                "' is not a UTC time like 2023-07-01 or 2023-07-01T12:00:00Z");
  }
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

int RunEvidenceVerify(const EvidenceVerifyArgs& args) {
  auto policy = attest::Policy::LoadFile(args.policy);
  if (!policy.ok()) return Fail(policy.status());
  EvidenceFileOptions options;
  options.collateral_dir = args.collateral;
  if (!args.report_data_hex.empty()) {
    auto decoded = HexDecode(args.report_data_hex);
    if (!decoded.ok()) return Fail(decoded.status().WithContext("--report-data"));
    options.report_data = std::move(*decoded);
  }
  if (!args.at.empty()) {
    auto time = ParseTime(args.at);
    if (!time.ok()) return Fail(time.status());
    options.verification_time = *time;
  }
  auto verified = VerifyEvidenceFile(args.file, std::move(*policy), options);
  if (!verified.ok()) {
    if (verified.status().code() == StatusCode::kInvalidArgument &&
        verified.status().message().find("pass --") != std::string::npos) {
      return Fail(verified.status());
    }
    return FailVerification(verified.status());
  }
  if (!verified->report_data_checked) {
    verified->claims.warnings.push_back(
        "report data was not checked against an expected value: pass --report-data HEX to "
        "require that this evidence binds your key or nonce");
  }
  std::fprintf(stderr, "chiron: %s verified\n",
               std::string(EvidenceFileKindName(verified->kind)).c_str());
  PrintClaims(verified->claims, args.json);
  return kExitOk;
}

}  // namespace
}  // namespace chiron::client

int main(int argc, char** argv) {
  using namespace chiron::client;
  CLI::App app{"chiron: train models on your data inside an attested Chiron runtime, "
               "without anyone else seeing the data.",
               "chiron"};
  app.require_subcommand(1);
  app.footer("Exit codes: 0 ok, 1 usage, 2 verification failed, 3 server unreachable, 4 error.");

  AttestArgs attest;
  auto* attest_cmd = app.add_subcommand(
      "attest", "Verify that a server is a genuine Chiron runtime under your policy");
  attest_cmd->footer(
      "Example:\n  chiron attest --server 127.0.0.1:7443 --policy policy.json --save ev.json");
  attest_cmd->add_option("--server", attest.server, "chirond address host:port")
      ->capture_default_str();
  attest_cmd->add_option("--policy", attest.policy, "attestation policy (JSON)")->required();
  attest_cmd->add_option("--save", attest.save, "save the verified transcript to this file");
  attest_cmd->add_flag("--json", attest.json, "print claims as JSON");

  EvidenceVerifyArgs verify;
  auto* evidence_cmd = app.add_subcommand("evidence", "Work with saved evidence");
  evidence_cmd->require_subcommand(1);
  auto* verify_cmd = evidence_cmd->add_subcommand(
      "verify",
      "Verify saved evidence: a transcript from `attest --save`, Chiron evidence, or a raw "
      "Intel TDX quote / AMD SEV-SNP report with its collateral");
  verify_cmd->footer(
      "Examples:\n  chiron evidence verify ev.json --policy policy.json\n"
      "  chiron evidence verify raw.bin --policy policy.json --report-data 00ab...\n"
      "  chiron evidence verify quote.dat --policy tdx.json --collateral intel/ --at 2023-07-01");
  verify_cmd->add_option("FILE", verify.file, "evidence file")->required();
  verify_cmd->add_option("--policy", verify.policy, "attestation policy (JSON)")->required();
  verify_cmd->add_option("--report-data", verify.report_data_hex,
                         "hex of the 64 bytes raw evidence must bind");
  verify_cmd->add_option("--collateral", verify.collateral,
                         "directory with TDX (Intel PCS) or SEV-SNP (VCEK, ASK/ARK) collateral");
  verify_cmd->add_option("--at", verify.at,
                         "verification time, UTC (default: now); certificates and CRLs are "
                         "judged at this time");
  verify_cmd->add_flag("--json", verify.json, "print claims as JSON");

  CLI11_PARSE(app, argc, argv);
  if (attest_cmd->parsed()) return RunAttest(attest);
  if (verify_cmd->parsed()) return RunEvidenceVerify(verify);
  return 1;
}
