#include "runtime/train/training_session.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>

#include "runtime/train/data_parallel.h"
#include "runtime/train/optimizer.h"
#include "runtime/train/schedule.h"
#include "runtime/train/shuffler.h"
#include "runtime/train/step_pipeline.h"
#include "runtime/train/worker_client.h"
#include "shared/base/secret.h"

namespace chiron::train {
namespace {

constexpr char kCheckpointMagic[8] = {'C', 'H', 'C', 'K', 'P', 'T', '0', '1'};
// Separates the validation split's permutation from the batch order's.
constexpr uint64_t kValidationSeedTweak = 0x76616c6964617465ULL;  // "validate"

uint64_t Fnv1a(uint64_t hash, ByteSpan bytes) {
  for (uint8_t b : bytes) {
    hash ^= b;
    hash *= 0x100000001b3ULL;
  }
  return hash;
}
uint64_t Fnv1aU64(uint64_t hash, uint64_t v) {
  uint8_t bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<uint8_t>(v >> (8 * i));
  return Fnv1a(hash, ByteSpan(bytes, 8));
}

// Samples and labels of one split, copied out of the records (trusted memory).
// Owner plaintext: SecretVector, so the blocks are zeroed when released, on every path.
struct Split {
  SecretVector<uint8_t> samples;  // count × sample_size
  SecretVector<uint16_t> labels;
  uint64_t count = 0;
};

class TrainingSessionImpl final : public TrainingSession {
 public:
  TrainingSessionImpl(const TrainingOptions& options, TrainingConfig config, uint64_t class_count,
                      uint64_t sample_size, Split train, Split validation, uint64_t fingerprint,
                      std::unique_ptr<WorkerClient> worker)
      : options_(options),
        config_(config),
        class_count_(class_count),
        sample_size_(sample_size),
        train_(std::move(train)),
        validation_(std::move(validation)),
        fingerprint_(fingerprint),
        worker_(std::move(worker)) {}

  Status Init() {
    Collective* group = options_.collective;
    if (group != nullptr) {
      if (config_.batch_size < group->size()) {
        return InvalidArgumentError(
            "data-parallel training: the batch size " + std::to_string(config_.batch_size) +
            " is smaller than the " + std::to_string(group->size()) +
            " nodes (every node needs at least one sample per step): use fewer nodes or a "
            "larger batch");
      }
      local_batch_ = LocalBatch(group->rank());
    } else {
      local_batch_ = config_.batch_size;
    }
    // Each rank shuffles its own shard with its own stream (rank 0's is the single node's).
    const uint64_t rank = group == nullptr ? 0 : group->rank();
    CHIRON_ASSIGN_OR_RETURN(
        Shuffler shuffler,
        Shuffler::Create(options_.seed + rank * 0x9e3779b97f4a7c15ULL, train_.count,
                         local_batch_, false));
    shuffler_ = std::make_unique<Shuffler>(shuffler);
    batches_per_epoch_ = shuffler_->batches_per_epoch();
    if (group != nullptr) CHIRON_RETURN_IF_ERROR(AgreeOnShards(*group));
    const uint64_t steps_per_epoch = batches_per_epoch_;
    CHIRON_ASSIGN_OR_RETURN(LearningRateSchedule schedule,
                            LearningRateSchedule::Create(config_.schedule,
                                                         config_.optimizer.learning_rate,
                                                         steps_per_epoch,
                                                         steps_per_epoch * config_.epochs));
    schedule_ = std::make_unique<LearningRateSchedule>(schedule);
    if (group != nullptr) {
      CHIRON_ASSIGN_OR_RETURN(data_parallel_,
                              DataParallel::Create(*group, config_.optimizer,
                                                   worker_->parameter_count(),
                                                   worker_->buffer_count()));
    } else {
      CHIRON_ASSIGN_OR_RETURN(optimizer_,
                              Optimizer::Create(config_.optimizer, worker_->parameter_count()));
    }
    CHIRON_RETURN_IF_ERROR(worker_->InitialParameters(model_.parameters, model_.buffers,
                                                      std::max(options_.max_abs_gradient, 1e6f)));
    // Every rank starts from the same model: each shard's owner's initial values.
    if (data_parallel_ != nullptr) {
      CHIRON_RETURN_IF_ERROR(data_parallel_->SynchronizeInitialState(model_));
    }
    return Status::Ok();
  }

