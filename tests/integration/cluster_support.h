// Clusters of chirond processes for the integration tests: loopback ports, a node's first start
// (its state and sim root), and cluster or owner policies trusting a chosen set of nodes.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace chiron::testing {

// A loopback port nothing listens on right now (bound, read, closed); 0 if none could be had.
int FreeLoopbackPort();
std::string Loopback(int port);  // "127.0.0.1:PORT"

// Starts chirond once alone in dir/name (with `extra_args` and `worker` as ChirondProcess takes
// them) so that its state and sim root exist, stops it, removes its port file, and returns the sim
// policy it wrote (trusting exactly it).
nlohmann::json InitialiseNode(const std::string& dir, const std::string& name,
                              const std::vector<std::string>& extra_args = {},
                              const std::string& worker = "");

// Writes dir/file: the first node's policy with trusted_sim_roots of every node in `nodes` (all
// built alike: one measurement). Returns its path.
std::string WritePolicyTrusting(const std::string& dir, const std::string& file,
                                const std::vector<nlohmann::json>& nodes);

}  // namespace chiron::testing
