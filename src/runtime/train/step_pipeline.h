// StepPipeline: the asynchronous (bounded-staleness) data-parallel mode's second thread
// (docs/distributed.md, "Asynchronous mode"). The session's thread drives the worker; this
// pipeline's thread runs DataParallel::Step (reduce-scatter, this rank's optimizer shard,
// all-gather) for the gradients the session hands it, in step order, while the worker already
// computes the next gradients. With staleness S, the gradient of step t is computed on the
// parameters after step max(d, t − S) (d: the step where the pipeline was last restarted), so at
// most S exchanges are in flight behind the worker.
//
// The parameters the worker reads are never written while it computes: the exchange thread
// writes its results into the session's TrainedModel and into a ring of S + 1 snapshots; the
// session's thread copies the snapshot it needs into the worker's parameter arena between two
// requests (CopyState). The ring is large enough that the exchange thread never overwrites a
// snapshot that a step still to be computed needs (it is at most S steps ahead of it).
//
// Every schedule is fixed by S and the restart points, never by timing: runs are deterministic.
//
// Failure: the first failed exchange or update is kept; every later call returns it. The
// destructor stops the thread; if steps are still in flight it aborts the collective first (a
// rank that leaves mid-pipeline breaks the group, as a failing synchronous rank does).
//
// Thread safety: every method from the session's thread only (one owner thread). The model and
// the DataParallel belong to the exchange thread between the first Push after a Restart and the
// next successful Drain; the owner reads or writes them only while drained.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "runtime/train/collective.h"
#include "runtime/train/data_parallel.h"
#include "runtime/train/trained_model.h"
#include "shared/base/status.h"

namespace chiron::train {

class StepPipeline {
 public:
  // What the worker fills for one step: its batch's mean gradient and its updated buffers.
  struct Slot {
    std::vector<float> gradients;
    std::vector<float> buffers;
  };

  // Borrowed: every argument must outlive the pipeline. `completed_steps`: the optimizer steps
  // `model` already holds. Starts the exchange thread; call Restart() before the first step.
  StepPipeline(Collective& collective, DataParallel& data_parallel, TrainedModel& model,
               uint32_t staleness, uint64_t global_samples, uint64_t completed_steps);
  ~StepPipeline();
  StepPipeline(const StepPipeline&) = delete;
  StepPipeline& operator=(const StepPipeline&) = delete;

  // Drained only: the model now holds the parameters after `completed_steps` steps (a restore
  // or an epoch's end may have changed it); snapshots it as the first state of a new segment.
  Status Restart(uint64_t completed_steps);

  // Where the worker writes step `step`'s gradients (free until Push(step)).
  Slot& SlotFor(uint64_t step) { return slots_[step % slots_.size()]; }

  // Waits until the parameters after `completed` steps exist and copies them, parameters then
  // buffers, into `out` (the worker's arena: no request may be outstanding). `completed` must be
  // one of the last S + 1 states: at least the segment's start, at most the pushed steps.
  Status CopyState(uint64_t completed, std::span<float> out);

  // Hands step `step` (its slot filled; steps in order) to the exchange thread.
  Status Push(uint64_t step, double learning_rate, uint64_t local_samples);

  // Waits until every pushed step is done: the model then holds their result.
  Status Drain();

 private:
  struct Pending {
    uint64_t step = 0;
    double learning_rate = 0;
    uint64_t local_samples = 0;
  };
  void Loop();
  void Snapshot(uint64_t completed);  // model → ring, exchange thread or drained owner

  Collective& collective_;
  DataParallel& data_parallel_;
  TrainedModel& model_;
  const uint64_t global_samples_;
  std::vector<Slot> slots_;                 // S + 1 gradient slots, by step
  std::vector<std::vector<float>> states_;  // S + 1 parameter snapshots, by completed steps
  std::vector<uint64_t> state_steps_;       // which state each snapshot holds

  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Pending> queue_;  // pushed, not yet taken by the exchange thread (FIFO)
  uint64_t pushed_ = 0;         // steps handed over (the next step to push)
  uint64_t completed_ = 0;      // optimizer steps the model holds
  bool busy_ = false;           // the exchange thread is inside a step
  bool stop_ = false;
  Status failure_ = Status::Ok();
  std::thread thread_;
};

}  // namespace chiron::train
