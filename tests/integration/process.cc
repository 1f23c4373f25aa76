#include "tests/integration/process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace chiron::testing {
namespace {

std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

std::string ReadFileText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<char*> Argv(const std::vector<std::string>& args) {
  std::vector<char*> out;
  for (const auto& a : args) out.push_back(const_cast<char*>(a.c_str()));
  out.push_back(nullptr);
  return out;
}

}  // namespace

std::string MakeTempDir(const std::string& prefix) {
  std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp " << pattern << ": " << std::strerror(errno);
    return {};
  }
  return pattern;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string BinaryPath(const std::string& name) {
  const char* build = std::getenv("CHIRON_BUILD_DIR");
  return std::string(build ? build : ".") + "/bin/" + name;
}

CommandResult RunCommand(const std::vector<std::string>& argv) {
  // Output goes to temporary files so that large outputs cannot dead-lock on pipes.
  char out_path[] = "/tmp/chiron-cmd-out-XXXXXX";
  char err_path[] = "/tmp/chiron-cmd-err-XXXXXX";
  int out_fd = ::mkstemp(out_path);
  int err_fd = ::mkstemp(err_path);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
  posix_spawn_file_actions_adddup2(&actions, err_fd, 2);
  pid_t pid;
  auto args = Argv(argv);
  CommandResult result;
  // The CLI's leak check leaves out what gRPC's channel teardown still holds at exit
  // (lsan_cli.supp says why); LSAN_OPTIONS set by the caller wins.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  if (std::getenv("LSAN_OPTIONS") == nullptr) {
    env_strings.push_back(std::string("LSAN_OPTIONS=suppressions=") + CHIRON_CLI_LSAN_SUPPRESSIONS);
  }
  std::vector<char*> env;
  for (std::string& s : env_strings) env.push_back(s.data());
  env.push_back(nullptr);
  if (posix_spawn(&pid, args[0], &actions, nullptr, args.data(), env.data()) != 0) {
    ADD_FAILURE() << "cannot run " << argv[0];
  } else {
    int status = 0;
    ::waitpid(pid, &status, 0);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  posix_spawn_file_actions_destroy(&actions);
  ::lseek(out_fd, 0, SEEK_SET);
  ::lseek(err_fd, 0, SEEK_SET);
  result.out = ReadAll(out_fd);
  result.err = ReadAll(err_fd);
  ::close(out_fd);
  ::close(err_fd);
  ::unlink(out_path);
  ::unlink(err_path);
  return result;
}

BackgroundCommand::BackgroundCommand(const std::vector<std::string>& argv, const std::string& dir) {
  out_path_ = dir + "/bg.out";
  err_path_ = dir + "/bg.err";
  int out = ::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  int err = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out, 1);
  posix_spawn_file_actions_adddup2(&actions, err, 2);
  auto args = Argv(argv);
  if (posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ) != 0) pid_ = -1;
  posix_spawn_file_actions_destroy(&actions);
  ::close(out);
  ::close(err);
}

BackgroundCommand::~BackgroundCommand() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

CommandResult BackgroundCommand::Wait() {
  CommandResult result;
  int status = 0;
  if (pid_ > 0 && ::waitpid(pid_, &status, 0) == pid_) {
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  pid_ = -1;
  result.out = ReadFileText(out_path_);
  result.err = ReadFileText(err_path_);
  return result;
}

ChirondProcess::ChirondProcess(const std::string& dir, const std::vector<std::string>& extra_args,
                               const std::string& worker) {
  std::string worker_path = worker;
  std::vector<std::string> recipes;
  if (worker_path.empty()) {
    worker_path = dir + "/chiron-worker";
    std::ofstream(worker_path) << "worker under test";
    // No built-in recipes: registration checks each in a worker, and a placeholder is none.
    std::filesystem::create_directories(dir + "/no-recipes");
    recipes = {"--recipes-dir", dir + "/no-recipes"};
  }
  // chirond refuses a policy file that differs from its compiled-in policy: write the real one
  // with the build's generator.
  const std::string sandbox_policy = dir + "/sandbox-policy.txt";
  CommandResult generated = RunCommand({BinaryPath("chiron_sandbox_policy_gen"), sandbox_policy});
  if (generated.exit_code != 0) ADD_FAILURE() << "chiron_sandbox_policy_gen: " << generated.err;
  std::string port_file = dir + "/port";
  policy_path_ = dir + "/sim-policy.json";
  log_path_ = dir + "/chirond.log";
  std::vector<std::string> argv = {BinaryPath("chirond"),
                                   "--platform", "sim",
                                   "--listen", "127.0.0.1:0",
                                   "--state", dir + "/state",
                                   "--worker", worker_path,
                                   "--sandbox-policy", sandbox_policy,
                                   "--port-file", port_file,
                                   "--write-sim-policy", policy_path_};
  argv.insert(argv.end(), recipes.begin(), recipes.end());
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  Start(argv, port_file);
}

ChirondProcess::ChirondProcess(ExactArgs, const std::string& dir,
                               const std::vector<std::string>& args, const std::string& port_file,
                               const std::string& policy_path) {
  policy_path_ = policy_path;
  log_path_ = dir + "/chirond.log";
  std::vector<std::string> argv = {BinaryPath("chirond")};
  argv.insert(argv.end(), args.begin(), args.end());
  Start(argv, port_file);
}

void ChirondProcess::Start(const std::vector<std::string>& argv, const std::string& port_file) {
  int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, log_fd, 1);
  posix_spawn_file_actions_adddup2(&actions, log_fd, 2);
  auto args = Argv(argv);
  if (posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ) != 0) {
    ADD_FAILURE() << "cannot start " << argv[0];
    pid_ = -1;
  }
  posix_spawn_file_actions_destroy(&actions);
  ::close(log_fd);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (pid_ > 0 && std::chrono::steady_clock::now() < deadline) {
    std::string text = ReadFileText(port_file);
    if (!text.empty() && text.back() == '\n') {
      port_ = std::stoi(text);
      return;
    }
    int status;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ADD_FAILURE() << "chirond did not start; its log:\n" << ReadFileText(log_path_);
}

ChirondProcess::~ChirondProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

int ChirondProcess::Terminate() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    int status;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

}  // namespace chiron::testing
