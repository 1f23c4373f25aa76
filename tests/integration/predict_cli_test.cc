// `chiron predict` and `chiron model limit|grant|revoke|show|shared` through the real binaries:
// chirond (sim platform) with the sandboxed worker and the built-in mlp, `chiron` for two owners.
//
// Inputs are real files made here: a Fashion-MNIST subset (IDX, from Debian's files), PNG images
// of test samples (written with libpng, in per-class folders and loose), and CSV tables of a
// synthetic two-class problem (with and without the label column). Checks: every kind predicts,
// true labels and accuracy are shown where the inputs carry them, every bad input is refused on
// the client with the file (and line) named, batches follow the rate limit, the owner's
// label-only narrowing removes scores, and a grantee can predict (and only predict) until
// revoked. What the CLI says about it: --top-k capped (by the owner's limits, by the class
// count), IDX images without --labels, a grantee who forgot --owner.
#include <gtest/gtest.h>
#include <png.h>
#include <signal.h>
#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "tests/integration/process.h"
#include "tests/integration/test_files.h"

namespace chiron::testing {
namespace {

namespace fs = std::filesystem;

constexpr char kFashionDir[] = "/usr/share/datasets/fashion-mnist";
constexpr size_t kImageSize = 28 * 28;
const char* const kClassNames[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                     "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

// An 8-bit PNG (grey: channels 1; RGB: 3) of interleaved `pixels`.
bool WritePng(const std::string& path, uint32_t width, uint32_t height, int channels,
              const std::string& pixels) {
  FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) return false;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    std::fclose(file);
    return false;
  }
  png_init_io(png, file);
  png_set_IHDR(png, info, width, height, 8, channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (uint32_t y = 0; y < height; ++y) {
    png_write_row(png, reinterpret_cast<png_const_bytep>(pixels.data() + y * width * channels));
  }
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return std::fclose(file) == 0;
}

nlohmann::json ParseJson(const CommandResult& result) {
  auto j = nlohmann::json::parse(result.out, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(j.is_discarded()) << "not JSON: " << result.out << "\n" << result.err;
  return j;
}

// Two classes of 4 features: "up" when x0 + x1 > 0, else "down" (x2, x3 are noise).
std::string SyntheticCsv(int rows, uint32_t seed, bool with_label, const std::string& header) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::ostringstream out;
  out << header << "\n";
  for (int i = 0; i < rows; ++i) {
    float x[4];
    for (float& v : x) v = normal(rng);
    if (std::fabs(x[0] + x[1]) < 0.3f) x[0] += x[0] + x[1] >= 0 ? 0.6f : -0.6f;  // a margin
    out << x[0] << "," << x[1] << "," << x[2] << "," << x[3];
    if (with_label) out << "," << (x[0] + x[1] > 0 ? "up" : "down");
    out << "\n";
  }
  return out.str();
}

class PredictCliTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir("chiron-predict-cli"); }
  void TearDown() override {
    if (HasFailure() && server_) {
      std::cout << "chirond's log:\n" << ReadText(server_->log_path());
    }
    server_.reset();
    fs::remove_all(dir_);
  }

