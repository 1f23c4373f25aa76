// Attested TLS between a real RuntimeServer (sim platform) and the real client library over
// loopback: real TLS 1.3 handshakes, real evidence, and the attacks the design must stop.
#include "runtime/service/server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "chiron/v1/attestation.grpc.pb.h"
#include "chiron/v1/recipes.grpc.pb.h"
#include "client/connection.h"
#include "runtime/service/reference_policy.h"
#include "shared/attest/evidence.h"
#include "shared/crypto/keys.h"
#include "shared/ratls/ratls.h"

namespace chiron::runtime {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "chiron-server-test-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

ServerOptions Options(const std::string& dir, const std::string& worker_text = "worker v1") {
  WriteText(dir + "/worker", worker_text);
  WriteText(dir + "/policy.json", "{\"seccomp\": \"allowlist\"}");
  ServerOptions options;
  options.listen_address = "127.0.0.1:0";
  options.platform.name = "sim";
  options.platform.state_dir = dir + "/state";
  options.platform.measured_components = {{"chirond", "/proc/self/exe"},
                                          {"chiron-worker", dir + "/worker"},
                                          {"sandbox-policy", dir + "/policy.json"}};
  EXPECT_TRUE(FileSystem::Default()->CreateDirectories(options.platform.state_dir, 0700).ok());
  return options;
}

std::shared_ptr<const ratls::TlsIdentity> NewClientIdentity() {
  auto key = crypto::PrivateKey::Generate(crypto::SignatureScheme::kEcdsaP256Sha256);
  EXPECT_TRUE(key.ok());
  auto identity = ratls::CreateClientIdentity(*key, "test-client");
  EXPECT_TRUE(identity.ok()) << identity.status().ToString();
  return std::make_shared<const ratls::TlsIdentity>(std::move(*identity));
}

std::shared_ptr<const attest::Verifier> VerifierFor(attest::Policy policy) {
  auto verifier = attest::Verifier::Create(std::move(policy));
  EXPECT_TRUE(verifier.ok()) << verifier.status().ToString();
  return std::make_shared<const attest::Verifier>(std::move(*verifier));
}

Result<std::unique_ptr<client::Connection>> ConnectTo(int port,
                                                       std::shared_ptr<const attest::Verifier> v) {
  client::ConnectOptions options;
  options.server = "127.0.0.1:" + std::to_string(port);
  options.verifier = std::move(v);
  options.identity = NewClientIdentity();
  options.timeout = std::chrono::seconds(5);
  return client::Connection::Connect(options);
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = RuntimeServer::Start(Options(dir_.path()));
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    auto policy = SimReferencePolicy(server_->platform());
    ASSERT_TRUE(policy.ok()) << policy.status().ToString();
    policy_ = *policy;
  }

  // The server still answers a correctly attested client.
  void ExpectStillServing() {
    auto connection = ConnectTo(server_->port(), VerifierFor(policy_));
    ASSERT_TRUE(connection.ok()) << connection.status().ToString();
    EXPECT_TRUE((*connection)->FreshAttestation().ok());
  }

  TempDir dir_;
  std::unique_ptr<RuntimeServer> server_;
  attest::Policy policy_;
};

TEST_F(ServerTest, ClientVerifiesCertificateAndFreshEvidence) {
  auto connection = ConnectTo(server_->port(), VerifierFor(policy_));
  ASSERT_TRUE(connection.ok()) << connection.status().ToString();
  const attest::Claims& claims = (*connection)->certificate_claims();
  EXPECT_EQ(claims.platform, "sim");
  EXPECT_TRUE(claims.simulated);
  EXPECT_EQ(claims.measurement, server_->platform().measurement());
  EXPECT_FALSE(claims.warnings.empty());
  EXPECT_TRUE((*connection)->server_insecure());
  EXPECT_EQ((*connection)->server_spki_der(), server_->identity().spki_der);

  client::AttestationTranscript transcript;
  auto fresh = (*connection)->FreshAttestation(&transcript);
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  EXPECT_EQ(fresh->report_data, transcript.ExpectedReportData());
  // A saved transcript re-verifies offline.
  auto reparsed = client::AttestationTranscript::FromJson(transcript.ToJson());
  ASSERT_TRUE(reparsed.ok());
  EXPECT_TRUE(VerifierFor(policy_)->Verify(reparsed->evidence, reparsed->ExpectedReportData()).ok());
}

