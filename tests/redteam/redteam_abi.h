// The interface between the red-team worker (hostile_worker.cc, trusted-side code paths of a
// worker) and the hostile recipe (hostile_recipe.cc, the provider's code under test). Tests only.
#pragma once

#include <cstddef>
#include <cstdint>

#include "shared/worker_abi/worker_protocol.h"

namespace chiron::redteam {

// How an attack ended, as the attacking code saw it.
enum AttackOutcome : int {
  kBlocked = 1,    // the kernel refused (errno says how)
  kSucceeded = 2,  // the attack did what it wanted: a sandbox hole
  kNotRun = 3,
};

struct AttackReport {
  int outcome = kNotRun;
  int error = 0;              // errno when blocked
  int leaked_size = 0;        // bytes of something read from outside, when succeeded
  uint8_t leaked[64] = {};
  bool answered = false;      // the attack already answered the runtime's request itself
  bool out_of_memory = false; // the worker should exit as out of memory
};

struct AttackContext {
  const char* attack = "";
  const char* arg = "";
  WorkerFrame request;        // the runtime's request being answered
  const uint8_t* dataset = nullptr;
  size_t dataset_size = 0;
  size_t parameter_arena_size = 0;
  float* gradients = nullptr;
  float* output = nullptr;
};

// Exported by the hostile recipe (extern "C", name kRunSymbol).
using RunAttackFunction = void (*)(const AttackContext* context, AttackReport* report);
inline constexpr const char* kRunSymbol = "chiron_redteam_run";

// Output arena layout of a report: [0] outcome, [1] errno, [2] leaked_size, [3...] leaked bytes.
inline constexpr size_t kReportFloats = 3 + 64;

// Secret-value attacks (worker_values_redteam_test.cc): the hostile worker runs the attack named
// by this environment variable (set through WorkerSettings::extra_environment), speaking the
// whole protocol benignly except for one field, into which it encodes kSecret (or a slice of
// it). The test checks that the secret comes back in no message.
inline constexpr const char* kSecretAttackVariable = "REDTEAM_SECRET_ATTACK";
inline constexpr uint64_t kSecret = 0x5EC2E7C0FFEE1234ULL;
// The layout the secret-attack worker reports when it answers configure benignly.
inline constexpr uint64_t kSecretAttackParameters = 8000;
inline constexpr uint64_t kSecretAttackOutputs = 10;
// The index of the first NaN a NaN attack plants: the secret's low 12 bits (0x234 = 564), low
// enough for every arena the test makes.
inline constexpr uint64_t kSecretIndex = kSecret & 0xfff;

}  // namespace chiron::redteam
