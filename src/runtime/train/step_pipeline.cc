#include "runtime/train/step_pipeline.h"

#include <algorithm>
#include <limits>

namespace chiron::train {

StepPipeline::StepPipeline(Collective& collective, DataParallel& data_parallel, TrainedModel& model,
                           uint32_t staleness, uint64_t global_samples, uint64_t completed_steps)
    : collective_(collective),
      data_parallel_(data_parallel),
      model_(model),
      global_samples_(global_samples),
      slots_(staleness + 1),
      states_(staleness + 1),
      state_steps_(staleness + 1, std::numeric_limits<uint64_t>::max()),
      pushed_(completed_steps),
      completed_(completed_steps) {
  thread_ = std::thread([this] { Loop(); });
}

StepPipeline::~StepPipeline() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
    // Steps still in flight: this rank leaves the group mid-step, so break it (the exchange in
    // progress returns at once here, and the other ranks fail promptly instead of waiting).
    if (busy_ || !queue_.empty()) collective_.Abort();
  }
  changed_.notify_all();
  thread_.join();
}

void StepPipeline::Snapshot(uint64_t completed) {
  const size_t index = completed % states_.size();
  std::vector<float>& state = states_[index];
  state.resize(model_.parameters.size() + model_.buffers.size());
  std::copy(model_.parameters.begin(), model_.parameters.end(), state.begin());
  std::copy(model_.buffers.begin(), model_.buffers.end(),
            state.begin() + static_cast<ptrdiff_t>(model_.parameters.size()));
  std::lock_guard<std::mutex> lock(mutex_);
  state_steps_[index] = completed;
}

Status StepPipeline::Restart(uint64_t completed_steps) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    CHIRON_RETURN_IF_ERROR(failure_);
    if (busy_ || !queue_.empty() || pushed_ != completed_) {
      return InternalError("asynchronous step: restarted with steps in flight");
    }
    pushed_ = completed_steps;
    completed_ = completed_steps;
  }
  Snapshot(completed_steps);
  return Status::Ok();
}

Status StepPipeline::CopyState(uint64_t completed, std::span<float> out) {
  const size_t index = completed % states_.size();
  {
    std::unique_lock<std::mutex> lock(mutex_);
    if (completed > pushed_ || completed + states_.size() <= pushed_) {
      return InternalError("asynchronous step: asked for a state outside the pipeline");
    }
    changed_.wait(lock, [&] { return !failure_.ok() || completed_ >= completed; });
    CHIRON_RETURN_IF_ERROR(failure_);
    if (state_steps_[index] != completed) {
      return InternalError("asynchronous step: the state asked for was not kept");
    }
  }
  // The exchange thread is at most S steps ahead of `completed` (checked above), so it writes
  // other snapshots while this one is copied.
  const std::vector<float>& state = states_[index];
  if (out.size() < state.size()) return InternalError("asynchronous step: arena too small");
  std::copy(state.begin(), state.end(), out.begin());
  return Status::Ok();
}

Status StepPipeline::Push(uint64_t step, double learning_rate, uint64_t local_samples) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    CHIRON_RETURN_IF_ERROR(failure_);
    if (step != pushed_ || pushed_ - completed_ >= slots_.size()) {
      return InternalError("asynchronous step: pushed out of order or beyond the staleness");
    }
    queue_.push_back({step, learning_rate, local_samples});
    ++pushed_;
  }
  changed_.notify_all();
  return Status::Ok();
}

Status StepPipeline::Drain() {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return !failure_.ok() || completed_ == pushed_; });
  return failure_;
}

void StepPipeline::Loop() {
  for (;;) {
    Pending next;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] { return stop_ || (!queue_.empty() && failure_.ok()); });
      if (stop_) return;
      next = queue_.front();
      queue_.erase(queue_.begin());
      busy_ = true;
    }
    Slot& slot = SlotFor(next.step);
    Status status = data_parallel_.Step(next.step, next.learning_rate, slot.gradients,
                                        next.local_samples, global_samples_, slot.buffers, model_);
    if (status.ok()) Snapshot(next.step + 1);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      busy_ = false;
      if (status.ok()) {
        completed_ = next.step + 1;
      } else {
        failure_ = status;
      }
    }
    changed_.notify_all();
  }
}

}  // namespace chiron::train
