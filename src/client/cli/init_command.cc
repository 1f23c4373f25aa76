// `chiron init`, `chiron register`, `chiron whoami`: the principal's identity.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "chiron/v1/principals.grpc.pb.h"
#include "client/cli/cli_common.h"

namespace chiron::client {
namespace {

struct InitArgs {
  std::string role;
  std::string name;
  bool force = false;
  bool offline = false;
};

v1::Role ToProtoRole(ProfileRole role) {
  return role == ProfileRole::kOwner ? v1::ROLE_OWNER : v1::ROLE_PROVIDER;
}

std::string_view RoleName(v1::Role role) {
  switch (role) {
    case v1::ROLE_OWNER: return "owner";
    case v1::ROLE_PROVIDER: return "provider";
    default: return "unspecified";
  }
}

// Registers the session's key with its role. Returns the server's view of the principal.
Result<v1::Principal> RegisterWithServer(const Session& session) {
  CHIRON_ASSIGN_OR_RETURN(auto connection, ConnectSession(session));
  v1::RegisterPrincipalRequest request;
  request.set_role(ToProtoRole(session.profile.settings().role));
  request.set_display_name(session.profile.settings().display_name);
  v1::Principal principal;
  auto context = connection->NewContext();
  CHIRON_RETURN_IF_ERROR(FromGrpc(
      v1::Principals::NewStub(connection->channel())->Register(context.get(), request, &principal),
      "Principals.Register"));
  if (principal.id() != session.profile.principal_id()) {
    return DataLossError("the server registered principal " + principal.id() + " but this key is " +
                         session.profile.principal_id());
  }
  return principal;
}

int RunInit(const GlobalOptions& global, const InitArgs& args) {
  ProfileSettings settings;
  std::string role = args.role.empty() ? (global.operator_mode ? "provider" : "owner") : args.role;
  auto parsed = ParseProfileRole(role);
  if (!parsed.ok()) return Fail(parsed.status());
  settings.role = *parsed;
  settings.display_name = args.name;
  if (settings.display_name.empty()) {
    const char* user = std::getenv("USER");
    settings.display_name = user != nullptr && *user != '\0' ? user : role;
  }
  settings.server = global.server;
  if (!global.policy.empty()) {
    std::error_code ec;
    auto absolute = std::filesystem::absolute(global.policy, ec);
    settings.policy_path = ec ? global.policy : absolute.string();
    auto verifier = LoadVerifier(settings.policy_path);  // refuse a broken policy now
    if (!verifier.ok()) return Fail(verifier.status());
  }
  std::string dir = global.ProfileDir();
  auto profile = Profile::Create(dir, settings, args.force);
  if (!profile.ok()) return Fail(profile.status());
  std::printf("created %s profile in %s\nprincipal: %s\n", role.c_str(), dir.c_str(),
              profile->principal_id().c_str());
  if (args.offline || settings.policy_path.empty() || settings.server.empty()) {
    std::printf("not registered yet: run `%s register --server HOST:PORT --policy FILE`\n",
                global.program.c_str());
    return kExitOk;
  }
  Session session{std::move(*profile), settings.server, settings.policy_path};
  auto principal = RegisterWithServer(session);
  if (!principal.ok()) {
    if (principal.status().code() == StatusCode::kUnavailable ||
        principal.status().code() == StatusCode::kDeadlineExceeded) {
      std::fprintf(stderr,
                   "%s: %s is not reachable (%s); the profile is ready, run `%s register` "
                   "once the server is up\n",
                   ProgramName(), settings.server.c_str(), principal.status().message().c_str(),
                   global.program.c_str());
      return kExitOk;
    }
    return FailConnect(principal.status());
  }
  std::printf("registered as %s with %s\n", std::string(RoleName(principal->role())).c_str(),
              settings.server.c_str());
  return kExitOk;
}

int RunRegister(const GlobalOptions& global) {
  auto session = OpenSession(global);
  if (!session.ok()) return Fail(session.status());
  auto principal = RegisterWithServer(*session);
  if (!principal.ok()) return FailConnect(principal.status());
  std::printf("registered %s as %s with %s\n", principal->id().c_str(),
              std::string(RoleName(principal->role())).c_str(), session->server.c_str());
  // Remember the server and policy that just worked, so later commands need neither flag.
  ProfileSettings& settings = session->profile.mutable_settings();
  std::error_code ec;
  auto absolute = std::filesystem::absolute(session->policy_path, ec);
  std::string policy = ec ? session->policy_path : absolute.string();
  if (settings.server != session->server || settings.policy_path != policy) {
    settings.server = session->server;
    settings.policy_path = policy;
    if (Status saved = session->profile.SaveSettings(); !saved.ok()) return Fail(saved);
    std::printf("saved server %s and policy %s in the profile %s\n", settings.server.c_str(),
                settings.policy_path.c_str(), session->profile.dir().c_str());
  }
  return kExitOk;
}

int RunWhoAmI(const GlobalOptions& global, bool json) {
  auto session = OpenSession(global);
  if (!session.ok()) return Fail(session.status());
  auto connection = ConnectSession(*session);
  if (!connection.ok()) return FailConnect(connection.status());
  v1::Principal principal;
  auto context = (*connection)->NewContext();
  Status status = FromGrpc(v1::Principals::NewStub((*connection)->channel())
                               ->WhoAmI(context.get(), v1::WhoAmIRequest(), &principal),
                           "Principals.WhoAmI");
  if (!status.ok()) return Fail(status);
  if (json) {
    nlohmann::json j = {{"id", principal.id()},
                        {"role", std::string(RoleName(principal.role()))},
                        {"name", principal.display_name()},
                        {"created_unix", principal.created_unix()},
                        {"server", session->server},
                        {"profile", session->profile.dir()}};
    std::cout << j.dump(2) << "\n";
  } else {
    std::printf("principal: %s\nrole: %s\nname: %s\nserver: %s\nprofile: %s\n",
                principal.id().c_str(), std::string(RoleName(principal.role())).c_str(),
                principal.display_name().c_str(), session->server.c_str(),
                session->profile.dir().c_str());
  }
  return kExitOk;
}

}  // namespace

void AddInitCommands(CLI::App& app, GlobalOptions& global, CommandAction& action) {
  auto init = std::make_shared<InitArgs>();
  auto* init_cmd = app.add_subcommand(
      "init", "Create your principal key and profile, and register with the server");
  init_cmd->footer(
      "The profile (key 0600, role, default server and policy) lives in --profile DIR, "
      "$CHIRON_HOME or ~/.config/chiron (chiron-operator: $CHIRON_OPERATOR_HOME or "
      "~/.config/chiron-operator).\n\nExamples:\n  chiron init --name alice --server "
      "127.0.0.1:7443 --policy policy.json\n  chiron-operator init --name acme-ml --server "
      "127.0.0.1:7443 --policy policy.json");
  init_cmd
      ->add_option("--role", init->role,
                   global.operator_mode ? "owner or provider (default: provider)"
                                        : "owner or provider (default: owner)")
      ->check(CLI::IsMember({"owner", "provider"}));
  init_cmd->add_option("--name", init->name,
                       "display name (printable, at most 64 characters; default $USER)");
  init_cmd->add_flag("--force", init->force,
                     "replace an existing profile's key (the old principal becomes unreachable)");
  init_cmd->add_flag("--offline", init->offline, "create the profile without registering");
  init_cmd->callback(
      [&global, &action, init] { action = [&global, init] { return RunInit(global, *init); }; });

  auto* register_cmd = app.add_subcommand(
      "register",
      "Register this profile's key and role with the server (idempotent); saves the server and "
      "policy used in the profile");
  register_cmd->footer("Example:\n  " + global.program +
                       " register --server 127.0.0.1:7443 --policy policy.json");
  register_cmd->callback(
      [&global, &action] { action = [&global] { return RunRegister(global); }; });

  auto json = std::make_shared<bool>(false);
  auto* whoami_cmd =
      app.add_subcommand("whoami", "Show this profile's principal as the server knows it");
  whoami_cmd->footer("Example:\n  " + global.program + " whoami --json");
  whoami_cmd->add_flag("--json", *json, "print as JSON");
  whoami_cmd->callback(
      [&global, &action, json] { action = [&global, json] { return RunWhoAmI(global, *json); }; });
}

}  // namespace chiron::client
