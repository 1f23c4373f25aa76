// Writes SandboxPolicyBytes() to the file named by argv[1], byte for byte (build step; see
// src/runtime/sandbox/CMakeLists.txt). The file is what chirond measures as its sandbox policy.
#include <cstdio>

#include "shared/worker_abi/sandbox_policy.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTPUT\n", argv[0]);
    return 2;
  }
  std::FILE* out = std::fopen(argv[1], "wb");
  if (out == nullptr) {
    std::perror(argv[1]);
    return 1;
  }
  const std::string_view text = chiron::SandboxPolicyBytes();
  const bool ok = std::fwrite(text.data(), 1, text.size(), out) == text.size();
  if (std::fclose(out) != 0 || !ok) {
    std::perror(argv[1]);
    return 1;
  }
  return 0;
}
