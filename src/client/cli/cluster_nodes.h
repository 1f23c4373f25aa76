// The other nodes of a server's cluster as the owner judges them: Attestation.ListNodes, then
// every node's certificate verified again here under the owner's own policy (chiron attest shows
// them; chiron train --nodes approves the keys of those that pass).
#pragma once

#include <string>
#include <vector>

#include "client/connection.h"
#include "shared/attest/verifier.h"

namespace chiron::client {

struct CheckedNode {
  std::string address;
  bool approved = false;  // its certificate verified under the owner's policy
  std::string key_id;     // principal id of its key (approved nodes)
  std::string verdict;    // what `chiron attest` prints for it
};

struct ClusterView {
  std::string node_address;  // the server's own peer listener; empty: not in a cluster
  std::vector<CheckedNode> nodes;
};

// Errors: those of the ListNodes call (a server that predates it answers UNIMPLEMENTED).
Result<ClusterView> CheckClusterNodes(Connection& connection, const attest::Verifier& verifier);

}  // namespace chiron::client
