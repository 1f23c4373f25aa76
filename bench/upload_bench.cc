// End-to-end dataset upload throughput on loopback against import + encryption alone, same run.
//
//   ninja -C build upload_bench && build/bin/upload_bench [images.gz]
//
// Baseline: the client's import + encrypt with no network (IdxSource streaming the gzip files
// into EncryptSource, a sink that only counts bytes). Measured: the whole upload path of
// `chiron dataset upload` against a real in-process RuntimeServer (sim platform, sealed store in
// a temporary directory): import + encrypt + gRPC over attested mutual TLS 1.3 on loopback +
// the runtime authenticating every chunk with the data key + sealing it again and storing it
// durably (blob file fsync + rename + directory fsync + SQLite commit) before the ack. Wall-clock
// seconds, median of 3 interleaved runs, for 1 MiB (the default) and 4 MiB chunks; the ratio
// end-to-end / baseline throughput is printed (1.0 would mean the network, verification and
// durable storage cost nothing on top of the client's own work). Issue #3 asks for the ratio to
// raw AES-256-GCM over the same number of bytes (one-shot, 1 MiB buffers, this process): that
// ratio is printed too.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
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
#include "shared/base/log.h"
#include "shared/crypto/aes_gcm.h"
#include "shared/crypto/random.h"

namespace {

using namespace chiron;
namespace fs = std::filesystem;

constexpr int kRepetitions = 3;

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

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::string images =
      argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";
  SetMinLogLevel(LogLevel::kWarning);
  importers::ImportOptions import;
  import.format = importers::ImportFormat::kIdx;
  auto open_source = [&]() { return importers::OpenSource(images, import); };

  // A runtime with its sealed store in a temporary directory, and one registered owner.
  std::string dir = (fs::temp_directory_path() / "chiron-upload-bench-XXXXXX").string();
  if (::mkdtemp(dir.data()) == nullptr) Die("mkdtemp failed");
  std::ofstream(dir + "/worker") << "bench worker";
  std::ofstream(dir + "/policy.json") << "{}";
  runtime::ServerOptions options;
  options.listen_address = "127.0.0.1:0";
  options.platform.name = "sim";
  options.platform.state_dir = dir + "/state";
  options.platform.measured_components = {{"chirond", "/proc/self/exe"},
                                          {"chiron-worker", dir + "/worker"},
                                          {"sandbox-policy", dir + "/policy.json"}};
  if (!FileSystem::Default()->CreateDirectories(options.platform.state_dir, 0700).ok()) {
    Die("cannot create " + options.platform.state_dir);
  }
  auto server = Check(runtime::RuntimeServer::Start(options), "start the runtime");
  auto policy = Check(runtime::SimReferencePolicy(server->platform()), "reference policy");
  auto verifier = Check(attest::Verifier::Create(policy), "verifier");
  auto key = Check(crypto::PrivateKey::Generate(crypto::SignatureScheme::kEcdsaP256Sha256), "key");
  client::ConnectOptions connect;
  connect.server = "127.0.0.1:" + std::to_string(server->port());
  connect.verifier = std::make_shared<const attest::Verifier>(std::move(verifier));
  connect.identity = std::make_shared<const ratls::TlsIdentity>(
      Check(ratls::CreateClientIdentity(key, "bench-owner"), "identity"));
  connect.timeout = std::chrono::seconds(60);
  auto connection = Check(client::Connection::Connect(connect), "connect");
  {
    v1::RegisterPrincipalRequest request;
    request.set_role(v1::ROLE_OWNER);
    request.set_display_name("bench");
    v1::Principal principal;
    auto context = connection->NewContext();
    if (!v1::Principals::NewStub(connection->channel())
             ->Register(context.get(), request, &principal)
             .ok()) {
      Die("register failed");
    }
  }