  Status Restore(ByteSpan checkpoint) override {
    ByteReader reader(checkpoint);
    CHIRON_ASSIGN_OR_RETURN(ByteSpan magic, reader.Take(8, "checkpoint magic"));
    if (std::memcmp(magic.data(), kCheckpointMagic, 8) != 0) {
      return InvalidArgumentError("checkpoint: bad magic (not a Chiron training checkpoint)");
    }
    CHIRON_ASSIGN_OR_RETURN(uint64_t fingerprint, reader.U64Le("fingerprint"));
    if (fingerprint != fingerprint_) {
      return InvalidArgumentError(
          "checkpoint: written for other data, recipe, seed or hyper-parameters");
    }
    CHIRON_ASSIGN_OR_RETURN(uint32_t epoch, reader.U32Le("epoch"));
    CHIRON_ASSIGN_OR_RETURN(uint64_t batch, reader.U64Le("batch"));
    CHIRON_ASSIGN_OR_RETURN(uint64_t step, reader.U64Le("step"));
    CHIRON_ASSIGN_OR_RETURN(uint64_t samples_seen, reader.U64Le("samples seen"));
    CHIRON_ASSIGN_OR_RETURN(uint64_t loss_bits, reader.U64Le("epoch loss"));
    CHIRON_ASSIGN_OR_RETURN(uint64_t loss_samples, reader.U64Le("epoch loss samples"));
    CHIRON_ASSIGN_OR_RETURN(TrainedModel model, DecodeTrainedModel(reader));
    CHIRON_ASSIGN_OR_RETURN(uint64_t state_size, reader.U64Le("optimizer state size"));
    if (state_size != reader.remaining()) {
      return InvalidArgumentError("checkpoint: optimizer state size disagrees with the bytes");
    }
    CHIRON_ASSIGN_OR_RETURN(ByteSpan state, reader.Take(state_size, "optimizer state"));
    if (model.parameters.size() != worker_->parameter_count() ||
        model.buffers.size() != worker_->buffer_count()) {
      return InvalidArgumentError("checkpoint: model layout differs from the recipe's");
    }
    if (epoch > config_.epochs || batch >= batches_per_epoch_ ||
        (epoch == config_.epochs && batch != 0)) {
      return InvalidArgumentError("checkpoint: position beyond the end of training");
    }
    CHIRON_RETURN_IF_ERROR(optimizer().LoadState(state));
    if (optimizer().step_count() != step) {
      return InvalidArgumentError("checkpoint: optimizer step disagrees with the position");
    }
    model_ = std::move(model);
    arena_current_ = false;
    epoch_ = epoch;
    batch_ = batch;
    step_ = step;
    samples_seen_ = samples_seen;
    std::memcpy(&epoch_loss_sum_, &loss_bits, sizeof(loss_bits));
    epoch_loss_samples_ = loss_samples;
    return Status::Ok();
  }

  Result<TrainingResult> Run(const ProgressCallback& progress, const CheckpointCallback& checkpoint,
                             const BatchProgressCallback& batch_progress) override {
    Result<TrainingResult> result = RunEpochs(progress, checkpoint, batch_progress);
    // A rank that fails breaks the group at once, so the others stop at their next exchange
    // instead of waiting for its frames until their timeout.
    if (!result.ok()) LeaveGroup();
    return result;
  }

  // Data-parallel: breaks the group (the other ranks' exchanges fail promptly).
  void LeaveGroup() {
    if (options_.collective == nullptr) return;
    if (worker_->failure() == FailureCategory::kNone) group_failed_ = true;
    options_.collective->Abort();
  }