TEST_F(ServerTest, WrongMeasurementPolicyRejectsServerAndServerKeepsServing) {
  attest::Policy wrong = policy_;
  wrong.allowed_measurements["sim"] = {Bytes(48, 0xab)};
  auto connection = ConnectTo(server_->port(), VerifierFor(wrong));
  ASSERT_FALSE(connection.ok());
  EXPECT_EQ(connection.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(connection.status().message().find("measurement"), std::string::npos)
      << connection.status().message();
  ExpectStillServing();
}

TEST_F(ServerTest, UnlistedSimRootIsRejected) {
  attest::Policy wrong = policy_;
  wrong.trusted_sim_roots = {Bytes(32, 0x11)};
  auto connection = ConnectTo(server_->port(), VerifierFor(wrong));
  ASSERT_FALSE(connection.ok());
  EXPECT_NE(connection.status().message().find("trusted_sim_roots"), std::string::npos)
      << connection.status().message();
  ExpectStillServing();
}

TEST_F(ServerTest, PolicyWithoutSimPlatformRejects) {
  attest::Policy wrong = policy_;
  wrong.allowed_platforms = {attest::PlatformId::kTdx};
  wrong.allowed_measurements["tdx"] = {Bytes(48, 0x01)};
  auto connection = ConnectTo(server_->port(), VerifierFor(wrong));
  ASSERT_FALSE(connection.ok());
  EXPECT_NE(connection.status().message().find("platform"), std::string::npos);
}

TEST_F(ServerTest, ReplayedEvidenceFromAnotherConnectionIsRejected) {
  auto first = ConnectTo(server_->port(), VerifierFor(policy_));
  auto second = ConnectTo(server_->port(), VerifierFor(policy_));
  ASSERT_TRUE(first.ok() && second.ok());
  client::AttestationTranscript recorded;
  ASSERT_TRUE((*first)->FreshAttestation(&recorded).ok());
  // An attacker replays connection one's evidence to a client on connection two: the client
  // expects report data over its own nonce and key, so the old evidence does not verify.
  client::AttestationTranscript replay = recorded;
  replay.nonce = Bytes(32, 0x42);  // the victim's fresh nonce
  auto result = VerifierFor(policy_)->Verify(replay.evidence, replay.ExpectedReportData());
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("report data mismatch"), std::string::npos);
  // Same nonce, but a different client key (connection two's): rejected too.
  client::AttestationTranscript relayed = recorded;
  relayed.client_spki_der = Bytes(91, 0x01);
  EXPECT_FALSE(VerifierFor(policy_)->Verify(relayed.evidence, relayed.ExpectedReportData()).ok());
}

TEST_F(ServerTest, CertificateEvidenceForAnotherKeyIsRejected) {
  // Relay attack: an impostor takes the genuine server's certificate evidence and puts it into a
  // certificate of its own key. The evidence binds the genuine key, so verification fails.
  auto genuine = server_->identity().certificate.FindExtension(ratls::kEvidenceExtensionOid);
  ASSERT_TRUE(genuine.ok());
  auto impostor_key = crypto::PrivateKey::Generate(crypto::SignatureScheme::kEcdsaP256Sha256);
  ASSERT_TRUE(impostor_key.ok());
  crypto::CertificateRequest request;
  request.common_name = "chirond";
  request.extensions.push_back(*genuine);
  auto impostor = crypto::Certificate::CreateSelfSigned(*impostor_key, request);
  ASSERT_TRUE(impostor.ok());
  auto claims = ratls::VerifyAttestedCertificate(*impostor, *VerifierFor(policy_));
  ASSERT_FALSE(claims.ok());
  EXPECT_NE(claims.status().message().find("report data mismatch"), std::string::npos)
      << claims.status().message();
}

TEST_F(ServerTest, EveryFlippedByteOfCertificateEvidenceIsRejected) {
  auto evidence = ratls::CertificateEvidence(server_->identity().certificate);
  ASSERT_TRUE(evidence.ok());
  auto verifier = VerifierFor(policy_);
  Bytes report_data = ratls::CertificateReportData(server_->identity().spki_der);
  ASSERT_TRUE(verifier->Verify(*evidence, report_data).ok());
  for (size_t i = 0; i < evidence->size(); ++i) {
    Bytes tampered = *evidence;
    tampered[i] ^= 0x01;
    EXPECT_FALSE(verifier->Verify(tampered, report_data).ok()) << "byte " << i;
  }
}

