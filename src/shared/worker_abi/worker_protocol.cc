#include "shared/worker_abi/worker_protocol.h"

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
         type <= static_cast<uint16_t>(WorkerFrameType::kParametersReady);
}

// Number of leading fields each worker → runtime frame type uses; the rest must be zero so that
// unused bytes cannot carry anything.
size_t UsedFields(WorkerFrameType type) {
  switch (type) {
    case WorkerFrameType::kHello: return 2;
    case WorkerFrameType::kComputeGradients: return 3;
    case WorkerFrameType::kGradientsReady: return 4;
    case WorkerFrameType::kPredict: return 2;
    case WorkerFrameType::kOutputReady: return 1;
    case WorkerFrameType::kFailed: return 1;
    case WorkerFrameType::kShutdown: return 0;
    case WorkerFrameType::kConfigure: return 5;
    case WorkerFrameType::kConfigured: return 3;
    case WorkerFrameType::kDescribe: return 1;
    case WorkerFrameType::kDescription: return 6;
    case WorkerFrameType::kInitialParameters: return 2;
    case WorkerFrameType::kParametersReady: return 2;
  }
  return 0;
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
    case WorkerFrameType::kConfigure: return "configure";
    case WorkerFrameType::kConfigured: return "configured";
    case WorkerFrameType::kDescribe: return "describe";
    case WorkerFrameType::kDescription: return "description";
    case WorkerFrameType::kInitialParameters: return "initial-parameters";
    case WorkerFrameType::kParametersReady: return "parameters-ready";
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

WorkerChecked<WorkerFrame> DecodeWorkerFrame(ByteSpan bytes) {
  // A frame of any other size is a worker trying to smuggle bytes or to confuse framing.
  if (bytes.size() != kWorkerFrameSize) return WorkerRefusal::kFrameSize;
  ByteReader reader(bytes);
  Result<uint32_t> magic = reader.U32Le("magic");
  Result<uint16_t> version = reader.U16Le("version");
  Result<uint16_t> type = reader.U16Le("type");
  if (!magic.ok() || !version.ok() || !type.ok()) return WorkerRefusal::kFrameSize;
  if (*magic != kWorkerFrameMagic) return WorkerRefusal::kFrameMagic;
  if (*version != kWorkerProtocolVersion) return WorkerRefusal::kProtocolVersion;
  if (!IsKnownType(*type)) return WorkerRefusal::kFrameType;
  WorkerFrame frame;
  frame.type = static_cast<WorkerFrameType>(*type);
  Result<uint64_t> sequence = reader.U64Le("sequence");
  if (!sequence.ok()) return WorkerRefusal::kFrameSize;
  frame.sequence = *sequence;
  for (size_t i = 0; i < kWorkerFrameFieldCount; ++i) {
    Result<uint64_t> field = reader.U64Le("field");
    if (!field.ok()) return WorkerRefusal::kFrameSize;
    frame.fields[i] = *field;
  }
  return frame;
}

// Every refusal below is a fixed reason: neither the value seen nor the one expected is quoted
// (the worker chose the first, and may have chosen it from the owner's data).
WorkerChecked<WorkerFrame> ValidateWorkerFrame(ByteSpan copied,
                                               const WorkerFrameExpectation& expect) {
  WorkerChecked<WorkerFrame> decoded = DecodeWorkerFrame(copied);
  if (!decoded.ok()) return decoded.refusal();
  const WorkerFrame& frame = *decoded;
  if (frame.type != expect.type && frame.type != WorkerFrameType::kFailed) {
    switch (frame.type) {
      case WorkerFrameType::kComputeGradients:
      case WorkerFrameType::kPredict:
      case WorkerFrameType::kShutdown:
      case WorkerFrameType::kConfigure:
      case WorkerFrameType::kDescribe:
      case WorkerFrameType::kInitialParameters: return WorkerRefusal::kRequestType;
      default: return WorkerRefusal::kFrameType;
    }
  }
  // A stale or future sequence would let a worker answer a request it was not given.
  if (frame.sequence != expect.sequence) return WorkerRefusal::kSequence;
  for (size_t i = UsedFields(frame.type); i < kWorkerFrameFieldCount; ++i) {
    if (frame.fields[i] != 0) return WorkerRefusal::kUnusedField;
  }
  switch (frame.type) {
    case WorkerFrameType::kHello:
      // A worker built with another sandbox policy than the runtime's measured one.
      if (frame.fields[0] != expect.policy_fingerprint) return WorkerRefusal::kPolicyFingerprint;
      if (frame.fields[1] < expect.min_landlock_abi || frame.fields[1] > 1000) {
        return WorkerRefusal::kLandlockAbi;
      }
      break;
    case WorkerFrameType::kGradientsReady: {
      if (frame.fields[0] != expect.count) return WorkerRefusal::kCount;
      double loss;
      static_assert(sizeof(loss) == sizeof(frame.fields[1]));
      std::memcpy(&loss, &frame.fields[1], sizeof(loss));
      if (!std::isfinite(loss) || std::fabs(loss) > expect.max_abs_loss) {
        return WorkerRefusal::kLoss;
      }
      if (frame.fields[2] != expect.sample_count || frame.fields[3] != expect.buffer_count) {
        return WorkerRefusal::kCount;
      }
      break;
    }
    case WorkerFrameType::kConfigured:
      // The layout sizes every later copy the runtime makes: it must fit the arenas it made.
      if (frame.fields[0] == 0 || frame.fields[0] > expect.max_arena_count ||
          frame.fields[1] > expect.max_arena_count - frame.fields[0]) {
        return WorkerRefusal::kLayout;
      }
      if (frame.fields[2] == 0 || frame.fields[2] > expect.max_output_size) {
        return WorkerRefusal::kOutputSize;
      }
      break;
    case WorkerFrameType::kParametersReady:
      if (frame.fields[0] != expect.count || frame.fields[1] != expect.buffer_count) {
        return WorkerRefusal::kCount;
      }
      break;
    case WorkerFrameType::kDescription:
      if (frame.fields[0] != expect.page) return WorkerRefusal::kPage;
      break;
    case WorkerFrameType::kOutputReady:
      if (frame.fields[0] != expect.count) return WorkerRefusal::kCount;
      break;
    case WorkerFrameType::kFailed:
      if (frame.fields[0] < static_cast<uint64_t>(WorkerFailure::kRecipeError) ||
          frame.fields[0] > static_cast<uint64_t>(kLastWorkerFailure)) {
        return WorkerRefusal::kFailureReason;
      }
      break;
    case WorkerFrameType::kComputeGradients:
    case WorkerFrameType::kPredict:
    case WorkerFrameType::kShutdown:
    case WorkerFrameType::kConfigure:
    case WorkerFrameType::kDescribe:
    case WorkerFrameType::kInitialParameters:
      // Requests travel runtime → worker only; a worker sending one is confused or hostile.
      return WorkerRefusal::kRequestType;
  }
  return decoded;
}

WorkerChecked<std::vector<float>> ValidateFloatArena(ByteSpan copied, size_t count,
                                                     float max_abs) {
  if (count > copied.size() / sizeof(float)) return WorkerRefusal::kArenaSize;
  std::vector<float> values(count);
  std::memcpy(values.data(), copied.data(), count * sizeof(float));
  // Which value failed is not said (its index would be a number the worker chose).
  bool finite = true, in_range = true;
  for (size_t i = 0; i < count; ++i) {
    const float v = values[i];
    finite = finite && std::isfinite(v);
    in_range = in_range && std::fabs(v) <= max_abs;
  }
  if (!finite) return WorkerRefusal::kNotFinite;
  if (!in_range) return WorkerRefusal::kOutOfRange;
  return values;
}

namespace {

constexpr uint64_t kMaxDimension = (1ull << 31) - 1;

uint64_t Bits(double d) { return std::bit_cast<uint64_t>(d); }
double Double(uint64_t bits) { return std::bit_cast<double>(bits); }

}  // namespace

Result<WorkerFrame> EncodeConfigureFrame(const WorkerJobConfig& config, uint64_t sequence) {
  const DatasetSchema& schema = config.schema;
  if (schema.input_shape.empty() || schema.input_shape.size() > 4) {
    return InvalidArgumentError("configure: input rank must be 1..4");
  }
  for (int64_t d : schema.input_shape) {
    if (d < 1 || static_cast<uint64_t>(d) > kMaxDimension) {
      return InvalidArgumentError("configure: input dimension out of range");
    }
  }
  if (schema.element_type != ElementType::kU8 && schema.element_type != ElementType::kF32) {
    return InvalidArgumentError("configure: unknown element type");
  }
  if (schema.class_count < 1 || schema.class_count > 65536) {
    return InvalidArgumentError("configure: class count must be in [1, 65536]");
  }
  if (config.threads < 1 || config.threads > 256) {
    return InvalidArgumentError("configure: threads must be in [1, 256]");
  }
  if (config.max_batch < 1 || config.max_batch > 65536) {
    return InvalidArgumentError("configure: max_batch must be in [1, 65536]");
  }
  uint64_t dims[4] = {0, 0, 0, 0};
  for (size_t i = 0; i < schema.input_shape.size(); ++i) {
    dims[i] = static_cast<uint64_t>(schema.input_shape[i]);
  }
  WorkerFrame frame;
  frame.type = WorkerFrameType::kConfigure;
  frame.sequence = sequence;
  frame.fields = {static_cast<uint64_t>(schema.element_type) |
                      (static_cast<uint64_t>(schema.input_shape.size()) << 8) |
                      (static_cast<uint64_t>(config.threads) << 16),
                  static_cast<uint64_t>(schema.class_count) |
                      (static_cast<uint64_t>(config.max_batch) << 32),
                  dims[0] | (dims[1] << 32),
                  dims[2] | (dims[3] << 32),
                  config.seed,
                  0};
  return frame;
}

Result<WorkerJobConfig> DecodeConfigureFrame(const WorkerFrame& frame) {
  if (frame.type != WorkerFrameType::kConfigure || frame.fields[5] != 0) {
    return InvalidArgumentError("configure: not a configure frame");
  }
  const uint64_t head = frame.fields[0];
  const uint64_t element = head & 0xff, rank = (head >> 8) & 0xff, threads = head >> 16;
  WorkerJobConfig config;
  if (element != static_cast<uint64_t>(ElementType::kU8) &&
      element != static_cast<uint64_t>(ElementType::kF32)) {
    return InvalidArgumentError("configure: unknown element type");
  }
  config.schema.element_type = static_cast<ElementType>(element);
  if (rank < 1 || rank > 4) return InvalidArgumentError("configure: input rank must be 1..4");
  if (threads < 1 || threads > 256) return InvalidArgumentError("configure: threads out of range");
  config.threads = static_cast<uint32_t>(threads);
  const uint64_t classes = frame.fields[1] & 0xffffffffu, max_batch = frame.fields[1] >> 32;
  if (classes < 1 || classes > 65536) return InvalidArgumentError("configure: class count");
  if (max_batch < 1 || max_batch > 65536) return InvalidArgumentError("configure: max_batch");
  config.schema.class_count = static_cast<int64_t>(classes);
  config.max_batch = static_cast<uint32_t>(max_batch);
  const uint64_t dims[4] = {frame.fields[2] & 0xffffffffu, frame.fields[2] >> 32,
                            frame.fields[3] & 0xffffffffu, frame.fields[3] >> 32};
  for (uint64_t i = 0; i < 4; ++i) {
    if (i < rank && (dims[i] < 1 || dims[i] > kMaxDimension)) {
      return InvalidArgumentError("configure: input dimension out of range");
    }
    if (i >= rank && dims[i] != 0) return InvalidArgumentError("configure: dimension past rank");
    if (i < rank) config.schema.input_shape.push_back(static_cast<int64_t>(dims[i]));
  }
  config.seed = frame.fields[4];
  return config;
}

RecipeDeclarationValues PackRecipeDeclarations(const TrainingConfig& training,
                                               const ResourceBudget& budget,
                                               const OutputPolicy& output) {
  const OptimizerConfig& o = training.optimizer;
  const ScheduleConfig& s = training.schedule;
  return {static_cast<uint64_t>(o.kind), Bits(o.learning_rate), Bits(o.weight_decay),
          Bits(o.momentum), Bits(o.dampening),
          o.nesterov ? 1u : 0u, Bits(o.beta1), Bits(o.beta2), Bits(o.epsilon),
          static_cast<uint64_t>(s.kind),
          s.warmup_steps, s.step_epochs, Bits(s.gamma), Bits(s.min_learning_rate),
          training.epochs,
          training.batch_size, budget.max_memory_size, budget.max_training_seconds,
          static_cast<uint64_t>(output.kind),
          output.max_top_k | (uint64_t{output.decimals} << 32)};
}

WorkerCheck UnpackRecipeDeclarations(const RecipeDeclarationValues& v, TrainingConfig& training,
                                     ResourceBudget& budget, OutputPolicy* output) {
  auto fits = [](uint64_t value, uint64_t max) { return value <= max; };
  if (!fits(v[0], 255) || !fits(v[5], 1) || !fits(v[9], 255) || !fits(v[10], UINT32_MAX) ||
      !fits(v[11], UINT32_MAX) || !fits(v[14], UINT32_MAX) || !fits(v[15], UINT32_MAX) ||
      v[18] < 1 || v[18] > 2 || (v[19] & 0xffffffffu) > kMaxOutputTopK ||
      (v[19] >> 32) > kMaxOutputDecimals) {
    return WorkerRefusal::kDeclarations;
  }
  TrainingConfig t;
  t.optimizer.kind = static_cast<OptimizerKind>(v[0]);
  t.optimizer.learning_rate = Double(v[1]);
  t.optimizer.weight_decay = Double(v[2]);
  t.optimizer.momentum = Double(v[3]);
  t.optimizer.dampening = Double(v[4]);
  t.optimizer.nesterov = v[5] != 0;
  t.optimizer.beta1 = Double(v[6]);
  t.optimizer.beta2 = Double(v[7]);
  t.optimizer.epsilon = Double(v[8]);
  t.schedule.kind = static_cast<ScheduleKind>(v[9]);
  t.schedule.warmup_steps = static_cast<uint32_t>(v[10]);
  t.schedule.step_epochs = static_cast<uint32_t>(v[11]);
  t.schedule.gamma = Double(v[12]);
  t.schedule.min_learning_rate = Double(v[13]);
  t.epochs = static_cast<uint32_t>(v[14]);
  t.batch_size = static_cast<uint32_t>(v[15]);
  training = t;
  budget.max_memory_size = v[16];
  budget.max_training_seconds = v[17];
  if (output != nullptr) {
    output->kind = static_cast<OutputKind>(v[18]);
    output->max_top_k = static_cast<uint32_t>(v[19] & 0xffffffffu);
    output->decimals = static_cast<uint32_t>(v[19] >> 32);
  }
  return WorkerCheck();
}

}  // namespace chiron
