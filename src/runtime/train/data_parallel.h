// DataParallel: one synchronous data-parallel step across the ranks of a Collective, with the
// parameters and the optimizer state sharded over the ranks (each rank is the parameter server of
// 1/N of them; docs/distributed.md):
//
//   1. reduce-scatter: rank r sends rank j its contribution to shard j (its batch's mean gradient
//      times its batch size, and its updated buffers) and receives every rank's contribution to
//      shard r; it sums them in rank order, so the sum is the same whichever rank owns the shard;
//   2. update: rank r divides by the global batch size (buffers: by the rank count) and runs the
//      runtime's optimizer over its shard only (its optimizer holds the state of its shard only);
//   3. all-gather: rank r sends its updated shard to every rank, and receives every other shard.
//
// Afterwards every rank holds the same parameters and buffers. A rank sends and receives
// 2·V·(N−1)/N floats per step (V = parameters + buffers), not N·V.
//
// The state vector V is the parameters followed by the buffers; shard j is [V·j/N, V·(j+1)/N).
//
// Thread safety: one thread at a time (the training session's; in the asynchronous mode its
// StepPipeline's while steps are in flight, handed over under the pipeline's mutex).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "runtime/train/collective.h"
#include "runtime/train/optimizer.h"
#include "runtime/train/trained_model.h"
#include "shared/base/status.h"

namespace chiron::train {

class DataParallel {
 public:
  // `collective` is borrowed and must outlive this object. The optimizer is created for this
  // rank's parameter shard.
  static Result<std::unique_ptr<DataParallel>> Create(Collective& collective,
                                                      const OptimizerConfig& optimizer,
                                                      uint64_t parameter_count,
                                                      uint64_t buffer_count);

  // Makes every rank hold the same starting model: each rank's shard of `model` is sent to all
  // (rank r's shard of the result is rank r's own values).
  Status SynchronizeInitialState(TrainedModel& model);

  // One step. `gradients`: the mean gradient of this rank's batch of `local_samples` samples;
  // `buffers`: the worker's buffers after that batch; `global_samples`: the sum of every rank's
  // local_samples (the global batch). Updates `model` in place on success. On error the model may
  // be partly updated; the session fails (the group is broken anyway).
  Status Step(uint64_t step, double learning_rate, std::span<const float> gradients,
              uint64_t local_samples, uint64_t global_samples, std::span<const float> buffers,
              TrainedModel& model);

  // The optimizer of this rank's shard (for checkpoints: SaveState / LoadState).
  Optimizer& optimizer() { return *optimizer_; }

  // Floats sent to other ranks so far.
  uint64_t values_sent() const { return values_sent_; }

 private:
  DataParallel(Collective& collective, uint64_t parameter_count, uint64_t buffer_count);

  uint64_t ShardBegin(uint32_t j) const { return total_ * j / size_; }
  uint64_t ShardEnd(uint32_t j) const { return total_ * (j + 1) / size_; }
  // Copies shard `j` of (parameters || buffers) into `out`.
  void ReadShard(uint32_t j, const TrainedModel& model, std::span<float> out) const;
  void WriteShard(uint32_t j, std::span<const float> values, TrainedModel& model) const;
  Status AllGather(uint64_t step, uint32_t phase, TrainedModel& model);

  Collective& collective_;
  const uint32_t rank_;
  const uint32_t size_;
  const uint64_t parameter_count_;
  const uint64_t total_;  // parameters + buffers
  std::unique_ptr<Optimizer> optimizer_;
  // Reused every step: per-rank send and receive buffers, the summed shard.
  std::vector<std::vector<float>> send_;
  std::vector<std::vector<float>> receive_;
  std::vector<float> sum_;
  uint64_t values_sent_ = 0;
};

// Before a data-parallel session starts (tag (0, kPhaseResume)): every rank says the step of the
// checkpoint it could restore (0: none) and learns the others'. True iff every rank holds one at
// the same step, so either every rank restores or none does (a node that crashed between two
// checkpoints holds an older one than the rest: the job then starts afresh on every rank).
Result<bool> AgreeOnResume(Collective& group, uint64_t my_checkpoint_step);

}  // namespace chiron::train
