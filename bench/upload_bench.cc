// End-to-end dataset upload throughput on loopback, as a ratio to raw AES-256-GCM over the same
// bytes measured in the same run (issue #3: goal >= 0.3).
//
//   ninja -C build upload_bench && build/bin/upload_bench [--repeat N] [--reps N]
//   perf record -g build/bin/upload_bench --profile 5   # only the headline path, 5 times
//     [--profile-chunk BYTES] [--profile-store disk|tmpfs]
//   (each upload's time, and chirond's dataset.upload_complete line with store_ms, the part of
//   it the storer spent writing, syncing and committing, go to stderr)
//
// Inputs, all real Fashion-MNIST (Debian's dataset-fashion-mnist, train split):
//   plain  an uncompressed IDX pair made once in a temporary directory: the 60,000 training
//          images and labels, repeated N times (default 6: 360,000 samples, about 282 MB), so a
//          run lasts long enough to measure. This is the figure the goal is about: zlib alone
//          inflates at a few hundred MB/s here, so a gzip input can never go "well above 1 GB/s".
//   gzip   the shipped .gz files as they are (47 MB of samples): the end-to-end figure a user
//          uploading them sees, bounded by inflation.
// Measured path: the whole of `chiron dataset upload` (client::UploadDataset) against a real
// in-process RuntimeServer (sim platform): import + encrypt (AES-256-GCM chunks) + BeginUpload
// over attested mutual TLS 1.3 + the chunks over the data plane on loopback (TCP, no TLS: they
// are sealed under the data key; docs/formats/data-plane.md) + the runtime authenticating every
// chunk under the data key + storing it durably (O_DIRECT segment write + fdatasync + SQLite
// commit per group) before the ack. The clock runs from the call to its return, when the last
// chunk is acknowledged durable. Each upload's dataset is deleted afterwards, outside the clock;
// the deletion is timed on its own line (until session 4 it was inside the upload's time, where
// it cost about a fifth of the figure). One line sends the chunks inside the attested gRPC
// stream instead (`chiron dataset upload --no-data-plane`), for comparison.
// Two stores: on the disk (a temporary directory, ext4 here) and on tmpfs (/dev/shm, where
// fdatasync costs nothing): the tmpfs line is the CPU-bound ceiling of the same code, the
// difference is what durable writes cost on this disk.
// Baselines, same run, interleaved with the uploads: raw AES-256-GCM (OpenSSL one-shot through
// the crypto module, 1 MiB buffers, one thread) over as many bytes as the plain container, the
// ratio the goal is about; the same cipher with a reused context and output buffer (the stream
// sealer's SealChunkInto: no per-call set-up or allocation, so faster), a stricter ratio; the
// disk's own durable write rate for as many bytes in the store's directory (O_DIRECT, 32 MiB
// writes, fdatasync after each: the best the store could do, and the ceiling of the disk lines;
// this virtual disk's rate varies between about 0.7 and 2 GB/s from minute to minute); and the
// client's import + encrypt alone (no network).
// Wall-clock seconds, median of --reps interleaved runs (default 3); the spread (min..max MB/s)
// is printed because the machine is shared.
#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "chiron/v1/datasets.grpc.pb.h"
#include "chiron/v1/principals.grpc.pb.h"
#include "client/connection.h"
#include "client/importers/encrypt.h"
#include "client/importers/sample_source.h"
#include "client/upload.h"
#include "runtime/service/reference_policy.h"
#include "runtime/service/server.h"
#include "shared/base/aligned_buffer.h"
#include "shared/base/log.h"
#include "shared/crypto/aead_stream.h"
#include "shared/crypto/aes_gcm.h"
#include "shared/crypto/random.h"

namespace {

using namespace chiron;
namespace fs = std::filesystem;

const std::string kFashion = "/usr/share/datasets/fashion-mnist/";

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "upload_bench: %s\n", what.c_str());
  std::exit(1);
}

template <typename T>
T Check(Result<T> result, const std::string& what) {
  if (!result.ok()) Die(what + ": " + result.status().ToString());
  return std::move(result).value();
}

