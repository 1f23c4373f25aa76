// chirond measures exactly the sandbox policy it enforces: it starts with the policy file the
// build generates (bin/sandbox-policy.txt, chiron_sandbox_policy_gen) and refuses any file whose
// bytes differ from its compiled-in SandboxPolicyBytes(), saying which file and how to regenerate
// it. And chirond, the trusted runtime, never links libtorch (only chiron-worker does): checked
// on the DT_NEEDED entries of build/bin/chirond's ELF dynamic section and, where ldd exists, on
// the whole set of libraries the loader would map.
#include <elf.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/process.h"

namespace chiron::testing {
namespace {

namespace fs = std::filesystem;

std::string MakeTempDir() {
  std::string pattern = (fs::temp_directory_path() / "chiron-policy-test-XXXXXX").string();
  return ::mkdtemp(pattern.data());
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

// The DT_NEEDED entries of a 64-bit little-endian ELF file (its .dynamic section, whose sh_link
// names the string table). Adds a test failure and returns {} if the file is not such an ELF.
std::vector<std::string> NeededLibraries(const std::string& path) {
  const std::string image = ReadText(path);
  auto fits = [&](uint64_t offset, uint64_t size) {
    return offset <= image.size() && size <= image.size() - offset;
  };
  if (!fits(0, sizeof(Elf64_Ehdr)) || image.compare(0, SELFMAG, ELFMAG) != 0 ||
      image[EI_CLASS] != ELFCLASS64 || image[EI_DATA] != ELFDATA2LSB) {
    ADD_FAILURE() << path << " is not a 64-bit little-endian ELF file";
    return {};
  }
  Elf64_Ehdr header;
  std::memcpy(&header, image.data(), sizeof header);
  auto section = [&](uint64_t index) {
    Elf64_Shdr s{};
    const uint64_t at = header.e_shoff + index * header.e_shentsize;
    if (header.e_shentsize >= sizeof s && fits(at, sizeof s))
      std::memcpy(&s, image.data() + at, sizeof s);
    return s;
  };
  std::vector<std::string> needed;
  bool found_dynamic = false;
  for (uint64_t i = 0; i < header.e_shnum; ++i) {
    const Elf64_Shdr dynamic = section(i);
    if (dynamic.sh_type != SHT_DYNAMIC) continue;
    found_dynamic = true;
    const Elf64_Shdr strings = section(dynamic.sh_link);
    if (!fits(dynamic.sh_offset, dynamic.sh_size) || !fits(strings.sh_offset, strings.sh_size)) {
      ADD_FAILURE() << path << ": dynamic section or its string table out of the file";
      return {};
    }
    for (uint64_t at = 0; at + sizeof(Elf64_Dyn) <= dynamic.sh_size; at += sizeof(Elf64_Dyn)) {
      Elf64_Dyn entry;
      std::memcpy(&entry, image.data() + dynamic.sh_offset + at, sizeof entry);
      if (entry.d_tag == DT_NULL) break;
      if (entry.d_tag != DT_NEEDED) continue;
      if (entry.d_un.d_val >= strings.sh_size) {
        ADD_FAILURE() << path << ": DT_NEEDED name out of the string table";
        continue;
      }
      const char* name = image.data() + strings.sh_offset + entry.d_un.d_val;
      needed.emplace_back(name, strnlen(name, strings.sh_size - entry.d_un.d_val));
    }
  }
  if (!found_dynamic) ADD_FAILURE() << path << " has no dynamic section";
  return needed;
}

bool IsTorchLibrary(const std::string& name) {
  const std::string base = fs::path(name).filename().string();
  return base.rfind("libtorch", 0) == 0 || base.rfind("libc10", 0) == 0;
}

class ChirondPolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    std::ofstream(dir_ + "/chiron-worker") << "worker under test";
    policy_ = dir_ + "/sandbox-policy.txt";
    CommandResult generated = RunCommand({BinaryPath("chiron_sandbox_policy_gen"), policy_});
    ASSERT_EQ(generated.exit_code, 0) << generated.err;
    original_ = ReadText(policy_);
    ASSERT_GT(original_.size(), 100u);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs chirond with `policy` as its sandbox policy file. A chirond that accepted the file would
  // serve until killed, so the run is bounded by timeout(1) (exit 124): a guard against a hang,
  // not a timing assertion.
  CommandResult RunChirond(const std::string& policy) {
    return RunCommand({"/usr/bin/timeout", "60", BinaryPath("chirond"), "--platform", "sim",
                       "--listen", "127.0.0.1:0", "--state", dir_ + "/state", "--worker",
                       dir_ + "/chiron-worker", "--sandbox-policy", policy});
  }

  void ExpectRefused(const CommandResult& run, const std::string& policy) {
    EXPECT_EQ(run.exit_code, 1) << run.err;
    EXPECT_NE(run.err.find("refusing to start"), std::string::npos) << run.err;
    EXPECT_NE(run.err.find(policy), std::string::npos) << run.err;
    EXPECT_NE(run.err.find("chiron_sandbox_policy_gen"), std::string::npos) << run.err;
    // Refused before anything was created or measured.
    EXPECT_FALSE(fs::exists(dir_ + "/state"));
  }

  std::string dir_;
  std::string policy_;
  std::string original_;
};

TEST_F(ChirondPolicyTest, GeneratedFileIsTheBuildsPolicyFile) {
  // The file chirond reads by default (bin/sandbox-policy.txt, written by the build) holds the
  // same bytes as the generator writes.
  EXPECT_EQ(ReadText(BinaryPath("sandbox-policy.txt")), original_);
}

TEST_F(ChirondPolicyTest, StartsWithTheGeneratedPolicy) {
  fs::create_directories(dir_ + "/started");
  ChirondProcess server(dir_ + "/started");  // writes its policy with the generator
  EXPECT_GT(server.port(), 0);
  EXPECT_EQ(server.Terminate(), 0);
}

TEST_F(ChirondPolicyTest, RefusesAPolicyFileWithOneByteChanged) {
  for (size_t at : {size_t{0}, original_.size() / 2, original_.size() - 1}) {
    std::string changed = original_;
    changed[at] = static_cast<char>(changed[at] ^ 0x01);
    WriteText(policy_, changed);
    CommandResult run = RunChirond(policy_);
    ExpectRefused(run, policy_);
    EXPECT_NE(run.err.find("differs from the policy compiled into chirond"), std::string::npos)
        << run.err;
    EXPECT_NE(run.err.find("first difference at byte " + std::to_string(at) + ")"),
              std::string::npos)
        << run.err;
  }
}

TEST_F(ChirondPolicyTest, RefusesAPolicyFileWithAByteAddedOrRemoved) {
  WriteText(policy_, original_ + "\n");
  ExpectRefused(RunChirond(policy_), policy_);
  WriteText(policy_, original_.substr(0, original_.size() - 1));
  ExpectRefused(RunChirond(policy_), policy_);
  WriteText(policy_, "{}");  // what the tests used to pass
  ExpectRefused(RunChirond(policy_), policy_);
}

TEST_F(ChirondPolicyTest, RefusesAMissingPolicyFile) {
  const std::string missing = dir_ + "/no-such-policy.txt";
  CommandResult run = RunChirond(missing);
  ExpectRefused(run, missing);
  EXPECT_NE(run.err.find("cannot read"), std::string::npos) << run.err;
}

TEST(ChirondLinkTest, ChirondDoesNotLinkLibtorch) {
  const std::string chirond = BinaryPath("chirond");
  const std::vector<std::string> needed = NeededLibraries(chirond);
  ASSERT_FALSE(needed.empty()) << chirond;
  for (const std::string& library : needed) {
    EXPECT_FALSE(IsTorchLibrary(library)) << chirond << " needs " << library;
  }
  // Every library the loader would map, transitively (ldd: glibc's loader in trace mode).
  if (fs::exists("/usr/bin/ldd")) {
    CommandResult ldd = RunCommand({"/usr/bin/ldd", chirond});
    ASSERT_EQ(ldd.exit_code, 0) << ldd.err;
    std::istringstream lines(ldd.out);
    std::string line;
    int libraries = 0;
    while (std::getline(lines, line)) {
      std::istringstream words(line);
      std::string name;
      words >> name;
      if (name.empty()) continue;
      ++libraries;
      EXPECT_FALSE(IsTorchLibrary(name)) << chirond << " loads " << line;
    }
    EXPECT_GT(libraries, 0) << ldd.out;
  }
}

TEST(ChirondLinkTest, TheCheckSeesLibtorchInTheWorker) {
  // The same check on chiron-worker, which does link libtorch: the check is not vacuous.
  const std::string worker = BinaryPath("chiron-worker");
  if (!fs::exists(worker)) GTEST_SKIP() << "built without libtorch: no chiron-worker";
  bool torch = false;
  for (const std::string& library : NeededLibraries(worker)) torch |= IsTorchLibrary(library);
  EXPECT_TRUE(torch) << worker;
}

}  // namespace
}  // namespace chiron::testing