  CommandResult Owner(const std::string& profile, std::vector<std::string> args) {
    std::vector<std::string> argv = {BinaryPath("chiron"), "--profile", dir_ + "/" + profile,
                                     "--server", server_->address()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }

  std::string Init(const std::string& profile) {
    auto init = Owner(profile, {"init", "--name", profile, "--policy", server_->policy_path()});
    EXPECT_EQ(init.exit_code, 0) << init.err;
    auto who = Owner(profile, {"whoami", "--json"});
    EXPECT_EQ(who.exit_code, 0) << who.err;
    return ParseJson(who).value("id", "");
  }

  std::string dir_;
  std::unique_ptr<ChirondProcess> server_;
};

TEST_F(PredictCliTest, IdxPngCsvInputsBatchesLimitsAndGrants) {
  ASSERT_TRUE(fs::exists(std::string(kFashionDir) + "/t10k-images-idx3-ubyte.gz"))
      << "install Debian's dataset-fashion-mnist";
  // Training data: 3000 Fashion-MNIST training images as a plain IDX pair ("fashion" in the
  // name gives the class names).
  const uint32_t kTrain = 3000;
  std::string pixels = ReadGzipRecords(std::string(kFashionDir) + "/train-images-idx3-ubyte.gz",
                                       16, kImageSize, kTrain);
  std::string labels = ReadGzipRecords(std::string(kFashionDir) + "/train-labels-idx1-ubyte.gz",
                                       8, 1, kTrain);
  ASSERT_FALSE(pixels.empty());
  std::string images_file, labels_file;
  for (uint32_t v : {0x00000803u, kTrain, 28u, 28u}) AppendU32Be(images_file, v);
  for (uint32_t v : {0x00000801u, kTrain}) AppendU32Be(labels_file, v);
  std::ofstream(dir_ + "/fashion-train-images-idx3-ubyte", std::ios::binary)
      << images_file + pixels;
  std::ofstream(dir_ + "/fashion-train-labels-idx1-ubyte", std::ios::binary)
      << labels_file + labels;
  std::ofstream(dir_ + "/points.csv") << SyntheticCsv(600, 1, true, "a,b,c,d,species");

  server_ = std::make_unique<ChirondProcess>(dir_, std::vector<std::string>{},
                                             BinaryPath("chiron-worker"));
  ASSERT_GT(server_->port(), 0);
  const std::string alice_id = Init("alice");
  const std::string bob_id = Init("bob");
  ASSERT_EQ(alice_id.size(), 64u);
  ASSERT_EQ(bob_id.size(), 64u);
  ASSERT_EQ(Owner("alice", {"dataset", "upload", dir_ + "/fashion-train-images-idx3-ubyte",
                            "--name", "fm"})
                .exit_code,
            0);
  ASSERT_EQ(Owner("alice", {"dataset", "upload", dir_ + "/points.csv", "--name", "pts",
                            "--label-column", "species"})
                .exit_code,
            0);
  auto train = Owner("alice", {"train", "--dataset", "fm", "--recipe", "mlp", "--model", "fm",
                               "--epochs", "2", "--json"});
  ASSERT_EQ(train.exit_code, 0) << train.err;
  train = Owner("alice", {"train", "--dataset", "pts", "--recipe", "mlp", "--model", "pts",
                          "--epochs", "5", "--json"});
  ASSERT_EQ(train.exit_code, 0) << train.err;

  const std::string t10k = std::string(kFashionDir) + "/t10k-images-idx3-ubyte.gz";
  const std::string t10k_labels = std::string(kFashionDir) + "/t10k-labels-idx1-ubyte.gz";

  // IDX with labels, 100 samples: two requests of 64 and 36; accuracy shown.
  auto idx = Owner("alice", {"predict", "--model", "fm", t10k, "--labels", t10k_labels,
                             "--count", "100", "--json"});
  ASSERT_EQ(idx.exit_code, 0) << idx.err;
  auto idx_json = ParseJson(idx);
  ASSERT_EQ(idx_json["predictions"].size(), 100u);
  EXPECT_GT(idx_json["accuracy"].get<double>(), 0.5) << idx.out;
  EXPECT_EQ(idx_json["queries_used"], 100);
  EXPECT_EQ(idx_json["predictions"][0]["probabilities"].size(), 5u) << "top 5 by default";

  // PNG: 12 test images in per-class folders (the folder is the true label), 2 loose images.
  std::string test_pixels = ReadGzipRecords(t10k, 16, kImageSize, 14);
  std::string test_labels = ReadGzipRecords(t10k_labels, 8, 1, 14);
  ASSERT_EQ(test_pixels.size(), 14 * kImageSize);
  for (int i = 0; i < 12; ++i) {
    std::string folder = dir_ + "/png/" + kClassNames[static_cast<uint8_t>(test_labels[i])];
    fs::create_directories(folder);
    ASSERT_TRUE(WritePng(folder + "/" + std::to_string(i) + ".png", 28, 28, 1,
                         test_pixels.substr(i * kImageSize, kImageSize)));
  }
  fs::create_directories(dir_ + "/loose");
  for (int i = 12; i < 14; ++i) {
    ASSERT_TRUE(WritePng(dir_ + "/loose/" + std::to_string(i) + ".png", 28, 28, 1,
                         test_pixels.substr(i * kImageSize, kImageSize)));
  }
  auto png = Owner("alice", {"predict", "--model", "fm", dir_ + "/png", dir_ + "/loose/12.png",
                             "--json"});
  ASSERT_EQ(png.exit_code, 0) << png.err;
  auto png_json = ParseJson(png);
  ASSERT_EQ(png_json["predictions"].size(), 13u);
  int labelled = 0;
  for (const auto& p : png_json["predictions"]) labelled += p.contains("label") ? 1 : 0;
  EXPECT_EQ(labelled, 12) << "per-class folders give the true label; a loose image has none";
  EXPECT_TRUE(png_json.contains("accuracy"));
  // Text output: the images drawn, verdicts and the accuracy line.
  auto png_text = Owner("alice", {"predict", "--model", "fm", dir_ + "/loose",
                                  "--image-style", "ascii"});
  ASSERT_EQ(png_text.exit_code, 0) << png_text.err;
  EXPECT_NE(png_text.out.find("12.png"), std::string::npos) << png_text.out;
  EXPECT_NE(png_text.out.find("13.png"), std::string::npos) << png_text.out;
  // A colour image of the wrong size: refused on the client, naming the file and the shapes.
  ASSERT_TRUE(WritePng(dir_ + "/big.png", 32, 32, 3, std::string(32 * 32 * 3, '\x40')));
  auto big = Owner("alice", {"predict", "--model", "fm", dir_ + "/big.png"});
  EXPECT_EQ(big.exit_code, 4) << big.err;
  EXPECT_NE(big.err.find("big.png is a 32x32 RGB image (3x32x32)"), std::string::npos) << big.err;
  EXPECT_NE(big.err.find("takes 28x28 u8 samples"), std::string::npos) << big.err;
  std::ofstream(dir_ + "/fake.png") << "not a png";
  auto fake = Owner("alice", {"predict", "--model", "fm", dir_ + "/fake.png"});
  EXPECT_EQ(fake.exit_code, 4);
  EXPECT_NE(fake.err.find("fake.png: not a PNG file"), std::string::npos) << fake.err;

  // CSV, labelled: the label column shows the truth and is not sent (4 features go out).
  std::ofstream(dir_ + "/test.csv") << SyntheticCsv(50, 2, true, "a,b,c,d,species");
  auto csv = Owner("alice", {"predict", "--model", "pts", dir_ + "/test.csv", "--label-column",
                             "species", "--json"});
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  auto csv_json = ParseJson(csv);
  ASSERT_EQ(csv_json["predictions"].size(), 50u);
  EXPECT_GT(csv_json["accuracy"].get<double>(), 0.8) << csv.out;
  EXPECT_EQ(csv_json["predictions"][0]["source"], "test.csv row 1");
  // Unlabelled CSV: predictions, no truth.
  std::ofstream(dir_ + "/plain.csv") << SyntheticCsv(5, 3, false, "a,b,c,d");
  auto plain = Owner("alice", {"predict", "--model", "pts", dir_ + "/plain.csv", "--json"});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  auto plain_json = ParseJson(plain);
  ASSERT_EQ(plain_json["predictions"].size(), 5u);
  EXPECT_FALSE(plain_json.contains("accuracy"));
  // Bad CSVs: the file, line and column are named; nothing is sent.
  std::ofstream(dir_ + "/three.csv") << "a,b,c\n1,2,3\n";
  auto three = Owner("alice", {"predict", "--model", "pts", dir_ + "/three.csv"});
  EXPECT_EQ(three.exit_code, 4);
  EXPECT_NE(three.err.find("three.csv:1: the header has 3 feature columns"), std::string::npos)
      << three.err;
  std::ofstream(dir_ + "/word.csv") << "a,b,c,d,species\n1,2,3,4,up\n1,x,3,4,down\n";
  auto word = Owner("alice", {"predict", "--model", "pts", dir_ + "/word.csv", "--label-column",
                              "species"});
  EXPECT_EQ(word.exit_code, 4);
  EXPECT_NE(word.err.find("word.csv:3:2 (column 'b'): 'x' is not a number"), std::string::npos)
      << word.err;
  std::ofstream(dir_ + "/sideways.csv") << "a,b,c,d,species\n1,2,3,4,sideways\n";
  auto sideways = Owner("alice", {"predict", "--model", "pts", dir_ + "/sideways.csv",
                                  "--label-column", "species"});
  EXPECT_EQ(sideways.exit_code, 4);
  EXPECT_NE(sideways.err.find("sideways.csv:2:5"), std::string::npos) << sideways.err;
  // Images into a table model, and a table into an image model: refused with the reason.
  auto mismatch = Owner("alice", {"predict", "--model", "pts", dir_ + "/loose/12.png"});
  EXPECT_EQ(mismatch.exit_code, 4);
  EXPECT_NE(mismatch.err.find("PNG pixels are bytes"), std::string::npos) << mismatch.err;
  auto mismatch2 = Owner("alice", {"predict", "--model", "fm", dir_ + "/test.csv"});
  EXPECT_EQ(mismatch2.exit_code, 4);
  EXPECT_NE(mismatch2.err.find("CSV features are f32"), std::string::npos) << mismatch2.err;

  // The owner's limits: 10 per minute; the client sends batches of 10, the second is refused
  // with the time to wait (--no-wait: stop there; the first 10 are printed).
  auto limit = Owner("alice", {"model", "limit", "fm", "--per-minute", "10", "--json"});
  ASSERT_EQ(limit.exit_code, 0) << limit.err;
  EXPECT_EQ(ParseJson(limit)["rate_per_minute"], 10);
  auto burst = Owner("alice", {"predict", "--model", "fm", t10k, "--count", "15", "--no-wait",
                               "--json"});
  EXPECT_EQ(burst.exit_code, 7) << burst.err;
  EXPECT_EQ(ParseJson(burst)["predictions"].size(), 10u);
  EXPECT_NE(burst.err.find("retry in"), std::string::npos) << burst.err;
  EXPECT_NE(burst.err.find("rate limit"), std::string::npos) << burst.err;
  ASSERT_EQ(Owner("alice", {"model", "limit", "fm", "--per-minute", "0"}).exit_code, 0);
  // Label only, set by the owner: no scores come back.
  ASSERT_EQ(Owner("alice", {"model", "limit", "fm", "--label-only"}).exit_code, 0);
  auto label_only = Owner("alice", {"predict", "--model", "fm", t10k, "--labels", t10k_labels,
                                    "--count", "4", "--top-k", "3", "--json"});
  ASSERT_EQ(label_only.exit_code, 0) << label_only.err;
  auto label_json = ParseJson(label_only);
  EXPECT_EQ(label_json["label_only"], true);
  // --top-k 3 asked, 1 given: the owner is told why.
  EXPECT_NE(label_only.err.find("chiron: --top-k 3 capped to 1: your limits on this model "
                                "(`chiron model limit`) returns the most probable class only"),
            std::string::npos)
      << label_only.err;
  for (const auto& p : label_json["predictions"]) {
    EXPECT_EQ(p["classes"].size(), 1u);
    EXPECT_FALSE(p.contains("probabilities"));
  }
  auto label_text = Owner("alice", {"predict", "--model", "fm", t10k, "--count", "2",
                                    "--image-style", "none"});
  EXPECT_NE(label_text.out.find("labels only"), std::string::npos) << label_text.out;
  // IDX images without --labels: no true class shown, and the labels file beside them named.
  EXPECT_NE(label_text.err.find("chiron: " + t10k +
                                " carries no labels, so no true class or "
                                "accuracy is shown: pass --labels LABELS-FILE (here: --labels " +
                                t10k_labels + ")"),
            std::string::npos)
      << label_text.err;
  EXPECT_EQ(label_text.err.find("capped"), std::string::npos) << label_text.err;
  EXPECT_EQ(label_text.out.find("%)"), std::string::npos) << label_text.out;
  auto show = Owner("alice", {"model", "show", "fm"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find("output:           label only"), std::string::npos) << show.out;
  ASSERT_EQ(Owner("alice", {"model", "limit", "fm", "--no-output-limits"}).exit_code, 0);
  // An owner's top-k narrowing caps --top-k, and so does the number of classes; with --labels no
  // note about labels.
  ASSERT_EQ(Owner("alice", {"model", "limit", "fm", "--top-k", "2"}).exit_code, 0);
  auto narrowed = Owner("alice", {"predict", "--model", "fm", t10k, "--labels", t10k_labels,
                                  "--count", "1", "--top-k", "4", "--json"});
  ASSERT_EQ(narrowed.exit_code, 0) << narrowed.err;
  EXPECT_EQ(ParseJson(narrowed)["predictions"][0]["classes"].size(), 2u);
  EXPECT_NE(narrowed.err.find("--top-k 4 capped to 2: your limits on this model (`chiron model "
                              "limit`) returns at most 2 classes per sample"),
            std::string::npos)
      << narrowed.err;
  EXPECT_EQ(narrowed.err.find("carries no labels"), std::string::npos) << narrowed.err;
  ASSERT_EQ(Owner("alice", {"model", "limit", "fm", "--no-output-limits"}).exit_code, 0);
  auto all_classes = Owner("alice", {"predict", "--model", "fm", t10k, "--labels", t10k_labels,
                                     "--count", "1", "--top-k", "12"});
  ASSERT_EQ(all_classes.exit_code, 0) << all_classes.err;
  EXPECT_NE(all_classes.err.find("--top-k 12 capped to 10: the model has 10 classes"),
            std::string::npos)
      << all_classes.err;

  // Grants: bob cannot predict until alice grants; then only predict; revoked, refused again.
  auto before = Owner("bob", {"predict", "--model", "fm", "--owner", alice_id, t10k});
  EXPECT_EQ(before.exit_code, 4) << before.err;
  EXPECT_NE(before.err.find("shared with you"), std::string::npos) << before.err;
  auto grant = Owner("alice", {"model", "grant", "fm", "--to", bob_id, "--budget", "8"});
  ASSERT_EQ(grant.exit_code, 0) << grant.err;
  EXPECT_NE(grant.out.find(bob_id), std::string::npos) << grant.out;
  auto shown = ParseJson(Owner("alice", {"model", "show", "fm", "--json"}));
  ASSERT_EQ(shown["grants"].size(), 1u);
  EXPECT_EQ(shown["grants"][0]["grantee_id"], bob_id);
  auto list = Owner("alice", {"model", "list"});
  EXPECT_NE(list.out.find("SHARED"), std::string::npos) << list.out;
  // The grantee who forgot --owner is told whose model it is and what to add.
  auto forgot_owner = Owner("bob", {"predict", "--model", "fm", t10k, "--count", "1"});
  EXPECT_EQ(forgot_owner.exit_code, 4) << forgot_owner.err;
  EXPECT_NE(forgot_owner.err.find("you have no model named 'fm', but principal " + alice_id +
                                  " shared one with you: add --owner " + alice_id),
            std::string::npos)
      << forgot_owner.err;
  auto shared = Owner("bob", {"model", "shared"});
  ASSERT_EQ(shared.exit_code, 0) << shared.err;
  EXPECT_NE(shared.out.find("predict --model fm --owner " + alice_id), std::string::npos)
      << shared.out;
  auto as_grantee = Owner("bob", {"predict", "--model", "fm", "--owner", alice_id, t10k,
                                  "--labels", t10k_labels, "--count", "5", "--json"});
  ASSERT_EQ(as_grantee.exit_code, 0) << as_grantee.err;
  auto grantee_json = ParseJson(as_grantee);
  EXPECT_EQ(grantee_json["predictions"].size(), 5u);
  EXPECT_EQ(grantee_json["queries_used"], 5);
  EXPECT_EQ(grantee_json["query_budget"], 8);
  auto over = Owner("bob", {"predict", "--model", "fm", "--owner", alice_id, t10k, "--count",
                            "5"});
  EXPECT_NE(over.exit_code, 0);
  EXPECT_NE(over.err.find("grant"), std::string::npos) << over.err;
  EXPECT_EQ(Owner("bob", {"model", "delete", "fm"}).exit_code, 4);
  EXPECT_EQ(Owner("bob", {"model", "evaluate", "fm", "--dataset", "fm"}).exit_code, 4);
  EXPECT_EQ(Owner("bob", {"model", "limit", "fm", "--per-minute", "1000"}).exit_code, 4);
  EXPECT_EQ(Owner("bob", {"model", "grant", "fm", "--to", bob_id}).exit_code, 4);
  auto revoke = Owner("alice", {"model", "revoke", "fm", "--from", bob_id});
  ASSERT_EQ(revoke.exit_code, 0) << revoke.err;
  auto after = Owner("bob", {"predict", "--model", "fm", "--owner", alice_id, t10k});
  EXPECT_EQ(after.exit_code, 4) << after.err;
  // Both audit chains verify and hold the grant, the grantee's queries and the revocation.
  auto alice_audit = Owner("alice", {"audit", "--json"});
  ASSERT_EQ(alice_audit.exit_code, 0) << alice_audit.err;
  for (const char* event : {"model.grant", "model.revoke", "model.limit"}) {
    EXPECT_NE(alice_audit.out.find(event), std::string::npos) << event;
  }
  EXPECT_NE(alice_audit.out.find("by=" + bob_id), std::string::npos) << alice_audit.out;
  auto bob_audit = Owner("bob", {"audit", "--json"});
  ASSERT_EQ(bob_audit.exit_code, 0) << bob_audit.err;
  EXPECT_NE(bob_audit.out.find("model.predict"), std::string::npos) << bob_audit.out;

  // Every new command documents itself with an example.
  for (const char* sub : {"show", "limit", "grant", "revoke", "shared"}) {
    auto help = RunCommand({BinaryPath("chiron"), "model", sub, "--help"});
    EXPECT_EQ(help.exit_code, 0) << sub;
    EXPECT_NE(help.out.find("Example"), std::string::npos) << sub << ":\n" << help.out;
    EXPECT_NE(help.out.find(std::string("chiron model ") + sub), std::string::npos) << sub;
  }
}

// Nothing charged is thrown away. Over the rate limit, `--no-wait` prints every answered sample
// (text and JSON; the JSON names the unanswered ones and why) and exits 7 (partial); without it
// the client waits as long as the server's retry-after says and answers every sample. A grant
// budget smaller than the run: the answered batches are printed and the message says how many
// queries are left. (On the old client, a refused later batch printed nothing.)
TEST_F(PredictCliTest, OverTheLimitsEveryAnsweredSampleIsPrintedAndPacingAnswersAll) {
  std::ofstream(dir_ + "/points.csv") << SyntheticCsv(300, 1, true, "a,b,c,d,species");
  std::ofstream(dir_ + "/test.csv") << SyntheticCsv(128, 2, true, "a,b,c,d,species");
  server_ = std::make_unique<ChirondProcess>(dir_, std::vector<std::string>{},
                                             BinaryPath("chiron-worker"));
  ASSERT_GT(server_->port(), 0);
  Init("alice");
  const std::string bob_id = Init("bob");
  ASSERT_EQ(Owner("alice", {"dataset", "upload", dir_ + "/points.csv", "--name", "pts",
                            "--label-column", "species"})
                .exit_code,
            0);
  auto train = Owner("alice", {"train", "--dataset", "pts", "--recipe", "mlp", "--model", "pts",
                               "--epochs", "1", "--json"});
  ASSERT_EQ(train.exit_code, 0) << train.err;
  const std::string test_csv = dir_ + "/test.csv";

  // 40 per minute: batches of 40. Of 50 samples the first batch is answered (and charged), the
  // second refused: with --no-wait the 40 are printed, the 10 others named, exit 7.
  ASSERT_EQ(Owner("alice", {"model", "limit", "pts", "--per-minute", "40"}).exit_code, 0);
  auto partial = Owner("alice", {"predict", "--model", "pts", test_csv, "--label-column",
                                 "species", "--count", "50", "--no-wait", "--json"});
  EXPECT_EQ(partial.exit_code, 7) << partial.err;
  auto partial_json = ParseJson(partial);
  ASSERT_EQ(partial_json["predictions"].size(), 40u) << partial.out;
  EXPECT_EQ(partial_json["predictions"][39]["source"], "test.csv row 40");
  EXPECT_EQ(partial_json["complete"], false);
  EXPECT_EQ(partial_json["answered"], 40);
  EXPECT_EQ(partial_json["queries_used"], 40);
  ASSERT_EQ(partial_json["unanswered"].size(), 10u);
  EXPECT_EQ(partial_json["unanswered"][0]["source"], "test.csv row 41");
  EXPECT_EQ(partial_json["unanswered"][9]["index"], 49);
  EXPECT_EQ(partial_json["stopped"]["reason"], "rate_limit");
  EXPECT_NE(partial_json["stopped"]["message"].get<std::string>().find("40 queries per minute"),
            std::string::npos);
  // The server said when to retry, machine-readably: 10 tokens at 40 a minute, at most 15 s
  // (less by what refilled since the first batch).
  ASSERT_TRUE(partial_json["stopped"].contains("retry_after_ms")) << partial.out;
  EXPECT_GT(partial_json["stopped"]["retry_after_ms"].get<int64_t>(), 0);
  EXPECT_LE(partial_json["stopped"]["retry_after_ms"].get<int64_t>(), 15000);
  EXPECT_NE(partial.err.find("answered 40 of 50 samples (printed)"), std::string::npos)
      << partial.err;
  EXPECT_NE(partial.err.find("--offset 40 --count 10"), std::string::npos) << partial.err;

  // The same in text (a new limit starts a full bucket): 41 answered and shown, 9 not.
  ASSERT_EQ(Owner("alice", {"model", "limit", "pts", "--per-minute", "41"}).exit_code, 0);
  auto text = Owner("alice", {"predict", "--model", "pts", test_csv, "--label-column",
                              "species", "--count", "50", "--no-wait"});
  EXPECT_EQ(text.exit_code, 7) << text.err;
  std::printf("--no-wait over the rate limit, stderr:\n%s", text.err.c_str());
  EXPECT_NE(text.out.find("test.csv row 41\n"), std::string::npos) << text.out;
  EXPECT_EQ(text.out.find("test.csv row 42\n"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("answered 41 of 50 samples"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("queries used: 81"), std::string::npos) << text.out;
  EXPECT_NE(text.err.find("--offset 41 --count 9"), std::string::npos) << text.err;
  // Refused at once (the bucket is empty; 30 need 44 s to refill): nothing answered is a plain
  // error, with the wait.
  auto empty = Owner("alice", {"predict", "--model", "pts", test_csv, "--label-column",
                               "species", "--count", "30", "--no-wait"});
  EXPECT_EQ(empty.exit_code, 4) << empty.err;
  EXPECT_NE(empty.err.find("run again in"), std::string::npos) << empty.err;

  // Ctrl-C while waiting for the rate limit (42 per minute: 42 answered, the other 8 wait about
  // 11 s): the run stops there and the 42 answered are printed, exit 7.
  ASSERT_EQ(Owner("alice", {"model", "limit", "pts", "--per-minute", "42"}).exit_code, 0);
  {
    BackgroundCommand waiting(
        {BinaryPath("chiron"), "--profile", dir_ + "/alice", "--server", server_->address(),
         "predict", "--model", "pts", test_csv, "--label-column", "species", "--count", "50",
         "--json"},
        dir_);
    bool told = false;
    for (int i = 0; i < 600 && !told; ++i) {  // liveness bound: 60 s
      told = ReadText(dir_ + "/bg.err").find("waiting") != std::string::npos;
      if (!told) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_TRUE(told) << ReadText(dir_ + "/bg.err");
    ::kill(waiting.pid(), SIGINT);
    auto interrupted = waiting.Wait();
    EXPECT_EQ(interrupted.exit_code, 7) << interrupted.err;
    auto interrupted_json = ParseJson(interrupted);
    EXPECT_EQ(interrupted_json["predictions"].size(), 42u);
    EXPECT_EQ(interrupted_json["stopped"]["reason"], "interrupted");
    EXPECT_EQ(interrupted_json["unanswered"].size(), 8u);
  }

  // Pacing. A new limit N starts a full bucket; --count N + d sends 64, then N + d - 64 finding
  // N - 64 tokens plus what refilled meanwhile: refused with a wait of about d tokens (d * 60 / N
  // seconds), which the client waits, saying so, before sending them again; every sample is
  // answered. Whether the refusal happens depends on the time between the two batches, so a
  // larger deficit is tried if a machine was slower than the wait (0.5 s, then 2 s, then 8 s):
  // the test never fails on timing, and every run must answer all.
  uint64_t used = 81 + 42;
  bool waited = false;
  for (const auto& [limit, deficit] : {std::pair{120, 1}, std::pair{118, 4}, std::pair{112, 16}}) {
    ASSERT_EQ(Owner("alice", {"model", "limit", "pts", "--per-minute", std::to_string(limit)})
                  .exit_code,
              0);
    const int count = limit + deficit;
    auto paced = Owner("alice", {"predict", "--model", "pts", test_csv, "--label-column",
                                 "species", "--count", std::to_string(count), "--json"});
    ASSERT_EQ(paced.exit_code, 0) << paced.err;
    std::printf("paced at %d per minute, stderr:\n%s", limit, paced.err.c_str());
    auto paced_json = ParseJson(paced);
    EXPECT_EQ(paced_json["predictions"].size(), static_cast<size_t>(count));
    EXPECT_EQ(paced_json["complete"], true);
    EXPECT_TRUE(paced_json["unanswered"].empty());
    used += count;
    EXPECT_EQ(paced_json["queries_used"], used);
    waited = paced.err.find("rate limit of model 'pts': waiting ") != std::string::npos;
    if (waited) {
      EXPECT_NE(paced.err.find("(--no-wait to stop instead)"), std::string::npos) << paced.err;
      break;
    }
  }
  EXPECT_TRUE(waited) << "no run was refused for the rate limit, even with an 8 s deficit";

  // A grant budget smaller than the run: bob's first batch of 64 passes, the next 57 find 36
  // queries left. The 64 are printed; the message says how many are left, not "spent".
  ASSERT_EQ(Owner("alice", {"model", "limit", "pts", "--per-minute", "0"}).exit_code, 0);
  ASSERT_EQ(Owner("alice", {"model", "grant", "pts", "--to", bob_id, "--budget", "100"})
                .exit_code,
            0);
  const std::string alice_id = ParseJson(Owner("alice", {"whoami", "--json"})).value("id", "");
  auto grantee = Owner("bob", {"predict", "--model", "pts", "--owner", alice_id, test_csv,
                               "--label-column", "species", "--count", "121", "--json"});
  EXPECT_EQ(grantee.exit_code, 7) << grantee.err;
  std::printf("grant budget smaller than the run, stderr:\n%s", grantee.err.c_str());
  auto grantee_json = ParseJson(grantee);
  EXPECT_EQ(grantee_json["predictions"].size(), 64u);
  EXPECT_EQ(grantee_json["queries_used"], 64);
  EXPECT_EQ(grantee_json["stopped"]["reason"], "budget");
  EXPECT_NE(grantee.err.find("has 36 of its 100 queries left and this request asks for 57"),
            std::string::npos)
      << grantee.err;
  EXPECT_NE(grantee.err.find("ask the model's owner for more"), std::string::npos)
      << grantee.err;
  EXPECT_NE(grantee.err.find("--offset 64 --count 57"), std::string::npos) << grantee.err;
}

}  // namespace
}  // namespace chiron::testing
