// libFuzzer target for the parsers of worker-protocol bytes: ValidateWorkerFrame and
// ValidateFloatArena (the bytes come from the sandboxed, hostile recipe), and the worker's
// DecodeConfigureFrame and UnpackRecipeDeclarations.
// Oracles: no crash or sanitizer report; an accepted frame re-encodes to exactly the input bytes
// (nothing in a frame escapes validation); an accepted arena holds only finite, bounded values.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "shared/worker_abi/worker_protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace chiron;
  if (size < 1) return 0;
  // The first byte picks what the runtime expected, so every response type is reached.
  WorkerFrameExpectation expect;
  expect.type = static_cast<WorkerFrameType>(1 + data[0] % 13);
  expect.sequence = data[0] >> 3;
  expect.count = 16;
  expect.sample_count = 4;
  expect.buffer_count = 2;
  expect.policy_fingerprint = 0x1234;
  expect.max_arena_count = 1000;
  expect.max_output_size = 10;
  expect.page = 1;
  ByteSpan rest(data + 1, size - 1);
  Result<WorkerFrame> frame = ValidateWorkerFrame(rest, expect);
  if (frame.ok()) {
    auto again = EncodeWorkerFrame(*frame);
    if (rest.size() != again.size() || std::memcmp(rest.data(), again.data(), again.size()) != 0) {
      std::abort();
    }
  }
  // The configure frame: whatever decodes must re-encode to the same frame.
  Result<WorkerFrame> structural = DecodeWorkerFrame(rest);
  if (structural.ok() && structural->type == WorkerFrameType::kConfigure) {
    Result<WorkerJobConfig> config = DecodeConfigureFrame(*structural);
    if (config.ok()) {
      Result<WorkerFrame> again = EncodeConfigureFrame(*config, structural->sequence);
      if (!again.ok() || again->fields != structural->fields) std::abort();
    }
  }
  if (rest.size() >= sizeof(RecipeDeclarationValues)) {
    RecipeDeclarationValues values;
    std::memcpy(values.data(), rest.data(), sizeof(values));
    TrainingConfig training;
    ResourceBudget budget;
    OutputPolicy output;
    if (UnpackRecipeDeclarations(values, training, budget, &output).ok() &&
        PackRecipeDeclarations(training, budget, output) != values) {
      // Doubles round-trip bit for bit; NaN payloads included, as memcpy'd bits.
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