double WallSeconds(const std::function<void()>& run) {
  auto start = std::chrono::steady_clock::now();
  run();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string MakeTempDir(const std::string& parent, const std::string& prefix) {
  std::string dir = (fs::path(parent) / (prefix + "-XXXXXX")).string();
  if (::mkdtemp(dir.data()) == nullptr) Die("mkdtemp failed under " + parent);
  return dir;
}

Bytes Gunzip(const std::string& path) {
  gzFile in = gzopen(path.c_str(), "rb");
  if (in == nullptr) Die("cannot open " + path + " (install dataset-fashion-mnist)");
  Bytes out;
  uint8_t buffer[1 << 16];
  int n = 0;
  while ((n = gzread(in, buffer, sizeof buffer)) > 0) out.insert(out.end(), buffer, buffer + n);
  gzclose(in);
  if (n < 0) Die("cannot inflate " + path);
  return out;
}

// Writes an IDX file holding the samples of `idx` (header of `header_size` bytes, count at
// bytes 4..7, big-endian) `repeat` times over.
void WriteRepeatedIdx(const Bytes& idx, size_t header_size, int repeat, const std::string& path) {
  Bytes header(idx.begin(), idx.begin() + static_cast<long>(header_size));
  uint32_t count = (uint32_t{header[4]} << 24) | (uint32_t{header[5]} << 16) |
                   (uint32_t{header[6]} << 8) | header[7];
  count *= static_cast<uint32_t>(repeat);
  header[4] = static_cast<uint8_t>(count >> 24);
  header[5] = static_cast<uint8_t>(count >> 16);
  header[6] = static_cast<uint8_t>(count >> 8);
  header[7] = static_cast<uint8_t>(count);
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(header.data()), static_cast<long>(header.size()));
  for (int i = 0; i < repeat; ++i) {
    out.write(reinterpret_cast<const char*>(idx.data() + header_size),
              static_cast<long>(idx.size() - header_size));
  }
  if (!out) Die("cannot write " + path);
}

// A runtime with its store in `parent` and a connection of one registered owner.
struct Runtime {
  std::string dir;
  std::unique_ptr<runtime::RuntimeServer> server;
  std::unique_ptr<client::Connection> connection;

  static std::unique_ptr<Runtime> Start(const std::string& parent) {
    auto rt = std::make_unique<Runtime>();
    rt->dir = MakeTempDir(parent, "chiron-upload-bench");
    std::ofstream(rt->dir + "/worker") << "bench worker";
    std::ofstream(rt->dir + "/policy.json") << "{}";
    runtime::ServerOptions options;
    options.listen_address = "127.0.0.1:0";
    options.data_plane_listen_address = "127.0.0.1:0";
    options.platform.name = "sim";
    options.platform.state_dir = rt->dir + "/state";
    options.platform.measured_components = {{"chirond", "/proc/self/exe"},
                                            {"chiron-worker", rt->dir + "/worker"},
                                            {"sandbox-policy", rt->dir + "/policy.json"}};
    if (!FileSystem::Default()->CreateDirectories(options.platform.state_dir, 0700).ok()) {
      Die("cannot create " + options.platform.state_dir);
    }
    rt->server = Check(runtime::RuntimeServer::Start(options), "start the runtime");
    auto policy = Check(runtime::SimReferencePolicy(rt->server->platform()), "reference policy");
    auto verifier = Check(attest::Verifier::Create(policy), "verifier");
    auto key =
        Check(crypto::PrivateKey::Generate(crypto::SignatureScheme::kEcdsaP256Sha256), "key");
    client::ConnectOptions connect;
    connect.server = "127.0.0.1:" + std::to_string(rt->server->port());
    connect.verifier = std::make_shared<const attest::Verifier>(std::move(verifier));
    connect.identity = std::make_shared<const ratls::TlsIdentity>(
        Check(ratls::CreateClientIdentity(key, "bench-owner"), "identity"));
    connect.timeout = std::chrono::seconds(120);
    rt->connection = Check(client::Connection::Connect(connect), "connect");
    v1::RegisterPrincipalRequest request;
    request.set_role(v1::ROLE_OWNER);
    request.set_display_name("bench");
    v1::Principal principal;
    auto context = rt->connection->NewContext();
    if (!v1::Principals::NewStub(rt->connection->channel())
             ->Register(context.get(), request, &principal)
             .ok()) {
      Die("register failed");
    }
    return rt;
  }

