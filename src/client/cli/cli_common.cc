#include "client/cli/cli_common.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>

#include "client/evidence_file.h"
#include "shared/attest/policy.h"
#include "shared/base/edit_distance.h"

namespace chiron::client {

std::string GlobalOptions::ProfileDir() const {
  return profile_dir.empty() ? Profile::DefaultDirectory(operator_mode) : profile_dir;
}

namespace {
std::string& MutableProgramName() {
  static std::string* const name = new std::string("chiron");
  return *name;
}
}  // namespace

const char* ProgramName() { return MutableProgramName().c_str(); }
void SetProgramName(const std::string& name) { MutableProgramName() = name; }

int Fail(const Status& status) {
  std::fprintf(stderr, "%s: %s\n", ProgramName(), status.message().c_str());
  switch (status.code()) {
    case StatusCode::kUnauthenticated:
    case StatusCode::kDataLoss: return kExitVerificationFailed;
    case StatusCode::kPermissionDenied: return kExitRefused;
    case StatusCode::kUnavailable:
    case StatusCode::kDeadlineExceeded: return kExitUnreachable;
    default: return kExitError;
  }
}

int FailVerification(const Status& status) {
  std::fprintf(stderr, "%s: verification FAILED: %s\n", ProgramName(), status.message().c_str());
  return kExitVerificationFailed;
}

int FailConnect(const Status& status) {
  if (status.code() == StatusCode::kUnauthenticated) return FailVerification(status);
  return Fail(status);
}

Result<std::shared_ptr<const attest::Verifier>> LoadVerifier(const std::string& policy_path) {
  auto policy = attest::Policy::LoadFile(policy_path);
  if (!policy.ok() && policy.status().code() == StatusCode::kNotFound) {
    return NotFoundError(
        "the attestation policy file " + policy_path +
        " does not exist: pass --policy FILE with the policy your server's operator published "
        "(for a sim server, the file `chirond --write-sim-policy` wrote); `register --policy "
        "FILE` saves it in the profile (docs/formats/policy.md)");
  }
  if (!policy.ok()) return policy.status();
  auto verifier = attest::Verifier::Create(std::move(*policy), LivePlatformVerifiers());
  if (!verifier.ok()) return verifier.status().WithContext("policy " + policy_path);
  return std::shared_ptr<const attest::Verifier>(
      std::make_shared<attest::Verifier>(std::move(*verifier)));
}

Result<Session> OpenSession(const GlobalOptions& global) {
  CHIRON_ASSIGN_OR_RETURN(Profile profile, Profile::Load(global.ProfileDir()));
  std::string server = !global.server.empty() ? global.server : profile.settings().server;
  std::string policy = !global.policy.empty() ? global.policy : profile.settings().policy_path;
  if (server.empty()) server = "127.0.0.1:7443";
  CHIRON_RETURN_IF_ERROR(CheckServerAddress(
      server, !global.server.empty()
                  ? "--server"
                  : "the profile's server (" + global.ProfileDir() + "/profile.json)"));
  if (policy.empty()) {
    return InvalidArgumentError(
        "no attestation policy: pass --policy FILE, or save one in the profile with `" +
        global.program +
        " register --policy FILE` (the policy comes from the server's operator; for a sim "
        "server, the file `chirond --write-sim-policy` wrote; docs/formats/policy.md)");
  }
  return Session{std::move(profile), std::move(server), std::move(policy)};
}

Result<std::unique_ptr<Connection>> ConnectSession(const Session& session,
                                                   std::chrono::milliseconds timeout) {
  CHIRON_ASSIGN_OR_RETURN(auto verifier, LoadVerifier(session.policy_path));
  CHIRON_ASSIGN_OR_RETURN(auto identity, session.profile.TlsIdentity());
  ConnectOptions options;
  options.server = session.server;
  options.verifier = std::move(verifier);
  options.identity = std::move(identity);
  options.timeout = timeout;
  CHIRON_ASSIGN_OR_RETURN(std::unique_ptr<Connection> connection, Connection::Connect(options));
  if (connection->server_insecure()) WarnSimulatedServer(session.server);
  return connection;
}

void WarnSimulatedServer(const std::string& server) {
  static std::atomic<bool> warned{false};
  if (warned.exchange(true)) return;
  std::fprintf(stderr,
               "%s: WARNING: %s runs on the sim platform, a software simulation with no "
               "hardware protection. Do not send real data to it.\n",
               ProgramName(), server.c_str());
}

Status CheckServerAddress(const std::string& address, const std::string& source) {
  // The port follows the last ':', or the ':' right after an IPv6 literal's ']'.
  size_t colon = address.rfind(':');
  if (!address.empty() && address.front() == '[') {
    size_t close = address.find(']');
    colon = close != std::string::npos && close + 1 < address.size() && address[close + 1] == ':'
                ? close + 1
                : std::string::npos;
  }
  std::string port = colon == std::string::npos ? "" : address.substr(colon + 1);
  bool digits = !port.empty() && port.size() <= 5 &&
                port.find_first_not_of("0123456789") == std::string::npos;
  if (colon != std::string::npos && colon > 0 && digits && std::stoul(port) <= 65535) {
    return Status::Ok();
  }
  std::string host = colon == std::string::npos ? address : address.substr(0, colon);
  if (host.empty()) host = "127.0.0.1";
  return InvalidArgumentError(source + " '" + address + "' has no port: give HOST:PORT, e.g. " +
                              host +
                              ":7443 (chirond listens on port 7443 unless its --listen says "
                              "otherwise)");
}

namespace {

// The candidate closest to `word` if it is close enough to be a typo (or `word` is a prefix of
// it), else "".
std::string Closest(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = SIZE_MAX;
  for (const auto& candidate : candidates) {
    size_t distance =
        candidate.rfind(word, 0) == 0 && word.size() >= 2 ? 1 : EditDistance(word, candidate);
    if (distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best_distance <= std::max<size_t>(2, word.size() / 3) ? best : "";
}

const CLI::App* FindSubcommand(const CLI::App& app, const std::string& name) {
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    if (sub->get_name() == name) return sub;
  }
  return nullptr;
}

// The option `name` ("--server", "-v") of `app` or of a command above it (global options may
// follow the subcommand).
const CLI::Option* FindOption(const CLI::App* app, const std::string& name) {
  for (; app != nullptr; app = app->get_parent()) {
    if (const CLI::Option* option = app->get_option_no_throw(name)) return option;
  }
  return nullptr;
}

std::string CommandPath(const GlobalOptions& global, const std::vector<std::string>& path) {
  std::string text = global.program;
  for (const auto& word : path) text += " " + word;
  return text;
}

std::string WrongTool(const GlobalOptions& global, const std::vector<std::string>& path) {
  std::string command;
  for (const auto& word : path) command += (command.empty() ? "" : " ") + word;
  // The tool the command belongs to: the other one.
  const bool owners = global.operator_mode;
  const std::string tool = owners ? "chiron" : "chiron-operator";
  const std::string whose = owners ? "a data owner's" : "a provider's";
  const std::string profile = owners ? "owner profile" : "provider profile";
  const std::string home = owners ? "$CHIRON_HOME or ~/.config/chiron"
                                  : "$CHIRON_OPERATOR_HOME or ~/.config/chiron-operator";
  const std::string this_tool =
      owners ? "chiron-operator is the provider's tool" : "chiron is the data owner's tool";
  return "'" + command + "' is " + whose + " command: run it with " + tool + " and your " +
         profile + " (`" + tool + " --profile DIR " + command + " ...`; default " + home + "). " +
         this_tool;
}

}  // namespace

std::string ExplainUsageError(const CLI::App& app, const CLI::App& other_role_app,
                              const GlobalOptions& global, const std::vector<std::string>& args) {
  const CLI::App* current = &app;
  const CLI::App* other = &other_role_app;  // the same command in the other tool, if any
  std::vector<std::string> path;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") break;
    if (arg.size() > 1 && arg[0] == '-') {
      std::string name = arg.substr(0, arg.find('='));
      if (const CLI::Option* option = FindOption(current, name)) {
        if (option->get_items_expected_max() > 0 && name.size() == arg.size()) ++i;  // its value
        continue;
      }
      if (name.rfind("--", 0) != 0) return "";  // short options: CLI11 says it well enough
      std::vector<std::string> known;
      for (const CLI::App* app_up = current; app_up != nullptr; app_up = app_up->get_parent()) {
        for (const CLI::Option* option : app_up->get_options()) {
          for (const auto& long_name : option->get_lnames()) known.push_back("--" + long_name);
        }
      }
      std::string guess = Closest(name, known);
      std::string where = CommandPath(global, path);
      return "unknown option '" + name + "' for `" + where + "`" +
             (guess.empty() ? "" : " (did you mean '" + guess + "'?)") + "; see `" + where +
             " --help`";
    }
    auto subcommands = current->get_subcommands([](const CLI::App*) { return true; });
    if (subcommands.empty() ||
        !current->get_options([](const CLI::Option* o) { return o->get_positional(); }).empty()) {
      continue;  // a positional argument
    }
    if (const CLI::App* sub = FindSubcommand(*current, arg)) {
      current = sub;
      other = other != nullptr ? FindSubcommand(*other, arg) : nullptr;
      path.push_back(arg);
      continue;
    }
    path.push_back(arg);
    if (other != nullptr && FindSubcommand(*other, arg) != nullptr) {
      return WrongTool(global, path);
    }
    path.pop_back();
    std::vector<std::string> names;
    for (const CLI::App* sub : subcommands) names.push_back(sub->get_name());
    std::string guess = Closest(arg, names);
    std::string where = CommandPath(global, path);
    return "'" + arg + "' is not a command of `" + where + "`" +
           (guess.empty() ? "" : " (did you mean '" + guess + "'?)") + "; see `" + where +
           " --help`";
  }
  // The words ran out on a command that only groups others (`chiron dataset`): name them.
  auto subcommands = current->get_subcommands([](const CLI::App*) { return true; });
  if (!subcommands.empty()) {
    std::string names;
    for (const CLI::App* sub : subcommands) {
      names += (names.empty() ? "" : ", ") + sub->get_name();
    }
    std::string where = CommandPath(global, path);
    return "`" + where + "` needs one of its commands: " + names + " (see `" + where +
           " --help`)";
  }
  return "";
}

std::string FormatBytes(uint64_t bytes) {
  char text[32];
  if (bytes < 1000) {
    std::snprintf(text, sizeof text, "%llu B", static_cast<unsigned long long>(bytes));
  } else if (bytes < 1000 * 1000) {
    std::snprintf(text, sizeof text, "%.1f kB", bytes / 1e3);
  } else if (bytes < 1000ull * 1000 * 1000) {
    std::snprintf(text, sizeof text, "%.1f MB", bytes / 1e6);
  } else {
    std::snprintf(text, sizeof text, "%.2f GB", bytes / 1e9);
  }
  return text;
}

ProgressBar::ProgressBar(std::string label)
    : label_(std::move(label)),
      enabled_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()) {}