TEST_F(ServerTest, CertificateWithoutEvidenceIsRejectedWithClearMessage) {
  auto key = crypto::PrivateKey::Generate(crypto::SignatureScheme::kEcdsaP256Sha256);
  ASSERT_TRUE(key.ok());
  auto plain = ratls::CreateClientIdentity(*key, "not-a-runtime");
  ASSERT_TRUE(plain.ok());
  auto claims = ratls::VerifyAttestedCertificate(plain->certificate, *VerifierFor(policy_));
  ASSERT_FALSE(claims.ok());
  EXPECT_NE(claims.status().message().find("no Chiron evidence extension"), std::string::npos);
}

TEST_F(ServerTest, GetEvidenceRejectsBadNonceSizes) {
  auto connection = ConnectTo(server_->port(), VerifierFor(policy_));
  ASSERT_TRUE(connection.ok());
  auto stub = v1::Attestation::NewStub((*connection)->channel());
  for (size_t size : {size_t{0}, size_t{15}, size_t{65}, size_t{4096}}) {
    v1::GetEvidenceRequest request;
    request.set_nonce(std::string(size, 'n'));
    v1::GetEvidenceResponse response;
    auto context = (*connection)->NewContext();
    grpc::Status status = stub->GetEvidence(context.get(), request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << size;
    EXPECT_NE(status.error_message().find("nonce"), std::string::npos);
  }
}

TEST_F(ServerTest, PendingCallsAnswerUnimplementedWithTheirName) {
  auto connection = ConnectTo(server_->port(), VerifierFor(policy_));
  ASSERT_TRUE(connection.ok());
  auto stub = v1::Recipes::NewStub((*connection)->channel());
  v1::ListRecipesRequest request;
  v1::ListRecipesResponse response;
  auto context = (*connection)->NewContext();
  grpc::Status status = stub->List(context.get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_NE(status.error_message().find("Recipes.List"), std::string::npos);
}

TEST_F(ServerTest, SwappedWorkerChangesMeasurementAndOldPolicyRejects) {
  // Swapping the sandbox launcher must void trust: a runtime measured over another worker binary
  // has another measurement, so the policy of the genuine one rejects it.
  TempDir other;
  auto swapped = RuntimeServer::Start(Options(other.path(), "worker v2 (backdoored)"));
  ASSERT_TRUE(swapped.ok()) << swapped.status().ToString();
  EXPECT_NE((*swapped)->platform().measurement(), server_->platform().measurement());
  attest::Policy trusting_both_roots = policy_;
  auto other_policy = SimReferencePolicy((*swapped)->platform());
  ASSERT_TRUE(other_policy.ok());
  trusting_both_roots.trusted_sim_roots.push_back(other_policy->trusted_sim_roots[0]);
  auto connection = ConnectTo((*swapped)->port(), VerifierFor(trusting_both_roots));
  ASSERT_FALSE(connection.ok());
  EXPECT_NE(connection.status().message().find("measurement"), std::string::npos);
}

// Connects a raw OpenSSL client limited to `max_version`; returns whether the handshake worked.
bool RawHandshake(int port, int max_version) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return false;
  }
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_max_proto_version(ctx, max_version);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  static const unsigned char kAlpn[] = {2, 'h', '2'};
  SSL_CTX_set_alpn_protos(ctx, kAlpn, sizeof kAlpn);
  auto identity = NewClientIdentity();
  SSL_CTX_use_certificate(ctx, identity->certificate.native());
  SSL_CTX_use_PrivateKey(ctx, identity->key.native());
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  bool ok = SSL_connect(ssl) == 1;
  if (ok) {
    EXPECT_EQ(SSL_version(ssl), TLS1_3_VERSION);
  }
  ERR_clear_error();
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  ::close(fd);
  return ok;
}

TEST_F(ServerTest, OnlyTls13IsNegotiated) {
  EXPECT_TRUE(RawHandshake(server_->port(), TLS1_3_VERSION));   // control: the probe works
  EXPECT_FALSE(RawHandshake(server_->port(), TLS1_2_VERSION));  // downgrade refused
  ExpectStillServing();
}

}  // namespace
}  // namespace chiron::runtime
