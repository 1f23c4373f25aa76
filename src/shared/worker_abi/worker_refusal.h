// Why the runtime refused something a sandboxed worker handed it: a closed list of reasons, each
// with a fixed text. Part of the worker boundary's ABI (docs/formats/worker-protocol.md,
// "Refusals").
//
// The rule this enforces: no value the worker chose (a sequence number, a count, a size, an
// index, a frame type, a loss, an exit code) appears in any message, log line, audit record,
// metric or response. A hostile recipe picks those values, possibly from the owner's plaintext,
// and chirond's log goes to the host (in practice the provider); a failed Predict goes to the
// querier. A refusal therefore says which check failed and never what the worker sent.
//
// It holds by construction rather than by review:
//   - validators at the boundary (ValidateWorkerFrame, ValidateFloatArena,
//     UnpackRecipeDeclarations, train::CheckRange, ...) return a WorkerRefusal, not text;
//   - RefuseWorker() is the only way a refusal becomes a Status, and it takes nothing but the
//     reason: its message is the reason's fixed text from kWorkerRefusals.
// Callers may put their own, runtime-chosen words around it (the request they sent, the job),
// never a value from the worker.
//
// Header-only (the red-team and test workers compile the protocol from source).
// Thread safety: everything here is immutable.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "shared/base/status.h"