  // One upload of a fresh dataset, then its deletion (so the quota never binds); the two are
  // timed apart: the upload is what the goal is about, the deletion (crypto-shredding, unlinking
  // the segment, a SQLite transaction) is printed on its own line.
  struct Timed {
    uint64_t container_bytes = 0;
    double upload_seconds = 0;
    double delete_seconds = 0;
  };
  Timed Upload(const std::string& images, uint64_t chunk_size, int run, bool data_plane = true) {
    client::UploadRequest request;
    request.use_data_plane = data_plane;
    request.name = "bench-" + std::to_string(run);
    importers::ImportOptions import;
    import.format = importers::ImportFormat::kIdx;
    request.open_source = [images, import]() { return importers::OpenSource(images, import); };
    request.source_fingerprint = "bench";
    request.target_chunk_size = chunk_size;
    Timed timed;
    client::UploadOutcome outcome;
    timed.upload_seconds = WallSeconds(
        [&] { outcome = Check(client::UploadDataset(*connection, request), "upload"); });
    if (outcome.via_data_plane != data_plane) {
      Die("the upload did not take the path asked for: " + outcome.data_plane_fallback);
    }
    timed.container_bytes = outcome.container_size;
    timed.delete_seconds = WallSeconds([&] {
      v1::DeleteDatasetRequest del;
      del.set_name(request.name);
      v1::DeleteDatasetResponse deleted;
      auto context = connection->NewContext();
      if (!v1::Datasets::NewStub(connection->channel())
               ->Delete(context.get(), del, &deleted)
               .ok()) {
        Die("delete failed");
      }
    });
    return timed;
  }

  ~Runtime() {
    connection.reset();
    if (server) server->Shutdown(std::chrono::milliseconds(0));
    server.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

// Writes `bytes` sequentially into a fresh file in `dir` the way the store writes a segment at
// best (O_DIRECT from an aligned buffer, 32 MiB per write, fdatasync after each), then removes
// it: the disk's own durable write rate, the ceiling of the disk lines.
double DurableWriteSeconds(const std::string& dir, uint64_t bytes) {
  const size_t kWrite = size_t{32} << 20;
  AlignedBuffer buffer(kWrite);
  std::memset(buffer.data(), 0x5a, kWrite);
  const std::string path = dir + "/disk-rate";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_DIRECT | O_CLOEXEC, 0600);
  if (fd < 0) Die("cannot open " + path + " with O_DIRECT");
  double seconds = WallSeconds([&] {
    for (uint64_t done = 0; done < bytes; done += kWrite) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(kWrite, bytes - done));
      n = AlignedBuffer::RoundUp(n);
      if (::pwrite(fd, buffer.data(), n, static_cast<off_t>(done)) != static_cast<ssize_t>(n) ||
          ::fdatasync(fd) != 0) {
        Die("cannot write " + path);
      }
    }
  });
  ::close(fd);
  ::unlink(path.c_str());
  return seconds;
}

