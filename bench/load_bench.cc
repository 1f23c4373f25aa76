// Dataset load for a job (jobs::LoadDataset: the key unsealed, every chunk read from the store's
// segment, authenticated and decrypted into the records buffer) against raw AES-256-GCM
// decryption of the same bytes, measured in the same run.
//
//   cmake --build build --target load_bench && build/bin/load_bench [--reps N] [--dir DIR]
//       [images.gz [labels.gz]]
//
// Input: Debian's Fashion-MNIST training split (60,000 28x28 images), imported and encrypted as
// `chiron dataset upload` does (1 MiB AES-256-GCM chunks) and stored in a real Store on disk (a
// temporary directory under /var/tmp, or --dir), through BeginDataset and AppendChunks as an
// upload stores it. The first load reads the segment from the disk (the bench evicts the
// segment's pages from the page cache first, posix_fadvise DONTNEED); it is shown on its own
// line, and the median is taken over the loads after it, which read through the page cache.
// Baseline, interleaved with the loads: AES-256-GCM decryption and tag check of as many bytes as
// the records, one OpenSSL one-shot message (one context, one init, one update, one final), as
// crypto_bench's "raw one-shot" does. Ratio = load MB/s / baseline MB/s (1.0 would mean that
// reading the store and one authenticated decryption pass cost no more than the cipher alone).
// The clock stops when LoadDataset returns; releasing the records (SecretBytes: zeroed, then
// freed) is timed on its own line. Also printed: AES-GCM chunk authentications per chunk loaded
// (the "one authentication pass": the code before it authenticated every chunk twice).
// Wall-clock seconds (the load does I/O), median of --reps (default 7); min..max shown because the
// machine is shared.
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "client/importers/encrypt.h"
#include "client/importers/idx_source.h"
#include "runtime/jobs/dataset_loader.h"
#include "runtime/store/store.h"
#include "shared/crypto/aead_stream.h"
#include "shared/crypto/random.h"
#include "shared/dataset/container.h"

namespace {

using namespace chiron;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "load_bench: %s\n", what.c_str());
  std::exit(1);
}

double WallSeconds(const std::function<void()>& run) {
  auto start = std::chrono::steady_clock::now();
  run();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// One-shot AES-256-GCM over the whole buffer (crypto_bench's baseline).
void RawGcm(bool encrypt, const Bytes& key, const uint8_t* in, size_t size, uint8_t* out,
            uint8_t tag[16]) {
  static const uint8_t kIv[12] = {0};
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  int len = 0;
  if (ctx == nullptr || cipher == nullptr ||
      EVP_CipherInit_ex(ctx, cipher, nullptr, key.data(), kIv, encrypt ? 1 : 0) != 1 ||
      EVP_CipherUpdate(ctx, out, &len, in, static_cast<int>(size)) != 1) {
    Die("raw AES-GCM");
  }
  if (encrypt) {
    if (EVP_CipherFinal_ex(ctx, out + len, &len) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag) != 1) {
      Die("raw AES-GCM seal");
    }
  } else if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, tag) != 1 ||
             EVP_CipherFinal_ex(ctx, out + len, &len) != 1) {
    Die("raw AES-GCM open");
  }
  EVP_CIPHER_free(cipher);
  EVP_CIPHER_CTX_free(ctx);
}

struct Options {
  int reps = 7;
  std::string dir;
  std::string images = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";
  std::string labels;
};

