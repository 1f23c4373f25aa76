// Sending the samples of a `chiron predict` run to Models.Predict in batches, paced to the
// model's rate limit, keeping every answer the server charged for.
//
// Samples go in order, in batches of BatchSize(model). Each answered batch has been charged to
// the model's (or the grant's) query budget, so its answers are kept whatever happens next:
// SendPredictions never fails as a whole, it returns the answers so far and why it stopped.
//
// Pacing. A batch refused for the model's rate limit carries the wait the runtime's token bucket
// computed, in the call's trailing metadata `retry-after-ms` (decimal milliseconds;
// docs/predictions.md). Unless `no_wait`, the same batch is sent again after that wait, and
// `on_wait` is told once per wait (the CLI prints it on stderr). Ctrl-C during a wait stops the
// run there (kInterrupted), answers kept. A refusal without that metadata (a request larger than
// the limit can ever pass, an older runtime) or with `no_wait` stops the run (kRateLimit).
//
// Every answer is checked before it is kept (a hostile or broken server must not make the client
// index out of range or print nonsense): a batch that fails the checks stops the run
// (kInvalidAnswer) and none of its answers are kept.
//
// Thread safety: call from one thread; SIGINT's disposition is changed during a wait only.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "chiron/v1/models.pb.h"
#include "client/connection.h"
#include "shared/base/status.h"

namespace chiron::client {

// The trailing metadata key of a Predict refused by the rate limit.
inline constexpr char kRetryAfterMetadata[] = "retry-after-ms";

// Why a run stopped before every sample was answered.
enum class PredictStop {
  kNone,           // every sample answered
  kRateLimit,      // the model's per-minute rate (with --no-wait, or no wait was given)
  kBudget,         // a query budget (the model's or the grant's) has fewer queries left
  kConnection,     // the server could not be reached or the connection broke
  kInterrupted,    // Ctrl-C while waiting for the rate limit
  kInvalidAnswer,  // the server's answer failed the client's checks
  kError,          // any other refusal (the model was deleted, a grant revoked, ...)
};

// "rate_limit", "budget", "connection", "interrupted", "invalid_answer", "error" ("" for kNone).
const char* PredictStopName(PredictStop stop);

struct PredictRun {
  // Answers to samples [0, predictions.size()) of the input, in order.
  std::vector<v1::Prediction> predictions;
  bool label_only = false;
  // From the last answered batch: the model's use and budget (a grantee: the grant's).
  uint64_t queries_used = 0;
  uint64_t query_budget = 0;
  PredictStop stop = PredictStop::kNone;
  Status stopped;  // why the rest went unanswered; OK when stop == kNone
  // kRateLimit: the wait the server gave before the refused batch could pass (0: none given).
  std::chrono::milliseconds retry_after{0};
};

struct PredictPacing {
  bool no_wait = false;  // stop at the first rate-limit refusal instead of waiting
  std::function<void(std::chrono::milliseconds)> on_wait;  // before each wait
};

// Samples per request: the server's maximum, and no more than the rate limit lets through.
size_t BatchSize(const v1::ModelInfo& model);

// Sends `samples` (raw bytes each, already checked against the model's schema) to `model`
// (`owner_id`: a grantee's model owner, else empty).
PredictRun SendPredictions(Connection& connection, const v1::ModelInfo& model,
                           const std::vector<std::string>& samples, const std::string& owner_id,
                           uint32_t top_k, const PredictPacing& pacing);

// A wait as people read it: "0.5 s" under 10 s, else whole seconds rounded up ("12 s").
std::string WaitText(std::chrono::milliseconds wait);

}  // namespace chiron::client
