// No value the worker chose reaches any text (issue 12): a hostile worker (hostile_worker.cc,
// REDTEAM_SECRET_ATTACK) encodes a known 64-bit secret into one field it controls per attack:
// sequence numbers, counts, frame types, versions, sizes, unused fields, the loss, the failure
// reason, the page, declarations, the position of a NaN, its exit code. Each attack runs through
// the runtime's real path (WorkerClient over the real SandboxLauncher, the job's
// SanitizeTrainingConfig), and every text the runtime produces (each Status message, the failure
// category's name) is searched for the secret in every encoding: decimal, hex in both cases with
// and without 0x, every 16- and 32-bit slice, the low byte (the exit code) and the NaN index.
//
// Torch-free: runs in the ASan tree too. Real processes, real kernel.
#include <gtest/gtest.h>

#include <cctype>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/train/worker_client.h"
#include "runtime/train/worker_settings.h"
#include "tests/redteam/redteam_abi.h"

namespace chiron::train {
namespace {

using redteam::kSecret;
using redteam::kSecretIndex;

const Bytes& RecipeBytes() {
  static const Bytes* const kBytes = [] {
    std::ifstream in(CHIRON_REDTEAM_RECIPE, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return new Bytes(ToBytes(s.str()));
  }();
  return *kBytes;
}

std::string Hex(uint64_t value, bool upper) {
  char text[32];
  std::snprintf(text, sizeof(text), upper ? "%llX" : "%llx",
                static_cast<unsigned long long>(value));
  return text;
}

// Every way the secret could come back as text.
std::vector<std::string> Needles() {
  std::vector<uint64_t> values = {kSecret, kSecret & 0xff, kSecretIndex};
  for (int shift = 0; shift < 64; shift += 16) values.push_back((kSecret >> shift) & 0xffff);
  for (int shift = 0; shift < 64; shift += 32) values.push_back((kSecret >> shift) & 0xffffffff);
  std::vector<std::string> needles;
  for (uint64_t value : values) {
    needles.push_back(std::to_string(value));
    for (bool upper : {false, true}) {
      needles.push_back(Hex(value, upper));
      needles.push_back("0x" + Hex(value, upper));
    }
  }
  // The secret as the loss (a double) and as a gradient (a float), however printed.
  const double loss = std::bit_cast<double>(kSecret);
  const float huge = static_cast<float>(kSecret);
  needles.push_back(std::to_string(loss).substr(0, 8));
  needles.push_back(std::to_string(huge).substr(0, 8));
  char text[64];
  std::snprintf(text, sizeof(text), "%g", loss);
  needles.push_back(text);
  std::snprintf(text, sizeof(text), "%g", static_cast<double>(huge));
  needles.push_back(text);
  return needles;
}

// A short needle ("52") counts only as a whole token; a long one anywhere.
bool Contains(const std::string& text, const std::string& needle) {
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    if (needle.size() >= 5) return true;
    const bool before = at > 0 && std::isalnum(static_cast<unsigned char>(text[at - 1]));
    const size_t end = at + needle.size();
    const bool after = end < text.size() && std::isalnum(static_cast<unsigned char>(text[end]));
    if (!before && !after) return true;
  }
  return false;
}

struct Outcome {
  std::vector<std::string> texts;  // every text the runtime produced for the attack
  std::vector<Status> errors;
  FailureCategory failure = FailureCategory::kNone;
};

// Drives one worker through every phase a job uses, collecting what the runtime says.
Outcome RunAttack(const std::string& attack) {
  Outcome outcome;
  auto note = [&](const Status& status) {
    if (status.ok()) return;
    outcome.errors.push_back(status);
    outcome.texts.push_back(status.ToString());
  };
  WorkerSettings settings;
  settings.worker_path = CHIRON_REDTEAM_WORKER;
  settings.threads = 1;
  settings.extra_environment = {std::string(redteam::kSecretAttackVariable) + "=" + attack};
  settings.limits.address_space_size = 1ull << 30;
  settings.limits.cpu_seconds = 20;
  settings.limits.max_threads = 16;
  settings.start_timeout = std::chrono::seconds(10);
  settings.request_timeout = std::chrono::seconds(10);
  settings.max_arena_count = 8192;
  settings.max_output_size = 16;
  WorkerClientOptions options;
  options.schema.input_shape = {4};
  options.schema.element_type = ElementType::kU8;
  options.schema.class_count = 10;
  options.max_batch = 64;

  FailureCategory failure = FailureCategory::kNone;
  auto client = WorkerClient::Start(RecipeBytes(), options, settings, &failure);
  outcome.failure = failure;
  if (!client.ok()) {
    note(client.status());
    outcome.texts.emplace_back(FailureCategoryName(failure));
    return outcome;
  }
  WorkerClient& worker = **client;
  TrainingConfig training;
  ResourceBudget budget;
  OutputPolicy output;
  note(worker.Describe(training, budget, output));
  if (outcome.errors.empty()) note(SanitizeTrainingConfig(training).status());
  std::vector<float> params, buffers;
  note(worker.InitialParameters(params, buffers, 1e6f));
  std::vector<float> grads;
  double loss = 0;
  note(worker.ComputeGradients(8, grads, buffers, &loss, 1e6f, 1e6f));
  note(worker.Predict(64, 1e6f).status());
  outcome.failure = worker.failure();
  outcome.texts.emplace_back(FailureCategoryName(worker.failure()));
  return outcome;
}

// The control: the same worker without an attack completes every phase, so each attack below
// fails because of its one planted field.
TEST(WorkerValuesRedTeamTest, TheBenignWorkerCompletesEveryPhase) {
  Outcome outcome = RunAttack("none");
  for (const Status& error : outcome.errors) ADD_FAILURE() << error.ToString();
  EXPECT_EQ(outcome.failure, FailureCategory::kNone);
}

// The needles do find the secret where it is (so a leak would be seen).
TEST(WorkerValuesRedTeamTest, TheNeedlesFindEveryEncoding) {
  const std::vector<std::string> needles = Needles();
  auto found = [&](const std::string& text) {
    for (const std::string& needle : needles) {
      if (Contains(text, needle)) return true;
    }
    return false;
  };
  EXPECT_TRUE(found("sequence " + std::to_string(kSecret) + ", expected 7"));
  EXPECT_TRUE(found("field 0x" + Hex(kSecret, true)));
  EXPECT_TRUE(found("count " + std::to_string(kSecret & 0xffff)));
  EXPECT_TRUE(found("arena value " + std::to_string(kSecretIndex) + " is NaN"));
  EXPECT_TRUE(found("worker failed (exit 52)"));
  EXPECT_TRUE(found("size " + std::to_string(kSecretIndex) + " bytes"));
  EXPECT_FALSE(found("worker frame refused: not exactly 64 bytes"));
  EXPECT_FALSE(found("worker failed (invalid output): sandbox: 1520 ms"));
}

struct Attack {
  const char* name;
  bool reason_known;     // false: an exit, or no single reason applies
  WorkerRefusal reason;  // the fixed reason some error must carry, when reason_known
};

TEST(WorkerValuesRedTeamTest, NoAttackGetsTheSecretIntoAnyText) {
  const Attack attacks[] = {
      {"hello-sequence", true, WorkerRefusal::kSequence},
      {"hello-padding", true, WorkerRefusal::kUnusedField},
      {"hello-fingerprint", true, WorkerRefusal::kPolicyFingerprint},
      {"hello-landlock", true, WorkerRefusal::kLandlockAbi},
      {"hello-type", true, WorkerRefusal::kFrameType},
      {"hello-version", true, WorkerRefusal::kProtocolVersion},
      {"hello-size", true, WorkerRefusal::kFrameSize},
      {"hello-exit", false, {}},
      {"configure-sequence", true, WorkerRefusal::kSequence},
      {"configure-layout", true, WorkerRefusal::kLayout},
      {"configure-outputs", true, WorkerRefusal::kOutputSize},
      {"configure-failure", true, WorkerRefusal::kFailureReason},
      {"configure-exit", false, {}},
      {"describe-page", true, WorkerRefusal::kPage},
      {"describe-epochs", true, WorkerRefusal::kDeclarations},
      {"describe-rate", true, WorkerRefusal::kHyperParameters},
      {"describe-padding", false, {}},  // every description field is used: a page refusal
      {"initial-count", true, WorkerRefusal::kCount},
      {"initial-nan", true, WorkerRefusal::kNotFinite},
      {"initial-huge", true, WorkerRefusal::kOutOfRange},
      {"gradients-sequence", true, WorkerRefusal::kSequence},
      {"gradients-count", true, WorkerRefusal::kCount},
      {"gradients-samples", true, WorkerRefusal::kCount},
      {"gradients-buffers", true, WorkerRefusal::kCount},
      {"gradients-padding", true, WorkerRefusal::kUnusedField},
      {"gradients-loss", true, WorkerRefusal::kLoss},
      {"gradients-nan", true, WorkerRefusal::kNotFinite},
      {"gradients-huge", true, WorkerRefusal::kOutOfRange},
      {"gradients-type", true, WorkerRefusal::kFrameType},
      {"gradients-request", true, WorkerRefusal::kRequestType},
      {"gradients-size", true, WorkerRefusal::kFrameSize},
      {"gradients-failure", true, WorkerRefusal::kFailureReason},
      {"gradients-exit", false, {}},
      {"predict-count", true, WorkerRefusal::kCount},
      {"predict-nan", true, WorkerRefusal::kNotFinite},
      {"predict-huge", true, WorkerRefusal::kOutOfRange},
      {"predict-sequence", true, WorkerRefusal::kSequence},
  };
  const std::vector<std::string> needles = Needles();
  for (const Attack& attack : attacks) {
    SCOPED_TRACE(attack.name);
    Outcome outcome = RunAttack(attack.name);
    // The attack was noticed: something failed, with a category (the hyper-parameters are
    // refused by the runtime after the worker answered well-formed frames).
    ASSERT_FALSE(outcome.errors.empty());
    if (std::string(attack.name) != "describe-rate") {
      EXPECT_NE(outcome.failure, FailureCategory::kNone);
    }
    if (attack.reason_known) {
      // The fixed text of the reason, with at most the runtime's own words around it.
      bool seen = false;
      for (const Status& error : outcome.errors) {
        seen |= error.message().find(WorkerRefusalMessage(attack.reason)) != std::string::npos;
      }
      EXPECT_TRUE(seen) << outcome.texts.front();
    }
    for (const std::string& text : outcome.texts) {
      for (const std::string& needle : needles) {
        EXPECT_FALSE(Contains(text, needle)) << "'" << needle << "' in: " << text;
      }
    }
  }
}

}  // namespace
}  // namespace chiron::train
