// Every command of `chiron`, `chiron-operator` and `chirond` has --help with an example of
// itself, and is documented. The commands are not a hand-kept list: the test walks each
// program's own help, from the top down, following every name in a "Subcommands:" section, so
// a new command is checked the moment it exists.
//
// For each command PATH (e.g. `chiron dataset upload`) it runs `PATH --help` and checks: exit
// code 0; a section starting "Example" with at least one line that starts with PATH itself (an
// example of this very command, not of its parent); and that docs/cli.md (chirond:
// docs/operations.md) names the command.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <deque>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "client/cli/cli_common.h"
#include "tests/integration/process.h"

namespace chiron::testing {
namespace {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream in(text);
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

std::string TrimLeft(const std::string& s) {
  size_t start = s.find_first_not_of(" \t");
  return start == std::string::npos ? "" : s.substr(start);
}

std::string Join(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& word : words) out += (out.empty() ? "" : " ") + word;
  return out;
}

// The names listed under "Subcommands:" in CLI11's help (two blanks, the name, then blanks and
// the description), up to the next blank line.
std::vector<std::string> SubcommandNames(const std::string& help) {
  std::vector<std::string> names;
  bool in_section = false;
  for (const auto& line : Lines(help)) {
    if (line == "Subcommands:") {
      in_section = true;
      continue;
    }
    if (!in_section) continue;
    if (TrimLeft(line).empty()) break;
    if (line.rfind("  ", 0) != 0 || line[2] == ' ') continue;  // a wrapped description
    std::string name = line.substr(2, line.find(' ', 2) - 2);
    names.push_back(name);
  }
  return names;
}

// Lines of the section whose heading starts with "Example" (Example:, Examples:) up to the end
// or the next heading-like line that is not indented.
std::vector<std::string> ExampleLines(const std::string& help) {
  std::vector<std::string> out;
  bool in_section = false;
  for (const auto& line : Lines(help)) {
    if (line.rfind("Example", 0) == 0) {
      in_section = true;
      continue;
    }
    if (!in_section) continue;
    if (!line.empty() && line[0] != ' ') break;
    if (!TrimLeft(line).empty()) out.push_back(TrimLeft(line));
  }
  return out;
}

struct Walk {
  std::vector<std::vector<std::string>> commands;  // each: program, then the subcommand path
};

// Every command of `program`, breadth first, checking each as it goes.
Walk CheckEveryCommand(const std::string& program, const std::string& doc) {
  Walk walk;
  std::deque<std::vector<std::string>> queue = {{program}};
  std::set<std::string> seen;
  while (!queue.empty()) {
    std::vector<std::string> path = queue.front();
    queue.pop_front();
    if (!seen.insert(Join(path)).second) continue;
    walk.commands.push_back(path);
    std::vector<std::string> argv = {BinaryPath(program)};
    argv.insert(argv.end(), path.begin() + 1, path.end());
    argv.push_back("--help");
    CommandResult help = RunCommand(argv);
    const std::string name = Join(path);
    EXPECT_EQ(help.exit_code, 0) << name << " --help: " << help.err;
    EXPECT_TRUE(help.err.empty()) << name << " --help wrote to stderr: " << help.err;

    bool has_own_example = false;
    for (const auto& example : ExampleLines(help.out)) {
      if (example == name || example.rfind(name + " ", 0) == 0) has_own_example = true;
    }
    EXPECT_TRUE(has_own_example) << "`" << name
                                 << " --help` has no Example section with a line starting with `"
                                 << name << "`:\n" << help.out;

    if (path.size() > 1) {
      // Documented: "`dataset upload" or "`chiron dataset upload" somewhere in the page.
      std::string sub = Join(std::vector<std::string>(path.begin() + 1, path.end()));
      EXPECT_TRUE(doc.find("`" + sub) != std::string::npos ||
                  doc.find("`" + name) != std::string::npos)
          << "`" << name << "` is not in the docs page";
    }
    for (const auto& sub : SubcommandNames(help.out)) {
      std::vector<std::string> child = path;
      child.push_back(sub);
      queue.push_back(child);
    }
  }
  std::printf("%s: %zu commands checked:", program.c_str(), walk.commands.size());
  for (const auto& command : walk.commands) std::printf(" [%s]", Join(command).c_str());
  std::printf("\n");
  return walk;
}

std::string Doc(const std::string& page) {
  const char* source = std::getenv("CHIRON_SOURCE_DIR");
  EXPECT_NE(source, nullptr);
  return ReadText(std::string(source ? source : ".") + "/docs/" + page);
}

TEST(CliHelpTest, EveryOwnerCommandHasHelpWithItsOwnExample) {
  Walk walk = CheckEveryCommand("chiron", Doc("cli.md"));
  // The walk itself must have found the tree (a broken "Subcommands:" parser would check only
  // the top): chiron has nouns with verbs below them.
  size_t nested = 0;
  for (const auto& command : walk.commands) nested += command.size() > 2;
  EXPECT_GE(nested, 5u);
}

TEST(CliHelpTest, EveryProviderCommandHasHelpWithItsOwnExample) {
  Walk walk = CheckEveryCommand("chiron-operator", Doc("cli.md"));
  size_t nested = 0;
  for (const auto& command : walk.commands) nested += command.size() > 2;
  EXPECT_GE(nested, 2u);
}

TEST(CliHelpTest, ChirondHasHelpWithExamples) {
  Walk walk = CheckEveryCommand("chirond", Doc("operations.md"));
  EXPECT_EQ(walk.commands.size(), 1u) << "chirond has no subcommands";
}

// The exit codes the code defines (cli_common.h), the ones chiron's --help lists and the ones
// docs/cli.md's table documents are the same.
TEST(CliHelpTest, ExitCodesInHelpMatchTheDocs) {
  CommandResult help = RunCommand({BinaryPath("chiron"), "--help"});
  ASSERT_EQ(help.exit_code, 0);
  std::set<int> in_help;
  size_t at = help.out.find("Exit codes:");
  ASSERT_NE(at, std::string::npos) << help.out;
  std::string list = help.out.substr(at, help.out.find('\n', at) - at);
  for (size_t i = 0; i + 1 < list.size(); ++i) {
    bool starts = (i == 0 || list[i - 1] == ' ') && list[i] >= '0' && list[i] <= '9' &&
                  list[i + 1] == ' ';
    if (starts) in_help.insert(list[i] - '0');
  }
  std::set<int> in_docs;
  std::string doc = Doc("cli.md");
  size_t section = doc.find("## Exit codes");
  ASSERT_NE(section, std::string::npos);
  size_t end = doc.find("\n## ", section + 1);
  for (const auto& line : Lines(doc.substr(section, end - section))) {
    if (line.size() > 4 && line.rfind("| ", 0) == 0 && line[2] >= '0' && line[2] <= '9' &&
        line[3] == ' ') {
      in_docs.insert(line[2] - '0');
    }
  }
  using namespace chiron::client;
  const std::set<int> in_code = {kExitOk,          kExitUsage,   kExitVerificationFailed,
                                 kExitUnreachable, kExitError,   kExitRefused,
                                 kExitJobFailed,   kExitPartial};
  EXPECT_EQ(in_help, in_code) << list;
  EXPECT_EQ(in_docs, in_help);
}

}  // namespace
}  // namespace chiron::testing
