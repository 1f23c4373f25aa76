// PredictionSession: black-box predictions from a trained model (docs/training.md).
//
// Keeps one sandboxed chiron-worker alive with the recipe loaded and the model's parameters and
// buffers in its (read-only for the worker) parameter arena. Predict() writes the inputs into the
// input arena, takes back exactly count × output_size floats from the output arena, copies and
// validates them (finite, bounded). ApplyOutputPolicy turns a row of logits into what the owner
// may see: the provider's output policy (recipe.h Output(): scores or label only, at most k
// classes, rounding), narrowed by the owner's limits for the model (EffectiveOutputPolicy). The
// worker's numbers never reach a client any other way.
//
// If the worker fails, the session is dead: failure() says how and every later call fails; start
// a new session.
//
// Limits: options.worker.limits (CPU seconds, address space, threads, peak resident memory) and
// options.worker.request_timeout per Predict.
//
// Thread safety: one thread at a time, except Abort() and peak_resident_size() (any thread, not
// concurrently with the destructor). Create it on a long-lived thread.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/train/trained_model.h"
#include "runtime/train/worker_settings.h"
#include "shared/base/bytes.h"
#include "shared/base/status.h"
#include "shared/dataset/schema.h"

namespace chiron::train {

struct PredictionOptions {
  WorkerSettings worker;
  uint32_t max_batch = 256;       // samples per Predict call
  float max_abs_output = 1e6f;    // beyond it: numerical error
  uint64_t seed = 0;              // model construction in the worker (values are overwritten)
};

class PredictionSession {
 public:
  virtual ~PredictionSession() = default;

  // `schema` is the training dataset's (sample_count is ignored). The model must have the
  // layout the recipe builds for it (InvalidArgument otherwise).
  static Result<std::unique_ptr<PredictionSession>> Start(ByteSpan recipe,
                                                          const dataset::DatasetSchema& schema,
                                                          const TrainedModel& model,
                                                          const PredictionOptions& options,
                                                          FailureCategory* failure = nullptr);

  // `inputs` holds `count` samples of schema.sample_size() bytes (count in [1, max_batch]).
  // Returns count × output_size() validated logits, sample after sample.
  virtual Result<std::vector<float>> Predict(ByteSpan inputs, size_t count) = 0;

  virtual uint64_t output_size() const = 0;
  virtual FailureCategory failure() const = 0;

  // Kills the worker now (any thread, idempotent): a Predict() in progress, and every later one,
  // fails with Aborted and failure() == kStopped. The session is then dead.
  virtual void Abort() = 0;
  // The peak resident size, in bytes, of this session's worker (its own process only).
  virtual uint64_t peak_resident_size() const = 0;
};

// What a client sees of one prediction.
struct OutputPolicy {
  uint32_t top_k = 0;    // 0: every class; otherwise the k most probable (ties: lower index)
  int decimals = 4;      // probabilities rounded to this many decimals; < 0: no rounding
  bool label_only = false;  // only the most probable class; its probability is 0, not sent
};

// The owner's narrowing of the provider's policy for one model (`chiron model limit`). It can
// only take away: label only, fewer classes, fewer decimals.
struct OutputLimits {
  bool label_only = false;
  uint32_t max_top_k = 0;  // 0: no narrowing
  int32_t decimals = -1;   // < 0: no narrowing
  friend bool operator==(const OutputLimits&, const OutputLimits&) = default;
};

// Classes shown when a request asks for 0 (the default), if the policy allows that many.
inline constexpr uint32_t kDefaultTopK = 5;

// The policy applied to one request: label only if the provider or the owner says so; k is the
// request's (kDefaultTopK if 0), capped by the provider's max_top_k and the owner's (0: no cap)
// and by `output_size`; decimals the fewest of the provider's (clamped to kMaxOutputDecimals)
// and the owner's. `provider` is untrusted input from the recipe: any out-of-range value is
// clamped here, never widened.
OutputPolicy EffectiveOutputPolicy(const chiron::OutputPolicy& provider,
                                   const OutputLimits& owner, uint32_t requested_top_k,
                                   uint64_t output_size);
struct ClassScore {
  uint32_t class_index = 0;
  double probability = 0;
  friend bool operator==(const ClassScore&, const ClassScore&) = default;
};
// softmax(logits) → sorted by probability (descending) → top_k → rounded. Label only: exactly one
// entry, the most probable class (ties: lower index), with probability 0.
std::vector<ClassScore> ApplyOutputPolicy(std::span<const float> logits,
                                          const OutputPolicy& policy);

}  // namespace chiron::train
