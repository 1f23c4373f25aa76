// libFuzzer target for the runtime's parsers of worker output: ValidateWorkerFrame and
// ValidateFloatArena (the bytes come from the sandboxed, hostile recipe).
// Oracles: no crash or sanitizer report; an accepted frame re-encodes to exactly the input bytes
// (nothing in a frame escapes validation); an accepted arena holds only finite, bounded values.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "shared/worker_protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace chiron;
  if (size < 1) return 0;
  // The first byte picks what the runtime expected, so every response type is reached.
  WorkerFrameExpectation expect;
  expect.type = static_cast<WorkerFrameType>(1 + data[0] % 7);
  expect.sequence = data[0] >> 3;
  expect.count = 16;
  expect.sample_count = 4;
  expect.policy_fingerprint = 0x1234;
  ByteSpan rest(data + 1, size - 1);
  Result<WorkerFrame> frame = ValidateWorkerFrame(rest, expect);
  if (frame.ok()) {
    auto again = EncodeWorkerFrame(*frame);
    if (rest.size() != again.size() || std::memcmp(rest.data(), again.data(), again.size()) != 0) {
      std::abort();
    }
  }
  Result<std::vector<float>> values = ValidateFloatArena(rest, rest.size() / 4, 1000.0f);
  if (values.ok()) {
    for (float v : *values) {
      if (!std::isfinite(v) || std::fabs(v) > 1000.0f) std::abort();
    }
  }
  return 0;
}
