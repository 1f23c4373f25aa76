// The owner's data path through the real binaries over loopback: `chiron init`, `dataset
// upload|list|delete`, `audit --verify` against a real chirond (sim platform); Fashion-MNIST end to
// end; an upload cut by a relay at a chosen byte (the client says the dataset is partial and how
// to resume or delete it, `dataset list` marks it) and hostile resume states refused; chirond
// killed with SIGKILL at seeded moments of an upload (every acknowledged chunk survives, nothing
// half-written is visible, the upload resumes); and hostile clients refused with clear errors.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <sstream>
#include <thread>

#include "tests/integration/process.h"
#include "tests/integration/tcp_relay.h"
#include "tests/integration/test_files.h"

extern char** environ;

namespace chiron::testing {
namespace {

namespace fs = std::filesystem;

constexpr char kFashionDir[] = "/usr/share/datasets/fashion-mnist";

using Background = BackgroundCommand;

class DatasetCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("chiron-dataset-cli");
    StartServer();
  }
  void TearDown() override {
    server_.reset();
    fs::remove_all(dir_);
  }

  // (Re)starts chirond on the same state directory.
  void StartServer(const std::vector<std::string>& extra = {}) {
    server_.reset();
    fs::remove(dir_ + "/port");  // so the new process's port is read, not the old one
    server_ = std::make_unique<ChirondProcess>(dir_, extra);
    ASSERT_GT(server_->port(), 0);
  }

  // chiron with a profile and the current server (its port changes across restarts).
  std::vector<std::string> Argv(const std::string& profile, std::vector<std::string> args,
                                const std::string& program = "chiron") {
    std::vector<std::string> argv = {BinaryPath(program), "--profile", dir_ + "/" + profile,
                                     "--server", server_->address()};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }
  CommandResult Chiron(const std::string& profile, std::vector<std::string> args,
                       const std::string& program = "chiron") {
    return RunCommand(Argv(profile, std::move(args), program));
  }

  void Init(const std::string& profile, const std::string& role = "owner",
            const std::string& program = "chiron") {
    auto init = Chiron(
        profile, {"init", "--role", role, "--name", profile, "--policy", server_->policy_path()},
        program);
    ASSERT_EQ(init.exit_code, 0) << init.err;
    ASSERT_NE(init.out.find("registered as " + role), std::string::npos) << init.out;
  }

  nlohmann::json ListJson(const std::string& profile) {
    auto list = Chiron(profile, {"dataset", "list", "--json"});
    EXPECT_EQ(list.exit_code, 0) << list.err;
    auto j = nlohmann::json::parse(list.out, nullptr, false);
    EXPECT_TRUE(j.is_array()) << list.out;
    return j;
  }

  static const nlohmann::json* Find(const nlohmann::json& list, const std::string& name) {
    for (const auto& d : list) {
      if (d["name"] == name) return &d;
    }
    return nullptr;
  }

  std::string dir_;
  std::unique_ptr<ChirondProcess> server_;
};

