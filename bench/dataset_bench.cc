// Dataset import + encryption throughput against gzip decompression alone, in the same run.
//
//   ninja -C build dataset_bench && build/bin/dataset_bench [images.gz [labels.gz]]
//
// Default input: Debian's Fashion-MNIST training split (60,000 28x28 images, gzip). Baseline:
// inflating the images and labels files with zlib's gzread and discarding the bytes, which is
// the least any importer of these files must do. Measured: the full client upload path without
// the network: IdxSource (header checks, label pass, streamed inflate) feeding EncryptSource
// (DatasetWriter, 1 MiB AES-256-GCM chunks), with a sink that only counts bytes. Also shown for
// reference: verifying and decrypting the resulting container in memory (the runtime's side).
// Each figure is the median of 5 runs in thread CPU time; the ratio import+encrypt / baseline is
// printed (lower is better; 1.0 would mean encryption and parsing are free).
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <string>
#include <vector>

#include "client/importers/encrypt.h"
#include "client/importers/idx_source.h"
#include "shared/crypto/random.h"
#include "shared/dataset/container.h"

namespace {

using namespace chiron;

constexpr int kRepetitions = 5;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "dataset_bench: %s\n", what.c_str());
  std::exit(1);
}

double Seconds(const std::function<void()>& run) {
  timespec start, end;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start);
  run();
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &end);
  return static_cast<double>(end.tv_sec - start.tv_sec) +
         static_cast<double>(end.tv_nsec - start.tv_nsec) * 1e-9;
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

uint64_t GunzipDiscard(const std::string& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) Die("cannot open " + path);
  gzbuffer(file, 64 * 1024);
  std::vector<uint8_t> buffer(64 * 1024);
  uint64_t total = 0;
  int got;
  while ((got = gzread(file, buffer.data(), static_cast<unsigned>(buffer.size()))) > 0) {
    total += static_cast<uint64_t>(got);
  }
  if (got < 0) Die("gzread failed on " + path);
  gzclose(file);
  return total;
}

void Report(const char* name, double seconds, double megabytes, double images) {
  std::printf("  %-34s %7.3f s  %8.1f MB/s  %10.0f images/s\n", name, seconds, megabytes / seconds,
              images / seconds);
}

}  // namespace

int main(int argc, char** argv) {
  std::string images =
      argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";
  std::string labels = argc > 2 ? argv[2] : importers::DefaultIdxLabelsPath(images);

  auto key = crypto::RandomBytes(dataset::kDatasetKeySize);
  auto id = dataset::NewDatasetId();
  if (!key.ok() || !id.ok()) Die("random key");

  std::vector<double> baseline, import, open;
  uint64_t decompressed = 0, samples = 0, sample_bytes = 0, container_bytes = 0;
  Bytes container;
  for (int rep = 0; rep < kRepetitions; ++rep) {
    baseline.push_back(
        Seconds([&] { decompressed = GunzipDiscard(images) + GunzipDiscard(labels); }));

    bool keep = rep == 0;  // keep one container to time the reader
    import.push_back(Seconds([&] {
      auto source = importers::OpenIdxFiles(images, labels, {});
    if (!source.ok()) Die(source.status().ToString());
    auto stats =
        importers::EncryptSource(**source, *key, *id, [&](const dataset::ContainerPiece& piece) {
          if (keep) Append(container, piece.bytes);
          return Status::Ok();
        });
    if (!stats.ok()) Die(stats.status().ToString());
    samples = stats->samples;
    sample_bytes = stats->samples * (*source)->schema().sample_size();
    container_bytes = stats->container_bytes;
  }));

  open.push_back(Seconds([&] {
    uint64_t records = 0;
    Status status = dataset::ReadContainer(*key, container, [&](const dataset::Record&) {
      ++records;
      return Status::Ok();
    });
    if (!status.ok() || records != samples) Die("reading back: " + status.ToString());
  }));
}

double base = Median(baseline), imp = Median(import), rd = Median(open);
double megabytes = static_cast<double>(sample_bytes) / 1e6;
std::printf("dataset_bench: %s\n", images.c_str());
std::printf(
    "  %llu images, %.1f MB of pixels (%.1f MB decompressed incl. headers and labels), "
    "container %.1f MB; median of %d, thread CPU time\n",
    static_cast<unsigned long long>(samples), megabytes, static_cast<double>(decompressed) / 1e6,
    static_cast<double>(container_bytes) / 1e6, kRepetitions);
Report("gzip decompress only (baseline)", base, megabytes, static_cast<double>(samples));
Report("import + encrypt (IdxSource+writer)", imp, megabytes, static_cast<double>(samples));
Report("verify + decrypt container", rd, megabytes, static_cast<double>(samples));
std::printf("  ratio import+encrypt / decompress-only: %.2fx\n", imp / base);
return 0;
}
