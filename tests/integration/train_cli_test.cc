// Training and predictions end to end through the real binaries over loopback: chirond (sim
// platform) with the sandboxed chiron-worker and the built-in recipes, `chiron` for two owners and
// `chiron-operator` for a provider.
//
// On a Fashion-MNIST subset (3000 training and 1000 test images cut from Debian's files): the
// owner trains the built-in "mlp" for 2 epochs with live progress and validation metrics, scores
// the model on the test set, and asks for predictions drawn in the terminal; the provider sees
// only the documented job facts; another owner cannot see, query or delete the job or model; the
// provider cannot predict or evaluate; a provider's recipe that tries to open a socket fails its
// job as "sandbox-violation" for both sides; a cancelled job ends cancelled; both audit chains
// verify and record training and prediction.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "tests/integration/process.h"
#include "tests/integration/test_files.h"

extern char** environ;

namespace chiron::testing {
namespace {

namespace fs = std::filesystem;

constexpr size_t kImageSize = 28 * 28;

std::string LabelsPath(const std::string& images_path) {
  std::string path = images_path;
  path.replace(path.find("-images-idx3"), 12, "-labels-idx1");
  return path;
}

size_t CountOf(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

nlohmann::json ParseJson(const CommandResult& result) {
  auto j = nlohmann::json::parse(result.out, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(j.is_discarded()) << "not JSON: " << result.out << "\n" << result.err;
  return j;
}

const nlohmann::json* FindBy(const nlohmann::json& list, const std::string& key,
                             const std::string& value) {
  if (!list.is_array()) return nullptr;
  for (const auto& item : list) {
    if (item.contains(key) && item[key] == value) return &item;
  }
  return nullptr;
}

class TrainCliTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir("chiron-train-cli"); }
  void TearDown() override {
    if (HasFailure() && server_) {
      std::cout << "chirond's log (" << server_->log_path() << "):\n"
                << ReadText(server_->log_path());
    }
    server_.reset();
    fs::remove_all(dir_);
  }

  void StartServer() {
    // chirond with the real chiron-worker and the built-in recipes (build/recipes).
    server_ = std::make_unique<ChirondProcess>(dir_, std::vector<std::string>{},
                                               BinaryPath("chiron-worker"));
    ASSERT_GT(server_->port(), 0);
  }

  // `program` (chiron or chiron-operator) with the profile `profile` and the server.
  CommandResult Run(const std::string& program, const std::string& profile,
                    std::vector<std::string> args) {
    std::vector<std::string> argv = {BinaryPath(program), "--profile", dir_ + "/" + profile,
                                     "--server", server_->address()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }
  CommandResult Owner(const std::string& profile, std::vector<std::string> args) {
    return Run("chiron", profile, std::move(args));
  }
  CommandResult Provider(std::vector<std::string> args) {
    return Run("chiron-operator", "acme", std::move(args));
  }

  void Init(const std::string& program, const std::string& profile, const std::string& role) {
    auto init = Run(program, profile,
                    {"init", "--name", profile, "--policy", server_->policy_path()});
    ASSERT_EQ(init.exit_code, 0) << init.err;
    ASSERT_NE(init.out.find("registered as " + role), std::string::npos) << init.out;
  }

  std::string dir_;
  std::unique_ptr<ChirondProcess> server_;
};

TEST_F(TrainCliTest, EveryCommandHasHelpWithAnExample) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> commands = {
      {"chiron", {"recipe", "list"}},
      {"chiron", {"train"}},
      {"chiron", {"job", "list"}},
      {"chiron", {"job", "watch"}},
      {"chiron", {"job", "cancel"}},
      {"chiron", {"model", "list"}},
      {"chiron", {"model", "delete"}},
      {"chiron", {"model", "evaluate"}},
      {"chiron", {"predict"}},
      {"chiron-operator", {"recipe", "list"}},
      {"chiron-operator", {"recipe", "register"}},
      {"chiron-operator", {"job", "facts"}},
  };
  for (const auto& [program, words] : commands) {
    std::vector<std::string> argv = {BinaryPath(program)};
    argv.insert(argv.end(), words.begin(), words.end());
    argv.push_back("--help");
    auto help = RunCommand(argv);
    std::string name = program + " " + words[0] + (words.size() > 1 ? " " + words[1] : "");
    EXPECT_EQ(help.exit_code, 0) << name << ": " << help.err;
    EXPECT_NE(help.out.find("Example"), std::string::npos) << name << ":\n" << help.out;
    EXPECT_NE(help.out.find(program + " " + words[0]), std::string::npos)
        << name << " example shows the command:\n" << help.out;
  }
  // Owners have no register/facts; providers no train/predict.
  EXPECT_EQ(RunCommand({BinaryPath("chiron"), "recipe", "register", "x.so"}).exit_code, 1);
  EXPECT_EQ(RunCommand({BinaryPath("chiron-operator"), "train"}).exit_code, 1);
  // Usage errors: exit 1 and a hint.
  auto both = RunCommand({BinaryPath("chiron"), "predict", "m", "--idx", "a", "--raw", "b"});
  EXPECT_EQ(both.exit_code, 1) << both.err;
  auto neither = RunCommand({BinaryPath("chiron"), "--profile", dir_ + "/none", "predict", "m"});
  EXPECT_EQ(neither.exit_code, 1) << neither.err;
  EXPECT_NE(neither.err.find("--idx"), std::string::npos) << neither.err;
}

TEST_F(TrainCliTest, TrainEvaluatePredictWithRolesFactsSandboxAndAudit) {
  ASSERT_TRUE(fs::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"))
      << "install Debian's dataset-fashion-mnist";
  std::string train_images = WriteFashionSubset(dir_, "train", "train", 3000);
  std::string test_images = WriteFashionSubset(dir_, "t10k", "test", 1000);
  ASSERT_FALSE(train_images.empty());
  ASSERT_FALSE(test_images.empty());
  StartServer();
  Init("chiron", "alice", "owner");
  Init("chiron", "bob", "owner");
  Init("chiron-operator", "acme", "provider");

  // Recipes: the built-ins, as cards, for both roles.
  auto recipes = Owner("alice", {"recipe", "list", "--json"});
  ASSERT_EQ(recipes.exit_code, 0) << recipes.err;
  auto cards = ParseJson(recipes);
  for (const char* name : {"mlp", "lenet", "resnet"}) {
    const auto* card = FindBy(cards, "name", name);
    ASSERT_NE(card, nullptr) << name << " in " << recipes.out;
    EXPECT_EQ((*card)["built_in"], true);
    EXPECT_EQ((*card)["recipe_id"].get<std::string>().size(), 64u);
  }
  std::string mlp_id = (*FindBy(cards, "name", "mlp"))["recipe_id"];
  auto provider_recipes = Provider({"recipe", "list"});
  ASSERT_EQ(provider_recipes.exit_code, 0) << provider_recipes.err;
  EXPECT_NE(provider_recipes.out.find(mlp_id), std::string::npos) << provider_recipes.out;

  // Upload the subsets (encrypted on the client).
  auto upload = Owner("alice", {"dataset", "upload", train_images, "--name", "fm-train"});
  ASSERT_EQ(upload.exit_code, 0) << upload.err;
  upload = Owner("alice", {"dataset", "upload", test_images, "--name", "fm-test"});
  ASSERT_EQ(upload.exit_code, 0) << upload.err;

  // A dataset that does not exist: refused with what to do next.
  auto missing = Owner("alice", {"train", "--dataset", "nope", "--recipe", "mlp", "--model", "x"});
  EXPECT_EQ(missing.exit_code, 4) << missing.err;
  EXPECT_NE(missing.err.find("dataset list"), std::string::npos) << missing.err;

  // Train the mlp for 2 epochs: progress lines (no bar without a terminal), then the metrics.
  auto train = Owner("alice", {"train", "--dataset", "fm-train", "--recipe", "mlp", "--model",
                               "fm-mlp", "--epochs", "2", "--seed", "7"});
  ASSERT_EQ(train.exit_code, 0) << train.out << train.err;
  EXPECT_NE(train.out.find("started job"), std::string::npos) << train.out;
  EXPECT_NE(train.out.find("epoch 1/2"), std::string::npos) << train.out;
  EXPECT_NE(train.out.find("epoch 2/2"), std::string::npos) << train.out;
  EXPECT_NE(train.out.find("validation accuracy:"), std::string::npos) << train.out;
  EXPECT_NE(train.out.find(", 2 epochs)"), std::string::npos) << train.out;
  EXPECT_NE(train.out.find("per-class accuracy"), std::string::npos) << train.out;
  EXPECT_NE(train.out.find("Trouser"), std::string::npos) << "class names: " << train.out;
  EXPECT_NE(train.out.find("confusion matrix"), std::string::npos) << train.out;
  EXPECT_NE(train.out.find("model evaluate fm-mlp"), std::string::npos) << "next step";
  EXPECT_EQ(train.err.find("ETA"), std::string::npos) << "no progress bar without a terminal";
  EXPECT_NE(train.err.find("sim platform"), std::string::npos) << train.err;

  auto jobs = Owner("alice", {"job", "list", "--json"});
  ASSERT_EQ(jobs.exit_code, 0) << jobs.err;
  auto job_list = ParseJson(jobs);
  const auto* job = FindBy(job_list, "model_name", "fm-mlp");
  ASSERT_NE(job, nullptr) << jobs.out;
  std::string job_id = (*job)["job_id"];
  EXPECT_EQ((*job)["state"], "succeeded");
  EXPECT_EQ((*job)["epochs_done"], 2);
  EXPECT_EQ((*job)["recipe_id"], mlp_id);
  ASSERT_EQ((*job)["history"].size(), 2u);
  double validation_accuracy = (*job)["validation_accuracy"];
  EXPECT_GT(validation_accuracy, 0.6);
  auto table = Owner("alice", {"job", "list"});
  EXPECT_NE(table.out.find(job_id), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("succeeded"), std::string::npos) << table.out;

  // Watching a finished job (by an id prefix) reports it at once.
  auto watched = Owner("alice", {"job", "watch", job_id.substr(0, 8), "--json"});
  ASSERT_EQ(watched.exit_code, 0) << watched.err;
  auto view = ParseJson(watched);
  EXPECT_EQ(view["job_id"], job_id);
  ASSERT_EQ(view["per_class_accuracy"].size(), 10u);
  ASSERT_EQ(view["confusion_matrix"].size(), 100u);
  uint64_t validated = 0;
  for (const auto& cell : view["confusion_matrix"]) validated += cell.get<uint64_t>();
  EXPECT_NEAR(static_cast<double>(validated), 300.0, 30.0) << "about 10% of 3000 held out";
  EXPECT_EQ(view["class_names"][9], "Ankle boot");

  auto models = Owner("alice", {"model", "list", "--json"});
  ASSERT_EQ(models.exit_code, 0) << models.err;
  auto model_list = ParseJson(models);
  const auto* model = FindBy(model_list, "name", "fm-mlp");
  ASSERT_NE(model, nullptr) << models.out;
  EXPECT_EQ((*model)["job_id"], job_id);
  EXPECT_EQ((*model)["class_names"][1], "Trouser");
  EXPECT_GT((*model)["validation_accuracy"].get<double>(), 0.6);

  // Evaluate on the held-out test set, inside the runtime.
  auto evaluate = Owner("alice", {"model", "evaluate", "fm-mlp", "--dataset", "fm-test", "--json"});
  ASSERT_EQ(evaluate.exit_code, 0) << evaluate.err;
  auto report = ParseJson(evaluate);
  EXPECT_EQ(report["sample_count"], 1000);
  EXPECT_GT(report["accuracy"].get<double>(), 0.6) << evaluate.out;
  EXPECT_EQ(report["per_class_accuracy"].size(), 10u);
  auto evaluate_text = Owner("alice", {"model", "evaluate", "fm-mlp", "--dataset", "fm-test"});
  ASSERT_EQ(evaluate_text.exit_code, 0) << evaluate_text.err;
  EXPECT_NE(evaluate_text.out.find("accuracy: 0."), std::string::npos) << evaluate_text.out;
  EXPECT_NE(evaluate_text.out.find("Sneaker"), std::string::npos) << evaluate_text.out;

  // The owner's report of the job with the model scored on the test set: the recipe's card (name
  // and version), the test accuracy Evaluate gives, what a prediction returns, no grants yet.
  const std::string report_path = dir_ + "/fm-mlp-report.html";
  auto written = Owner("alice", {"report", job_id, "--html", report_path, "--test-set", "fm-test"});
  ASSERT_EQ(written.exit_code, 0) << written.err;
  const std::string html = ReadText(report_path);
  EXPECT_NE(html.find("<span id=\"recipe-name\">mlp builtin</span>"), std::string::npos);
  char test_accuracy[32];
  std::snprintf(test_accuracy, sizeof test_accuracy, "%.1f%%",
                report["accuracy"].get<double>() * 100);
  EXPECT_NE(html.find(std::string("<strong id=\"test-accuracy\">") + test_accuracy + "</strong>"),
            std::string::npos)
      << test_accuracy;
  EXPECT_NE(html.find("<td>fm-test</td>"), std::string::npos);
  EXPECT_NE(html.find("id=\"effective-policy\""), std::string::npos);
  EXPECT_NE(html.find("id=\"grants-none\""), std::string::npos);

  // Predict 8 test images: each drawn (14 lines of 28 columns between bars) beside its classes.
  auto predict = Owner("alice", {"predict", "fm-mlp", "--idx", test_images, "--labels",
                                 LabelsPath(test_images), "--count", "8", "--top-k", "3",
                                 "--image-style", "ascii"});
  ASSERT_EQ(predict.exit_code, 0) << predict.err;
  EXPECT_EQ(CountOf(predict.out, "predicted: "), 8u) << predict.out;
  EXPECT_EQ(CountOf(predict.out, "true: "), 8u) << predict.out;
  EXPECT_EQ(CountOf(predict.out, "\u2713") + CountOf(predict.out, "\u2717"), 8u) << predict.out;
  EXPECT_NE(predict.out.find("of 8 correct"), std::string::npos) << predict.out;
  size_t image_lines = 0;
  std::istringstream lines(predict.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.size() >= 30 && line[0] == '|' && line[29] == '|') ++image_lines;
  }
  EXPECT_EQ(image_lines, 8u * 14u) << predict.out;
  std::cout << predict.out.substr(0, predict.out.find("\n\n") + 1);  // one image, for the log

  auto predict_json = Owner("alice", {"predict", "fm-mlp", "--idx", test_images, "--labels",
                                      LabelsPath(test_images), "--count", "8", "--offset", "8",
                                      "--top-k", "3", "--json"});
  ASSERT_EQ(predict_json.exit_code, 0) << predict_json.err;
  auto answers = ParseJson(predict_json);
  ASSERT_EQ(answers["predictions"].size(), 8u);
  int correct = 0;
  for (const auto& p : answers["predictions"]) {
    ASSERT_EQ(p["classes"].size(), 3u);
    ASSERT_EQ(p["class_names"].size(), 3u);
    auto probabilities = p["probabilities"].get<std::vector<double>>();
    EXPECT_GE(probabilities[0], probabilities[1]);
    EXPECT_GE(probabilities[1], probabilities[2]);
    correct += p["correct"].get<bool>() ? 1 : 0;
  }
  EXPECT_EQ(answers["predictions"][0]["index"], 8);
  EXPECT_GE(correct, 4) << predict_json.out;
  EXPECT_GE(answers["queries_used"].get<uint64_t>(), 16u);

  // Raw samples in the model's schema (two images, back to back).
  {
    std::ifstream in(test_images, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(dir_ + "/two.raw", std::ios::binary) << bytes.substr(16, 2 * kImageSize);
  }
  auto raw = Owner("alice", {"predict", "fm-mlp", "--raw", dir_ + "/two.raw", "--json"});
  ASSERT_EQ(raw.exit_code, 0) << raw.err;
  EXPECT_EQ(ParseJson(raw)["predictions"].size(), 2u);
  std::ofstream(dir_ + "/odd.raw", std::ios::binary) << std::string(1000, 'x');
  auto odd = Owner("alice", {"predict", "fm-mlp", "--raw", dir_ + "/odd.raw"});
  EXPECT_EQ(odd.exit_code, 4);
  EXPECT_NE(odd.err.find("whole number of samples"), std::string::npos) << odd.err;
  auto past = Owner("alice", {"predict", "fm-mlp", "--idx", test_images, "--offset", "5000"});
  EXPECT_EQ(past.exit_code, 4);
  EXPECT_NE(past.err.find("past the end"), std::string::npos) << past.err;

  // The provider's view. A provider sees the jobs of its own recipes only: none of the built-in
  // recipe's. It registers a recipe (the mlp's code, built with chiron_recipe()), alice trains
  // with it by its id, and the provider sees exactly the JobFacts fields of that job, no metric.
  auto none_yet = Provider({"job", "facts", "--json"});
  ASSERT_EQ(none_yet.exit_code, 0) << none_yet.err;
  EXPECT_EQ(FindBy(ParseJson(none_yet), "job_id", job_id), nullptr) << none_yet.out;
  auto acme_register = Provider({"recipe", "register", CHIRON_TEST_MLP_RECIPE, "--name",
                                 "acme-mlp", "--version", "2.1", "--json-unused-guard"});
  EXPECT_EQ(acme_register.exit_code, 1) << "unknown option is a usage error";
  acme_register = Provider({"recipe", "register", CHIRON_TEST_MLP_RECIPE, "--name", "acme-mlp",
                            "--version", "2.1"});
  ASSERT_EQ(acme_register.exit_code, 0) << acme_register.err;
  auto acme_cards = ParseJson(Owner("alice", {"recipe", "list", "--json"}));
  const auto* acme_card = FindBy(acme_cards, "name", "acme-mlp");
  ASSERT_NE(acme_card, nullptr);
  std::string acme_id = (*acme_card)["recipe_id"];
  EXPECT_NE(acme_id, mlp_id) << "the id commits to the provider, name and version too";
  auto acme_train = Owner("alice", {"train", "--dataset", "fm-train", "--recipe", acme_id,
                                    "--model", "fm-acme", "--epochs", "1", "--json"});
  ASSERT_EQ(acme_train.exit_code, 0) << acme_train.err;
  std::string acme_job = ParseJson(acme_train)["job_id"];
  auto facts = Provider({"job", "facts", "--json"});
  ASSERT_EQ(facts.exit_code, 0) << facts.err;
  auto fact_list = ParseJson(facts);
  EXPECT_EQ(FindBy(fact_list, "job_id", job_id), nullptr) << "not the built-in recipe's job";
  const auto* fact = FindBy(fact_list, "job_id", acme_job);
  ASSERT_NE(fact, nullptr) << facts.out;
  std::set<std::string> keys;
  for (auto it = fact->begin(); it != fact->end(); ++it) keys.insert(it.key());
  EXPECT_EQ(keys, (std::set<std::string>{"job_id", "recipe_id", "state", "failure", "epochs_done",
                                         "elapsed_minutes", "peak_memory_bucket_log2"}));
  // The job has ended, but its provider sees it running, with no outcome, until its time budget
  // (chirond's default, hours) has run out: when it really ended is not the provider's to know.
  EXPECT_EQ((*fact)["state"], "running");
  EXPECT_EQ((*fact)["failure"], "none");
  EXPECT_EQ((*fact)["epochs_done"], 0);
  EXPECT_EQ((*fact)["peak_memory_bucket_log2"], 0);
  EXPECT_EQ((*fact)["recipe_id"], acme_id);
  for (const char* word : {"accuracy", "loss", "fm-acme", "fm-train", "Trouser", "confusion"}) {
    EXPECT_EQ(facts.out.find(word), std::string::npos) << word << " in " << facts.out;
  }
  auto facts_table = Provider({"job", "facts"});
  ASSERT_EQ(facts_table.exit_code, 0) << facts_table.err;
  EXPECT_NE(facts_table.out.find(acme_job), std::string::npos) << facts_table.out;
  EXPECT_NE(facts_table.out.find("running"), std::string::npos) << facts_table.out;
  EXPECT_EQ(facts_table.out.find("accuracy"), std::string::npos) << facts_table.out;

  // The provider cannot predict, evaluate or read the owner's jobs: refused (exit 5).
  auto provider_predict = Run("chiron", "acme", {"predict", "fm-mlp", "--idx", test_images});
  EXPECT_EQ(provider_predict.exit_code, 5) << provider_predict.err;
  auto provider_evaluate =
      Run("chiron", "acme", {"model", "evaluate", "fm-mlp", "--dataset", "fm-test"});
  EXPECT_EQ(provider_evaluate.exit_code, 5) << provider_evaluate.err;
  auto provider_jobs = Run("chiron", "acme", {"job", "list"});
  EXPECT_EQ(provider_jobs.exit_code, 5) << provider_jobs.err;
  // ... and an owner cannot register recipes or read provider facts.
  auto owner_facts = Run("chiron-operator", "alice", {"job", "facts"});
  EXPECT_EQ(owner_facts.exit_code, 5) << owner_facts.err;

  // Another owner sees nothing of alice's job or model and cannot touch them.
  auto bob_jobs = Owner("bob", {"job", "list", "--json"});
  ASSERT_EQ(bob_jobs.exit_code, 0) << bob_jobs.err;
  EXPECT_EQ(ParseJson(bob_jobs).size(), 0u) << bob_jobs.out;
  auto bob_watch = Owner("bob", {"job", "watch", job_id});
  EXPECT_EQ(bob_watch.exit_code, 4) << bob_watch.err;
  EXPECT_NE(bob_watch.err.find("no job"), std::string::npos) << bob_watch.err;
  auto bob_cancel = Owner("bob", {"job", "cancel", job_id});
  EXPECT_EQ(bob_cancel.exit_code, 4) << bob_cancel.err;
  auto bob_models = Owner("bob", {"model", "list", "--json"});
  ASSERT_EQ(bob_models.exit_code, 0) << bob_models.err;
  EXPECT_EQ(FindBy(ParseJson(bob_models), "name", "fm-mlp"), nullptr) << bob_models.out;
  auto bob_predict = Owner("bob", {"predict", "fm-mlp", "--idx", test_images});
  EXPECT_EQ(bob_predict.exit_code, 4) << bob_predict.err;
  EXPECT_NE(bob_predict.err.find("model list"), std::string::npos) << bob_predict.err;
  auto bob_delete = Owner("bob", {"model", "delete", "fm-mlp"});
  EXPECT_EQ(bob_delete.exit_code, 4) << bob_delete.err;
  EXPECT_NE(FindBy(ParseJson(Owner("alice", {"model", "list", "--json"})), "name", "fm-mlp"),
            nullptr)
      << "alice's model survives bob's delete";

  // A provider's recipe that tries to open a socket: registered, then killed by the sandbox.
  auto owner_register = Run("chiron-operator", "alice",
                            {"recipe", "register", CHIRON_TEST_EXFILTRATING_RECIPE, "--name",
                             "owner-recipe", "--version", "1"});
  EXPECT_EQ(owner_register.exit_code, 5) << owner_register.err;
  auto registered = Provider({"recipe", "register", CHIRON_TEST_EXFILTRATING_RECIPE, "--name",
                              "leaky", "--version", "1.0", "--description",
                              "small MLP for 28x28 grayscale"});
  ASSERT_EQ(registered.exit_code, 0) << registered.err;
  EXPECT_NE(registered.out.find("recipe leaky 1.0"), std::string::npos) << registered.out;
  auto cards_after = ParseJson(Owner("alice", {"recipe", "list", "--json"}));
  const auto* leaky_card = FindBy(cards_after, "name", "leaky");
  ASSERT_NE(leaky_card, nullptr);
  EXPECT_EQ((*leaky_card)["built_in"], false);
  EXPECT_EQ((*leaky_card)["description"], "small MLP for 28x28 grayscale");
  auto leaky = Owner("alice", {"train", "--dataset", "fm-train", "--recipe", "leaky", "--model",
                               "leaky-model", "--epochs", "1"});
  EXPECT_EQ(leaky.exit_code, 6) << leaky.out << leaky.err;
  EXPECT_NE(leaky.out.find(", 1 epoch, "), std::string::npos) << "one epoch, not 1 epochs";
  EXPECT_NE(leaky.err.find("sandbox-violation"), std::string::npos) << leaky.err;
  EXPECT_NE(leaky.err.find("forbidden system call"), std::string::npos) << leaky.err;
  auto jobs_after = ParseJson(Owner("alice", {"job", "list", "--json"}));
  const auto* leaky_job = FindBy(jobs_after, "model_name", "leaky-model");
  ASSERT_NE(leaky_job, nullptr);
  EXPECT_EQ((*leaky_job)["state"], "failed");
  EXPECT_EQ((*leaky_job)["failure"], "sandbox-violation");
  // Its provider sees the outcome only when the recipe's 5 s time budget has run out, however
  // early the job failed: until then it is running, with no failure shown.
  const std::string leaky_id = (*leaky_job)["job_id"].get<std::string>();
  auto facts_after = ParseJson(Provider({"job", "facts", "--json"}));
  const auto* leaky_fact = FindBy(facts_after, "job_id", leaky_id);
  ASSERT_NE(leaky_fact, nullptr);
  nlohmann::json revealed = *leaky_fact;
  if (revealed["state"] == "running") {
    EXPECT_EQ(revealed["failure"], "none");
  }
  for (int i = 0; i < 100 && revealed["state"] == "running"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const nlohmann::json list = ParseJson(Provider({"job", "facts", "--json"}));
    const auto* fact = FindBy(list, "job_id", leaky_id);
    ASSERT_NE(fact, nullptr);
    revealed = *fact;
  }
  EXPECT_EQ(revealed["state"], "failed");
  EXPECT_EQ(revealed["failure"], "sandbox-violation");
  EXPECT_EQ(FindBy(ParseJson(Owner("alice", {"model", "list", "--json"})), "name",
                   "leaky-model"),
            nullptr)
      << "a failed job leaves no model";

  // Cancel: a long job started detached, cancelled, then watched to its end.
  auto detached = Owner("alice", {"train", "--dataset", "fm-train", "--recipe", "mlp", "--model",
                                  "long", "--epochs", "200", "--detach", "--json"});
  ASSERT_EQ(detached.exit_code, 0) << detached.err;
  std::string long_id = ParseJson(detached)["job_id"];
  auto cancel = Owner("alice", {"job", "cancel", long_id});
  ASSERT_EQ(cancel.exit_code, 0) << cancel.err;
  auto cancelled = Owner("alice", {"job", "watch", long_id});
  EXPECT_EQ(cancelled.exit_code, 6) << cancelled.out << cancelled.err;
  EXPECT_NE(cancelled.out.find("cancelled"), std::string::npos) << cancelled.out;

  // Model delete, then it is gone.
  auto deleted = Owner("alice", {"model", "delete", "fm-mlp"});
  ASSERT_EQ(deleted.exit_code, 0) << deleted.err;
  EXPECT_EQ(FindBy(ParseJson(Owner("alice", {"model", "list", "--json"})), "name", "fm-mlp"),
            nullptr);

  // Both audit chains verify and record training and predictions.
  auto audit = Owner("alice", {"audit", "--verify", "--json"});
  ASSERT_EQ(audit.exit_code, 0) << audit.err;
  auto records = ParseJson(audit);
  EXPECT_EQ(records["verified"], true);
  bool trained = false, predicted = false, evaluated = false;
  for (const auto& record : records["records"]) {
    std::string event = record["event"];
    trained |= event.find("train") != std::string::npos;
    predicted |= event.find("predict") != std::string::npos;
    evaluated |= event.find("evaluat") != std::string::npos;
  }
  EXPECT_TRUE(trained) << audit.out;
  EXPECT_TRUE(predicted) << audit.out;
  EXPECT_TRUE(evaluated) << audit.out;
  auto provider_audit = Provider({"audit", "--verify"});
  EXPECT_EQ(provider_audit.exit_code, 0) << provider_audit.err;
  EXPECT_NE(provider_audit.out.find("recipe"), std::string::npos) << provider_audit.out;
  EXPECT_NE(provider_audit.out.find("audit chain verified"), std::string::npos);

  EXPECT_EQ(server_->Terminate(), 0);
}

}  // namespace
}  // namespace chiron::testing
