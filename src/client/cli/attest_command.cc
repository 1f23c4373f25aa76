// `chiron attest` and `chiron evidence verify`: checking a runtime's attestation, live or offline.
#include <time.h>

#include <cstdio>
#include <iostream>

#include "chiron/v1/attestation.grpc.pb.h"
#include "client/cli/claims_output.h"
#include "client/cli/cli_common.h"
#include "client/cli/cluster_nodes.h"
#include "client/evidence_file.h"
#include "shared/attest/policy.h"
#include "shared/attest/tdx/tdx_verify.h"
#include "shared/base/file_system.h"
#include "shared/crypto/keys.h"
#include "shared/crypto/x509.h"
#include "shared/ratls/ratls.h"

namespace chiron::client {
namespace {

// `server`: the live server attested (its sim warning is the one every connecting command prints,
// once per process), or empty for saved evidence.
void PrintClaims(const attest::Claims& claims, bool json, const std::string& server = {}) {
  if (json) {
    std::cout << ClaimsToJson(claims, true) << "\n";
  } else {
    std::cout << ClaimsToText(claims);
  }
  auto tcb = claims.details.find("tcb_status");
  if (tcb != claims.details.end() && tcb->second == attest::tdx::kTcbStatusNotChecked) {
    std::fprintf(stderr,
                 "%s: WARNING: TCB status NOT CHECKED. Intel's TCB info and QE identity were not "
                 "given, so this platform's firmware and microcode may be out of date or "
                 "revoked; accepted only because the policy sets tdx.tcb_status_unchecked = "
                 "accept.\n",
                 ProgramName());
  }
  if (claims.simulated) {
    if (!server.empty()) {
      WarnSimulatedServer(server);
    } else {
      std::fprintf(stderr,
                   "%s: WARNING: this evidence comes from the sim platform, a software simulation "
                   "with no hardware protection. Do not send real data to its runtime.\n",
                   ProgramName());
    }
  }
}

// The other nodes of the server's cluster (Attestation.ListNodes), each certificate verified
// here under the owner's own policy: every node that could receive the owner's data in a
// distributed job. Nothing for a server alone or one that predates ListNodes.
void PrintClusterNodes(Connection& connection, const attest::Verifier& verifier) {
  auto cluster = CheckClusterNodes(connection, verifier);
  if (!cluster.ok() || cluster->node_address.empty()) return;
  std::cout << "\ncluster: this server's peer listener is " << cluster->node_address << "; "
            << cluster->nodes.size() << " other node(s), each checked under YOUR policy:\n";
  for (const CheckedNode& node : cluster->nodes) {
    std::cout << "  " << node.address << "  " << node.verdict << "\n";
  }
}

struct AttestArgs {
  std::string save;
  bool json = false;
};

int RunAttest(const GlobalOptions& global, const AttestArgs& args) {
  // With a profile, attest as that principal (and with its default server and policy);
  // without one, with a one-time key.
  auto profile = Profile::Load(global.ProfileDir());
  std::string server = global.server;
  std::string policy = global.policy;
  std::shared_ptr<const ratls::TlsIdentity> identity;
  if (profile.ok()) {
    if (server.empty()) server = profile->settings().server;
    if (policy.empty()) policy = profile->settings().policy_path;
    auto own = profile->TlsIdentity();
    if (!own.ok()) return Fail(own.status());
    identity = *own;
  } else if (profile.status().code() != StatusCode::kNotFound) {
    return Fail(profile.status());
  } else {
    auto key = crypto::PrivateKey::Generate(crypto::SignatureScheme::kEcdsaP256Sha256);
    if (!key.ok()) return Fail(key.status());
    auto one_time = ratls::CreateClientIdentity(*key, "chiron-client");
    if (!one_time.ok()) return Fail(one_time.status());
    identity = std::make_shared<const ratls::TlsIdentity>(std::move(*one_time));
  }
  if (server.empty()) server = "127.0.0.1:7443";
  if (policy.empty()) {
    return Fail(InvalidArgumentError("attest needs an attestation policy: pass --policy FILE"));
  }
  auto verifier = LoadVerifier(policy);
  if (!verifier.ok()) return Fail(verifier.status());

  ConnectOptions options;
  options.server = server;
  options.verifier = *verifier;
  options.identity = identity;
  auto connection = Connection::Connect(options);
  if (!connection.ok()) return FailConnect(connection.status());
  AttestationTranscript transcript;
  auto claims = (*connection)->FreshAttestation(&transcript);
  if (!claims.ok()) return FailVerification(claims.status());
  if (!args.save.empty()) {
    Status saved =
        FileSystem::Default()->WriteFileAtomic(args.save, AsBytes(transcript.ToJson()), 0644);
    if (!saved.ok()) return Fail(saved);
  }
  PrintClaims(*claims, args.json, server);
  if (!args.json) PrintClusterNodes(**connection, **verifier);
  return kExitOk;
}

struct EvidenceVerifyArgs {
  std::string file;
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

int RunEvidenceVerify(const GlobalOptions& global, const EvidenceVerifyArgs& args) {
  std::string policy_path = global.policy;
  if (policy_path.empty()) {
    auto profile = Profile::Load(global.ProfileDir());
    if (profile.ok()) policy_path = profile->settings().policy_path;
  }
  if (policy_path.empty()) {
    return Fail(InvalidArgumentError("evidence verify needs a policy: pass --policy FILE"));
  }
  auto policy = attest::Policy::LoadFile(policy_path);
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
  EvidenceFileFailure failure = EvidenceFileFailure::kNone;
  auto verified = VerifyEvidenceFile(args.file, std::move(*policy), options, &failure);
  if (!verified.ok()) {
    switch (failure) {
      case EvidenceFileFailure::kMissingInput:
        // The same mistake, the same exit code: no --collateral, an empty collateral directory,
        // no --report-data.
        std::fprintf(stderr, "%s: %s\n", ProgramName(), verified.status().message().c_str());
        return kExitUsage;
      case EvidenceFileFailure::kUnreadable: return Fail(verified.status());
      case EvidenceFileFailure::kNone:
      case EvidenceFileFailure::kRefused: break;
    }
    return FailVerification(verified.status());
  }
  if (!verified->report_data_checked) {
    verified->claims.warnings.push_back(
        "report data was not checked against an expected value: pass --report-data HEX to "
        "require that this evidence binds your key or nonce");
  }
  std::fprintf(stderr, "%s: %s verified\n", ProgramName(),
               std::string(EvidenceFileKindName(verified->kind)).c_str());
  PrintClaims(verified->claims, args.json);
  return kExitOk;
}

}  // namespace

void AddAttestCommands(CLI::App& app, GlobalOptions& global, CommandAction& action) {
  auto attest = std::make_shared<AttestArgs>();
  auto* attest_cmd = app.add_subcommand(
      "attest", "Verify that a server is a genuine Chiron runtime under your policy");
  attest_cmd->footer("Example:\n  " + global.program +
                     " attest --server 127.0.0.1:7443 --policy policy.json --save ev.json");
  attest_cmd->add_option("--save", attest->save, "save the verified transcript to this file");
  attest_cmd->add_flag("--json", attest->json, "print claims as JSON");
  attest_cmd->callback([&global, &action, attest] {
    action = [&global, attest] { return RunAttest(global, *attest); };
  });

  auto verify = std::make_shared<EvidenceVerifyArgs>();
  auto* evidence_cmd = app.add_subcommand("evidence", "Work with saved evidence");
  evidence_cmd->require_subcommand(1);
  evidence_cmd->footer("Example:\n  " + global.program +
                       " evidence verify ev.json --policy policy.json");
  auto* verify_cmd = evidence_cmd->add_subcommand(
      "verify",
      "Verify saved evidence: a transcript from `attest --save`, Chiron evidence, or a raw "
      "Intel TDX quote / AMD SEV-SNP report with its collateral");
  verify_cmd->footer(
      "Examples:\n  " + global.program + " evidence verify ev.json --policy policy.json\n  " +
      global.program + " evidence verify raw.bin --policy policy.json --report-data 00ab...\n  " +
      global.program +
      " evidence verify quote.dat --policy tdx.json --collateral intel/ --at 2023-07-01");
  verify_cmd->add_option("FILE", verify->file, "evidence file")->required();
  verify_cmd->add_option("--report-data", verify->report_data_hex,
                         "hex of the 64 bytes raw evidence must bind");
  verify_cmd->add_option("--collateral", verify->collateral,
                         "directory with TDX (Intel PCS) or SEV-SNP (VCEK, ASK/ARK) collateral");
  verify_cmd->add_option("--at", verify->at,
                         "verification time, UTC (default: now); certificates and CRLs are "
                         "judged at this time");
  verify_cmd->add_flag("--json", verify->json, "print claims as JSON");
  verify_cmd->callback([&global, &action, verify] {
    action = [&global, verify] { return RunEvidenceVerify(global, *verify); };
  });
}

}  // namespace chiron::client
