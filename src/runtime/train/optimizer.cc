#include "runtime/train/optimizer.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "shared/base/vector_clones.h"

// The update loops below mirror ATen's CPU kernels operation by operation. Two compile-time
// choices keep them bit-compatible and fast:
//  - this file is compiled with -ffp-contract=off (see CMakeLists.txt), so `a * b + c` is never
//    silently fused; std::fma appears exactly where ATen's vectorised kernels use fmadd
//    (add/add_ with an alpha);
//  - the hot loops are cloned for x86-64-v4 (AVX-512) and v3 (AVX2+FMA), so std::fma becomes one
//    instruction and the loops vectorise like ATen's.

namespace chiron::train {
namespace {

constexpr char kStateMagic[8] = {'C', 'H', 'O', 'P', 'T', 'S', 'T', '1'};
constexpr uint32_t kStateVersion = 1;

bool FiniteIn(double v, double lo, double hi) {
  return std::isfinite(v) && v >= lo && v <= hi;
}

Status FieldError(const char* field, double value, const char* range) {
  return InvalidArgumentError(std::string("optimizer config: ") + field + " = " +
                              std::to_string(value) + " is outside " + range);
}

// True iff every value is finite. Integer test on the exponent bits so the loop vectorises.
CHIRON_VECTOR_CLONES
bool AllFinite(const float* __restrict values, size_t count) {
  uint32_t bad = 0;
  for (size_t i = 0; i < count; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &values[i], sizeof bits);
    bad |= static_cast<uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
  }
  return bad == 0;
}

// ---- SGD (torch.optim.SGD, 1.13) -------------------------------------------------------------
//   d = g (+ wd * p)                         grad.add(p, wd)                  fma
//   buf = d                                  first step: clone(d)
//   buf = buf * m + (1 - damp) * d           buf.mul_(m).add_(d, 1 - damp)    mul, then fma
//   d = nesterov ? d + m * buf : buf         d.add(buf, m)                    fma
//   p = p - lr * d                           p.add_(d, -lr)                   fma
struct SgdScalars {
  float weight_decay, momentum, one_minus_dampening, minus_lr;
  bool use_weight_decay, use_momentum, nesterov, first_step;
};

CHIRON_VECTOR_CLONES
void SgdLoop(float* __restrict p, const float* __restrict g, float* __restrict buf, size_t count,
             SgdScalars s) {
  for (size_t i = 0; i < count; ++i) {
    float d = s.use_weight_decay ? std::fma(s.weight_decay, p[i], g[i]) : g[i];
    if (s.use_momentum) {
      float b;
      if (s.first_step) {
        b = d;
      } else {
        float scaled = buf[i] * s.momentum;
        b = std::fma(s.one_minus_dampening, d, scaled);
      }
      buf[i] = b;
      d = s.nesterov ? std::fma(s.momentum, b, d) : b;
    }
    p[i] = std::fma(s.minus_lr, d, p[i]);
  }
}

// ---- Adam / AdamW (torch.optim.Adam / AdamW, 1.13) --------------------------------------------
//   AdamW: p = p * (1 - lr * wd)                          p.mul_(1 - lr * wd)
//   Adam:  g = g + wd * p                                 grad.add(p, wd)            fma
//   m = m * b1 + (1 - b1) * g                             exp_avg.mul_(b1).add_(g, 1 - b1)
//   v = v * b2 + ((1 - b2) * g) * g                       exp_avg_sq.mul_(b2).addcmul_(g, g, 1 -
//   b2) denom = sqrt(v) / sqrt(bc2) + eps                     (v.sqrt() / sqrt(bc2)).add_(eps) p =
//   p + ((-lr / bc1) * m) / denom                     p.addcdiv_(m, denom, -lr / bc1)
struct AdamScalars {
  float decoupled_decay_factor;  // 1 - lr * wd (AdamW)
  float weight_decay;            // Adam (L2 in the gradient)
  float beta1, one_minus_beta1, beta2, one_minus_beta2;
  float sqrt_bias_correction2, epsilon, minus_step_size;
  bool decoupled, use_weight_decay;
};

CHIRON_VECTOR_CLONES
void AdamLoop(float* __restrict p, const float* __restrict g_in, float* __restrict m,
              float* __restrict v, size_t count, AdamScalars s) {
  for (size_t i = 0; i < count; ++i) {
    float param = p[i];
    float g = g_in[i];
    if (s.decoupled) {
      if (s.use_weight_decay) param = param * s.decoupled_decay_factor;
    } else if (s.use_weight_decay) {
      g = std::fma(s.weight_decay, param, g);
    }
    float mi = std::fma(s.one_minus_beta1, g, m[i] * s.beta1);
    float vi = v[i] * s.beta2;
    vi = vi + s.one_minus_beta2 * g * g;
    m[i] = mi;
    v[i] = vi;
    float denom = std::sqrt(vi) / s.sqrt_bias_correction2 + s.epsilon;
    p[i] = param + s.minus_step_size * mi / denom;
  }
}

void AppendF64(Bytes& out, double v) {
  AppendU64Le(out, std::bit_cast<uint64_t>(v));
}

// Optimizer with `buffer_count` per-parameter float buffers (SGD: momentum; Adam: m, v).
class FlatOptimizer final : public Optimizer {
 public:
  FlatOptimizer(const OptimizerConfig& config, size_t parameter_count)
      : config_(config),
        parameter_count_(parameter_count),
        buffers_(config.kind == OptimizerKind::kSgd ? 1 : 2) {}

