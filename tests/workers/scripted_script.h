// The parsed script of a scripted recipe (keys and meanings: tests/workers/scripted_recipe.h).
// Used by scripted_worker after its lockdown; pure functions, no system calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "chiron/recipe_types.h"
#include "shared/base/status.h"

namespace chiron::scripted {

inline constexpr size_t kMaxScriptSize = 64 << 10;

enum class FailKind { kCrash, kNan, kHang, kExit, kBadFrame, kRefuse, kSyscall };
enum class LeakChannel { kNone, kTime, kMemory, kState, kFailure, kEpochs };
enum class SecretPlace {
  kNone,
  kSequence,
  kCount,
  kSamples,
  kBuffers,
  kReserved,
  kLoss,
  kReason,
  kNanIndex,
  kOutputNanIndex,
  kOutputCount,
  kConfigured,
  kDescription,
  kExitCode,
};

struct Script {
  TrainingConfig training;  // SGD; epochs, batch size, learning rate, momentum from the script
  ResourceBudget budget;
  OutputPolicy output;
  uint64_t buffers = 1;
  uint64_t sleep_per_step_ms = 0;
  uint64_t allocate_mb = 0;
  uint64_t allocate_at_step = 0;
  bool fail = false;
  uint64_t fail_step = 0;
  FailKind fail_kind = FailKind::kCrash;
  int fail_code = 0;  // kExit: the exit code; kRefuse: the WorkerFailure reason
  LeakChannel leak = LeakChannel::kNone;
  uint64_t leak_at_step = 1;
  uint64_t leak_sleep_ms = 3000;
  uint64_t leak_mb = 256;
  SecretPlace secret_place = SecretPlace::kNone;
  uint64_t secret = 0;
  uint64_t secret_at_step = 0;
  bool remember_inputs = false;
};

// Parses the recipe bytes (header included). InvalidArgument for a missing header, an unknown
// key, or a missing, malformed or out-of-range value.
Result<Script> ParseScript(std::string_view recipe);

}  // namespace chiron::scripted
