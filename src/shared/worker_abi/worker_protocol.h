// The wire between the trusted runtime (chirond) and the sandboxed worker (chiron-worker).
//
// Spec: docs/formats/worker-protocol.md. Summary: the worker inherits exactly these descriptors,
// at fixed numbers, and nothing else:
//
//   fd  channel            worker may           runtime side
//   0-2 /dev/null          read/write nothing   (never connected to a terminal or a log)
//   3   control socket     read/write frames    SOCK_SEQPACKET socketpair, one 64-byte frame each
//   4   input arena        map read-only        O_RDONLY reopen + F_SEAL_FUTURE_WRITE; the
//                                               runtime writes each batch's samples and labels
//   5   parameter arena    map read-only        O_RDONLY reopen + F_SEAL_FUTURE_WRITE; the
//                                               runtime keeps the only writable mapping
//   6   gradient arena     map read/write       fixed size (grow/shrink sealed)
//   7   output arena       map read/write       fixed size (grow/shrink sealed)
//   8   recipe memfd       read once            sealed shared object, copied into the empty root
//
// The parameter, gradient and output arenas hold little-endian IEEE-754 binary32 values from
// offset 0, with no header; their capacities are fixed per worker by the runtime (SandboxConfig)
// and the counts in use are sent in every frame. The parameter arena holds the model's parameters
// followed by its buffers (batch-norm statistics...); the gradient arena holds the gradients
// followed by the buffers after the training-mode forward. The input arena holds one batch:
// `count` samples back to back from offset 0, then (training only) `count` u16 labels from
// InputLabelOffset(count, sample_size).
//
// Frames are request/response: the runtime sends a request with a fresh sequence number, the
// worker answers with the matching response type (or kFailed) carrying the same sequence.
// Everything the worker sends is hostile input: the runtime copies it into its own memory first
// (a frame is received into a local buffer, an arena is memcpy'd out of the shared mapping) and
// only then checks it (ValidateWorkerFrame, ValidateFloatArena). A refusal is one reason of the
// closed WorkerRefusal list (worker_refusal.h), never a value the worker sent.
//
// Thread safety: pure functions.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "chiron/recipe_types.h"
#include "shared/base/bytes.h"
#include "shared/base/status.h"
#include "shared/worker_abi/worker_refusal.h"