  Status StepAndCopy(std::span<float> params, std::span<const float> grads, double learning_rate,
                     std::span<float> copy) override {
    if (params.size() != parameter_count_ || grads.size() != parameter_count_ ||
        (!copy.empty() && copy.size() != parameter_count_)) {
      return InvalidArgumentError("optimizer step: expected " + std::to_string(parameter_count_) +
                                  " parameters and gradients, got " +
                                  std::to_string(params.size()) + " and " +
                                  std::to_string(grads.size()) + " (copy " +
                                  std::to_string(copy.size()) + ")");
    }
    if (!std::isfinite(learning_rate) || learning_rate < 0) {
      return InvalidArgumentError("optimizer step: learning rate " + std::to_string(learning_rate) +
                                  " is not a finite value >= 0");
    }
    // A NaN or infinite gradient would silently destroy every parameter it touches.
    if (!AllFinite(grads.data(), grads.size())) {
      return InvalidArgumentError(
          "optimizer step: the worker returned a NaN or infinite gradient; the update was refused "
          "and the parameters are unchanged (lower the learning rate or fix the recipe's loss)");
    }
    const OptimizerConfig& c = config_;
    if (c.kind == OptimizerKind::kSgd) {
      SgdScalars s{};
      s.weight_decay = static_cast<float>(c.weight_decay);
      s.momentum = static_cast<float>(c.momentum);
      s.one_minus_dampening = static_cast<float>(1.0 - c.dampening);
      s.minus_lr = static_cast<float>(-learning_rate);
      s.use_weight_decay = c.weight_decay != 0;
      s.use_momentum = c.momentum != 0;
      s.nesterov = c.nesterov;
      s.first_step = buffers_[0].empty();
      if (s.use_momentum && s.first_step) buffers_[0].assign(parameter_count_, 0.0f);
      float* momentum = s.use_momentum ? buffers_[0].data() : nullptr;
      ForEachBlock(copy.empty(), [&](size_t at, size_t n) {
        SgdLoop(params.data() + at, grads.data() + at, momentum ? momentum + at : nullptr, n, s);
        if (!copy.empty()) std::memcpy(copy.data() + at, params.data() + at, n * sizeof(float));
      });
    } else {
      if (buffers_[0].empty()) {
        buffers_[0].assign(parameter_count_, 0.0f);
        buffers_[1].assign(parameter_count_, 0.0f);
      }
      const double step = static_cast<double>(step_count_ + 1);
      const double bias_correction1 = 1 - std::pow(c.beta1, step);
      const double bias_correction2 = 1 - std::pow(c.beta2, step);
      AdamScalars s{};
      s.decoupled = c.kind == OptimizerKind::kAdamW;
      s.use_weight_decay = c.weight_decay != 0;
      s.decoupled_decay_factor = static_cast<float>(1 - learning_rate * c.weight_decay);
      s.weight_decay = static_cast<float>(c.weight_decay);
      s.beta1 = static_cast<float>(c.beta1);
      s.one_minus_beta1 = static_cast<float>(1 - c.beta1);
      s.beta2 = static_cast<float>(c.beta2);
      s.one_minus_beta2 = static_cast<float>(1 - c.beta2);
      s.sqrt_bias_correction2 = static_cast<float>(std::sqrt(bias_correction2));
      s.epsilon = static_cast<float>(c.epsilon);
      s.minus_step_size = static_cast<float>(-(learning_rate / bias_correction1));
      ForEachBlock(copy.empty(), [&](size_t at, size_t n) {
        AdamLoop(params.data() + at, grads.data() + at, buffers_[0].data() + at,
                 buffers_[1].data() + at, n, s);
        if (!copy.empty()) std::memcpy(copy.data() + at, params.data() + at, n * sizeof(float));
      });
    }
    ++step_count_;
    return Status::Ok();
  }

