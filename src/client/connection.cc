#include "client/connection.h"

#include <nlohmann/json.hpp>

#include "chiron/v1/attestation.grpc.pb.h"
#include "shared/crypto/random.h"

namespace chiron::client {

Bytes AttestationTranscript::ExpectedReportData() const {
  return ratls::FreshReportData(nonce, server_spki_der, client_spki_der);
}

std::string AttestationTranscript::ToJson() const {
  nlohmann::json j;
  j["format"] = "chiron-attestation-transcript-v1";
  j["evidence"] = HexEncode(evidence);
  j["nonce"] = HexEncode(nonce);
  j["server_spki"] = HexEncode(server_spki_der);
  j["client_spki"] = HexEncode(client_spki_der);
  return j.dump(2) + "\n";
}

Result<AttestationTranscript> AttestationTranscript::FromJson(std::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return InvalidArgumentError("not a JSON attestation transcript");
  }
  if (!j.contains("format") || j["format"] != "chiron-attestation-transcript-v1") {
    return InvalidArgumentError(
        "transcript: field 'format' must be \"chiron-attestation-transcript-v1\"");
  }
  AttestationTranscript t;
  for (auto [name, field] : {std::pair{"evidence", &t.evidence}, std::pair{"nonce", &t.nonce},
                             std::pair{"server_spki", &t.server_spki_der},
                             std::pair{"client_spki", &t.client_spki_der}}) {
    if (!j.contains(name) || !j[name].is_string()) {
      return InvalidArgumentError(std::string("transcript: field '") + name +
                                  "' must be a hex string");
    }
    auto bytes = HexDecode(j[name].get<std::string>());
    if (!bytes.ok()) return bytes.status().WithContext(std::string("transcript field ") + name);
    *field = std::move(*bytes);
  }
  return t;
}

Status FromGrpc(const grpc::Status& status, std::string_view call) {
  if (status.ok()) return Status::Ok();
  std::string message = std::string(call) + ": " + status.error_message();
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    message += " (is chirond running at that address? check --server)";
  }
  return Status(static_cast<StatusCode>(status.error_code()), message);
}

Result<std::unique_ptr<Connection>> Connection::Connect(const ConnectOptions& options) {
  if (!options.verifier || !options.identity) {
    return InvalidArgumentError("a policy verifier and a client identity are required");
  }
  std::unique_ptr<Connection> c(new Connection());
  c->options_ = options;
  c->record_ = std::make_shared<ratls::ServerAttestationRecord>();
  auto credentials =
      ratls::AttestedChannelCredentials(*options.identity, options.verifier, c->record_);
  c->channel_ = grpc::CreateCustomChannel(options.server, credentials,
                                          ratls::AttestedChannelArguments());

  // One call forces the handshake, and with it the verification of the server's evidence.
  v1::GetServerInfoRequest request;
  v1::GetServerInfoResponse response;
  auto context = c->NewContext();
  grpc::Status status =
      v1::Attestation::NewStub(c->channel_)->GetServerInfo(context.get(), request, &response);
  if (!status.ok()) {
    std::string failure = c->record_->last_failure();
    if (!failure.empty()) {
      return UnauthenticatedError("the server at " + options.server +
                                  " failed attestation: " + failure);
    }
    return FromGrpc(status, "connect to " + options.server);
  }
  auto verified = c->record_->last_verified();
  if (!verified) return InternalError("handshake succeeded without a verified server record");
  c->certificate_claims_ = verified->claims;
  c->server_spki_der_ = verified->server_spki_der;
  c->server_insecure_ = response.insecure() || verified->claims.simulated;
  return c;
}

std::unique_ptr<grpc::ClientContext> Connection::NewContext() const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + options_.timeout);
  context->set_wait_for_ready(false);
  return context;
}

Result<attest::Claims> Connection::FreshAttestation(AttestationTranscript* transcript) {
  CHIRON_ASSIGN_OR_RETURN(Bytes nonce, crypto::RandomBytes(32));
  v1::GetEvidenceRequest request;
  request.set_nonce(ToString(nonce));
  v1::GetEvidenceResponse response;
  auto context = NewContext();
  CHIRON_RETURN_IF_ERROR(FromGrpc(
      v1::Attestation::NewStub(channel_)->GetEvidence(context.get(), request, &response),
      "GetEvidence"));
  // The key the handshake of this call verified (a reconnect may have happened meanwhile; the
  // record is per channel and always describes the server the channel talks to now).
  auto verified = record_->last_verified();
  if (!verified) return UnauthenticatedError("no verified server for this connection");
  AttestationTranscript t;
  t.evidence = ToBytes(response.evidence());
  t.nonce = nonce;
  t.server_spki_der = verified->server_spki_der;
  t.client_spki_der = options_.identity->spki_der;
  auto claims = options_.verifier->Verify(t.evidence, t.ExpectedReportData());
  if (!claims.ok()) return claims.status().WithContext("fresh evidence");
  if (transcript) *transcript = std::move(t);
  return claims;
}

}  // namespace chiron::client
