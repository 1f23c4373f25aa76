// `chiron recipe list` (owners and providers: the public cards), `chiron-operator recipe
// register FILE.so` (providers: upload a recipe built against include/chiron/recipe.h) and
// `chiron-operator recipe check FILE.so` (providers: the door's check on their own machine,
// recipe_check.cc).
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "chiron/v1/recipes.grpc.pb.h"
#include "client/cli/cli_common.h"
#include "client/cli/recipe_card.h"
#include "runtime/jobs/recipe_probe.h"
#include "shared/base/file_system.h"

namespace chiron::client {
namespace {

constexpr size_t kMaxRecipeSize = size_t{64} << 20;  // RegisterRecipeRequest's limit

struct RegisterArgs {
  std::string path;
  std::string name;
  std::string version;
  std::string description;
  SchemaArgs schema;  // optional: the schema the recipe is for
};

// `recipe list` (which empty) or `recipe show WHICH` (the card with that id, or every card of
// that name: each registration is its own recipe).
int RunList(const GlobalOptions& global, bool json, const std::string& which = "") {
  auto session = OpenSession(global);
  if (!session.ok()) return Fail(session.status());
  auto connection = ConnectSession(*session);
  if (!connection.ok()) return FailConnect(connection.status());
  v1::ListRecipesResponse response;
  auto context = (*connection)->NewContext();
  Status status = FromGrpc(v1::Recipes::NewStub((*connection)->channel())
                               ->List(context.get(), v1::ListRecipesRequest(), &response),
                           "Recipes.List");
  if (!status.ok()) return Fail(status);
  if (!which.empty()) {
    v1::ListRecipesResponse chosen;
    for (const v1::RecipeCard& card : response.recipes()) {
      if (card.recipe_id() == which || card.name() == which) *chosen.add_recipes() = card;
    }
    if (chosen.recipes().empty()) {
      return Fail(NotFoundError("no recipe '" + which + "': list the registered ones with `" +
                                global.program + " recipe list`"));
    }
    response = std::move(chosen);
  }
  if (json) {
    nlohmann::json list = nlohmann::json::array();
    for (const v1::RecipeCard& card : response.recipes()) list.push_back(CardJson(card));
    std::cout << list.dump(2) << "\n";
    return kExitOk;
  }
  if (response.recipes().empty()) {
    std::printf("no recipes on this server; a provider registers one with `chiron-operator "
                "recipe register FILE.so --name N --version V`\n");
    return kExitOk;
  }
  for (int i = 0; i < response.recipes_size(); ++i) {
    if (i > 0) std::printf("\n");
    PrintCard(response.recipes(i));
  }
  if (!global.operator_mode) {
    std::printf("\ntrain with one: `%s train --dataset D --recipe NAME --model M`\n",
                global.program.c_str());
  }
  return kExitOk;
}

int RunRegister(const GlobalOptions& global, const RegisterArgs& args) {
  auto code = FileSystem::Default()->ReadFile(args.path, kMaxRecipeSize);
  if (!code.ok()) {
    return Fail(code.status().WithContext("reading the recipe (at most 64 MiB)"));
  }
  static constexpr uint8_t kElfMagic[4] = {0x7f, 'E', 'L', 'F'};
  if (code->size() < 4 || !std::equal(kElfMagic, kElfMagic + 4, code->begin())) {
    return Fail(InvalidArgumentError(
        args.path + " is not an ELF shared object; build the recipe with the chiron_recipe() "
                    "CMake helper (docs/guide-provider.md)"));
  }
  auto session = OpenSession(global);
  if (!session.ok()) return Fail(session.status());
  // The runtime loads the recipe in a sandbox to read its declarations before answering.
  auto connection = ConnectSession(*session, std::chrono::seconds(120));
  if (!connection.ok()) return FailConnect(connection.status());
  v1::RegisterRecipeRequest request;
  if (!args.schema.shape.empty()) {
    auto schema = args.schema.ToSchema();
    if (!schema.ok()) return Fail(schema.status());
    v1::RecipeSchema* wanted = request.add_schemas();
    for (uint32_t d : schema->shape) wanted->add_input_shape(d);
    wanted->set_input_type(args.schema.type);
    wanted->set_class_count(static_cast<uint32_t>(schema->class_count()));
  } else if (args.schema.classes != 0 || args.schema.type != "u8") {
    return Fail(InvalidArgumentError("--classes and --type go with --shape"));
  }
  request.set_name(args.name);
  request.set_version(args.version);
  request.set_description(args.description);
  request.set_shared_object(std::string(code->begin(), code->end()));
  v1::RecipeCard card;
  auto context = (*connection)->NewContext();
  Status status = FromGrpc(v1::Recipes::NewStub((*connection)->channel())
                               ->Register(context.get(), request, &card),
                           "Recipes.Register");
  if (!status.ok()) {
    int exit_code = Fail(status);
    if (status.code() == StatusCode::kPermissionDenied) {
      std::fprintf(stderr,
                   "%s: only providers register recipes: create a provider profile with "
                   "`chiron-operator init`\n",
                   global.program.c_str());
    }
    return exit_code;
  }
  std::printf("registered (%s, sent over attested TLS to the runtime only)\n",
              FormatBytes(code->size()).c_str());
  PrintCard(card);
  std::printf("owners can train with it: `chiron train --recipe %s ...` (or by its id); "
              "`%s job facts` shows the jobs that use it\n",
              card.name().c_str(), global.program.c_str());
  return kExitOk;
}

}  // namespace

void AddRecipeCommands(CLI::App& app, GlobalOptions& global, CommandAction& action) {
  auto* recipe_cmd = app.add_subcommand(
      "recipe", global.operator_mode ? "Register your recipes and list the server's recipes"
                                     : "List the recipes (training code) you can train with");
  recipe_cmd->require_subcommand(1);
  recipe_cmd->footer(global.operator_mode
                         ? "Examples:\n  chiron-operator recipe register build/my_cnn.so --name "
                           "my-cnn --version 1.0\n  chiron-operator recipe list"
                         : "Example:\n  chiron recipe list --json");

  auto json = std::make_shared<bool>(false);
  auto* list_cmd = recipe_cmd->add_subcommand(
      "list", "List the recipes' public cards (name, version, id, input, budget)");
  list_cmd->footer(
      "A card is all anyone sees of a recipe: its code and model structure stay inside the "
      "runtime. The id is a SHA-256 commitment over the recipe's code, provider, name and "
      "version.\n\nExample:\n  " +
      global.program + " recipe list --json");
  list_cmd->add_flag("--json", *json, "print as JSON");
  list_cmd->callback([&global, &action, json] {
    action = [&global, json] { return RunList(global, *json); };
  });

  auto which = std::make_shared<std::string>();
  auto show_json = std::make_shared<bool>(false);
  auto* show_cmd = recipe_cmd->add_subcommand(
      "show", "Show one recipe's card: the schemas it accepts, hyper-parameters, policy, budget");
  show_cmd->footer("NAME shows every registration of that name; an id shows exactly one.\n\n"
                   "Example:\n  " +
                   global.program + " recipe show lenet");
  show_cmd->add_option("RECIPE", *which, "the recipe's name or id")->required();
  show_cmd->add_flag("--json", *show_json, "print as JSON (a list of cards)");
  show_cmd->callback([&global, &action, which, show_json] {
    action = [&global, which, show_json] { return RunList(global, *show_json, *which); };
  });

  if (!global.operator_mode) return;
  auto args = std::make_shared<RegisterArgs>();
  auto* register_cmd = recipe_cmd->add_subcommand(
      "register", "Upload a recipe shared object (built with chiron_recipe()) to the runtime");
  register_cmd->footer(
      "The runtime loads the recipe in its sandbox, reads its declarations and publishes its "
      "card. Writing and building a recipe: docs/recipes.md and docs/guide-provider.md.\n\n"
      "Example:\n  chiron-operator recipe register build/my_cnn.so --name my-cnn --version 1.0 "
      "--description \"small CNN for 28x28 grayscale\"");
  register_cmd->add_option("FILE", args->path, "the recipe's .so")->required();
  register_cmd->add_option("--name", args->name, "recipe name, [A-Za-z0-9._-], 1..64 characters")
      ->required();
  register_cmd->add_option("--version", args->version, "recipe version, e.g. 1.0")->required();
  register_cmd->add_option("--description", args->description,
                           "one-line summary for owners (printable, at most 200 characters)");
  register_cmd->add_option("--shape", args->schema.shape,
                           "the schema the recipe is for, e.g. 1x28x28 (default: the probe set "
                           "of docs/recipes.md)");
  register_cmd->add_option("--classes", args->schema.classes, "classes of that schema");
  register_cmd->add_option("--type", args->schema.type, "element type of that schema: u8 or f32")
      ->check(CLI::IsMember({"u8", "f32"}));
  register_cmd->callback([&global, &action, args] {
    action = [&global, args] { return RunRegister(global, *args); };
  });
  AddRecipeCheckCommand(*recipe_cmd, global, action);
}

}  // namespace chiron::client
