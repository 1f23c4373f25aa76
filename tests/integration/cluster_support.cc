#include "tests/integration/cluster_support.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/integration/process.h"

namespace chiron::testing {

int FreeLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof(address);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) == 0) {
    port = ntohs(address.sin_port);
  }
  ::close(fd);
  return port;
}

std::string Loopback(int port) {
  return "127.0.0.1:" + std::to_string(port);
}

nlohmann::json InitialiseNode(const std::string& dir, const std::string& name,
                              const std::vector<std::string>& extra_args,
                              const std::string& worker) {
  std::filesystem::create_directories(dir + "/" + name);
  ChirondProcess first(dir + "/" + name, extra_args, worker);
  EXPECT_EQ(first.Terminate(), 0);
  std::filesystem::remove(dir + "/" + name + "/port");  // a later start writes its own
  std::ifstream in(first.policy_path());
  return nlohmann::json::parse(in);
}

std::string WritePolicyTrusting(const std::string& dir, const std::string& file,
                                const std::vector<nlohmann::json>& nodes) {
  nlohmann::json policy = nodes.front();
  policy["trusted_sim_roots"] = nlohmann::json::array();
  for (const auto& node : nodes) {
    for (const auto& root : node["trusted_sim_roots"]) policy["trusted_sim_roots"].push_back(root);
  }
  const std::string path = dir + "/" + file;
  std::ofstream(path) << policy.dump(2);
  return path;
}

}  // namespace chiron::testing