  Result<TrainingResult> RunEpochs(const ProgressCallback& progress,
                                   const CheckpointCallback& checkpoint,
                                   const BatchProgressCallback& batch_progress) {
    TrainingResult result;
    CHIRON_RETURN_IF_ERROR(worker_->CheckLimits());
    const auto run_start = std::chrono::steady_clock::now();
    const uint64_t run_start_samples = samples_seen_;
    auto last_report = run_start;
    uint64_t last_report_step = step_;
    // Live progress, at most every progress_every_batches steps and progress_interval.
    auto report = [&] {
      if (!batch_progress || step_ - last_report_step < options_.progress_every_batches) return;
      const auto now = std::chrono::steady_clock::now();
      if (now - last_report < options_.progress_interval) return;
      last_report = now;
      last_report_step = step_;
      BatchProgress p;
      p.epoch = epoch_;
      p.batches_done = step_;
      p.batches_per_epoch = batches_per_epoch_;
      p.batches_total = p.batches_per_epoch * config_.epochs;
      p.samples_seen = samples_seen_;
      const double seconds = std::chrono::duration<double>(now - run_start).count();
      if (seconds > 0) {
        p.samples_per_second = static_cast<double>(samples_seen_ - run_start_samples) / seconds;
      }
      batch_progress(p);
    };
    // Asynchronous: the exchange thread, for this Run only (stopped on every return; if steps
    // are still in flight then, it breaks the group).
    std::unique_ptr<StepPipeline> pipeline;
    if (options_.staleness != 0) {
      pipeline = std::make_unique<StepPipeline>(*options_.collective, *data_parallel_, model_,
                                                options_.staleness, config_.batch_size, step_);
    }
    pipeline_ = pipeline.get();
    struct ClearPipeline {
      StepPipeline*& pointer;
      ~ClearPipeline() { pointer = nullptr; }
    } clear_pipeline{pipeline_};
    for (; epoch_ < config_.epochs; ++epoch_) {
      const std::vector<std::vector<uint32_t>> batches = EpochBatches(epoch_);
      if (pipeline_ != nullptr) CHIRON_RETURN_IF_ERROR(RestartPipeline());
      for (; batch_ < batches.size(); ++batch_) {
        CHIRON_RETURN_IF_ERROR(pipeline_ != nullptr ? StepAsync(batches[batch_])
                                                    : Step(batches[batch_]));
        report();
        const bool at_checkpoint = options_.checkpoint_every_steps != 0 &&
                                   step_ % options_.checkpoint_every_steps == 0 &&
                                   batch_ + 1 < batches.size();
        // Asynchronous: the pipeline drains at every checkpoint position, with or without a
        // callback, so the schedule (hence the model) does not depend on who listens.
        if (at_checkpoint && pipeline_ != nullptr) {
          CHIRON_RETURN_IF_ERROR(pipeline_->Drain());
          CHIRON_RETURN_IF_ERROR(RestartPipeline());
        }
        if (at_checkpoint && checkpoint) {
          EpochMetrics partial = Current();
          ++batch_;  // the checkpoint resumes after this batch
          Bytes bytes = Checkpoint();
          --batch_;
          CHIRON_RETURN_IF_ERROR(checkpoint(bytes, partial));
        }
      }
      if (pipeline_ != nullptr) CHIRON_RETURN_IF_ERROR(pipeline_->Drain());
      EpochMetrics metrics = Current();
      metrics.epoch = epoch_ + 1;
      if (options_.collective != nullptr) {
        CHIRON_RETURN_IF_ERROR(EndEpochTogether(metrics));
      } else if (validation_.count > 0) {
        CHIRON_ASSIGN_OR_RETURN(MetricsAccumulator validation, Evaluate());
        metrics.validation = validation.Report();
        metrics.has_validation = true;
      }
      batch_ = 0;
      epoch_loss_sum_ = 0;
      epoch_loss_samples_ = 0;
      if (progress) progress(metrics);
      result.epochs.push_back(metrics);
      if (checkpoint) {
        ++epoch_;
        Bytes bytes = Checkpoint();
        --epoch_;
        CHIRON_RETURN_IF_ERROR(checkpoint(bytes, metrics));
      }
    }
    // Aborted after the last request: the caller asked for an end, say so. (A deadline that
    // passes after the last request ended in time does not undo the finished work.)
    if (worker_->aborted()) return worker_->CheckLimits();
    result.model = model_;
    return result;
  }