namespace chiron {

// Descriptor numbers in the worker (see the table above).
inline constexpr int kWorkerControlFd = 3;
inline constexpr int kWorkerInputFd = 4;
inline constexpr int kWorkerParameterFd = 5;
inline constexpr int kWorkerGradientFd = 6;
inline constexpr int kWorkerOutputFd = 7;
inline constexpr int kWorkerRecipeFd = 8;
// The first descriptor number that is never a channel; everything from here up is closed.
inline constexpr int kWorkerFirstFreeFd = 9;

// Exit codes of the worker's own (trusted) main. Anything else is a recipe failure or an attack.
inline constexpr int kWorkerExitOk = 0;
inline constexpr int kWorkerExitLockdownFailed = 70;  // the sandbox could not be completed
inline constexpr int kWorkerExitOutOfMemory = 71;     // an allocation failed (RLIMIT_AS)
inline constexpr int kWorkerExitProtocolError = 72;   // the runtime's frame made no sense
inline constexpr int kWorkerExitRecipeFailed = 73;    // the recipe did not load or threw

inline constexpr uint32_t kWorkerFrameMagic = 0x46574843;  // "CHWF" in little-endian bytes
// 3: the recipe declarations carry the output policy (values 18 and 19).
inline constexpr uint16_t kWorkerProtocolVersion = 3;
inline constexpr size_t kWorkerFrameSize = 64;
inline constexpr size_t kWorkerFrameFieldCount = 6;

enum class WorkerFrameType : uint16_t {
  // worker → runtime, once, after the lockdown and before any recipe code is loaded; sequence 0.
  // field[0] = SandboxPolicyFingerprint() of the worker's compiled-in policy,
  // field[1] = Landlock ABI version the worker enforced.
  kHello = 1,
  // runtime → worker: compute gradients of the loss on the batch in the input arena at the
  // parameters and buffers in the parameter arena. field[0] = sample count, field[1] = parameter
  // count, field[2] = buffer count (both as announced in `configured`).
  kComputeGradients = 2,
  // worker → runtime: field[0] = parameter (gradient) count written, field[1] = loss as the bits
  // of an IEEE-754 binary64, field[2] = samples used, field[3] = buffer count written after the
  // gradients.
  kGradientsReady = 3,
  // runtime → worker: predict the samples in the input arena (no labels) at the parameters and
  // buffers in the parameter arena. field[0] = sample count, field[1] = output count
  // (sample count × output size).
  kPredict = 4,
  // worker → runtime: field[0] = output count written to the output arena.
  kOutputReady = 5,
  // worker → runtime, instead of a response: field[0] = WorkerFailure.
  kFailed = 6,
  // runtime → worker: exit 0 now.
  kShutdown = 7,
  // runtime → worker, once, right after the hello: the dataset schema and engine options
  // (EncodeConfigureFrame). Only now does the worker load the recipe.
  kConfigure = 8,
  // worker → runtime: field[0] = parameter count, field[1] = buffer count, field[2] = output
  // size per sample of the model the recipe built.
  kConfigured = 9,
  // runtime → worker: send page field[0] of the recipe's declarations.
  kDescribe = 10,
  // worker → runtime: field[0] = page, field[1..5] = declaration values
  // (PackRecipeDeclarations; untrusted, the runtime validates them before any use).
  kDescription = 11,
  // runtime → worker: write the recipe's freshly initialised parameters, then its buffers, into
  // the gradient arena. field[0] = parameter count, field[1] = buffer count.
  kInitialParameters = 12,
  // worker → runtime: field[0] = parameter count, field[1] = buffer count written.
  kParametersReady = 13,
};

// Fixed reasons: a worker cannot send free text (it would be a channel out of the sandbox).
enum class WorkerFailure : uint64_t {
  kRecipeError = 1,      // the recipe threw or returned an error
  kOutOfMemory = 2,      // an allocation failed
  kBadRequest = 3,       // the runtime's request made no sense to the worker
  kUnsupported = 4,      // the recipe cannot do what was asked (e.g. schema mismatch)
  kNumericalError = 5,   // the loss or the gradients were NaN or infinite
  // Loading the recipe (the configure request), so that registration can say why:
  kNoEntryPoint = 6,     // no chiron_recipe_v1 entry point (or a null or incomplete record)
  kRecipeAbi = 7,        // built for another recipe ABI, libtorch or C++ string ABI
  kNotLoadable = 8,      // dlopen refused the object (not a shared object for this machine, a
                         // library the worker does not have)
};
inline constexpr WorkerFailure kLastWorkerFailure = WorkerFailure::kNotLoadable;

// A fixed text per WorkerFailure (the runtime puts it after its own words: "configure refused:
// ..."). Unknown values have none (the frame validator refuses them first).
constexpr std::string_view WorkerFailureMessage(WorkerFailure reason) {
  switch (reason) {
    case WorkerFailure::kRecipeError: return "the recipe threw or broke its contract";
    case WorkerFailure::kOutOfMemory: return "an allocation failed";
    case WorkerFailure::kBadRequest: return "the worker did not understand the request";
    case WorkerFailure::kUnsupported: return "the recipe refused the dataset's schema";
    case WorkerFailure::kNumericalError: return "a loss or gradient was NaN or infinite";
    case WorkerFailure::kNoEntryPoint:
      return "the shared object exports no chiron_recipe_v1 entry point (build it with "
             "CHIRON_RECIPE(ClassName))";
    case WorkerFailure::kRecipeAbi:
      return "the recipe was built for another recipe ABI, libtorch or C++ ABI (rebuild it "
             "against this Chiron's include/chiron/recipe.h)";
    case WorkerFailure::kNotLoadable:
      return "the shared object cannot be loaded (not built for this machine, or it needs a "
             "library the worker does not have)";
  }
  return "unknown failure";
}

struct WorkerFrame {
  WorkerFrameType type = WorkerFrameType::kHello;
  uint64_t sequence = 0;
  std::array<uint64_t, kWorkerFrameFieldCount> fields{};
};

// 64 bytes: magic u32 | version u16 | type u16 | sequence u64 | fields u64[6], little endian.
std::array<uint8_t, kWorkerFrameSize> EncodeWorkerFrame(const WorkerFrame& frame);

// Structural decoding (size, magic, version, known type). Used by both sides; does not check
// whether the frame is the one expected. Refusals: kFrameSize, kFrameMagic, kProtocolVersion,
// kFrameType.
WorkerChecked<WorkerFrame> DecodeWorkerFrame(ByteSpan bytes);

// What the runtime expects as the answer to its request.
struct WorkerFrameExpectation {
  WorkerFrameType type = WorkerFrameType::kHello;  // kFailed is always accepted as well
  uint64_t sequence = 0;
  uint64_t count = 0;            // parameter count (kGradientsReady) or output count (kOutputReady)
  uint64_t sample_count = 0;     // kGradientsReady: samples requested
  uint64_t buffer_count = 0;     // kGradientsReady: buffers requested
  uint64_t policy_fingerprint = 0;  // kHello
  uint32_t min_landlock_abi = 1;    // kHello
  double max_abs_loss = 1e6;        // kGradientsReady
  uint64_t max_arena_count = 0;     // kConfigured: parameters + buffers must fit the arena
  uint64_t max_output_size = 0;     // kConfigured: outputs per sample in [1, max_output_size]
  uint64_t page = 0;                // kDescription
};

// Checks a frame the worker sent, given as a copy in runtime memory. Refusals (one fixed reason
// each, never the value seen): those of DecodeWorkerFrame, then kFrameType (not the expected
// response), kRequestType, kSequence, kUnusedField, kPolicyFingerprint and kLandlockAbi (hello),
// kCount, kLoss (non-finite or beyond max_abs_loss), kLayout and kOutputSize (configured), kPage,
// kFailureReason. A well-formed kFailed frame is returned as a value: the caller decides what it
// means.
WorkerChecked<WorkerFrame> ValidateWorkerFrame(ByteSpan copied,
                                               const WorkerFrameExpectation& expect);

// Checks `count` binary32 values at the start of `copied` (a copy of an arena): the copy must be
// large enough (kArenaSize), every value finite (kNotFinite; NaN/Inf would poison the trusted
// optimizer) and |value| <= max_abs (kOutOfRange; huge values would let a recipe encode data in
// the magnitude of a parameter update). Returns the values. Which value failed is not said.
WorkerChecked<std::vector<float>> ValidateFloatArena(ByteSpan copied, size_t count,
                                                     float max_abs);

std::string_view WorkerFrameTypeName(WorkerFrameType type);

// ---- The input arena -------------------------------------------------------------------------
// A batch of `count` samples of `sample_size` bytes each starts at offset 0; its u16 labels start
// at the next multiple of 64 bytes.
constexpr uint64_t InputLabelOffset(uint64_t count, uint64_t sample_size) {
  return (count * sample_size + 63) / 64 * 64;
}
// Bytes an input arena needs for batches of up to `max_batch` samples.
constexpr uint64_t InputArenaBytes(uint64_t max_batch, uint64_t sample_size) {
  return InputLabelOffset(max_batch, sample_size) + max_batch * sizeof(uint16_t);
}

// ---- The configure frame ---------------------------------------------------------------------
// What the worker needs to build the model. Limits: rank 1..4, every dimension in [1, 2^31),
// class_count in [1, 65536], threads in [1, 256], max_batch in [1, 65536].
struct WorkerJobConfig {
  DatasetSchema schema;   // the recipe's view of the dataset (shape, element type, classes)
  uint32_t threads = 1;   // libtorch intra-op threads
  uint64_t seed = 0;      // libtorch's generator, before the model is built
  uint32_t max_batch = 1; // largest batch the runtime will send
};
// Layout: field[0] = element type | rank << 8 | threads << 16, field[1] = class_count |
// max_batch << 32, field[2] = dim0 | dim1 << 32, field[3] = dim2 | dim3 << 32, field[4] = seed.
// InvalidArgument if `config` breaks a limit.
Result<WorkerFrame> EncodeConfigureFrame(const WorkerJobConfig& config, uint64_t sequence);
// The worker's side: InvalidArgument if the frame is not a configure frame within the limits.
Result<WorkerJobConfig> DecodeConfigureFrame(const WorkerFrame& frame);

// ---- Recipe declarations ---------------------------------------------------------------------
// The recipe's TrainingConfig, ResourceBudget and OutputPolicy travel as kDescriptionPages
// description frames of five u64 values each (doubles as their binary64 bits), in a fixed order
// (see docs/formats/worker-protocol.md). The output policy is value 18 (kind) and value 19
// (max_top_k | decimals << 32).
inline constexpr size_t kDescriptionPages = 4;
inline constexpr size_t kDescriptionValuesPerPage = 5;
using RecipeDeclarationValues = std::array<uint64_t, kDescriptionPages * kDescriptionValuesPerPage>;
RecipeDeclarationValues PackRecipeDeclarations(const TrainingConfig& training,
                                               const ResourceBudget& budget,
                                               const OutputPolicy& output = OutputPolicy{});
// Structural decoding only (enum values, integer widths, max_top_k <= kMaxOutputTopK, decimals
// <= kMaxOutputDecimals); refused with kDeclarations otherwise. The values remain untrusted: the
// runtime clamps and validates them before use. `output` may be null (not wanted).
WorkerCheck UnpackRecipeDeclarations(const RecipeDeclarationValues& values,
                                     TrainingConfig& training, ResourceBudget& budget,
                                     OutputPolicy* output = nullptr);

}  // namespace chiron