TEST_F(DatasetCliTest, FashionMnistUploadListDeleteReuploadAndAuditVerify) {
  std::string test_images = std::string(kFashionDir) + "/t10k-images-idx3-ubyte.gz";
  std::string train_images = std::string(kFashionDir) + "/train-images-idx3-ubyte.gz";
  ASSERT_TRUE(fs::exists(test_images)) << "install Debian's dataset-fashion-mnist";
  Init("alice");
  // The key file is private to the user.
  EXPECT_EQ(fs::status(dir_ + "/alice/principal.key").permissions() & fs::perms::group_all,
            fs::perms::none);
  EXPECT_EQ(fs::status(dir_ + "/alice/principal.key").permissions() & fs::perms::others_all,
            fs::perms::none);

  auto upload = Chiron("alice", {"dataset", "upload", test_images, "--name", "fmnist-test"});
  ASSERT_EQ(upload.exit_code, 0) << upload.err;
  EXPECT_NE(upload.out.find("10000 samples"), std::string::npos) << upload.out;
  EXPECT_NE(upload.err.find("sim platform"), std::string::npos) << "the sim warning is shown";
  EXPECT_EQ(upload.err.find("ETA"), std::string::npos) << "no progress bar without a terminal";
  auto train = Chiron(
      "alice", {"dataset", "upload", train_images, "--name", "fmnist-train", "--format", "idx"});
  ASSERT_EQ(train.exit_code, 0) << train.err;
  EXPECT_NE(train.out.find("60000 samples"), std::string::npos) << train.out;

  auto list = ListJson("alice");
  ASSERT_EQ(list.size(), 2u);
  const auto* test_set = Find(list, "fmnist-test");
  ASSERT_NE(test_set, nullptr);
  EXPECT_EQ((*test_set)["sample_count"], 10000);
  EXPECT_EQ((*test_set)["sample_shape"], nlohmann::json::array({28, 28}));
  EXPECT_EQ((*test_set)["class_count"], 10);
  EXPECT_EQ((*test_set)["complete"], true);
  EXPECT_EQ((*Find(list, "fmnist-train"))["sample_count"], 60000);
  std::string first_test_id = (*test_set)["dataset_id"];
  auto table = Chiron("alice", {"dataset", "list"});
  EXPECT_NE(table.out.find("fmnist-train"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("complete"), std::string::npos) << table.out;

  // Same name again: refused while it exists.
  auto duplicate = Chiron("alice", {"dataset", "upload", test_images, "--name", "fmnist-test"});
  EXPECT_EQ(duplicate.exit_code, 4);
  EXPECT_NE(duplicate.err.find("already"), std::string::npos) << duplicate.err;

  auto deleted = Chiron("alice", {"dataset", "delete", "fmnist-test"});
  ASSERT_EQ(deleted.exit_code, 0) << deleted.err;
  EXPECT_NE(deleted.out.find("key was destroyed"), std::string::npos);
  EXPECT_EQ(Find(ListJson("alice"), "fmnist-test"), nullptr);
  auto missing = Chiron("alice", {"dataset", "delete", "fmnist-test"});
  EXPECT_EQ(missing.exit_code, 4);
  EXPECT_NE(missing.err.find("no dataset named"), std::string::npos) << missing.err;

  auto again = Chiron("alice", {"dataset", "upload", test_images, "--name", "fmnist-test"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  list = ListJson("alice");
  ASSERT_EQ(list.size(), 2u);
  EXPECT_NE((*Find(list, "fmnist-test"))["dataset_id"], first_test_id);

  auto audit = Chiron("alice", {"audit", "--verify", "--json"});
  ASSERT_EQ(audit.exit_code, 0) << audit.err;
  auto records = nlohmann::json::parse(audit.out);
  EXPECT_EQ(records["verified"], true);
  std::vector<std::string> events;
  for (const auto& r : records["records"]) events.push_back(r["event"]);
  EXPECT_EQ(events, (std::vector<std::string>{
                        "principal.register", "dataset.create", "dataset.upload", "dataset.create",
                        "dataset.upload", "dataset.delete", "dataset.create", "dataset.upload"}));
  // The verified head is remembered; the next verification must extend it.
  auto second = Chiron("alice", {"audit", "--verify"});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_NE(second.out.find("extends the head 8"), std::string::npos) << second.out;

  // A rolled-back (or truncated) log is detected: pretend we had seen a longer chain.
  std::string heads_path = dir_ + "/alice/audit-heads.json";
  auto heads = nlohmann::json::parse(ReadText(heads_path));
  heads[server_->address()]["sequence"] = 9;
  std::ofstream(heads_path) << heads.dump();
  auto rolled_back = Chiron("alice", {"audit", "--verify"});
  EXPECT_EQ(rolled_back.exit_code, 2);
  EXPECT_NE(rolled_back.err.find("verification FAILED"), std::string::npos) << rolled_back.err;
}

TEST_F(DatasetCliTest, ProviderAndOtherOwnersAreRefused) {
  std::string images = WriteGeneratedIdx(dir_, "small", 300, 1);
  Init("alice");
  Init("bob");
  Init("acme", "provider", "chiron-operator");
  ASSERT_EQ(Chiron("alice", {"dataset", "upload", images, "--name", "private"}).exit_code, 0);

  // A provider reaches no dataset call.
  auto provider_list = Chiron("acme", {"dataset", "list"});
  EXPECT_EQ(provider_list.exit_code, 5);
  EXPECT_NE(provider_list.err.find("owner role is required"), std::string::npos)
      << provider_list.err;
  auto provider_upload = Chiron("acme", {"dataset", "upload", images, "--name", "grab"});
  EXPECT_EQ(provider_upload.exit_code, 5) << provider_upload.err;
  // chiron-operator has no dataset commands at all.
  auto operator_cmd = Chiron("acme", {"dataset", "list"}, "chiron-operator");
  EXPECT_NE(operator_cmd.exit_code, 0);
  // It says whose command this is and which tool runs it.
  EXPECT_NE(operator_cmd.err.find("'dataset' is a data owner's command"), std::string::npos)
      << operator_cmd.err;
  EXPECT_NE(operator_cmd.err.find("chiron --profile DIR dataset"), std::string::npos)
      << operator_cmd.err;
  auto whoami = Chiron("acme", {"whoami", "--json"}, "chiron-operator");
  ASSERT_EQ(whoami.exit_code, 0) << whoami.err;
  EXPECT_EQ(nlohmann::json::parse(whoami.out)["role"], "provider");
  // Its own messages carry its own name, not the owner tool's.
  EXPECT_NE(whoami.err.find("chiron-operator: WARNING"), std::string::npos) << whoami.err;
  auto no_policy =
      RunCommand({BinaryPath("chiron-operator"), "--profile", dir_ + "/nobody", "attest"});
  EXPECT_EQ(no_policy.exit_code, 4);
  EXPECT_EQ(no_policy.err.rfind("chiron-operator: ", 0), 0u) << no_policy.err;

  // Bob sees none of Alice's datasets and cannot delete them.
  EXPECT_TRUE(ListJson("bob").empty());
  auto bob_delete = Chiron("bob", {"dataset", "delete", "private"});
  EXPECT_EQ(bob_delete.exit_code, 4);
  EXPECT_NE(bob_delete.err.find("no dataset named"), std::string::npos) << bob_delete.err;
  // Bob's audit shows only Bob's record.
  auto bob_audit = Chiron("bob", {"audit", "--verify", "--json"});
  ASSERT_EQ(bob_audit.exit_code, 0) << bob_audit.err;
  EXPECT_EQ(nlohmann::json::parse(bob_audit.out)["records"].size(), 1u);

  // A key nobody registered.
  auto stranger = Chiron("stranger", {"init", "--offline", "--policy", server_->policy_path()});
  ASSERT_EQ(stranger.exit_code, 0) << stranger.err;
  auto stranger_list = Chiron("stranger", {"dataset", "list"});
  EXPECT_EQ(stranger_list.exit_code, 5);
  EXPECT_NE(stranger_list.err.find("not registered"), std::string::npos) << stranger_list.err;

  auto alice_list = ListJson("alice");
  ASSERT_EQ(alice_list.size(), 1u);
  EXPECT_EQ(alice_list[0]["complete"], true);
}

TEST_F(DatasetCliTest, SigkillDuringUploadLosesNoAcknowledgedChunkAndUploadResumes) {
  // 96,000 generated 28x28 samples in 4 KiB chunks: 19,200 chunks, so an upload outlasts the
  // kill window even on an idle machine (the runtime stores chunks in groups, one fdatasync per
  // group, so the per-chunk cost is mostly the message).
  std::string images = WriteGeneratedIdx(dir_, "gen", 96000, 7);
  Init("alice");
  // Blob files that exist before any upload (chirond's built-in recipes, when it has them).
  size_t baseline_files = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir_ + "/state/store/blobs")) {
    ++baseline_files;
  }
  std::mt19937 rng(20261126);
  std::regex stored_re("after ([0-9]+) of ([0-9]+) chunks were stored");
  uint64_t last_acked = 0;
  bool complete = false;
  int kills = 0;
  // Kills that left the upload part-way (0 < stored < total). A fast machine can finish the
  // upload before the kill; then the dataset is deleted and uploaded afresh, until three kills
  // landed mid-upload, whatever the machine's speed (tests never fail on timing).
  int kills_mid_upload = 0;
  for (int round = 0; round < 40 && !(complete && kills_mid_upload >= 3); ++round) {
    if (complete) {
      auto deleted = Chiron("alice", {"dataset", "delete", "gen"});
      ASSERT_EQ(deleted.exit_code, 0) << deleted.err;
      complete = false;
      last_acked = 0;
    }
    auto argv =
        Argv("alice", {"dataset", "upload", images, "--name", "gen", "--chunk-size", "4096"});
    Background upload(argv, dir_);
    bool kill_this_round = kills_mid_upload < 3;
    if (kill_this_round) {
      // A seeded moment: from connection set-up to deep into the chunk stream.
      std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 500));
      ::kill(server_->pid(), SIGKILL);
      ++kills;
    }
    CommandResult result = upload.Wait();
    uint64_t acked_seen_by_client = 0;
    std::smatch match;
    if (result.exit_code == 0) {
      complete = true;
    } else {
      ASSERT_EQ(result.exit_code, 3) << "round " << round << ": " << result.err;
      // Killed after the stream began: the client says how far the server got.
      if (std::regex_search(result.err, match, stored_re)) {
        acked_seen_by_client = std::stoull(match[1]);
        EXPECT_NE(result.err.find("run the same command again to resume"), std::string::npos);
      } else {
        // Killed before the stream began (connect or BeginUpload): a plain connection error.
        EXPECT_NE(result.err.find("is chirond running"), std::string::npos) << result.err;
      }
    }
    StartServer();  // restart on the same state directory

    auto list = ListJson("alice");
    const auto* d = Find(list, "gen");
    if (d == nullptr) {
      EXPECT_EQ(acked_seen_by_client, 0u) << "round " << round;
      continue;
    }
    uint64_t acked = (*d)["acknowledged_chunks"];
    uint64_t total = (*d)["chunk_count"];
    // Every chunk the client saw acknowledged survived the crash, and the count never goes back.
    EXPECT_GE(acked, acked_seen_by_client) << "round " << round;
    EXPECT_GE(acked, last_acked) << "round " << round;
    EXPECT_LE(acked, total);
    std::printf("round %d: %s; client saw %llu acknowledged, server has %llu of %llu\n", round,
                kill_this_round ? "chirond SIGKILLed" : "no kill",
                static_cast<unsigned long long>(acked_seen_by_client),
                static_cast<unsigned long long>(acked), static_cast<unsigned long long>(total));
    last_acked = acked;
    if (kill_this_round && acked > 0 && acked < total) ++kills_mid_upload;
    // Nothing half-written is visible: the dataset has one segment file (docs/store.md) once a
    // chunk was acknowledged, the other files are the sealed blobs that were there before, and
    // no temporaries survive recovery. (What a killed write left past the committed end of the
    // segment is not a chunk: the catalog's count above decides, and the resumed upload
    // overwrites it.)
    size_t files = 0;
    size_t segments = 0;
    for (const auto& entry : fs::directory_iterator(dir_ + "/state/store/blobs")) {
      const std::string extension = entry.path().extension().string();
      EXPECT_TRUE(extension == ".sb" || extension == ".seg") << entry.path();
      if (extension == ".seg") ++segments;
      ++files;
    }
    EXPECT_LE(segments, 1u) << "round " << round;
    if (acked > 0) {
      EXPECT_EQ(segments, 1u) << "round " << round;
    }
    EXPECT_EQ(files, baseline_files + segments) << "round " << round;
    // Complete exactly when every chunk is stored (the server may finish just before a kill that
    // the client does not survive to report).
    EXPECT_EQ((*d)["complete"], acked == total);
    if (complete) {
      EXPECT_EQ(acked, total);
    }
  }
  EXPECT_GE(kills_mid_upload, 3) << "after " << kills << " kills";
  if (!complete) {
    auto finish =
        Chiron("alice", {"dataset", "upload", images, "--name", "gen", "--chunk-size", "4096"});
    ASSERT_EQ(finish.exit_code, 0) << finish.err;
    EXPECT_NE(finish.out.find("resumed"), std::string::npos) << finish.out;
  }
  auto list = ListJson("alice");
  ASSERT_NE(Find(list, "gen"), nullptr);
  EXPECT_EQ((*Find(list, "gen"))["complete"], true);
  EXPECT_EQ((*Find(list, "gen"))["sample_count"], 96000);
  EXPECT_FALSE(fs::exists(dir_ + "/alice/uploads/67656e.json")) << "resume state removed";
  // The audit chain survived every crash intact.
  auto audit = Chiron("alice", {"audit", "--verify"});
  EXPECT_EQ(audit.exit_code, 0) << audit.err;
}