  void Abort() override {
    // First: whatever fails from here on (the worker, the group, the asynchronous mode's waits)
    // failed because the runtime stopped the job.
    aborted_.store(true);
    worker_->Abort();
    if (options_.collective != nullptr) options_.collective->Abort();
  }
  uint64_t peak_resident_size() const override { return worker_->peak_resident_size(); }
  FailureCategory failure() const override {
    const FailureCategory own = worker_->failure();
    // Stopped on request while the worker was idle (the session waiting on the group or on the
    // asynchronous mode's exchange thread): the worker never saw it, but the job was stopped.
    if (own == FailureCategory::kNone && aborted_.load()) return FailureCategory::kStopped;
    // The group failing (another rank, the link) is the runtime's failure, not the recipe's.
    if (own == FailureCategory::kNone && group_failed_) return FailureCategory::kInternal;
    return own;
  }
  uint64_t parameter_count() const override { return worker_->parameter_count(); }
  uint64_t buffer_count() const override { return worker_->buffer_count(); }
  const TrainingConfig& config() const override { return config_; }
  uint64_t training_sample_count() const override { return train_.count; }
  uint64_t validation_sample_count() const override { return validation_.count; }
  uint64_t batches_per_epoch() const override { return batches_per_epoch_; }

 private:
  // One optimizer step: the runtime writes the state and the batch, the worker computes, the
  // runtime checks and updates. The update writes the new parameters into the parameter arena in
  // the same pass (StepAndCopy), so the arena is current for the next step without a copy.
  Status Step(const std::vector<uint32_t>& batch) {
    if (!arena_current_) WriteState();
    const uint64_t n = batch.size();
    WriteBatch(batch);
    double loss = 0;
    arena_current_ = false;  // until the update below has rewritten it
    CHIRON_RETURN_IF_ERROR(worker_->ComputeGradients(n, grads_, step_buffers_, &loss,
                                                     options_.max_abs_gradient,
                                                     options_.max_abs_buffer));
    if (data_parallel_ != nullptr) {
      // Synchronous data-parallel: every rank ends the step with the same model.
      CHIRON_RETURN_IF_ERROR(data_parallel_->Step(step_, schedule_->LearningRate(step_), grads_,
                                                  n, config_.batch_size, step_buffers_, model_));
      WriteState();
      ++step_;
      samples_seen_ += config_.batch_size;  // the global batch
      epoch_loss_sum_ += loss * static_cast<double>(n);
      epoch_loss_samples_ += n;
      return Status::Ok();
    }
    std::span<float> state = worker_->state();
    CHIRON_RETURN_IF_ERROR(optimizer_->StepAndCopy(model_.parameters, grads_,
                                                   schedule_->LearningRate(step_),
                                                   state.first(model_.parameters.size())));
    model_.buffers.swap(step_buffers_);
    std::copy(model_.buffers.begin(), model_.buffers.end(),
              state.data() + model_.parameters.size());  // a model may have no buffers
    arena_current_ = true;
    ++step_;
    samples_seen_ += n;
    epoch_loss_sum_ += loss * static_cast<double>(n);
    epoch_loss_samples_ += n;
    return Status::Ok();
  }

  // Asynchronous (staleness S >= 1): the worker computes step t's gradients on the parameters
  // after step max(segment start, t - S), copied into its arena between two requests, while the
  // pipeline's thread exchanges and applies the steps before t.
  Status StepAsync(const std::vector<uint32_t>& batch) {
    const uint64_t t = step_;
    const uint64_t stale = options_.staleness;
    const uint64_t basis = t >= segment_start_ + stale ? t - stale : segment_start_;
    arena_current_ = false;  // the arena holds a stale state from here on
    CHIRON_RETURN_IF_ERROR(pipeline_->CopyState(basis, worker_->state()));
    const uint64_t n = batch.size();
    WriteBatch(batch);
    double loss = 0;
    StepPipeline::Slot& slot = pipeline_->SlotFor(t);
    CHIRON_RETURN_IF_ERROR(worker_->ComputeGradients(n, slot.gradients, slot.buffers, &loss,
                                                     options_.max_abs_gradient,
                                                     options_.max_abs_buffer));
    CHIRON_RETURN_IF_ERROR(pipeline_->Push(t, schedule_->LearningRate(t), n));
    ++step_;
    samples_seen_ += config_.batch_size;  // the global batch
    epoch_loss_sum_ += loss * static_cast<double>(n);
    epoch_loss_samples_ += n;
    return Status::Ok();
  }

  // Drained: a new segment of the asynchronous schedule starts at the model's current step.
  Status RestartPipeline() {
    segment_start_ = step_;
    return pipeline_->Restart(step_);
  }