Options ParseOptions(int argc, char** argv) {
  Options options;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--reps" && i + 1 < argc) {
      options.reps = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--dir" && i + 1 < argc) {
      options.dir = argv[++i];
    } else if (!arg.empty() && arg[0] == '-') {
      Die("usage: load_bench [--reps N] [--dir DIR] [images.gz [labels.gz]]");
    } else {
      positional.push_back(arg);
    }
  }
  if (!positional.empty()) options.images = positional[0];
  options.labels =
      positional.size() > 1 ? positional[1] : importers::DefaultIdxLabelsPath(options.images);
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = ParseOptions(argc, argv);
  std::string parent = options.dir.empty() ? "/var/tmp" : options.dir;
  std::string pattern = parent + "/chiron-load-bench-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) Die("cannot create a directory in " + parent);
  const std::string state_dir = pattern;

  // The owner's side: import and encrypt the IDX files into a container held in memory.
  Bytes key = *crypto::RandomBytes(dataset::kDatasetKeySize);
  auto id = dataset::NewDatasetId();
  if (!id.ok()) Die("random id");
  auto source = importers::OpenIdxFiles(options.images, options.labels, {});
  if (!source.ok()) Die(source.status().ToString());
  Bytes header;
  std::vector<Bytes> chunks;
  auto stats =
      importers::EncryptSource(**source, key, *id, [&](const dataset::ContainerPiece& piece) {
        if (piece.kind == dataset::ContainerPiece::Kind::kHeader) {
          header.assign(piece.bytes.begin(), piece.bytes.end());
        } else {
          chunks.emplace_back(piece.bytes.begin(), piece.bytes.end());
        }
        return Status::Ok();
      });
  if (!stats.ok()) Die(stats.status().ToString());

  // The runtime's side: a real store on disk, the dataset stored as an upload stores it.
  auto store = store::Store::Open(state_dir, SecretBytes(*crypto::RandomBytes(32)), nullptr);
  if (!store.ok()) Die(store.status().ToString());
  const std::string owner = std::string(64, 'a');
  if (auto p = (*store)->RegisterPrincipal(owner, store::Role::kOwner, "bench"); !p.ok()) {
    Die(p.status().ToString());
  }
  auto record = (*store)->BeginDataset(owner, "fashion-mnist-train", header, key);
  if (!record.ok()) Die(record.status().ToString());
  std::vector<store::Store::ChunkToStore> to_store;
  for (size_t i = 0; i < chunks.size(); ++i) {
    to_store.push_back({i, i + 1 == chunks.size(), chunks[i]});
  }
  if (auto stored = (*store)->AppendChunks(record->id, to_store);
      !stored.ok() || !stored->complete) {
    Die("storing the chunks: " + stored.status().ToString());
  }
  chunks.clear();
  chunks.shrink_to_fit();
  // The segment (docs/store.md, "Files") leaves the page cache: the first load reads the disk.
  const std::string segment = state_dir + "/blobs/d-" + record->id + ".seg";
  const int segment_fd = ::open(segment.c_str(), O_RDONLY | O_CLOEXEC);
  if (segment_fd < 0 || ::fdatasync(segment_fd) != 0 ||
      ::posix_fadvise(segment_fd, 0, 0, POSIX_FADV_DONTNEED) != 0) {
    Die("cannot evict " + segment + " from the page cache");
  }
  ::close(segment_fd);

  const uint64_t records_size =
      record->header.schema.sample_count * record->header.schema.record_size();
  const double megabytes = static_cast<double>(records_size) / 1e6;

  // The baseline's input: as many bytes, sealed once with the one-shot API.
  Bytes plain = *crypto::RandomBytes(records_size);
  Bytes sealed(records_size), opened(records_size);
  uint8_t tag[16];
  RawGcm(true, key, plain.data(), plain.size(), sealed.data(), tag);

  // One load; the records are released (zeroed and freed) outside the load's clock, timed on
  // their own into `*release`.
  auto load = [&](double* release) {
    Result<jobs::LoadedDataset> data = InternalError("not loaded");
    const double seconds = WallSeconds([&] { data = jobs::LoadDataset(**store, record->id); });
    if (!data.ok()) Die("load: " + data.status().ToString());
    if (data->records.size() != records_size) Die("load: wrong size");
    *release = WallSeconds([&] { data = InternalError("released"); });
    return seconds;
  };
  double release = 0;
  const uint64_t authenticated_before = crypto::AeadStreamChunksAuthenticated();
  const double cold = load(&release);
  const double passes_per_chunk =
      static_cast<double>(crypto::AeadStreamChunksAuthenticated() - authenticated_before) /
      static_cast<double>(record->chunk_count);
  std::vector<double> loads, raws, releases;
  for (int rep = 0; rep < options.reps; ++rep) {
    raws.push_back(
        WallSeconds([&] { RawGcm(false, key, sealed.data(), sealed.size(), opened.data(), tag); }));
    loads.push_back(load(&release));
    releases.push_back(release);
  }
  store->reset();
  std::filesystem::remove_all(state_dir);

  const double raw = Median(raws), warm = Median(loads);
  auto rate = [&](double seconds) { return megabytes / seconds; };
  std::printf("load_bench: %s (%llu records, %.1f MB of records, %llu chunks), store in %s\n",
              options.images.c_str(),
              static_cast<unsigned long long>(record->header.schema.sample_count), megabytes,
              static_cast<unsigned long long>(record->chunk_count), parent.c_str());
  std::printf("  wall clock, median of %d interleaved runs (min..max MB/s)\n", options.reps);
  std::printf("  %-46s %8.1f ms %8.0f MB/s (%.0f..%.0f)\n",
              "raw AES-256-GCM decrypt, OpenSSL one-shot", raw * 1e3, rate(raw),
              rate(*std::max_element(raws.begin(), raws.end())),
              rate(*std::min_element(raws.begin(), raws.end())));
  std::printf("  %-46s %8.1f ms %8.0f MB/s (%.0f..%.0f)  ratio %.3f\n",
              "dataset load (jobs::LoadDataset), page cache", warm * 1e3, rate(warm),
              rate(*std::max_element(loads.begin(), loads.end())),
              rate(*std::min_element(loads.begin(), loads.end())), raw / warm);
  std::printf("  %-46s %8.1f ms %8.0f MB/s               ratio %.3f\n",
              "dataset load, first (segment read from disk)", cold * 1e3, rate(cold), raw / cold);
  std::printf("  %-46s %8.1f ms\n", "releasing the loaded records (zeroed, freed)",
              Median(releases) * 1e3);
  std::printf("  AES-GCM chunk authentications per chunk loaded: %.2f\n", passes_per_chunk);
  return 0;
}