  uint64_t container_bytes = 0;
  uint64_t samples = 0;
  std::printf("upload_bench: %s\n", images.c_str());
  std::printf("%-10s %-34s %10s %12s\n", "chunks", "path", "seconds", "MB/s");
  double default_e2e_s = 0;  // end to end with the default 1 MiB chunks
  for (uint64_t chunk_size : {uint64_t{1} << 20, uint64_t{4} << 20}) {
    std::vector<double> local, end_to_end;
    int run_number = 0;
    for (int rep = 0; rep < kRepetitions; ++rep) {
      // Baseline: import + encrypt, nothing sent.
      local.push_back(WallSeconds([&] {
        auto source = Check(open_source(), "open input");
        auto id = Check(dataset::NewDatasetId(), "id");
        auto data_key = Check(crypto::RandomSecret(dataset::kDatasetKeySize), "data key");
        dataset::DatasetWriterOptions writer;
        writer.target_chunk_size = chunk_size;
        auto stats = Check(importers::EncryptSource(
                               *source, data_key.span(), id,
                               [](const dataset::ContainerPiece&) { return Status::Ok(); }, writer),
                           "import + encrypt");
        container_bytes = stats.container_bytes;
        samples = stats.samples;
      }));
      // End to end, a fresh dataset each run (deleted afterwards so the quota never binds).
      std::string name = "bench-" + std::to_string(chunk_size) + "-" + std::to_string(run_number++);
      client::UploadRequest request;
      request.name = name;
      request.open_source = open_source;
      request.source_fingerprint = "bench";
      request.target_chunk_size = chunk_size;
      end_to_end.push_back(WallSeconds([&] {
        auto outcome = Check(client::UploadDataset(*connection, request), "upload");
        if (outcome.container_size != container_bytes) Die("container sizes differ");
      }));
      v1::DeleteDatasetRequest del;
      del.set_name(name);
      v1::DeleteDatasetResponse deleted;
      auto context = connection->NewContext();
      if (!v1::Datasets::NewStub(connection->channel())
               ->Delete(context.get(), del, &deleted)
               .ok()) {
        Die("delete failed");
      }
    }
    double mb = static_cast<double>(container_bytes) / 1e6;
    double local_s = Median(local), e2e_s = Median(end_to_end);
    if (chunk_size == uint64_t{1} << 20) default_e2e_s = e2e_s;
    std::string label = std::to_string(chunk_size >> 20) + " MiB";
    std::printf("%-10s %-34s %10.3f %12.1f\n", label.c_str(), "import+encrypt (baseline)", local_s,
                mb / local_s);
    std::printf("%-10s %-34s %10.3f %12.1f\n", label.c_str(), "import+encrypt+gRPC+verify+store",
                e2e_s, mb / e2e_s);
    std::printf("%-10s ratio end-to-end / baseline throughput: %.2f\n", label.c_str(),
                local_s / e2e_s);
  }
  // Raw AES-256-GCM (OpenSSL one-shot through the crypto module) over as many bytes as one
  // container, 1 MiB at a time: the baseline.
  {
    auto key = Check(crypto::RandomSecret(crypto::kAes256KeySize), "key");
    Bytes buffer(1 << 20, 0x5a);
    std::vector<double> raw;
    for (int rep = 0; rep < kRepetitions; ++rep) {
      raw.push_back(WallSeconds([&] {
        for (uint64_t done = 0; done < container_bytes; done += buffer.size()) {
          auto sealed = Check(crypto::AesGcmSeal(key.span(), {}, buffer), "AES-GCM");
          if (sealed.empty()) Die("empty ciphertext");
        }
      }));
    }
    double raw_s = Median(raw);
    std::printf("%-10s %-34s %10.3f %12.1f\n", "1 MiB", "raw AES-256-GCM (issue baseline)", raw_s,
                static_cast<double>(container_bytes) / 1e6 / raw_s);
    std::printf("ratio end-to-end (1 MiB chunks) / raw AES-256-GCM throughput: %.3f (goal >= 0.3)\n",
                raw_s / default_e2e_s);
  }
  std::printf("(%llu samples, %.1f MB container per upload)\n",
              static_cast<unsigned long long>(samples), static_cast<double>(container_bytes) / 1e6);
  connection.reset();
  server->Shutdown(std::chrono::milliseconds(0));
  server.reset();
  fs::remove_all(dir);
  return 0;
}
