// The provider's channels attacked end to end (docs/provider-facts.md, DESIGN.md: "no value the
// worker chooses reaches any log, error, audit record, metric or response").
//
// A real chirond (sim platform) runs the torch-free scripted worker (tests/workers) as its
// sandboxed worker. The provider registers hostile recipes, each of which puts one known 64-bit
// secret into one field of the worker protocol it controls (sequence numbers, counts, reserved
// fields, the loss bits, a failure reason, the configure and describe answers, a NaN at an index
// derived from the secret, its exit code); the owner trains each. Then every text either side
// can obtain (every CLI output, errors and JSON included: train, job list, job facts, recipe
// list, model list, audit) and chirond's whole log are scanned for the secret in every encoding a
// message could carry: hex (any 8-digit window, either case), decimal (64-bit, signed, each 32-bit
// half), the bits as a double, the exit code, the NaN index.
#include <gtest/gtest.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "tests/integration/process.h"
#include "tests/integration/test_files.h"
#include "tests/workers/scripted_recipe.h"

namespace chiron::testing {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kSecret = 0x5EC2E7C0FFEE12A7ull;
// The places of scripted_recipe.h's secret_in_fields that a training job reaches.
const char* const kPlaces[] = {"sequence", "count",      "samples",     "buffers",
                               "reserved", "loss",       "reason",      "nan_index",
                               "configured", "description", "exit_code", "output_nan_index",
                               "output_count"};

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Every way a message could spell the secret.
std::vector<std::string> Encodings() {
  std::vector<std::string> out;
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016" PRIx64, kSecret);
  for (size_t at = 0; at + 8 <= 16; ++at) out.push_back(std::string(hex + at, 8));  // lower case
  out.push_back(std::to_string(kSecret));
  out.push_back(std::to_string(static_cast<int64_t>(kSecret)));
  for (uint32_t half : {static_cast<uint32_t>(kSecret >> 32), static_cast<uint32_t>(kSecret)}) {
    out.push_back(std::to_string(half));
    out.push_back(std::to_string(static_cast<int32_t>(half)));
  }
  double as_double;
  std::memcpy(&as_double, &kSecret, sizeof(as_double));
  char text[64];
  std::snprintf(text, sizeof(text), "%g", as_double);
  out.push_back(text);
  std::snprintf(text, sizeof(text), "%.3e", as_double);
  out.push_back(text);
  return out;
}

class ProviderChannelsTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir("chiron-provider-channels"); }
  void TearDown() override {
    if (HasFailure() && server_) std::cout << "chirond's log:\n" << ReadText(server_->log_path());
    server_.reset();
    fs::remove_all(dir_);
  }

  CommandResult Run(const std::string& program, const std::string& profile,
                    std::vector<std::string> args) {
    std::vector<std::string> argv = {BinaryPath(program), "--profile", dir_ + "/" + profile,
                                     "--server", server_->address()};
    argv.insert(argv.end(), args.begin(), args.end());
    CommandResult result = RunCommand(argv);
    texts_.push_back(program + " " + (args.empty() ? "" : args[0]) + ": " + result.out + "\n" +
                     result.err);
    return result;
  }

  std::string dir_;
  std::unique_ptr<ChirondProcess> server_;
  std::vector<std::string> texts_;  // everything either side was shown
};

