// Recipes for scripted_worker (tests/workers/scripted_worker.cc): a torch-free stand-in for
// chiron-worker that speaks the whole worker protocol and trains a real model, driven by a small
// text script instead of a provider's shared object. Tests and benchmarks only.
//
// A scripted recipe is the recipe memfd's bytes as chirond stores them: the ELF magic (so
// registration, which checks `\x7fELF`, accepts it), the line "chiron-scripted-recipe v1", then
// one `key value...` per line. Blank lines and lines starting with '#' are ignored. The worker
// never dlopens it: it reads the file after its lockdown. An unknown key, a missing or malformed
// value, or a missing header makes the worker exit with kWorkerExitProtocolError (72) before it
// answers the configure frame (the runtime sees a recipe that did not load).
//
// The model (always): multinomial logistic regression over the sample's elements (u8 / 255, or
// the f32 values), weights [classes × elements] then biases [classes], no buffers; initial
// weights uniform in ±0.01 from the configure frame's seed, biases 0; real mean cross-entropy
// loss and gradients, logits as outputs; one buffer, the training samples seen (like batch norm's
// num_batches_tracked), so the runtime's buffer path is exercised. Deterministic and
// single-threaded.
//
// Keys (defaults in brackets). "Step" K counts compute-gradients requests from 0 in this worker.
//   epochs N                 declared epochs [1]
//   batch_size N             declared batch size [64]
//   learning_rate X          declared SGD learning rate [0.1]
//   momentum X               declared SGD momentum [0.9]
//   budget_memory BYTES      declared ResourceBudget.max_memory_size [0]
//   budget_seconds N         declared ResourceBudget.max_training_seconds [0]
//   output scores|label_only|top_k N
//                            declared output policy [scores, every class]
//   decimals N               declared output decimals [4]
//   buffers 0|1              the model's buffer count [1]
//   sleep_per_step_ms N      sleep N ms in every compute-gradients request [0]
//   allocate_mb N [K]        at step K [0] allocate N MiB, touch every page, keep it to the end
//   fail_at_step K KIND      at step K: crash (SIGSEGV), nan (a NaN gradient), hang (sleep until
//                            killed), exit CODE (_exit(CODE)), bad_frame (a frame with a wrong
//                            magic), refuse REASON (a failed frame with WorkerFailure REASON),
//                            syscall (socket(2), which the seccomp policy kills)
//   leak CHANNEL             modulate CHANNEL with the leak bit: bit 0 of the first byte of every
//                            sample this worker has been given so far (training batches and
//                            predict inputs), OR-ed. The runtime shuffles and splits the data, so
//                            "the first sample" of a dataset reaches the worker at a random
//                            moment; a dataset whose samples all have that bit clear except one
//                            makes the bit exactly that one sample's, known once every sample
//                            has been seen (one full batch plus the validation predictions).
//                            The bit is acted on at step L (leak_at_step):
//                              time     bit 1: sleep leak_sleep_ms at step L; bit 0: do not
//                              memory   bit 1: allocate and touch leak_mb MiB at step L (kept)
//                              state    bit 1: crash at step L; bit 0: succeed
//                              failure  bit 1: NaN gradient at step L; bit 0: crash at step L
//                              epochs   bit 1: crash at step L; bit 0: crash at step 2L
//   leak_at_step L           [1]
//   leak_sleep_ms N          [3000]
//   leak_mb N                [256]
//   secret_in_fields HEX64 [PLACE]
//                            put the 64-bit value (hex, up to 16 digits) where PLACE says, at the
//                            first moment PLACE exists (the configure answer, the first describe
//                            answer, step secret_at_step, the first predict). PLACE [sequence]:
//                              sequence       the gradients-ready sequence number
//                              count          the gradients-ready parameter count
//                              samples        the gradients-ready samples-used count
//                              buffers        the gradients-ready buffer count
//                              reserved       the unused fields [4] and [5] of gradients-ready
//                              loss           the loss bits of gradients-ready
//                              reason         a failed frame whose reason is the value
//                              nan_index      a NaN gradient at index value % parameter count
//                              output_nan_index  a NaN output at index value % output count
//                              output_count   the output-ready count
//                              configured     the three fields of the configured frame
//                              description    the five values of description page 0
//                              exit_code      _exit(value & 0xff) at step secret_at_step
//   secret_at_step K         [0]
//   remember_inputs          the worker keeps the first byte of the first sample of the first
//                            predict request it serves, and every later answer names class
//                            (that byte % classes) with logit 20, the others 0: a recipe that
//                            carries one caller's input into another caller's answers
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

namespace chiron::testing {

// The first bytes of every scripted recipe.
inline constexpr std::string_view kScriptedRecipeHeader =
    "\x7f"
    "ELF"
    "chiron-scripted-recipe v1\n";

// The recipe bytes for `script` (the key lines, separated by '\n').
inline std::string ScriptedRecipe(std::string_view script = {}) {
  std::string recipe(kScriptedRecipeHeader);
  recipe += script;
  if (!recipe.empty() && recipe.back() != '\n') recipe += '\n';
  return recipe;
}

// The recipe bytes for one key line per element, e.g. ScriptedRecipe({"epochs 3", "leak time"}).
inline std::string ScriptedRecipe(std::initializer_list<std::string_view> lines) {
  std::string script;
  for (std::string_view line : lines) {
    script += line;
    script += '\n';
  }
  return ScriptedRecipe(std::string_view(script));
}

}  // namespace chiron::testing