  // The batch's samples and labels into the worker's input arena (no request outstanding).
  void WriteBatch(const std::vector<uint32_t>& batch) {
    const uint64_t n = batch.size();
    std::span<uint8_t> in = worker_->inputs();
    const uint64_t label_offset = InputLabelOffset(n, sample_size_);
    for (uint64_t i = 0; i < n; ++i) {
      std::memcpy(in.data() + i * sample_size_, train_.samples.data() + batch[i] * sample_size_,
                  sample_size_);
      std::memcpy(in.data() + label_offset + i * sizeof(uint16_t), &train_.labels[batch[i]],
                  sizeof(uint16_t));
    }
  }

  void WriteState() {
    std::span<float> state = worker_->state();
    // std::copy: a model may have no buffers, and memcpy may not be given a null pointer.
    std::copy(model_.parameters.begin(), model_.parameters.end(), state.data());
    std::copy(model_.buffers.begin(), model_.buffers.end(),
              state.data() + model_.parameters.size());
    arena_current_ = true;
  }

  // The validation split, predicted by the worker from unlabelled inputs, scored here.
  Result<MetricsAccumulator> Evaluate() {
    WriteState();
    CHIRON_ASSIGN_OR_RETURN(MetricsAccumulator metrics,
                            MetricsAccumulator::Create(static_cast<int64_t>(class_count_)));
    SecretVector<int64_t> labels;  // the owner's labels
    for (uint64_t at = 0; at < validation_.count; at += options_.prediction_batch) {
      const uint64_t n = std::min<uint64_t>(options_.prediction_batch, validation_.count - at);
      std::memcpy(worker_->inputs().data(), validation_.samples.data() + at * sample_size_,
                  n * sample_size_);
      CHIRON_ASSIGN_OR_RETURN(std::vector<float> logits,
                              worker_->Predict(n, options_.max_abs_output));
      labels.assign(validation_.labels.begin() + static_cast<ptrdiff_t>(at),
                    validation_.labels.begin() + static_cast<ptrdiff_t>(at + n));
      CHIRON_RETURN_IF_ERROR(metrics.Add(logits, labels));
    }
    return metrics;
  }

  // The local batch of rank `rank`: the global batch split as evenly as it goes.
  uint32_t LocalBatch(uint32_t rank) const {
    const uint32_t size = options_.collective->size();
    return config_.batch_size / size + (rank < config_.batch_size % size ? 1 : 0);
  }

  // Data-parallel start: every rank learns every shard's size, so all run the same number of
  // steps per epoch (the largest shard's, at its local batch).
  Status AgreeOnShards(Collective& group) {
    Bytes mine;
    AppendU64Le(mine, train_.count);
    AppendU64Le(mine, validation_.count);
    std::vector<Bytes> all;
    CHIRON_RETURN_IF_ERROR(group.ExchangeBytes(0, kPhaseShardSizes, mine, all));
    if (all.size() != group.size()) return InternalError("data-parallel start: ranks missing");
    for (uint32_t j = 0; j < group.size(); ++j) {
      ByteReader reader(all[j]);
      CHIRON_ASSIGN_OR_RETURN(uint64_t train_count, reader.U64Le("training count"));
      CHIRON_ASSIGN_OR_RETURN(uint64_t validation_count, reader.U64Le("validation count"));
      if (reader.remaining() != 0 || train_count == 0 || train_count >= (1ull << 32)) {
        return DataLossError("data-parallel start: node " + std::to_string(j) +
                             " sent an invalid shard description");
      }
      const uint64_t batch = LocalBatch(j);
      batches_per_epoch_ = std::max<uint64_t>(batches_per_epoch_, (train_count + batch - 1) / batch);
      global_validation_ += validation_count;
    }
    return Status::Ok();
  }

  // This epoch's batches: alone, the shuffler's; data-parallel, batches_per_epoch_ full local
  // batches, a shard smaller than the largest wrapping around its own permutation.
  std::vector<std::vector<uint32_t>> EpochBatches(uint32_t epoch) const {
    if (options_.collective == nullptr) return shuffler_->EpochBatches(epoch);
    const std::vector<uint32_t> order = shuffler_->EpochOrder(epoch);
    std::vector<std::vector<uint32_t>> batches(batches_per_epoch_);
    uint64_t at = 0;
    for (auto& batch : batches) {
      batch.resize(local_batch_);
      for (uint32_t& index : batch) index = order[at++ % order.size()];
    }
    return batches;
  }

