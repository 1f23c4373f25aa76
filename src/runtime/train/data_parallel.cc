#include "runtime/train/data_parallel.h"

#include <algorithm>
#include <string>

namespace chiron::train {

DataParallel::DataParallel(Collective& collective, uint64_t parameter_count,
                           uint64_t buffer_count)
    : collective_(collective),
      rank_(collective.rank()),
      size_(collective.size()),
      parameter_count_(parameter_count),
      total_(parameter_count + buffer_count),
      send_(collective.size()),
      receive_(collective.size()) {}

Result<std::unique_ptr<DataParallel>> DataParallel::Create(Collective& collective,
                                                           const OptimizerConfig& optimizer,
                                                           uint64_t parameter_count,
                                                           uint64_t buffer_count) {
  if (collective.size() == 0 || collective.rank() >= collective.size()) {
    return InvalidArgumentError("data-parallel training: rank " +
                                std::to_string(collective.rank()) + " of " +
                                std::to_string(collective.size()) + " nodes is not a rank");
  }
  std::unique_ptr<DataParallel> dp(new DataParallel(collective, parameter_count, buffer_count));
  const uint64_t begin = std::min(dp->ShardBegin(dp->rank_), parameter_count);
  const uint64_t end = std::min(dp->ShardEnd(dp->rank_), parameter_count);
  CHIRON_ASSIGN_OR_RETURN(dp->optimizer_, Optimizer::Create(optimizer, end - begin));
  return dp;
}

void DataParallel::ReadShard(uint32_t j, const TrainedModel& model, std::span<float> out) const {
  const uint64_t begin = ShardBegin(j);
  for (uint64_t i = begin; i < ShardEnd(j); ++i) {
    out[i - begin] =
        i < parameter_count_ ? model.parameters[i] : model.buffers[i - parameter_count_];
  }
}

void DataParallel::WriteShard(uint32_t j, std::span<const float> values,
                              TrainedModel& model) const {
  const uint64_t begin = ShardBegin(j);
  for (uint64_t i = begin; i < ShardEnd(j); ++i) {
    (i < parameter_count_ ? model.parameters[i] : model.buffers[i - parameter_count_]) =
        values[i - begin];
  }
}

Status DataParallel::AllGather(uint64_t step, uint32_t phase, TrainedModel& model) {
  std::vector<float>& own = send_[rank_];
  own.resize(ShardEnd(rank_) - ShardBegin(rank_));
  ReadShard(rank_, model, own);
  std::vector<std::span<const float>> out(size_, std::span<const float>(own));
  std::vector<std::span<float>> in(size_);
  for (uint32_t j = 0; j < size_; ++j) {
    if (j == rank_) continue;
    receive_[j].resize(ShardEnd(j) - ShardBegin(j));
    in[j] = receive_[j];
  }
  CHIRON_RETURN_IF_ERROR(collective_.Exchange(step, phase, out, in));
  values_sent_ += own.size() * (size_ - 1);
  for (uint32_t j = 0; j < size_; ++j) {
    if (j != rank_) WriteShard(j, receive_[j], model);
  }
  return Status::Ok();
}

Status DataParallel::SynchronizeInitialState(TrainedModel& model) {
  if (model.parameters.size() + model.buffers.size() != total_ ||
      model.parameters.size() != parameter_count_) {
    return InternalError("data-parallel training: the model's layout changed");
  }
  return AllGather(0, kPhaseInitialState, model);
}

Status DataParallel::Step(uint64_t step, double learning_rate, std::span<const float> gradients,
                          uint64_t local_samples, uint64_t global_samples,
                          std::span<const float> buffers, TrainedModel& model) {
  if (gradients.size() != parameter_count_ || buffers.size() != total_ - parameter_count_ ||
      model.parameters.size() != parameter_count_ || model.buffers.size() != buffers.size() ||
      global_samples == 0) {
    return InternalError("data-parallel step: sizes disagree with the model's layout");
  }
  // A rank's contribution to element i: its batch's gradient sum (mean × batch size), or its
  // updated buffer value.
  const float weight = static_cast<float>(local_samples);
  auto contribution = [&](uint64_t i) {
    return i < parameter_count_ ? gradients[i] * weight : buffers[i - parameter_count_];
  };

  // 1. Reduce-scatter.
  std::vector<std::span<const float>> out(size_);
  std::vector<std::span<float>> in(size_);
  const uint64_t begin = ShardBegin(rank_);
  const uint64_t end = ShardEnd(rank_);
  for (uint32_t j = 0; j < size_; ++j) {
    if (j == rank_) continue;
    std::vector<float>& to = send_[j];
    to.resize(ShardEnd(j) - ShardBegin(j));
    for (uint64_t i = ShardBegin(j); i < ShardEnd(j); ++i) to[i - ShardBegin(j)] = contribution(i);
    out[j] = to;
    receive_[j].resize(end - begin);
    in[j] = receive_[j];
    values_sent_ += to.size();
  }
  CHIRON_RETURN_IF_ERROR(collective_.Exchange(step, kPhaseGradients, out, in));

  // The sum in rank order: the same floating-point result whichever rank owns the shard.
  sum_.assign(end - begin, 0.0f);
  for (uint32_t j = 0; j < size_; ++j) {
    if (j == rank_) {
      for (uint64_t i = begin; i < end; ++i) sum_[i - begin] += contribution(i);
    } else {
      for (uint64_t i = 0; i < sum_.size(); ++i) sum_[i] += receive_[j][i];
    }
  }

  // 2. Update this rank's shard: the parameters with the runtime's optimizer, the buffers to
  // their mean over the ranks.
  const uint64_t parameter_end = std::min(end, parameter_count_);
  const uint64_t shard_parameters = parameter_end > begin ? parameter_end - begin : 0;
  const float samples = static_cast<float>(global_samples);
  for (uint64_t i = 0; i < shard_parameters; ++i) sum_[i] /= samples;
  if (shard_parameters > 0) {
    CHIRON_RETURN_IF_ERROR(optimizer_->Step(
        std::span<float>(model.parameters).subspan(begin, shard_parameters),
        std::span<const float>(sum_).first(shard_parameters), learning_rate));
  }
  const float ranks = static_cast<float>(size_);
  for (uint64_t i = std::max(begin, parameter_count_); i < end; ++i) {
    model.buffers[i - parameter_count_] = sum_[i - begin] / ranks;
  }

  // 3. All-gather the updated shards.
  return AllGather(step, kPhaseParameters, model);
}

Result<bool> AgreeOnResume(Collective& group, uint64_t my_checkpoint_step) {
  Bytes mine;
  AppendU64Le(mine, my_checkpoint_step);
  std::vector<Bytes> all;
  CHIRON_RETURN_IF_ERROR(group.ExchangeBytes(0, kPhaseResume, mine, all));
  if (all.size() != group.size()) return InternalError("data-parallel resume: ranks missing");
  bool agreed = my_checkpoint_step != 0;
  for (uint32_t j = 0; j < group.size(); ++j) {
    ByteReader reader(all[j]);
    CHIRON_ASSIGN_OR_RETURN(uint64_t step, reader.U64Le("checkpoint step"));
    if (reader.remaining() != 0) {
      return DataLossError("data-parallel resume: node " + std::to_string(j) +
                           " sent an invalid checkpoint position");
    }
    if (step != my_checkpoint_step) agreed = false;
  }
  return agreed;
}

}  // namespace chiron::train