TEST_F(ProviderChannelsTest, NoWorkerChosenValueReachesAnyTextEitherSideOrTheLogSees) {
  // A short time budget, so the provider's facts are revealed within the test.
  server_ = std::make_unique<ChirondProcess>(
      dir_, std::vector<std::string>{"--max-job-seconds", "3", "--training-slots", "2"},
      BinaryPath("scripted_worker"));
  ASSERT_GT(server_->port(), 0);
  for (auto [program, profile] : {std::pair<const char*, const char*>{"chiron", "alice"},
                                  {"chiron-operator", "acme"}}) {
    auto init = Run(program, profile, {"init", "--name", profile, "--policy",
                                       server_->policy_path()});
    ASSERT_EQ(init.exit_code, 0) << init.err;
  }
  std::string images = WriteGeneratedIdx(dir_, "digits", 300, 5);
  auto upload = Run("chiron", "alice", {"dataset", "upload", images, "--name", "digits"});
  ASSERT_EQ(upload.exit_code, 0) << upload.err;

  char secret_hex[17];
  std::snprintf(secret_hex, sizeof(secret_hex), "%016" PRIX64, kSecret);
  std::vector<std::string> job_ids;
  size_t refused_at_door = 0;
  for (const char* place : kPlaces) {
    std::string path = dir_ + "/" + place + ".so";
    std::ofstream(path, std::ios::binary)
        << ScriptedRecipe(std::string("epochs 1\nbatch_size 32\nsecret_in_fields ") + secret_hex +
                          " " + place);
    auto registered = Run("chiron-operator", "acme",
                          {"recipe", "register", path, "--name", std::string("s-") + place,
                           "--version", "1"});
    if (registered.exit_code != 0) {
      // Checked at the door: a recipe whose worker breaks the protocol while loading or
      // describing itself is refused before any data reaches it, with a fixed reason (its error
      // is scanned for the secret below like every other text).
      EXPECT_NE(registered.err.find("recipe refused at registration: "), std::string::npos)
          << place << ": " << registered.err;
      ++refused_at_door;
      continue;
    }
    auto train = Run("chiron", "alice",
                     {"train", "--dataset", "digits", "--recipe", std::string("s-") + place,
                      "--model", std::string("m-") + place, "--epochs", "1"});
    // Most places break the protocol (exit 6, the job failed); the secret must not show either way.
    EXPECT_TRUE(train.exit_code == 0 || train.exit_code == 6) << place << ": " << train.err;
  }
  // Past every job's reveal time (start + 3 s): the provider now sees outcomes too.
  std::this_thread::sleep_for(std::chrono::seconds(4));
  auto facts = Run("chiron-operator", "acme", {"job", "facts", "--json"});
  ASSERT_EQ(facts.exit_code, 0) << facts.err;
  // The attacks did run: most of them broke the protocol, and each job is now shown ended.
  size_t failed = 0;
  for (size_t at = facts.out.find("\"failed\""); at != std::string::npos;
       at = facts.out.find("\"failed\"", at + 1)) {
    ++failed;
  }
  EXPECT_GE(failed + refused_at_door, 8u) << facts.out;
  EXPECT_EQ(facts.out.find("\"running\""), std::string::npos) << facts.out;
  Run("chiron-operator", "acme", {"job", "facts"});
  Run("chiron-operator", "acme", {"recipe", "list", "--json"});
  Run("chiron-operator", "acme", {"audit", "--json"});
  Run("chiron", "alice", {"job", "list", "--json"});
  Run("chiron", "alice", {"job", "list"});
  Run("chiron", "alice", {"model", "list", "--json"});
  Run("chiron", "alice", {"audit", "--json"});
  ASSERT_EQ(server_->Terminate(), 0);
  const std::string log = ReadText(server_->log_path());
  size_t finished = 0;
  for (size_t at = log.find("job.finished"); at != std::string::npos;
       at = log.find("job.finished", at + 1)) {
    ++finished;
  }
  EXPECT_EQ(finished + refused_at_door, std::size(kPlaces)) << log;
  texts_.push_back("chirond log: " + log);

  std::vector<std::string> encodings = Encodings();
  const uint64_t parameters = 10 * 28 * 28 + 10;  // the scripted model on 28x28, 10 classes
  const std::string nan_index = std::to_string(kSecret % parameters);
  // The validation pass predicts the 30 held-out samples in one request: 30 × 10 outputs.
  const std::string output_index = std::to_string(kSecret % (30 * 10));
  const std::string exit_code = std::to_string(kSecret & 0xff);
  const std::regex index_near(
      "\\b(value|index|gradient|output|element|position|at)[ #:=]*(" + nan_index + "|" +
      output_index + ")\\b");
  const std::regex exit_near("\\b(exit|status|code)[a-z ]*[ #:=(]*" + exit_code + "\\b");
  for (const std::string& text : texts_) {
    const std::string lower = Lower(text);
    for (const std::string& encoding : encodings) {
      EXPECT_EQ(lower.find(Lower(encoding)), std::string::npos)
          << "the secret (as " << encoding << ") reached: " << text.substr(0, 4000);
    }
    EXPECT_FALSE(std::regex_search(lower, index_near))
        << "a worker-chosen index reached: " << text.substr(0, 4000);
    EXPECT_FALSE(std::regex_search(lower, exit_near))
        << "the worker's exit code reached: " << text.substr(0, 4000);
  }
}

}  // namespace
}  // namespace chiron::testing