TEST_F(DatasetCliTest, InterruptedUploadSaysPartialResumesAndHostileResumeStateIsRefused) {
  // 24,000 samples in 4 KiB chunks: about 19 MB sent through a relay that cuts the connection
  // for good after 2 MiB, so the upload is interrupted mid-stream (after BeginUpload, before the
  // end) whatever the machine's speed. The chunks go through the API port (--no-data-plane), the
  // one the relay stands in front of.
  std::string images = WriteGeneratedIdx(dir_, "gen", 24000, 9);
  Init("alice");
  const std::string state_path = dir_ + "/alice/uploads/67656e.json";  // hex("gen")
  {
    TcpRelay relay(server_->port(), 2 << 20);
    std::vector<std::string> argv = {BinaryPath("chiron"), "--profile", dir_ + "/alice",
                                     "--server", relay.address(), "dataset", "upload", images,
                                     "--name", "gen", "--chunk-size", "4096", "--no-data-plane"};
    auto cut = RunCommand(argv);
    ASSERT_EQ(cut.exit_code, 3) << cut.err;
    std::printf("cut by the relay:\n%s", cut.err.c_str());
    // The failed upload says what it left behind and both ways on.
    EXPECT_NE(cut.err.find("was interrupted after"), std::string::npos) << cut.err;
    EXPECT_NE(cut.err.find("dataset 'gen' is partial on the server"), std::string::npos)
        << cut.err;
    EXPECT_NE(cut.err.find("run the same command again to resume"), std::string::npos)
        << cut.err;
    EXPECT_NE(cut.err.find("`chiron dataset delete gen`"), std::string::npos) << cut.err;
  }
  ASSERT_TRUE(fs::exists(state_path));
  EXPECT_EQ(fs::status(state_path).permissions() & fs::perms::others_all, fs::perms::none);
  auto before = ListJson("alice");
  ASSERT_NE(Find(before, "gen"), nullptr);
  EXPECT_EQ((*Find(before, "gen"))["complete"], false);
  EXPECT_EQ((*Find(before, "gen"))["status"], "partial");
  uint64_t acked = (*Find(before, "gen"))["acknowledged_chunks"];
  std::printf("the server stored %llu chunks before the cut\n",
              static_cast<unsigned long long>(acked));
  EXPECT_LT(acked, (*Find(before, "gen"))["chunk_count"].get<uint64_t>());
  // The table marks it and says how to resume or delete it.
  auto table = Chiron("alice", {"dataset", "list"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("partial " + std::to_string(acked) + "/"), std::string::npos)
      << table.out;
  EXPECT_NE(table.out.find("partial (an upload that did not finish"), std::string::npos)
      << table.out;
  EXPECT_NE(table.out.find("'gen'"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("chiron dataset delete NAME"), std::string::npos) << table.out;

  auto argv = Argv("alice", {"dataset", "upload", images, "--name", "gen", "--chunk-size", "4096"});
  // A resume state whose data key was swapped: the runtime refuses it (wrong key), nothing that
  // was stored is lost.
  auto state = nlohmann::json::parse(ReadText(state_path));
  std::string good_key = state["data_key"];
  std::string bad_key = good_key;
  bad_key[0] = bad_key[0] == '0' ? '1' : '0';
  state["data_key"] = bad_key;
  std::ofstream(state_path) << state.dump();
  fs::permissions(state_path, fs::perms::owner_read | fs::perms::owner_write);
  auto wrong_key = RunCommand(argv);
  EXPECT_EQ(wrong_key.exit_code, 2) << wrong_key.err;
  EXPECT_NE(wrong_key.err.find("wrong key"), std::string::npos) << wrong_key.err;
  EXPECT_EQ((*Find(ListJson("alice"), "gen"))["acknowledged_chunks"], acked);

  // The good key back, but the input changed (same names, new contents and size): refused, with
  // what to do; nothing stored is lost.
  state["data_key"] = good_key;
  std::ofstream(state_path) << state.dump();
  const std::string labels = dir_ + "/gen-labels-idx1-ubyte";
  const auto images_time = fs::last_write_time(images);
  const auto labels_time = fs::last_write_time(labels);
  WriteGeneratedIdx(dir_, "gen", 3000, 10);
  auto changed = RunCommand(argv);
  EXPECT_EQ(changed.exit_code, 4) << changed.err;
  EXPECT_NE(changed.err.find("dataset delete gen"), std::string::npos) << changed.err;
  EXPECT_EQ((*Find(ListJson("alice"), "gen"))["acknowledged_chunks"], acked);
  // The original input back (the same seeded bytes, size and modification times).
  WriteGeneratedIdx(dir_, "gen", 24000, 9);
  fs::last_write_time(images, images_time);
  fs::last_write_time(labels, labels_time);

  // An extra: chirond SIGKILLed at a seeded moment of the resumed run. Whether or not the kill
  // lands mid-upload, nothing acknowledged is lost and the next run finishes (the kill timing
  // itself is SigkillDuringUploadLosesNoAcknowledgedChunkAndUploadResumes's subject).
  {
    Background resumed(argv, dir_);
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    ::kill(server_->pid(), SIGKILL);
    auto result = resumed.Wait();
    EXPECT_TRUE(result.exit_code == 0 || result.exit_code == 3) << result.err;
    std::printf("resumed run with chirond SIGKILLed: exit %d\n", result.exit_code);
    StartServer();
    argv = Argv("alice", {"dataset", "upload", images, "--name", "gen", "--chunk-size", "4096"});
    const auto after_list = ListJson("alice");
    const auto* after_kill = Find(after_list, "gen");
    ASSERT_NE(after_kill, nullptr);
    EXPECT_GE((*after_kill)["acknowledged_chunks"].get<uint64_t>(), acked);
  }
  if (fs::exists(state_path)) {
    auto finish = RunCommand(argv);
    ASSERT_EQ(finish.exit_code, 0) << finish.err;
    EXPECT_NE(finish.out.find("resumed 'gen'"), std::string::npos) << finish.out;
  }
  EXPECT_FALSE(fs::exists(state_path)) << "resume state removed once complete";
  EXPECT_EQ((*Find(ListJson("alice"), "gen"))["complete"], true);
  EXPECT_EQ((*Find(ListJson("alice"), "gen"))["sample_count"], 24000);

  // The owner deletes the dataset and starts over, here after another deterministic cut: the
  // partial dataset's local resume state goes with it.
  ASSERT_EQ(Chiron("alice", {"dataset", "delete", "gen"}).exit_code, 0);
  {
    TcpRelay relay(server_->port(), 1 << 20);
    auto cut = RunCommand({BinaryPath("chiron"), "--profile", dir_ + "/alice", "--server",
                           relay.address(), "dataset", "upload", images, "--name", "gen",
                           "--chunk-size", "4096", "--no-data-plane"});
    ASSERT_EQ(cut.exit_code, 3) << cut.err;
  }
  ASSERT_TRUE(fs::exists(state_path));
  ASSERT_EQ(Chiron("alice", {"dataset", "delete", "gen"}).exit_code, 0);
  EXPECT_FALSE(fs::exists(state_path));
  auto fresh = RunCommand(argv);
  ASSERT_EQ(fresh.exit_code, 0) << fresh.err;
  EXPECT_EQ(fresh.out.find("resumed"), std::string::npos) << fresh.out;
  EXPECT_EQ((*Find(ListJson("alice"), "gen"))["complete"], true);
}

}  // namespace
}  // namespace chiron::testing
