#include "tests/workers/scripted_script.h"

#include <charconv>
#include <cmath>
#include <string>
#include <vector>

#include "tests/workers/scripted_recipe.h"

namespace chiron::scripted {
namespace {

std::vector<std::string_view> Words(std::string_view line) {
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    const size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') ++i;
    if (i > start) words.push_back(line.substr(start, i - start));
  }
  return words;
}

bool ParseU64(std::string_view text, uint64_t* out, int base = 10) {
  if (text.empty()) return false;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *out, base);
  return error == std::errc() && end == text.data() + text.size();
}

bool ParseDouble(std::string_view text, double* out) {
  if (text.empty()) return false;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return error == std::errc() && end == text.data() + text.size() && std::isfinite(*out);
}

Status Bad(std::string_view key) {
  return InvalidArgumentError("scripted recipe: bad or missing value for '" + std::string(key) +
                              "'");
}

Result<SecretPlace> ParsePlace(std::string_view word) {
  static constexpr std::pair<std::string_view, SecretPlace> kPlaces[] = {
      {"sequence", SecretPlace::kSequence},
      {"count", SecretPlace::kCount},
      {"samples", SecretPlace::kSamples},
      {"buffers", SecretPlace::kBuffers},
      {"reserved", SecretPlace::kReserved},
      {"loss", SecretPlace::kLoss},
      {"reason", SecretPlace::kReason},
      {"nan_index", SecretPlace::kNanIndex},
      {"output_nan_index", SecretPlace::kOutputNanIndex},
      {"output_count", SecretPlace::kOutputCount},
      {"configured", SecretPlace::kConfigured},
      {"description", SecretPlace::kDescription},
      {"exit_code", SecretPlace::kExitCode},
  };
  for (const auto& [name, place] : kPlaces) {
    if (word == name) return place;
  }
  return InvalidArgumentError("scripted recipe: unknown secret place");
}

Result<LeakChannel> ParseLeak(std::string_view word) {
  if (word == "time") return LeakChannel::kTime;
  if (word == "memory") return LeakChannel::kMemory;
  if (word == "state") return LeakChannel::kState;
  if (word == "failure") return LeakChannel::kFailure;
  if (word == "epochs") return LeakChannel::kEpochs;
  return InvalidArgumentError("scripted recipe: unknown leak channel");
}