  // Runs body(offset, count) over the parameters: in one piece, or with a copy to make in
  // blocks that stay in the L1 cache between the update and the copy.
  template <typename Body>
  void ForEachBlock(bool whole, Body&& body) const {
    constexpr size_t kBlock = 2048;  // floats: 8 KiB of each array
    const size_t block = whole ? parameter_count_ : kBlock;
    for (size_t at = 0; at < parameter_count_; at += block) {
      body(at, std::min(block, parameter_count_ - at));
    }
  }

  uint64_t step_count() const override { return step_count_; }
  size_t parameter_count() const override { return parameter_count_; }
  const OptimizerConfig& config() const override { return config_; }

  Bytes SaveState() const override {
    Bytes out(kStateMagic, kStateMagic + sizeof kStateMagic);
    AppendU32Le(out, kStateVersion);
    AppendConfig(out, config_);
    AppendU64Le(out, parameter_count_);
    AppendU64Le(out, step_count_);
    AppendU32Le(out, static_cast<uint32_t>(buffers_.size()));
    for (const std::vector<float>& buffer : buffers_) {
      out.push_back(buffer.empty() ? 0 : 1);
      if (buffer.empty()) continue;
      size_t at = out.size();
      out.resize(at + buffer.size() * sizeof(float));
      for (size_t i = 0; i < buffer.size(); ++i) {
        uint32_t bits = std::bit_cast<uint32_t>(buffer[i]);
        for (int b = 0; b < 4; ++b) out[at + 4 * i + b] = static_cast<uint8_t>(bits >> (8 * b));
      }
    }
    return out;
  }

  Status LoadState(ByteSpan state) override {
    Status status = DataLossError("optimizer state: not parsed");  // fail closed
    ByteReader r(state);
    auto bad = [](const Status& s) { return DataLossError("optimizer state: " + s.message()); };
    auto magic = r.Take(sizeof kStateMagic, "magic");
    if (!magic.ok()) return bad(magic.status());
    if (std::memcmp(magic->data(), kStateMagic, sizeof kStateMagic) != 0) {
      return DataLossError("optimizer state: bad magic (not a Chiron optimizer checkpoint)");
    }
    auto version = r.U32Le("version");
    if (!version.ok()) return bad(version.status());
    if (*version != kStateVersion) {
      return FailedPreconditionError("optimizer state: version " + std::to_string(*version) +
                                     " is not supported (this build reads version " +
                                     std::to_string(kStateVersion) + ")");
    }
    Bytes expected_config;
    AppendConfig(expected_config, config_);
    auto config = r.Take(expected_config.size(), "configuration");
    if (!config.ok()) return bad(config.status());
    if (!std::equal(config->begin(), config->end(), expected_config.begin())) {
      return FailedPreconditionError(
          "optimizer state: written by an optimizer of another kind or configuration");
    }
    auto count = r.U64Le("parameter count");
    if (!count.ok()) return bad(count.status());
    if (*count != parameter_count_) {
      return FailedPreconditionError("optimizer state: holds " + std::to_string(*count) +
                                     " parameters, this optimizer has " +
                                     std::to_string(parameter_count_));
    }
    auto steps = r.U64Le("step count");
    if (!steps.ok()) return bad(steps.status());
    auto buffer_count = r.U32Le("buffer count");
    if (!buffer_count.ok()) return bad(buffer_count.status());
    if (*buffer_count != buffers_.size()) {
      return DataLossError("optimizer state: " + std::to_string(*buffer_count) + " buffers where " +
                           std::to_string(buffers_.size()) + " belong");
    }
    std::vector<std::vector<float>> buffers(buffers_.size());
    for (std::vector<float>& buffer : buffers) {
      auto present = r.U8("buffer flag");
      if (!present.ok()) return bad(present.status());
      if (*present > 1) return DataLossError("optimizer state: buffer flag is not 0 or 1");
      if (*present == 0) continue;
      auto data = r.Take(parameter_count_ * sizeof(float), "buffer values");
      if (!data.ok()) return bad(data.status());
      buffer.resize(parameter_count_);
      for (size_t i = 0; i < parameter_count_; ++i) {
        uint32_t bits = 0;
        for (int b = 0; b < 4; ++b) bits |= static_cast<uint32_t>((*data)[4 * i + b]) << (8 * b);
        buffer[i] = std::bit_cast<float>(bits);
      }
    }
    if (!r.empty()) {
      return DataLossError("optimizer state: " + std::to_string(r.remaining()) +
                           " trailing byte(s)");
    }
    // Adam's two moments exist together; SGD's momentum buffer exists once a step was taken.
    if (buffers.size() == 2 && buffers[0].empty() != buffers[1].empty()) {
      return DataLossError("optimizer state: Adam moments are incomplete");
    }
    buffers_ = std::move(buffers);
    step_count_ = *steps;
    status = Status::Ok();
    return status;
  }

