// Recipes checked at the door, through the real binaries: `chiron-operator recipe check` on the
// provider's machine (the local sandboxed chiron-worker, random data) and `recipe register` /
// `recipe list` against chirond with the real worker. Messages pinned here are the ones
// docs/guide-provider.md shows.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "tests/integration/process.h"

namespace chiron::testing {
namespace {

bool Has(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

CommandResult Check(std::vector<std::string> args) {
  std::vector<std::string> argv = {BinaryPath("chiron-operator"), "recipe", "check"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv);
}

TEST(RecipeCheckCliTest, LenetPassesWithItsParameterCountAndCard) {
  auto check = Check({CHIRON_RECIPE_LENET_PATH, "--shape", "1x28x28", "--classes", "10"});
  ASSERT_EQ(check.exit_code, 0) << check.out << check.err;
  EXPECT_TRUE(Has(check.out, "for 1x28x28 u8, 10 classes in a local sandboxed chiron-worker"))
      << check.out;
  // conv20 (520) + conv50 (25,050) + fc500 (400,500) + fc10 (5,010), slots padded to 64 bytes.
  EXPECT_TRUE(Has(check.out, "  parameters:       431152 floats")) << check.out;
  EXPECT_TRUE(Has(check.out, "  forward/backward: a random batch of 8, loss ")) << check.out;
  EXPECT_TRUE(Has(check.out, "every gradient finite")) << check.out;
  EXPECT_TRUE(Has(check.out, "  prediction:       10 outputs per sample")) << check.out;
  EXPECT_TRUE(Has(check.out,
                  "    1x28x28 u8, 10 classes\n"
                  "      training: sgd lr 0.01 momentum 0.9, batch 64, 5 epochs, "
                  "constant schedule\n"
                  "      output:   scores, every class, 4 decimals\n"))
      << check.out;
  EXPECT_TRUE(Has(check.out, "passed: registration would accept it for this schema")) << check.out;
}

TEST(RecipeCheckCliTest, BrokenRecipeShowsBuildModelsError) {
  auto check = Check({CHIRON_TEST_RECIPE_BUILD_REFUSED, "--shape", "1x28x28", "--classes", "10"});
  EXPECT_EQ(check.exit_code, 4) << check.out << check.err;
  EXPECT_TRUE(Has(check.out, "  refused: BuildModel returned null for this schema\n")) << check.out;
  EXPECT_TRUE(Has(check.out,
                  "  the loader said: recipe 'failing' cannot build a model for input "
                  "[1, 28, 28] with 10 classes: failing recipe: this model needs a 3x224x224 "
                  "image (test message)\n"))
      << check.out;
  EXPECT_TRUE(Has(check.out, "FAILED: the runtime would refuse this recipe for this schema"))
      << check.out;

  auto lenet_table =
      Check({CHIRON_RECIPE_LENET_PATH, "--shape", "20", "--classes", "2", "--type", "f32"});
  EXPECT_EQ(lenet_table.exit_code, 4);
  EXPECT_TRUE(Has(lenet_table.out, "lenet needs images shaped C×H×W or H×W")) << lenet_table.out;
}

TEST(RecipeCheckCliTest, NoEntryPointAndCrashAreNamed) {
  auto none = Check({CHIRON_TEST_RECIPE_NO_ENTRY, "--shape", "1x28x28", "--classes", "10"});
  EXPECT_EQ(none.exit_code, 4);
  EXPECT_TRUE(Has(none.out, "  refused: it exports no chiron_recipe_v1 entry point")) << none.out;
  auto crash = Check({CHIRON_TEST_RECIPE_CRASH_DESCRIBE, "--shape", "1x28x28", "--classes", "10"});
  EXPECT_EQ(crash.exit_code, 4);
  EXPECT_TRUE(Has(crash.out, "  refused: it crashed or threw while loading or describing itself"))
      << crash.out;
  EXPECT_TRUE(Has(crash.out, "the recipe crashed the loader (signal 6")) << crash.out;
}

TEST(RecipeCheckCliTest, UsageErrorsSayTheExpectedForm) {
  auto shape = Check({CHIRON_RECIPE_LENET_PATH, "--shape", "1x0", "--classes", "10"});
  EXPECT_EQ(shape.exit_code, 1);
  EXPECT_EQ(shape.err,
            "--shape: a shape is 1 to 4 dimensions separated by 'x', each in [1, 16777216], "
            "e.g. 1x28x28 or 20\n");
  auto classes = Check({CHIRON_RECIPE_LENET_PATH, "--shape", "1x28x28", "--classes", "0"});
  EXPECT_EQ(classes.exit_code, 1);
  EXPECT_EQ(classes.err, "--classes: give the number of classes, 1..65536\n");
  auto worker = Check({CHIRON_RECIPE_LENET_PATH, "--shape", "1x28x28", "--classes", "10",
                       "--worker", "/nonexistent/chiron-worker"});
  EXPECT_EQ(worker.exit_code, 4);
  EXPECT_TRUE(Has(worker.err,
                  "no chiron-worker at /nonexistent/chiron-worker: install it next "
                  "to chiron-operator or pass --worker PATH"))
      << worker.err;
  // Owners have no `recipe check`.
  EXPECT_EQ(RunCommand({BinaryPath("chiron"), "recipe", "check", CHIRON_RECIPE_LENET_PATH,
                        "--shape", "1x28x28", "--classes", "10"})
                .exit_code,
            1);
}

TEST(RecipeRegisterCliTest, RefusedAtTheDoorAndHonestCards) {
  const std::string dir = MakeTempDir("chiron-recipe-cli");
  auto server = std::make_unique<ChirondProcess>(dir, std::vector<std::string>{},
                                                 BinaryPath("chiron-worker"));
  ASSERT_GT(server->port(), 0);
  auto run = [&](const std::string& program, const std::string& profile,
                 std::vector<std::string> args) {
    std::vector<std::string> argv = {BinaryPath(program), "--profile", dir + "/" + profile,
                                     "--server", server->address()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  };
  auto init =
      run("chiron-operator", "acme", {"init", "--name", "acme", "--policy", server->policy_path()});
  ASSERT_EQ(init.exit_code, 0) << init.err;
  auto owner =
      run("chiron", "alice", {"init", "--name", "alice", "--policy", server->policy_path()});
  ASSERT_EQ(owner.exit_code, 0) << owner.err;

  auto none = run(
      "chiron-operator", "acme",
      {"recipe", "register", CHIRON_TEST_RECIPE_NO_ENTRY, "--name", "broken", "--version", "1"});
  EXPECT_NE(none.exit_code, 0);
  EXPECT_TRUE(Has(none.err,
                  "recipe refused at registration: it exports no chiron_recipe_v1 "
                  "entry point: end the recipe's source with CHIRON_RECIPE(ClassName)"))
      << none.err;
  auto crash = run("chiron-operator", "acme",
                   {"recipe", "register", CHIRON_TEST_RECIPE_CRASH_DESCRIBE, "--name", "crashy",
                    "--version", "1"});
  EXPECT_NE(crash.exit_code, 0);
  EXPECT_TRUE(Has(crash.err,
                  "recipe refused at registration: it crashed or threw while loading "
                  "or describing itself"))
      << crash.err;
  auto table = run("chiron-operator", "acme",
                   {"recipe", "register", CHIRON_RECIPE_LENET_PATH, "--name", "lenet-table",
                    "--version", "1", "--shape", "20", "--classes", "2", "--type", "f32"});
  EXPECT_NE(table.exit_code, 0);
  EXPECT_TRUE(Has(table.err,
                  "recipe refused at registration: it refused a schema it was "
                  "registered for"))
      << table.err;
  auto good = run("chiron-operator", "acme",
                  {"recipe", "register", CHIRON_RECIPE_LENET_PATH, "--name", "acme-lenet",
                   "--version", "1", "--shape", "1x28x28", "--classes", "10"});
  ASSERT_EQ(good.exit_code, 0) << good.err;
  EXPECT_TRUE(Has(good.out,
                  "  accepts:     the schemas it was registered for\n"
                  "    1x28x28 u8, 10 classes\n"))
      << good.out;

  auto list = run("chiron", "alice", {"recipe", "list"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_FALSE(Has(list.out, "broken")) << "nothing stored for a refused recipe";
  EXPECT_FALSE(Has(list.out, "crashy"));
  EXPECT_FALSE(Has(list.out, "any shape and type")) << list.out;
  // The built-in lenet's card: what it declares for each probe schema it takes.
  const size_t lenet = list.out.find("recipe lenet builtin (built in)");
  ASSERT_NE(lenet, std::string::npos) << list.out;
  const std::string card = list.out.substr(lenet, list.out.find("\n\n", lenet) - lenet);
  EXPECT_TRUE(Has(card, "  accepts:     these schemas of the probe set")) << card;
  EXPECT_TRUE(Has(card,
                  "    1x28x28 u8, 10 classes\n"
                  "      training: sgd lr 0.01 momentum 0.9, batch 64, 5 epochs, "
                  "constant schedule\n"
                  "      output:   scores, every class, 4 decimals\n"
                  "      budget:   2.15 GB memory, 3600 s\n"))
      << card;
  EXPECT_TRUE(Has(card, "    3x32x32 u8, 10 classes\n")) << card;
  EXPECT_FALSE(Has(card, "20 f32")) << "lenet refuses a table: " << card;

  // `recipe show` prints that one card; an unknown recipe says how to list them.
  auto show = run("chiron", "alice", {"recipe", "show", "acme-lenet"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_TRUE(Has(show.out, "recipe acme-lenet 1\n")) << show.out;
  EXPECT_FALSE(Has(show.out, "recipe lenet builtin")) << show.out;
  EXPECT_TRUE(Has(show.out, "      training: sgd lr 0.01 momentum 0.9, batch 64, 5 epochs"))
      << show.out;
  auto unknown = run("chiron", "alice", {"recipe", "show", "nope"});
  EXPECT_EQ(unknown.exit_code, 4);
  EXPECT_TRUE(Has(unknown.err,
                  "no recipe 'nope': list the registered ones with `chiron recipe "
                  "list`"))
      << unknown.err;
  server.reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace chiron::testing
