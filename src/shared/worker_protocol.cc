#include "shared/worker_protocol.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <string>

namespace chiron {
namespace {

// Arenas are memcpy'd into floats: the wire order is little endian, as is every supported host.
static_assert(std::endian::native == std::endian::little);

void PutU16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
void PutU32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void PutU64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

bool IsKnownType(uint16_t type) {
  return type >= static_cast<uint16_t>(WorkerFrameType::kHello) &&
         type <= static_cast<uint16_t>(WorkerFrameType::kShutdown);
}

// Number of leading fields each worker → runtime frame type uses; the rest must be zero so that
// unused bytes cannot carry anything.
size_t UsedFields(WorkerFrameType type) {
  switch (type) {
    case WorkerFrameType::kHello: return 2;
    case WorkerFrameType::kComputeGradients: return 3;
    case WorkerFrameType::kGradientsReady: return 3;
    case WorkerFrameType::kPredict: return 3;
    case WorkerFrameType::kOutputReady: return 1;
    case WorkerFrameType::kFailed: return 1;
    case WorkerFrameType::kShutdown: return 0;
  }
  return 0;
}

Status Reject(std::string message) {
  return InvalidArgumentError("worker frame rejected: " + message);
}

}  // namespace

std::string_view WorkerFrameTypeName(WorkerFrameType type) {
  switch (type) {
    case WorkerFrameType::kHello: return "hello";
    case WorkerFrameType::kComputeGradients: return "compute-gradients";
    case WorkerFrameType::kGradientsReady: return "gradients-ready";
    case WorkerFrameType::kPredict: return "predict";
    case WorkerFrameType::kOutputReady: return "output-ready";
    case WorkerFrameType::kFailed: return "failed";
    case WorkerFrameType::kShutdown: return "shutdown";
  }
  return "unknown";
}

std::array<uint8_t, kWorkerFrameSize> EncodeWorkerFrame(const WorkerFrame& frame) {
  std::array<uint8_t, kWorkerFrameSize> out{};
  PutU32(out.data(), kWorkerFrameMagic);
  PutU16(out.data() + 4, kWorkerProtocolVersion);
  PutU16(out.data() + 6, static_cast<uint16_t>(frame.type));
  PutU64(out.data() + 8, frame.sequence);
  for (size_t i = 0; i < kWorkerFrameFieldCount; ++i) PutU64(out.data() + 16 + 8 * i, frame.fields[i]);
  return out;
}

Result<WorkerFrame> DecodeWorkerFrame(ByteSpan bytes) {
  // A frame of any other size is a worker trying to smuggle bytes or to confuse framing.
  if (bytes.size() != kWorkerFrameSize) {
    return Reject("size " + std::to_string(bytes.size()) + " bytes, expected exactly " +
                  std::to_string(kWorkerFrameSize));
  }
  ByteReader reader(bytes);
  CHIRON_ASSIGN_OR_RETURN(uint32_t magic, reader.U32Le("magic"));
  CHIRON_ASSIGN_OR_RETURN(uint16_t version, reader.U16Le("version"));
  CHIRON_ASSIGN_OR_RETURN(uint16_t type, reader.U16Le("type"));
  if (magic != kWorkerFrameMagic) return Reject("bad magic (not a worker frame)");
  if (version != kWorkerProtocolVersion) {
    return Reject("protocol version " + std::to_string(version) + ", expected " +
                  std::to_string(kWorkerProtocolVersion) + " (worker and runtime out of step)");
  }
  if (!IsKnownType(type)) return Reject("unknown frame type " + std::to_string(type));
  WorkerFrame frame;
  frame.type = static_cast<WorkerFrameType>(type);
  CHIRON_ASSIGN_OR_RETURN(frame.sequence, reader.U64Le("sequence"));
  for (size_t i = 0; i < kWorkerFrameFieldCount; ++i) {
    CHIRON_ASSIGN_OR_RETURN(frame.fields[i], reader.U64Le("field"));
  }
  return frame;
}

Result<WorkerFrame> ValidateWorkerFrame(ByteSpan copied, const WorkerFrameExpectation& expect) {
  CHIRON_ASSIGN_OR_RETURN(WorkerFrame frame, DecodeWorkerFrame(copied));
  const std::string name(WorkerFrameTypeName(frame.type));
  if (frame.type != expect.type && frame.type != WorkerFrameType::kFailed) {
    return Reject("type " + name + ", expected " +
                  std::string(WorkerFrameTypeName(expect.type)));
  }
  // A stale or future sequence would let a worker answer a request it was not given.
  if (frame.sequence != expect.sequence) {
    return Reject(name + " for sequence " + std::to_string(frame.sequence) + ", expected " +
                  std::to_string(expect.sequence));
  }
  for (size_t i = UsedFields(frame.type); i < kWorkerFrameFieldCount; ++i) {
    if (frame.fields[i] != 0) {
      return Reject(name + " field " + std::to_string(i) + " must be zero (unused bytes are not " +
                    "a channel)");
    }
  }
  switch (frame.type) {
    case WorkerFrameType::kHello:
      // A worker built with another sandbox policy than the runtime's measured one.
      if (frame.fields[0] != expect.policy_fingerprint) {
        return Reject("hello carries a sandbox policy fingerprint other than the runtime's "
                      "(worker binary does not match this runtime)");
      }
      if (frame.fields[1] < expect.min_landlock_abi || frame.fields[1] > 1000) {
        return Reject("hello reports Landlock ABI " + std::to_string(frame.fields[1]) +
                      ", need at least " + std::to_string(expect.min_landlock_abi));
      }
      break;
    case WorkerFrameType::kGradientsReady: {
      if (frame.fields[0] != expect.count) {
        return Reject("gradient count " + std::to_string(frame.fields[0]) + ", expected " +
                      std::to_string(expect.count));
      }
      double loss;
      static_assert(sizeof(loss) == sizeof(frame.fields[1]));
      std::memcpy(&loss, &frame.fields[1], sizeof(loss));
      if (!std::isfinite(loss) || std::fabs(loss) > expect.max_abs_loss) {
        return Reject("loss is not finite or beyond +-" + std::to_string(expect.max_abs_loss));
      }
      if (frame.fields[2] != expect.sample_count) {
        return Reject("sample count " + std::to_string(frame.fields[2]) + ", expected " +
                      std::to_string(expect.sample_count));
      }
      break;
    }
    case WorkerFrameType::kOutputReady:
      if (frame.fields[0] != expect.count) {
        return Reject("output count " + std::to_string(frame.fields[0]) + ", expected " +
                      std::to_string(expect.count));
      }
      break;
    case WorkerFrameType::kFailed:
      if (frame.fields[0] < static_cast<uint64_t>(WorkerFailure::kRecipeError) ||
          frame.fields[0] > static_cast<uint64_t>(WorkerFailure::kUnsupported)) {
        return Reject("unknown failure reason " + std::to_string(frame.fields[0]));
      }
      break;
    case WorkerFrameType::kComputeGradients:
    case WorkerFrameType::kPredict:
    case WorkerFrameType::kShutdown:
      // Requests travel runtime → worker only; a worker sending one is confused or hostile.
      return Reject(name + " is a runtime request, not a worker response");
  }
  return frame;
}

Result<std::vector<float>> ValidateFloatArena(ByteSpan copied, size_t count, float max_abs) {
  if (count > copied.size() / sizeof(float)) {
    return InvalidArgumentError("arena holds " + std::to_string(copied.size()) +
                                " bytes, fewer than " + std::to_string(count) + " floats");
  }
  std::vector<float> values(count);
  std::memcpy(values.data(), copied.data(), count * sizeof(float));
  for (size_t i = 0; i < count; ++i) {
    const float v = values[i];
    if (!std::isfinite(v)) {
      return InvalidArgumentError("arena value " + std::to_string(i) +
                                  " is NaN or infinite (would poison the trusted optimizer)");
    }
    if (std::fabs(v) > max_abs) {
      return InvalidArgumentError("arena value " + std::to_string(i) + " is beyond +-" +
                                  std::to_string(max_abs));
    }
  }
  return values;
}

}  // namespace chiron
