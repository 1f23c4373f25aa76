// Attested connection set-up: a fresh gRPC channel, the TLS 1.3 handshake with verification of
// the server certificate's evidence under a policy, and one GetEvidence round trip with fresh
// evidence verification — compared with a plain TLS 1.3 gRPC connection (no attestation) to a
// server on the same machine, measured in the same run.
//
//   build/bin/attest_bench [--iterations N]
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "chiron/v1/attestation.grpc.pb.h"
#include "client/connection.h"
#include "runtime/service/reference_policy.h"
#include "runtime/service/server.h"
#include "shared/crypto/keys.h"
#include "shared/ratls/grpc_credentials.h"

namespace {

using namespace chiron;
using Clock = std::chrono::steady_clock;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

// A plain gRPC TLS server with an ordinary self-signed certificate (the baseline).
class PlainInfoService final : public v1::Attestation::Service {
  grpc::Status GetServerInfo(grpc::ServerContext*, const v1::GetServerInfoRequest*,
                             v1::GetServerInfoResponse* response) override {
    response->set_platform("none");
    return grpc::Status::OK;
  }
};

// PKCS#8 DER to PEM (benchmark-only convenience).
std::string PemPrivateKey(ByteSpan der) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string b64;
  for (size_t i = 0; i < der.size(); i += 3) {
    uint32_t n = static_cast<uint32_t>(der[i]) << 16;
    if (i + 1 < der.size()) n |= static_cast<uint32_t>(der[i + 1]) << 8;
    if (i + 2 < der.size()) n |= der[i + 2];
    b64 += kAlphabet[(n >> 18) & 63];
    b64 += kAlphabet[(n >> 12) & 63];
    b64 += i + 1 < der.size() ? kAlphabet[(n >> 6) & 63] : '=';
    b64 += i + 2 < der.size() ? kAlphabet[n & 63] : '=';
  }
  std::string pem = "-----BEGIN PRIVATE KEY-----\n";
  for (size_t i = 0; i < b64.size(); i += 64) pem += b64.substr(i, 64) + "\n";
  return pem + "-----END PRIVATE KEY-----\n";
}

int Die(const Status& s) {
  std::fprintf(stderr, "attest_bench: %s\n", s.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  int iterations = 200;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--iterations") iterations = std::atoi(argv[i + 1]);
  }
  namespace fs = std::filesystem;
  std::string pattern = (fs::temp_directory_path() / "chiron-attest-bench-XXXXXX").string();
  std::string dir = ::mkdtemp(pattern.data());
  std::ofstream(dir + "/worker") << "bench worker";
  std::ofstream(dir + "/policy") << "{}";

  runtime::ServerOptions options;
  options.listen_address = "127.0.0.1:0";
  options.platform.state_dir = dir + "/state";
  options.platform.measured_components = {{"chirond", "/proc/self/exe"},
                                          {"chiron-worker", dir + "/worker"},
                                          {"sandbox-policy", dir + "/policy"}};
  (void)FileSystem::Default()->CreateDirectories(options.platform.state_dir, 0700);
  auto server = runtime::RuntimeServer::Start(options);
  if (!server.ok()) return Die(server.status());
  auto policy = runtime::SimReferencePolicy((*server)->platform());
  if (!policy.ok()) return Die(policy.status());
  auto verifier = attest::Verifier::Create(std::move(*policy));
  if (!verifier.ok()) return Die(verifier.status());
  auto shared_verifier = std::make_shared<const attest::Verifier>(std::move(*verifier));
  auto key = crypto::PrivateKey::Generate(crypto::SignatureScheme::kEcdsaP256Sha256);
  auto client_identity = ratls::CreateClientIdentity(*key, "bench");
  if (!client_identity.ok()) return Die(client_identity.status());
  auto identity = std::make_shared<const ratls::TlsIdentity>(std::move(*client_identity));

  // Baseline server: same key type, plain self-signed certificate, standard gRPC TLS.
  auto plain_key = crypto::PrivateKey::Generate(crypto::SignatureScheme::kEcdsaP256Sha256);
  crypto::CertificateRequest plain_request;
  plain_request.common_name = "plain";
  plain_request.dns_names = {"plain.chiron.invalid"};
  auto plain_cert = crypto::Certificate::CreateSelfSigned(*plain_key, plain_request);
  if (!plain_cert.ok()) return Die(plain_cert.status());
  auto plain_der = plain_key->ToPkcs8Der();
  if (!plain_der.ok()) return Die(plain_der.status());
  std::string plain_key_pem = PemPrivateKey(plain_der->span());
  grpc::SslServerCredentialsOptions ssl_options;
  ssl_options.pem_key_cert_pairs.push_back({plain_key_pem, plain_cert->ToPem()});
  PlainInfoService plain_service;
  grpc::ServerBuilder builder;
  int plain_port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::SslServerCredentials(ssl_options), &plain_port);
  builder.RegisterService(&plain_service);
  auto plain_server = builder.BuildAndStart();

  std::vector<double> attested_ms, plain_ms;
  for (int i = 0; i < iterations; ++i) {
    // Interleave the two contenders so machine load affects both alike.
    auto t0 = Clock::now();
    client::ConnectOptions connect;
    connect.server = "127.0.0.1:" + std::to_string((*server)->port());
    connect.verifier = shared_verifier;
    connect.identity = identity;
    auto connection = client::Connection::Connect(connect);
    if (!connection.ok()) return Die(connection.status());
    auto claims = (*connection)->FreshAttestation();
    if (!claims.ok()) return Die(claims.status());
    attested_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());

    auto t1 = Clock::now();
    grpc::SslCredentialsOptions client_ssl;
    client_ssl.pem_root_certs = plain_cert->ToPem();
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetSslTargetNameOverride("plain.chiron.invalid");
    auto channel = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(plain_port),
                                             grpc::SslCredentials(client_ssl), args);
    grpc::ClientContext context;
    v1::GetServerInfoRequest request;
    v1::GetServerInfoResponse response;
    grpc::Status status = v1::Attestation::NewStub(channel)->GetServerInfo(&context, request,
                                                                          &response);
    if (!status.ok()) {
      std::fprintf(stderr, "baseline call failed: %s\n", status.error_message().c_str());
      return 1;
    }
    plain_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t1).count());
  }
  plain_server->Shutdown();
  (*server)->Shutdown();
  fs::remove_all(dir);

  double attested = Median(attested_ms);
  double plain = Median(plain_ms);
  std::printf("attested connect (TLS 1.3 handshake + certificate evidence verification + fresh "
              "GetEvidence + verification), sim platform, %d iterations\n",
              iterations);
  std::printf("  attested: p50 %.3f ms  p90 %.3f ms\n", attested, Percentile(attested_ms, 0.9));
  std::printf("  plain gRPC TLS connect + 1 call (baseline): p50 %.3f ms  p90 %.3f ms\n", plain,
              Percentile(plain_ms, 0.9));
  std::printf("  ratio attested/plain (p50): %.2fx\n", attested / plain);
  return 0;
}