  // Data-parallel epoch end: the training loss and the validation metrics over every rank's data
  // (each rank scores its own validation split; the counts are summed in rank order).
  Status EndEpochTogether(EpochMetrics& metrics) {
    CHIRON_ASSIGN_OR_RETURN(MetricsAccumulator validation,
                            MetricsAccumulator::Create(static_cast<int64_t>(class_count_)));
    if (validation_.count > 0) {
      CHIRON_ASSIGN_OR_RETURN(validation, Evaluate());
    }
    Bytes mine;
    uint64_t loss_bits;
    std::memcpy(&loss_bits, &epoch_loss_sum_, sizeof(loss_bits));
    AppendU64Le(mine, loss_bits);
    AppendU64Le(mine, epoch_loss_samples_);
    Append(mine, validation.Serialize());
    std::vector<Bytes> all;
    // Tagged with the epoch's last step: tags increase strictly, (step, phase) after that step's
    // gradients and parameters, before the next step's.
    CHIRON_RETURN_IF_ERROR(
        options_.collective->ExchangeBytes(step_ - 1, kPhaseEpochMetrics, mine, all));
    CHIRON_ASSIGN_OR_RETURN(MetricsAccumulator merged,
                            MetricsAccumulator::Create(static_cast<int64_t>(class_count_)));
    double loss_sum = 0;
    uint64_t loss_samples = 0;
    for (uint32_t j = 0; j < all.size(); ++j) {
      ByteReader reader(all[j]);
      CHIRON_ASSIGN_OR_RETURN(uint64_t bits, reader.U64Le("loss"));
      CHIRON_ASSIGN_OR_RETURN(uint64_t samples, reader.U64Le("loss samples"));
      double loss;
      std::memcpy(&loss, &bits, sizeof(loss));
      CHIRON_ASSIGN_OR_RETURN(ByteSpan counts, reader.Take(reader.remaining(), "metrics"));
      if (!std::isfinite(loss) || !merged.Merge(counts).ok()) {
        return DataLossError("data-parallel epoch end: node " + std::to_string(j) +
                             " sent invalid metrics");
      }
      loss_sum += loss;
      loss_samples += samples;
    }
    metrics.train_loss = loss_samples == 0 ? 0 : loss_sum / static_cast<double>(loss_samples);
    if (global_validation_ > 0) {
      metrics.validation = merged.Report();
      metrics.has_validation = true;
    }
    return Status::Ok();
  }

  Optimizer& optimizer() const {
    return data_parallel_ != nullptr ? data_parallel_->optimizer() : *optimizer_;
  }

  EpochMetrics Current() const {
    EpochMetrics m;
    m.epoch = epoch_;
    m.step = step_;
    m.samples_seen = samples_seen_;
    m.train_loss = epoch_loss_samples_ == 0
                       ? 0
                       : epoch_loss_sum_ / static_cast<double>(epoch_loss_samples_);
    return m;
  }

  // Position (epoch_, batch_) = the next batch to run.
  Bytes Checkpoint() const {
    Bytes out;
    Append(out, ByteSpan(reinterpret_cast<const uint8_t*>(kCheckpointMagic), 8));
    AppendU64Le(out, fingerprint_);
    AppendU32Le(out, epoch_);
    AppendU64Le(out, batch_);
    AppendU64Le(out, step_);
    AppendU64Le(out, samples_seen_);
    uint64_t loss_bits;
    std::memcpy(&loss_bits, &epoch_loss_sum_, sizeof(loss_bits));
    AppendU64Le(out, loss_bits);
    AppendU64Le(out, epoch_loss_samples_);
    EncodeTrainedModel(model_, out);
    const Bytes state = optimizer().SaveState();
    AppendU64Le(out, state.size());
    Append(out, state);
    return out;
  }