 private:
  static void AppendConfig(Bytes& out, const OptimizerConfig& c) {
    out.push_back(static_cast<uint8_t>(c.kind));
    out.push_back(c.nesterov ? 1 : 0);
    AppendU16Le(out, 0);
    AppendF64(out, c.learning_rate);
    AppendF64(out, c.weight_decay);
    AppendF64(out, c.momentum);
    AppendF64(out, c.dampening);
    AppendF64(out, c.beta1);
    AppendF64(out, c.beta2);
    AppendF64(out, c.epsilon);
  }

  OptimizerConfig config_;
  size_t parameter_count_;
  uint64_t step_count_ = 0;
  std::vector<std::vector<float>> buffers_;  // each empty until the first step
};

}  // namespace

Status ValidateOptimizerConfig(const OptimizerConfig& c) {
  if (c.kind != OptimizerKind::kSgd && c.kind != OptimizerKind::kAdam &&
      c.kind != OptimizerKind::kAdamW) {
    return InvalidArgumentError("optimizer config: unknown kind " +
                                std::to_string(static_cast<int>(c.kind)) +
                                " (SGD = 1, Adam = 2, AdamW = 3)");
  }
  if (!FiniteIn(c.learning_rate, 0, 1e3))
    return FieldError("learning_rate", c.learning_rate, "[0, 1000]");
  if (!FiniteIn(c.weight_decay, 0, 1e3))
    return FieldError("weight_decay", c.weight_decay, "[0, 1000]");
  if (c.kind == OptimizerKind::kSgd) {
    if (!FiniteIn(c.momentum, 0, 1)) return FieldError("momentum", c.momentum, "[0, 1]");
    if (!FiniteIn(c.dampening, 0, 1)) return FieldError("dampening", c.dampening, "[0, 1]");
    if (c.nesterov && (c.momentum <= 0 || c.dampening != 0)) {
      return InvalidArgumentError(
          "optimizer config: Nesterov momentum requires momentum > 0 and dampening = 0");
    }
  } else {
    if (!FiniteIn(c.beta1, 0, 1) || c.beta1 >= 1) return FieldError("beta1", c.beta1, "[0, 1)");
    if (!FiniteIn(c.beta2, 0, 1) || c.beta2 >= 1) return FieldError("beta2", c.beta2, "[0, 1)");
    if (!FiniteIn(c.epsilon, 0, 1) || c.epsilon <= 0)
      return FieldError("epsilon", c.epsilon, "(0, 1]");
  }
  return Status::Ok();
}

Status ValidateTrainingConfig(const TrainingConfig& config) {
  CHIRON_RETURN_IF_ERROR(ValidateOptimizerConfig(config.optimizer));
  if (config.epochs < 1 || config.epochs > 10000) {
    return InvalidArgumentError("training config: epochs = " + std::to_string(config.epochs) +
                                " is outside [1, 10000]");
  }
  if (config.batch_size < 1 || config.batch_size > 65536) {
    return InvalidArgumentError("training config: batch_size = " +
                                std::to_string(config.batch_size) + " is outside [1, 65536]");
  }
  const ScheduleConfig& s = config.schedule;
  if (s.kind != ScheduleKind::kConstant && s.kind != ScheduleKind::kStep &&
      s.kind != ScheduleKind::kCosine) {
    return InvalidArgumentError("training config: unknown schedule kind " +
                                std::to_string(static_cast<int>(s.kind)));
  }
  return Status::Ok();
}

Result<std::unique_ptr<Optimizer>> Optimizer::Create(const OptimizerConfig& config,
                                                     size_t parameter_count) {
  CHIRON_RETURN_IF_ERROR(ValidateOptimizerConfig(config));
  if (parameter_count == 0) return InvalidArgumentError("optimizer: the model has no parameters");
  return std::unique_ptr<Optimizer>(new FlatOptimizer(config, parameter_count));
}

}  // namespace chiron::train
