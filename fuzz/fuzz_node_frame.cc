// libFuzzer target for what a peer node sends in distributed training (docs/distributed.md): a
// serialized chiron.internal.Frame checked by CheckFrame against an expectation the first bytes
// pick, its float payload range-checked, and the control data a rank receives at an epoch's end
// (MetricsAccumulator::Merge of another node's counts).
// Oracles: no crash or sanitizer report; an accepted frame's payload fits the expected message
// (offset + elements <= total); accepted floats are finite and within the bound; a refused merge
// adds nothing.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "chiron/internal/node.pb.h"
#include "runtime/cluster/frame_checks.h"
#include "runtime/train/metrics.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace chiron;
  using namespace chiron::cluster::internal;
  if (size < 4) return 0;
  Expectation expect;
  expect.kind = (data[0] & 1) ? MessageKind::kBytes : MessageKind::kFloats;
  expect.job_id = "job";
  expect.sender = data[0] >> 4;
  expect.receiver = (data[0] >> 1) & 7;
  expect.step = data[1];
  expect.phase = data[2] & 7;
  expect.total = data[3];
  expect.total_known = expect.kind == MessageKind::kFloats || (data[2] & 8);
  expect.received = data[3] / 2;
  chiron::internal::Frame frame;
  if (frame.ParseFromArray(data + 4, static_cast<int>(size - 4))) {
    const FrameFault fault = CheckFrame(frame, expect);
    if (FrameFaultText(fault).empty()) std::abort();
    if (fault == FrameFault::kNone) {
      const uint64_t elements = PayloadElements(frame, expect.kind);
      if (expect.total_known && frame.offset() + elements > expect.total) std::abort();
      if (expect.kind == MessageKind::kFloats) {
        std::vector<float> values(elements);
        std::memcpy(values.data(), frame.payload().data(), elements * sizeof(float));
        if (ValuesWithin(values, 1e30f)) {
          for (float v : values) {
            if (!std::isfinite(v) || std::fabs(v) > 1e30f) std::abort();
          }
        }
      }
    }
  }
  // Another node's epoch-end counts.
  auto metrics = train::MetricsAccumulator::Create(1 + data[0] % 4);
  if (metrics.ok() && !metrics->Merge(ByteSpan(data + 1, size - 1)).ok()) {
    if (metrics->Report().example_count != 0) std::abort();
  }
  return 0;
}