  TrainingOptions options_;
  TrainingConfig config_;
  uint64_t class_count_;
  uint64_t sample_size_;
  Split train_;
  Split validation_;
  uint64_t fingerprint_;
  std::unique_ptr<WorkerClient> worker_;
  std::unique_ptr<Shuffler> shuffler_;
  std::unique_ptr<LearningRateSchedule> schedule_;
  std::unique_ptr<Optimizer> optimizer_;             // alone: the whole model's
  std::unique_ptr<DataParallel> data_parallel_;      // data-parallel: the step and its optimizer
  StepPipeline* pipeline_ = nullptr;                 // asynchronous: Run's exchange thread
  uint64_t segment_start_ = 0;                       // asynchronous: the last drain point
  uint32_t local_batch_ = 0;                         // this rank's share of the batch
  uint64_t batches_per_epoch_ = 0;                   // steps per epoch, the same on every rank
  uint64_t global_validation_ = 0;                   // validation samples over every rank
  bool group_failed_ = false;  // a data-parallel run failed outside the worker
  std::atomic<bool> aborted_{false};  // Abort() was called (any thread)
  TrainedModel model_;
  uint32_t epoch_ = 0;
  uint64_t batch_ = 0;
  uint64_t step_ = 0;
  uint64_t samples_seen_ = 0;
  double epoch_loss_sum_ = 0;
  uint64_t epoch_loss_samples_ = 0;
  // The step's validated copies out of the gradient arena, reused every step.
  std::vector<float> grads_;
  std::vector<float> step_buffers_;
  // The parameter arena holds model_'s parameters and buffers (false after Restore or a failed
  // step).
  bool arena_current_ = false;
};

}  // namespace

namespace {

Result<std::unique_ptr<TrainingSession>> CreateSession(const TrainingData& data, ByteSpan recipe,
                                                       const TrainingOptions& options,
                                                       FailureCategory* failure) {
  if (failure != nullptr) *failure = FailureCategory::kInternal;
  CHIRON_RETURN_IF_ERROR(data.schema.Validate());
  const uint64_t count = data.schema.sample_count;
  const uint64_t record_size = data.schema.record_size();
  const uint64_t sample_size = data.schema.sample_size();
  if (count >= (1ull << 32) || data.records.size() / record_size != count ||
      data.records.size() % record_size != 0) {
    return InvalidArgumentError("training data: " + std::to_string(data.records.size()) +
                                " bytes are not " + std::to_string(count) + " records of " +
                                std::to_string(record_size) + " bytes");
  }
  if (!(options.validation_fraction >= 0 && options.validation_fraction <= 0.5)) {
    return InvalidArgumentError("validation fraction must be in [0, 0.5]");
  }
  if (options.prediction_batch < 1 || options.prediction_batch > 65536) {
    return InvalidArgumentError("prediction batch must be in [1, 65536]");
  }
  if (options.staleness != 0 && options.collective == nullptr) {
    return InvalidArgumentError(
        "staleness " + std::to_string(options.staleness) +
        " needs data-parallel training: the asynchronous mode overlaps a node's gradients with "
        "the exchange between nodes; on one node set staleness to 0");
  }
  if (options.staleness > kMaxStaleness) {
    return InvalidArgumentError("staleness " + std::to_string(options.staleness) +
                                " is above the maximum of " + std::to_string(kMaxStaleness) +
                                ": use 0 (synchronous) to " + std::to_string(kMaxStaleness));
  }
  CHIRON_ASSIGN_OR_RETURN(TrainingConfig config, SanitizeTrainingConfig(options.config));
  const uint64_t validation_count =
      static_cast<uint64_t>(std::floor(options.validation_fraction * static_cast<double>(count)));
  if (validation_count >= count) {
    return InvalidArgumentError("no training samples left after the validation split");
  }

  // The split: a seeded permutation; the first validation_count indices are held out. Both
  // splits keep the records' original order.
  CHIRON_ASSIGN_OR_RETURN(Shuffler splitter,
                          Shuffler::Create(options.seed ^ kValidationSeedTweak, count, 1, false));
  std::vector<uint32_t> order = splitter.EpochOrder(0);
  std::vector<bool> held_out(count, false);
  for (uint64_t i = 0; i < validation_count; ++i) held_out[order[i]] = true;
  const size_t label_size = dataset::LabelSize(data.schema.label_type);
  Split train, validation;
  train.samples.reserve((count - validation_count) * sample_size);
  validation.samples.reserve(validation_count * sample_size);
  for (uint64_t i = 0; i < count; ++i) {
    const uint8_t* record = data.records.data() + i * record_size;
    const uint16_t label =
        label_size == 1 ? record[0] : static_cast<uint16_t>(record[0] | (record[1] << 8));
    if (label >= data.schema.class_count()) {
      return InvalidArgumentError("training data: record " + std::to_string(i) +
                                  " has a label outside the schema's classes");
    }
    Split& split = held_out[i] ? validation : train;
    split.samples.insert(split.samples.end(), record + label_size, record + record_size);
    split.labels.push_back(label);
    ++split.count;
  }

  uint64_t fingerprint = 0xcbf29ce484222325ULL;
  fingerprint = Fnv1a(fingerprint, data.records);
  fingerprint = Fnv1a(fingerprint, recipe);
  fingerprint = Fnv1aU64(fingerprint, options.seed);
  uint64_t fraction_bits;
  std::memcpy(&fraction_bits, &options.validation_fraction, sizeof(fraction_bits));
  fingerprint = Fnv1aU64(fingerprint, fraction_bits);
  if (options.collective != nullptr) {
    fingerprint = Fnv1aU64(fingerprint, options.collective->rank());
    fingerprint = Fnv1aU64(fingerprint, options.collective->size());
  }
  // Asynchronous checkpoints restore only into the same schedule (synchronous ones are
  // unchanged, so their fingerprint is too).
  if (options.staleness != 0)
    fingerprint = Fnv1aU64(fingerprint, 0x5354414cULL + options.staleness);
  for (uint64_t v : PackRecipeDeclarations(config, ResourceBudget{})) {
    fingerprint = Fnv1aU64(fingerprint, v);
  }

  WorkerClientOptions worker_options;
  CHIRON_ASSIGN_OR_RETURN(worker_options.schema, RecipeSchemaFor(data.schema));
  worker_options.seed = options.seed;
  worker_options.max_batch = std::max(config.batch_size, options.prediction_batch);
  worker_options.deadline = options.deadline;
  WorkerSettings settings = options.worker;
  uint64_t& resident = settings.limits.max_resident_size;
  if (options.max_resident_size != 0 && (resident == 0 || options.max_resident_size < resident)) {
    resident = options.max_resident_size;
  }
  CHIRON_ASSIGN_OR_RETURN(std::unique_ptr<WorkerClient> worker,
                          WorkerClient::Start(recipe, worker_options, settings, failure));
  if (worker->output_size() != data.schema.class_count()) {
    if (failure != nullptr) *failure = FailureCategory::kRecipeRejected;
    return RefuseWorker(WorkerRefusal::kOutputClasses);  // the worker's count is not quoted
  }
  auto session = std::make_unique<TrainingSessionImpl>(
      options, config, data.schema.class_count(), sample_size, std::move(train),
      std::move(validation), fingerprint, std::move(worker));
  if (Status s = session->Init(); !s.ok()) {
    session->LeaveGroup();
    if (failure != nullptr) *failure = session->failure() == FailureCategory::kNone
                                           ? FailureCategory::kInternal
                                           : session->failure();
    return s;
  }
  if (failure != nullptr) *failure = FailureCategory::kNone;
  return std::unique_ptr<TrainingSession>(std::move(session));
}

}  // namespace

Result<std::unique_ptr<TrainingSession>> TrainingSession::Create(const TrainingData& data,
                                                                 ByteSpan recipe,
                                                                 const TrainingOptions& options,
                                                                 FailureCategory* failure) {
  Result<std::unique_ptr<TrainingSession>> session = CreateSession(data, recipe, options, failure);
  // Data-parallel: a rank that cannot start breaks the group, so the others do not wait for it.
  if (!session.ok() && options.collective != nullptr) options.collective->Abort();
  return session;
}

Result<uint64_t> CheckpointStep(ByteSpan checkpoint) {
  ByteReader reader(checkpoint);
  CHIRON_ASSIGN_OR_RETURN(ByteSpan magic, reader.Take(8, "checkpoint magic"));
  if (std::memcmp(magic.data(), kCheckpointMagic, 8) != 0) {
    return InvalidArgumentError("checkpoint: bad magic (not a Chiron training checkpoint)");
  }
  CHIRON_RETURN_IF_ERROR(reader.U64Le("fingerprint").status());
  CHIRON_RETURN_IF_ERROR(reader.U32Le("epoch").status());
  CHIRON_RETURN_IF_ERROR(reader.U64Le("batch").status());
  return reader.U64Le("step");
}

}  // namespace chiron::train
