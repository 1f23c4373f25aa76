#include "client/cli/cluster_nodes.h"

#include "chiron/v1/attestation.grpc.pb.h"
#include "client/cli/cli_common.h"
#include "shared/crypto/x509.h"
#include "shared/ratls/ratls.h"

namespace chiron::client {

Result<ClusterView> CheckClusterNodes(Connection& connection, const attest::Verifier& verifier) {
  v1::ListNodesResponse nodes;
  auto context = connection.NewContext();
  CHIRON_RETURN_IF_ERROR(FromGrpc(v1::Attestation::NewStub(connection.channel())
                                      ->ListNodes(context.get(), v1::ListNodesRequest(), &nodes),
                                  "Attestation.ListNodes"));
  ClusterView view;
  view.node_address = nodes.node_address();
  for (const v1::ClusterNode& node : nodes.peers()) {
    CheckedNode checked;
    checked.address = node.address();
    if (!node.verified()) {
      checked.verdict = "NOT USABLE: " + node.problem();
    } else if (auto cert = crypto::Certificate::FromPem(node.certificate_pem()); !cert.ok()) {
      checked.verdict = "REFUSED: its certificate does not parse: " + cert.status().ToString();
    } else if (auto claims = ratls::VerifyAttestedCertificate(*cert, verifier); !claims.ok()) {
      checked.verdict = "REFUSED by your policy: " + std::string(claims.status().message());
    } else if (auto key = cert->public_key(); !key.ok()) {
      checked.verdict = "REFUSED: its certificate has no usable key: " + key.status().ToString();
    } else if (auto spki = key->ToSpkiDer(); !spki.ok()) {
      checked.verdict = "REFUSED: its certificate has no usable key: " + spki.status().ToString();
    } else {
      checked.approved = true;
      checked.key_id = ratls::PrincipalId(*spki);
      checked.verdict = "verified: " + claims->platform +
                        (claims->simulated ? " (INSECURE sim)" : "") + ", measurement " +
                        HexEncode(claims->measurement).substr(0, 16) + "…, key " +
                        checked.key_id.substr(0, 16) + "…";
    }
    view.nodes.push_back(std::move(checked));
  }
  return view;
}

}  // namespace chiron::client