struct Series {
  std::string label;
  uint64_t bytes = 0;
  std::vector<double> seconds;
  double MedianSeconds() const {
    std::vector<double> s = seconds;
    std::sort(s.begin(), s.end());
    return s[s.size() / 2];
  }
  double Mbps(double s) const { return static_cast<double>(bytes) / 1e6 / s; }
  double MedianMbps() const { return Mbps(MedianSeconds()); }
  double MinMbps() const { return Mbps(*std::max_element(seconds.begin(), seconds.end())); }
  double MaxMbps() const { return Mbps(*std::min_element(seconds.begin(), seconds.end())); }
  // An upload's time and size; its deletion's time goes to `deletions` if given.
  void Add(const Runtime::Timed& timed, Series* deletions = nullptr) {
    bytes = timed.container_bytes;
    seconds.push_back(timed.upload_seconds);
    if (deletions != nullptr) {
      deletions->bytes = timed.container_bytes;
      deletions->seconds.push_back(timed.delete_seconds);
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  int repeat = 6;
  int reps = 3;
  int profile_runs = 0;
  uint64_t profile_chunk = uint64_t{1} << 20;
  bool profile_tmpfs = false;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--repeat") repeat = std::max(1, std::atoi(argv[i + 1]));
    else if (flag == "--reps") reps = std::max(1, std::atoi(argv[i + 1]));
    else if (flag == "--profile") profile_runs = std::max(1, std::atoi(argv[i + 1]));
    else if (flag == "--profile-chunk") profile_chunk = std::max(1LL, std::atoll(argv[i + 1]));
    else if (flag == "--profile-store") profile_tmpfs = std::string(argv[i + 1]) == "tmpfs";
    else Die("unknown flag " + flag +
             " (use --repeat N, --reps N, --profile N [--profile-chunk BYTES] "
             "[--profile-store disk|tmpfs])");
  }
  SetMinLogLevel(LogLevel::kWarning);

  // The plain IDX input: Fashion-MNIST's training split inflated once and repeated.
  std::string input_dir = MakeTempDir(fs::temp_directory_path().string(), "chiron-bench-idx");
  const std::string gzip_images = kFashion + "train-images-idx3-ubyte.gz";
  const std::string plain_images = input_dir + "/train-images-idx3-ubyte";
  WriteRepeatedIdx(Gunzip(gzip_images), 16, repeat, plain_images);
  WriteRepeatedIdx(Gunzip(kFashion + "train-labels-idx1-ubyte.gz"), 8, repeat,
                   input_dir + "/train-labels-idx1-ubyte");

  auto disk = Runtime::Start(fs::temp_directory_path().string());
  std::unique_ptr<Runtime> tmpfs;
  if (fs::is_directory("/dev/shm")) tmpfs = Runtime::Start("/dev/shm");

  const uint64_t kMiB = uint64_t{1} << 20;
  if (profile_runs > 0) {
    // Only the headline path, N times, for `perf record`: no baselines, no ratio.
    Runtime* store = profile_tmpfs && tmpfs ? tmpfs.get() : disk.get();
    Series only{"plain: end to end, " + std::to_string(profile_chunk) + "-byte chunks, " +
                (store == disk.get() ? "disk" : "tmpfs")};
    // Info lines on: each upload's dataset.upload_complete reports its groups and store_ms, the
    // time the storer spent writing, syncing and committing (the disk's share of the upload).
    SetMinLogLevel(LogLevel::kInfo);
    for (int i = 0; i < profile_runs; ++i) {
      only.Add(store->Upload(plain_images, profile_chunk, i));
      std::fprintf(stderr, "upload %d: %.1f ms\n", i, only.seconds.back() * 1e3);
    }
    std::printf("%s: median %.1f MB/s, %.1f..%.1f\n", only.label.c_str(), only.MedianMbps(),
                only.MinMbps(), only.MaxMbps());
    return 0;
  }
  Series raw{"raw AES-256-GCM, 1 MiB buffers (baseline)"};
  Series local{"plain: import+encrypt only, 1 MiB"};
  Series plain1{"plain: end to end, 1 MiB chunks, disk"};
  Series plain_tls{"plain: same, chunks in the TLS gRPC stream"};
  Series plain4{"plain: end to end, 4 MiB chunks, disk"};
  Series plain_tmpfs{"plain: end to end, 1 MiB chunks, tmpfs"};
  Series gzip1{"gzip: end to end, 1 MiB chunks, disk"};
  Series disk_write{"disk: O_DIRECT write + fdatasync alone"};
  Series raw_reused{"raw AES-256-GCM, reused context and buffer"};
  Series deletion{"plain, disk: deleting the uploaded dataset"};
  int run = 0;
  Bytes buffer(kMiB, 0x5a);
  auto raw_key = Check(crypto::RandomSecret(crypto::kAes256KeySize), "key");
  for (int rep = 0; rep < reps; ++rep) {
    plain1.Add(disk->Upload(plain_images, kMiB, run++), &deletion);
    raw.bytes = plain1.bytes;
    disk_write.bytes = plain1.bytes;
    disk_write.seconds.push_back(DurableWriteSeconds(disk->dir, disk_write.bytes));
    raw.seconds.push_back(WallSeconds([&] {
      for (uint64_t done = 0; done < raw.bytes; done += buffer.size()) {
        auto sealed = Check(crypto::AesGcmSeal(raw_key.span(), {}, buffer), "AES-GCM");
        if (sealed.empty()) Die("empty ciphertext");
      }
    }));
    raw_reused.bytes = plain1.bytes;
    {
      auto sealer = Check(crypto::AeadStreamSealer::Create(raw_key.span(), {}), "sealer");
      Bytes out(buffer.size() + crypto::kStreamTagSize);
      raw_reused.seconds.push_back(WallSeconds([&] {
        for (uint64_t done = 0; done < raw_reused.bytes; done += buffer.size()) {
          bool last = done + buffer.size() >= raw_reused.bytes;
          Status sealed = sealer.SealChunkInto(buffer, last, out);
          if (!sealed.ok()) Die("AES-GCM: " + sealed.ToString());
        }
      }));
    }
    local.seconds.push_back(WallSeconds([&] {
      importers::ImportOptions import;
      import.format = importers::ImportFormat::kIdx;
      auto source = Check(importers::OpenSource(plain_images, import), "open input");
      auto id = Check(dataset::NewDatasetId(), "id");
      auto data_key = Check(crypto::RandomSecret(dataset::kDatasetKeySize), "data key");
      dataset::DatasetWriterOptions writer;
      writer.target_chunk_size = kMiB;
      auto stats = Check(importers::EncryptSource(
                             *source, data_key.span(), id,
                             [](const dataset::ContainerPiece&) { return Status::Ok(); }, writer),
                         "import + encrypt");
      local.bytes = stats.container_bytes;
    }));
    plain4.Add(disk->Upload(plain_images, 4 * kMiB, run++));
    plain_tls.Add(disk->Upload(plain_images, kMiB, run++, /*data_plane=*/false));
    if (tmpfs) plain_tmpfs.Add(tmpfs->Upload(plain_images, kMiB, run++));
    gzip1.Add(disk->Upload(gzip_images, kMiB, run++));
  }

  std::printf("upload_bench: Fashion-MNIST train split; plain IDX = %d copies (%.1f MB container), "
              "gzip IDX = the shipped .gz (%.1f MB container); median of %d runs\n",
              repeat, static_cast<double>(plain1.bytes) / 1e6,
              static_cast<double>(gzip1.bytes) / 1e6, reps);
  std::printf("%-46s %9s %10s %21s\n", "path", "seconds", "MB/s", "spread MB/s");
  std::vector<const Series*> all = {&raw,   &raw_reused, &disk_write, &local,
                                    &plain1, &plain_tls,  &plain4};
  if (tmpfs) all.push_back(&plain_tmpfs);
  all.push_back(&gzip1);
  all.push_back(&deletion);
  for (const Series* s : all) {
    std::printf("%-46s %9.3f %10.1f %10.1f..%-10.1f\n", s->label.c_str(), s->MedianSeconds(),
                s->MedianMbps(), s->MinMbps(), s->MaxMbps());
  }
  // Ratios of throughput, each against the raw AES-256-GCM median of this run.
  auto ratio = [&](const Series& s) { return s.MedianMbps() / raw.MedianMbps(); };
  std::printf("ratio end to end / raw AES-256-GCM (goal >= 0.3):\n");
  // Not met on disk but met by the same code to tmpfs: the disk bound the run (its own rate is
  // on the last line), not the pipeline.
  const char* verdict = ratio(plain1) >= 0.3 ? "(goal met)"
                        : tmpfs && ratio(plain_tmpfs) >= 0.3
                            ? "(goal NOT met on disk; met to tmpfs: the disk bound this run)"
                            : "(goal NOT met)";
  std::printf("  plain IDX, 1 MiB chunks, disk:  %.3f %s\n", ratio(plain1), verdict);
  std::printf("  plain IDX, 1 MiB, TLS stream:   %.3f (the chunks inside attested TLS gRPC)\n",
              ratio(plain_tls));
  std::printf("  plain IDX, 4 MiB chunks, disk:  %.3f\n", ratio(plain4));
  if (tmpfs) std::printf("  plain IDX, 1 MiB chunks, tmpfs: %.3f\n", ratio(plain_tmpfs));
  std::printf("  gzip IDX,  1 MiB chunks, disk:  %.3f (zlib inflation bounds this one)\n",
              ratio(gzip1));
  // The stricter baseline: the same cipher without the one-shot API's per-call context set-up
  // and output allocation (what the client's sealer does per chunk).
  std::printf("plain IDX end to end, disk / raw AES-256-GCM with a reused context and buffer: "
              "%.3f (tmpfs: %.3f)\n",
              plain1.MedianMbps() / raw_reused.MedianMbps(),
              tmpfs ? plain_tmpfs.MedianMbps() / raw_reused.MedianMbps() : 0.0);
  // The disk is shared with other tenants and its speed varies by a factor of two or three
  // within minutes: what it could absorb in this run bounds the disk lines.
  std::printf("plain IDX end to end / the disk's own durable write rate: %.2f (disk: %.2f x raw "
              "AES-256-GCM in this run)\n",
              plain1.MedianMbps() / disk_write.MedianMbps(),
              disk_write.MedianMbps() / raw.MedianMbps());
  disk.reset();
  tmpfs.reset();
  std::error_code ec;
  fs::remove_all(input_dir, ec);
  return 0;
}
