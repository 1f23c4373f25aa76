// `chiron report`'s HTML page in a real browser: the renderer's output for a realistic job
// (Fashion-MNIST classes, 10 epochs, a 10 × 10 confusion matrix, a sim server) is loaded in
// headless Chromium, which must build the expected DOM (claims table, SVG charts with polylines,
// confusion matrix cells, audit status) and paint a screenshot that is not blank and shows the
// INSECURE banner's red.
//
// Chromium (Debian's `chromium`) is a declared dependency (scripts/install-deps.sh): the test
// fails, not skips, without it. Each browser run is bounded by a timeout.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <png.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "client/report/report.h"

extern char** environ;

namespace chiron::testing {
namespace {

namespace fs = std::filesystem;

constexpr char kChromium[] = "/usr/bin/chromium";
constexpr auto kBrowserTimeout = std::chrono::seconds(120);

std::string MakeTempDir() {
  std::string pattern = (fs::temp_directory_path() / "chiron-report-XXXXXX").string();
  return ::mkdtemp(pattern.data());
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

size_t Count(const std::string& haystack, const std::string& needle) {
  size_t count = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + needle.size())) {
    ++count;
  }
  return count;
}

struct BrowserRun {
  int exit_code = -1;  // -1: killed (timeout) or did not start
  bool timed_out = false;
  std::string out;
  std::string err;
};

// Runs Chromium headless on `url` with `mode_args`, a fresh profile directory and no network
// services; stdout and stderr go to files; killed after kBrowserTimeout.
BrowserRun RunChromium(const std::string& dir, const std::vector<std::string>& mode_args,
                       const std::string& url) {
  static int run = 0;
  std::string tag = std::to_string(run++);
  std::string profile = dir + "/chromium-profile-" + tag;
  fs::create_directories(profile);
  std::vector<std::string> argv = {kChromium,
                                   "--headless",
                                   "--no-sandbox",
                                   "--disable-gpu",
                                   "--disable-quic",
                                   "--no-first-run",
                                   "--disable-background-networking",
                                   "--disable-component-update",
                                   "--disable-sync",
                                   "--user-data-dir=" + profile};
  argv.insert(argv.end(), mode_args.begin(), mode_args.end());
  argv.push_back(url);
  std::string out_path = dir + "/chromium-" + tag + ".out";
  std::string err_path = dir + "/chromium-" + tag + ".err";

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  // Its own process group, so a timeout kills the browser's helper processes too.
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attributes, 0);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  BrowserRun result;
  pid_t pid = -1;
  int spawned = posix_spawn(&pid, kChromium, &actions, &attributes, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (spawned != 0) {
    result.err = "posix_spawn failed: " + std::string(strerror(spawned));
    return result;
  }
  auto deadline = std::chrono::steady_clock::now() + kBrowserTimeout;
  int status = 0;
  for (;;) {
    pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      kill(-pid, SIGKILL);
      waitpid(pid, &status, 0);
      result.timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  // Leftover helpers of the browser's group (normally none).
  kill(-pid, SIGKILL);
  if (!result.timed_out && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  result.out = ReadFile(out_path);
  result.err = ReadFile(err_path);
  return result;
}

struct Image {
  uint32_t width = 0;
  uint32_t height = 0;
  std::vector<uint8_t> rgba;
};

// Decodes a PNG file with libpng into 8-bit RGBA; empty image on error (with a message).
Image DecodePng(const std::string& path, std::string* error) {
  Image image;
  png_image png{};
  png.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&png, path.c_str())) {
    *error = png.message;
    return image;
  }
  png.format = PNG_FORMAT_RGBA;
  std::vector<uint8_t> pixels(PNG_IMAGE_SIZE(png));
  if (!png_image_finish_read(&png, nullptr, pixels.data(), 0, nullptr)) {
    *error = png.message;
    png_image_free(&png);
    return image;
  }
  image.width = png.width;
  image.height = png.height;
  image.rgba = std::move(pixels);
  return image;
}

client::report::ReportData FashionMnistReport() {
  using client::report::EpochPoint;
  client::report::ReportData data;
  data.generated_at = "2026-03-04T05:06:07Z";
  data.server = "127.0.0.1:7443";
  data.claims.platform = "sim";
  data.claims.simulated = true;
  data.claims.measurement = Bytes(48, 0x5A);
  data.claims.report_data = Bytes(64, 0x3C);
  data.claims.svn = 1;
  data.claims.details = {{"sim_root_key", std::string(64, 'e')}};
  data.claims.warnings = {
      "INSECURE: the sim platform is a software simulation; its evidence proves nothing"};
  data.job_id = "9b1f0c2d4e5f60718293a4b5c6d7e8f9";
  data.state = "succeeded";
  data.model_name = "fm-lenet";
  data.dataset_name = "fashion-mnist-train";
  data.recipe_id = std::string(64, 'c');
  data.epochs_done = data.epochs_total = 10;
  data.elapsed_seconds = 431;
  for (uint32_t e = 1; e <= 10; ++e) {
    double t = e;
    data.history.push_back(
        EpochPoint{e, 0.35 + 0.9 / t, 0.42 + 0.7 / t, 0.91 - 0.25 / t});
  }
  data.class_names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  // 600 validation samples per class; class 1 (Trouser) entirely right.
  for (size_t i = 0; i < 10; ++i) {
    uint64_t correct = i == 1 ? 600 : 600 - 30 * (i % 4 + 1);
    for (size_t j = 0; j < 10; ++j) {
      uint64_t v = 0;
      if (i == j) {
        v = correct;
      } else if (j == (i + 1) % 10) {
        v = 600 - correct;
      }
      data.confusion_matrix.push_back(v);
    }
    data.per_class_accuracy.push_back(static_cast<double>(correct) / 600.0);
  }
  data.query_budget = client::report::QueryBudget{1234, 100000};
  data.audit.fetched = true;
  data.audit.verified = true;
  data.audit.record_count = 12;
  data.audit.head_sequence = 12;
  data.audit.head_hash_hex = std::string(64, 'a');
  return data;
}

TEST(ReportBrowserTest, ChromiumIsInstalled) {
  ASSERT_EQ(access(kChromium, X_OK), 0)
      << kChromium << " is missing: it is a declared dependency of the report tests; run "
      << "scripts/install-deps.sh (Debian package `chromium`)";
}

TEST(ReportBrowserTest, RenderedReportLoadsAndPaints) {
  ASSERT_EQ(access(kChromium, X_OK), 0)
      << kChromium << " is missing: run scripts/install-deps.sh (Debian package `chromium`)";
  std::string dir = MakeTempDir();
  std::string html_path = dir + "/report.html";
  {
    std::ofstream out(html_path, std::ios::binary);
    out << client::report::RenderHtmlReport(FashionMnistReport());
  }
  std::string url = "file://" + html_path;

  // The DOM as Chromium parsed it.
  BrowserRun dom = RunChromium(dir, {"--dump-dom"}, url);
  ASSERT_FALSE(dom.timed_out) << "chromium --dump-dom did not finish in time: " << dom.err;
  ASSERT_EQ(dom.exit_code, 0) << dom.err;
  const std::string& d = dom.out;
  EXPECT_NE(d.find("<table id=\"claims\""), std::string::npos) << d.substr(0, 2000);
  EXPECT_NE(d.find("id=\"insecure-warning\""), std::string::npos);
  EXPECT_NE(d.find("<svg class=\"chart\" id=\"chart-loss\""), std::string::npos);
  EXPECT_NE(d.find("<svg class=\"chart\" id=\"chart-accuracy\""), std::string::npos);
  EXPECT_EQ(Count(d, "<polyline"), 3u);
  EXPECT_GE(Count(d, "<path class=\"axis\""), 2u);
  EXPECT_EQ(Count(d, "<circle"), 30u);
  EXPECT_NE(d.find("<table id=\"confusion\""), std::string::npos);
  EXPECT_EQ(Count(d, "<td class=\"cm-cell"), 100u);
  EXPECT_EQ(Count(d, "cm-cell cm-diag"), 10u);
  EXPECT_NE(d.find(">Ankle boot</th>"), std::string::npos);
  EXPECT_NE(d.find("<table id=\"per-class\""), std::string::npos);
  EXPECT_NE(d.find("1234 of 100000 predictions used"), std::string::npos);
  EXPECT_NE(d.find("id=\"audit-status\">Verified: 12 records"), std::string::npos);
  EXPECT_EQ(d.find("<script"), std::string::npos);

  // The page as painted.
  std::string png_path = dir + "/report.png";
  BrowserRun shot =
      RunChromium(dir, {"--screenshot=" + png_path, "--window-size=1200,1600",
                        "--hide-scrollbars"},
                  url);
  ASSERT_FALSE(shot.timed_out) << "chromium --screenshot did not finish in time: " << shot.err;
  ASSERT_EQ(shot.exit_code, 0) << shot.err;
  ASSERT_TRUE(fs::exists(png_path)) << shot.err;
  ASSERT_GT(fs::file_size(png_path), 0u);
  std::string error;
  Image image = DecodePng(png_path, &error);
  ASSERT_FALSE(image.rgba.empty()) << "cannot decode " << png_path << ": " << error;
  EXPECT_EQ(image.width, 1200u);
  EXPECT_EQ(image.height, 1600u);
  std::set<uint32_t> distinct;
  size_t banner_red = 0;
  for (size_t i = 0; i + 3 < image.rgba.size(); i += 4) {
    uint8_t r = image.rgba[i], g = image.rgba[i + 1], b = image.rgba[i + 2];
    distinct.insert((uint32_t{r} << 16) | (uint32_t{g} << 8) | b);
    // The INSECURE banner's background, #b00020.
    if (std::abs(r - 0xB0) <= 8 && g <= 10 && std::abs(b - 0x20) <= 10) ++banner_red;
  }
  // Text, charts and the heat map: far more than a blank or single-colour page.
  EXPECT_GT(distinct.size(), 50u) << "the screenshot looks blank";
  // The banner spans the page width at about 50 px high.
  EXPECT_GT(banner_red, 20000u) << "the INSECURE banner is not painted prominently";
  fs::remove_all(dir);
}

}  // namespace
}  // namespace chiron::testing