ProgressBar::~ProgressBar() {
  if (drawn_) std::fputc('\n', stderr);
}

void ProgressBar::Update(uint64_t done_bytes, uint64_t total_bytes, uint64_t base_bytes) {
  if (!enabled_ || total_bytes == 0) return;
  auto now = std::chrono::steady_clock::now();
  if (drawn_ && done_bytes < total_bytes && now - last_draw_ < std::chrono::milliseconds(100)) {
    return;
  }
  last_draw_ = now;
  double seconds = std::chrono::duration<double>(now - start_).count();
  double rate = seconds > 0 && done_bytes > base_bytes ? (done_bytes - base_bytes) / seconds : 0;
  double fraction = static_cast<double>(done_bytes) / static_cast<double>(total_bytes);
  constexpr int kWidth = 30;
  int filled = static_cast<int>(fraction * kWidth);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.resize(kWidth, '.');
  char eta[32] = "--:--";
  if (rate > 0) {
    uint64_t left = static_cast<uint64_t>((total_bytes - done_bytes) / rate);
    std::snprintf(eta, sizeof eta, "%llu:%02llu", static_cast<unsigned long long>(left / 60),
                  static_cast<unsigned long long>(left % 60));
  }
  std::fprintf(stderr, "\r%s [%s] %3d%% %s / %s  %s/s  ETA %s  ", label_.c_str(), bar.c_str(),
               static_cast<int>(fraction * 100), FormatBytes(done_bytes).c_str(),
               FormatBytes(total_bytes).c_str(), FormatBytes(static_cast<uint64_t>(rate)).c_str(),
               eta);
  std::fflush(stderr);
  drawn_ = true;
}

}  // namespace chiron::client
