#include "runtime/train/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

namespace chiron::train {

Result<LearningRateSchedule> LearningRateSchedule::Create(const ScheduleConfig& config,
                                                          double base_learning_rate,
                                                          uint64_t steps_per_epoch,
                                                          uint64_t total_steps) {
  auto bad = [](const std::string& m) { return InvalidArgumentError("schedule config: " + m); };
  if (!std::isfinite(base_learning_rate) || base_learning_rate < 0) {
    return bad("base learning rate must be finite and >= 0");
  }
  if (steps_per_epoch == 0 || total_steps == 0) {
    return bad("the run has no steps (empty dataset or zero epochs)");
  }
  if (config.warmup_steps >= total_steps && config.warmup_steps != 0) {
    return bad("warmup_steps " + std::to_string(config.warmup_steps) +
               " must be shorter than the run (" + std::to_string(total_steps) + " steps)");
  }
  switch (config.kind) {
    case ScheduleKind::kConstant: break;
    case ScheduleKind::kStep:
      if (config.step_epochs == 0) return bad("step_epochs must be >= 1");
      if (!std::isfinite(config.gamma) || config.gamma <= 0 || config.gamma > 1) {
        return bad("gamma must be in (0, 1]");
      }
      break;
    case ScheduleKind::kCosine:
      if (!std::isfinite(config.min_learning_rate) || config.min_learning_rate < 0 ||
          config.min_learning_rate > base_learning_rate) {
        return bad("min_learning_rate must be in [0, base learning rate]");
      }
      break;
    default:
      return bad("unknown kind " + std::to_string(static_cast<int>(config.kind)) +
                 " (constant = 1, step = 2, cosine = 3)");
  }
  return LearningRateSchedule(config, base_learning_rate, steps_per_epoch, total_steps);
}

double LearningRateSchedule::LearningRate(uint64_t step) const {
  const uint64_t warmup = config_.warmup_steps;
  if (step < warmup) {
    return base_ * static_cast<double>(step + 1) / static_cast<double>(warmup);
  }
  switch (config_.kind) {
    case ScheduleKind::kStep: {
      uint64_t epoch = std::min(step, total_steps_ - 1) / steps_per_epoch_;
      return base_ * std::pow(config_.gamma, static_cast<double>(epoch / config_.step_epochs));
    }
    case ScheduleKind::kCosine: {
      const double span = static_cast<double>(total_steps_ - warmup);
      const double t = std::min(static_cast<double>(step - warmup), span);
      const double min = config_.min_learning_rate;
      return min + (base_ - min) * (1 + std::cos(std::numbers::pi * t / span)) / 2;
    }
    case ScheduleKind::kConstant:
    default: return base_;
  }
}

}  // namespace chiron::train