// One `key value...` line into `script`.
Status ParseLine(const std::vector<std::string_view>& w, Script& script) {
  const std::string_view key = w[0];
  const size_t values = w.size() - 1;
  uint64_t n = 0;
  double x = 0;
  auto one_u64 = [&](uint64_t* out, uint64_t max) -> Status {
    if (values != 1 || !ParseU64(w[1], &n) || n > max) return Bad(key);
    *out = n;
    return Status::Ok();
  };
  auto one_u32 = [&](uint32_t* out, uint64_t max) -> Status {
    uint64_t v = 0;
    CHIRON_RETURN_IF_ERROR(one_u64(&v, max));
    *out = static_cast<uint32_t>(v);
    return Status::Ok();
  };
  if (key == "epochs") return one_u32(&script.training.epochs, 1u << 20);
  if (key == "batch_size") return one_u32(&script.training.batch_size, 1u << 20);
  if (key == "learning_rate" || key == "momentum") {
    if (values != 1 || !ParseDouble(w[1], &x)) return Bad(key);
    (key == "momentum" ? script.training.optimizer.momentum
                       : script.training.optimizer.learning_rate) = x;
    return Status::Ok();
  }
  if (key == "budget_memory") return one_u64(&script.budget.max_memory_size, UINT64_MAX);
  if (key == "budget_seconds") return one_u64(&script.budget.max_training_seconds, UINT64_MAX);
  if (key == "output") {
    if (values == 1 && w[1] == "scores") script.output.kind = OutputKind::kScores;
    else if (values == 1 && w[1] == "label_only") script.output.kind = OutputKind::kLabelOnly;
    else if (values == 2 && w[1] == "top_k" && ParseU64(w[2], &n) && n <= kMaxOutputTopK) {
      script.output.kind = OutputKind::kScores;
      script.output.max_top_k = static_cast<uint32_t>(n);
    } else {
      return Bad(key);
    }
    return Status::Ok();
  }
  if (key == "buffers") return one_u64(&script.buffers, 1);
  if (key == "decimals") return one_u32(&script.output.decimals, kMaxOutputDecimals);
  if (key == "sleep_per_step_ms") return one_u64(&script.sleep_per_step_ms, 3600000);
  if (key == "remember_inputs") {
    if (values != 0) return Bad(key);
    script.remember_inputs = true;
    return Status::Ok();
  }
  if (key == "allocate_mb") {
    if (values < 1 || values > 2 || !ParseU64(w[1], &script.allocate_mb) ||
        script.allocate_mb > (1u << 20) ||
        (values == 2 && !ParseU64(w[2], &script.allocate_at_step))) {
      return Bad(key);
    }
    return Status::Ok();
  }
  if (key == "fail_at_step") {
    if (values < 2 || !ParseU64(w[1], &script.fail_step)) return Bad(key);
    script.fail = true;
    const std::string_view kind = w[2];
    if (values == 2 && kind == "crash") script.fail_kind = FailKind::kCrash;
    else if (values == 2 && kind == "nan") script.fail_kind = FailKind::kNan;
    else if (values == 2 && kind == "hang") script.fail_kind = FailKind::kHang;
    else if (values == 2 && kind == "bad_frame") script.fail_kind = FailKind::kBadFrame;
    else if (values == 2 && kind == "syscall") script.fail_kind = FailKind::kSyscall;
    else if (values == 3 && (kind == "exit" || kind == "refuse") && ParseU64(w[3], &n) &&
             n <= 255) {
      script.fail_kind = kind == "exit" ? FailKind::kExit : FailKind::kRefuse;
      script.fail_code = static_cast<int>(n);
    } else {
      return Bad(key);
    }
    return Status::Ok();
  }
  if (key == "leak") {
    if (values != 1) return Bad(key);
    CHIRON_ASSIGN_OR_RETURN(script.leak, ParseLeak(w[1]));
    return Status::Ok();
  }
  if (key == "leak_at_step") {
    CHIRON_RETURN_IF_ERROR(one_u64(&script.leak_at_step, 1u << 30));
    return script.leak_at_step == 0 ? Bad(key) : Status::Ok();  // step 0 has seen one batch only
  }
  if (key == "leak_sleep_ms") return one_u64(&script.leak_sleep_ms, 3600000);
  if (key == "leak_mb") return one_u64(&script.leak_mb, 1u << 20);
  if (key == "secret_in_fields") {
    if (values < 1 || values > 2 || w[1].size() > 16 || !ParseU64(w[1], &script.secret, 16)) {
      return Bad(key);
    }
    script.secret_place = SecretPlace::kSequence;
    if (values == 2) {
      CHIRON_ASSIGN_OR_RETURN(script.secret_place, ParsePlace(w[2]));
    }
    return Status::Ok();
  }
  if (key == "secret_at_step") return one_u64(&script.secret_at_step, 1u << 30);
  return InvalidArgumentError("scripted recipe: unknown key '" + std::string(key) + "'");
}

}  // namespace

Result<Script> ParseScript(std::string_view recipe) {
  if (recipe.size() > kMaxScriptSize) return InvalidArgumentError("scripted recipe: too large");
  if (recipe.substr(0, testing::kScriptedRecipeHeader.size()) != testing::kScriptedRecipeHeader) {
    return InvalidArgumentError("scripted recipe: missing header");
  }
  Script script;
  script.training.optimizer.kind = OptimizerKind::kSgd;
  script.training.optimizer.learning_rate = 0.1;
  script.training.optimizer.momentum = 0.9;
  script.training.epochs = 1;
  script.training.batch_size = 64;
  std::string_view rest = recipe.substr(testing::kScriptedRecipeHeader.size());
  while (!rest.empty()) {
    const size_t end = rest.find('\n');
    const std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    const std::vector<std::string_view> words = Words(line);
    if (words.empty() || words[0][0] == '#') continue;
    CHIRON_RETURN_IF_ERROR(ParseLine(words, script));
  }
  return script;
}

}  // namespace chiron::scripted
