// Learning-rate schedules (trusted): constant, step decay and cosine annealing, each with an
// optional linear warm-up. The formulas are those of include/chiron/recipe_types.h's
// ScheduleConfig:
//
//   warm-up   step s < W:     lr = base * (s + 1) / W
//   constant  :               lr = base
//   step      epoch e:        lr = base * gamma ^ floor(e / step_epochs),   e = s / steps_per_epoch
//   cosine    t = s - W, T = total_steps - W:
//                             lr = min + (base - min) * (1 + cos(pi * min(t, T) / T)) / 2
//
// (cosine is PyTorch's CosineAnnealingLR closed form evaluated per step; step decay is StepLR
// stepped once per epoch.) Thread safety: immutable after Create, safe to share.
#pragma once

#include <cstdint>

#include "chiron/recipe_types.h"
#include "shared/base/status.h"

namespace chiron::train {

class LearningRateSchedule {
 public:
  // Validates the (untrusted) configuration: finite, non-negative rates, gamma in (0, 1],
  // step_epochs >= 1, min_learning_rate <= base, warm-up shorter than the whole run.
  static Result<LearningRateSchedule> Create(const ScheduleConfig& config,
                                             double base_learning_rate, uint64_t steps_per_epoch,
                                             uint64_t total_steps);

  // Rate for optimizer step `step` (0-based). Steps past total_steps keep the final value.
  double LearningRate(uint64_t step) const;

  uint64_t total_steps() const { return total_steps_; }

 private:
  LearningRateSchedule(const ScheduleConfig& config, double base, uint64_t steps_per_epoch,
                       uint64_t total_steps)
      : config_(config),
        base_(base),
        steps_per_epoch_(steps_per_epoch),
        total_steps_(total_steps) {}

  ScheduleConfig config_;
  double base_;
  uint64_t steps_per_epoch_;
  uint64_t total_steps_;
};

}  // namespace chiron::train