namespace chiron {

enum class WorkerRefusal : uint8_t {
  kFrameSize,          // a frame of any size but 64 bytes
  kAncillaryData,      // a frame with descriptors or credentials attached
  kFrameMagic,         // not a worker frame
  kProtocolVersion,    // another protocol version
  kFrameType,          // an unknown frame type, or not the response the runtime asked for
  kRequestType,        // a runtime → worker request sent by the worker
  kSequence,           // not the sequence number of the runtime's request
  kUnusedField,        // a field the frame type does not use is not zero
  kPolicyFingerprint,  // hello: another sandbox policy than the runtime's
  kLandlockAbi,        // hello: a Landlock ABI below the runtime's minimum (or absurd)
  kCount,              // a count (parameters, buffers, samples, outputs) other than requested
  kLoss,               // the loss is NaN, infinite or beyond the runtime's bound
  kLayout,             // configured: parameters + buffers do not fit the runtime's arena
  kOutputSize,         // configured: outputs per sample 0 or beyond the runtime's limit
  kPage,               // description: another page than requested
  kFailureReason,      // failed: a reason outside the closed WorkerFailure list
  kArenaSize,          // an arena holds fewer values than the response announced
  kNotFinite,          // a value handed back is NaN or infinite
  kOutOfRange,         // a value handed back is beyond the runtime's bound
  kDeclarations,       // the recipe's declarations do not fit their fields
  kHyperParameters,    // the recipe's declared hyper-parameters break the runtime's limits
  kOutputClasses,      // the recipe's outputs per sample are not the dataset's class count
  kModelLayout,        // the recipe's model layout is not the stored model's
};

struct WorkerRefusalText {
  WorkerRefusal reason;
  std::string_view name;     // short, stable: docs and tests name reasons by it
  std::string_view message;  // the whole text a Status carries; says the check and the attack
};

// The closed list, in enum order (checked below). No message ends with another one, so
// WorkerRefusalOf() recovers the reason from a message with words in front of it.
inline constexpr std::array<WorkerRefusalText, 23> kWorkerRefusals{{
    {WorkerRefusal::kFrameSize, "frame-size",
     "worker frame refused: not exactly 64 bytes (no bytes smuggled past the framing)"},
    {WorkerRefusal::kAncillaryData, "ancillary-data",
     "worker frame refused: it carried ancillary data (descriptors are not a channel)"},
    {WorkerRefusal::kFrameMagic, "frame-magic", "worker frame refused: bad magic (not a frame)"},
    {WorkerRefusal::kProtocolVersion, "protocol-version",
     "worker frame refused: another protocol version (worker and runtime out of step)"},
    {WorkerRefusal::kFrameType, "frame-type",
     "worker frame refused: not the response type the runtime asked for"},
    {WorkerRefusal::kRequestType, "request-type",
     "worker frame refused: a runtime request sent by the worker"},
    {WorkerRefusal::kSequence, "sequence",
     "worker frame refused: sequence out of order (a stale or future answer)"},
    {WorkerRefusal::kUnusedField, "unused-field",
     "worker frame refused: an unused field is not zero (unused bytes are not a channel)"},
    {WorkerRefusal::kPolicyFingerprint, "policy-fingerprint",
     "worker hello refused: another sandbox policy than the runtime's (worker binary does not "
     "match this runtime)"},
    {WorkerRefusal::kLandlockAbi, "landlock-abi",
     "worker hello refused: Landlock ABI below the runtime's minimum"},
    {WorkerRefusal::kCount, "count",
     "worker frame refused: a count other than the runtime requested"},
    {WorkerRefusal::kLoss, "loss",
     "worker frame refused: the loss is not finite or beyond the runtime's bound"},
    {WorkerRefusal::kLayout, "layout",
     "worker frame refused: the model layout does not fit the runtime's arena"},
    {WorkerRefusal::kOutputSize, "output-size",
     "worker frame refused: outputs per sample outside the runtime's limit"},
    {WorkerRefusal::kPage, "page",
     "worker frame refused: a description page other than requested"},
    {WorkerRefusal::kFailureReason, "failure-reason",
     "worker frame refused: a failure reason outside the closed list"},
    {WorkerRefusal::kArenaSize, "arena-size",
     "worker arena refused: it holds fewer values than announced"},
    {WorkerRefusal::kNotFinite, "not-finite",
     "worker values refused: a value is NaN or infinite (would poison the trusted optimizer)"},
    {WorkerRefusal::kOutOfRange, "out-of-range",
     "worker values refused: a value is beyond the runtime's bound (magnitudes are not a "
     "channel)"},
    {WorkerRefusal::kDeclarations, "declarations",
     "recipe declarations refused: a value does not fit its field"},
    {WorkerRefusal::kHyperParameters, "hyper-parameters",
     "recipe declarations refused: a hyper-parameter is NaN, infinite or outside the runtime's "
     "limits (docs/recipes.md)"},
    {WorkerRefusal::kOutputClasses, "output-classes",
     "recipe refused: its outputs per sample are not the dataset's class count"},
    {WorkerRefusal::kModelLayout, "model-layout",
     "recipe refused: its model layout differs from the stored model's"},
}};

constexpr bool WorkerRefusalTableInOrder() {
  for (size_t i = 0; i < kWorkerRefusals.size(); ++i) {
    if (static_cast<size_t>(kWorkerRefusals[i].reason) != i) return false;
  }
  return true;
}
static_assert(WorkerRefusalTableInOrder(), "kWorkerRefusals must list every reason in order");
static_assert(static_cast<size_t>(WorkerRefusal::kModelLayout) + 1 == kWorkerRefusals.size(),
              "a new WorkerRefusal needs its row in kWorkerRefusals");

constexpr std::string_view WorkerRefusalName(WorkerRefusal reason) {
  return kWorkerRefusals[static_cast<size_t>(reason)].name;
}
constexpr std::string_view WorkerRefusalMessage(WorkerRefusal reason) {
  return kWorkerRefusals[static_cast<size_t>(reason)].message;
}

// The only way a refusal becomes a Status: InvalidArgument carrying the reason's fixed text and
// nothing else. Deliberately no other parameter.
inline Status RefuseWorker(WorkerRefusal reason) {
  return InvalidArgumentError(std::string(WorkerRefusalMessage(reason)));
}

// The reason of a Status built by RefuseWorker, also after callers put words in front of its
// message (it must end with the fixed text); nullopt for any other Status.
inline std::optional<WorkerRefusal> WorkerRefusalOf(const Status& status) {
  if (status.code() != StatusCode::kInvalidArgument) return std::nullopt;
  const std::string_view message = status.message();
  for (const WorkerRefusalText& row : kWorkerRefusals) {
    if (message.size() >= row.message.size() &&
        message.substr(message.size() - row.message.size()) == row.message) {
      return row.reason;
    }
  }
  return std::nullopt;
}

// The outcome of a check that returns nothing: passed, or refused for one reason. Converts to a
// Status only through RefuseWorker.
class [[nodiscard]] WorkerCheck {
 public:
  WorkerCheck() = default;  // passed
  WorkerCheck(WorkerRefusal refusal) : refusal_(refusal) {}  // NOLINT: implicit by design
  bool ok() const { return !refusal_.has_value(); }
  // Precondition: !ok().
  WorkerRefusal refusal() const { return *refusal_; }
  Status status() const { return ok() ? Status::Ok() : RefuseWorker(*refusal_); }
  operator Status() const { return status(); }  // NOLINT: implicit by design

 private:
  std::optional<WorkerRefusal> refusal_;
};

// A value the boundary accepted, or the reason it was refused. Converts to Result<T> (the
// refusal through RefuseWorker), so callers that deal in Status need no code of their own.
template <typename T>
class [[nodiscard]] WorkerChecked {
 public:
  WorkerChecked(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  WorkerChecked(WorkerRefusal refusal) : refusal_(refusal) {}  // NOLINT
  bool ok() const { return value_.has_value(); }
  // Precondition: !ok().
  WorkerRefusal refusal() const { return refusal_; }
  Status status() const { return ok() ? Status::Ok() : RefuseWorker(refusal_); }
  // Preconditions: ok().
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  operator Result<T>() && {  // NOLINT: implicit by design
    if (ok()) return std::move(*value_);
    return RefuseWorker(refusal_);
  }

 private:
  std::optional<T> value_;
  WorkerRefusal refusal_ = WorkerRefusal::kFrameSize;  // meaningful only when !ok()
};

}  // namespace chiron
