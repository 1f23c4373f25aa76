// The latency cost of request isolation for predictions (docs/predictions.md, "Request isolation:
// cost"): jobs::ModelAccess::Predict on the real libtorch chiron-worker, with a worker per
// querying principal kept between its requests (chirond's default, `--prediction-isolation
// principal`) against a fresh worker per request (`request`), measured in the same run.
//
//   cmake --build build --target predict_isolation_bench && build/bin/predict_isolation_bench
//       [--recipes lenet,mlp] [--train-limit N] [--requests N] [--batch N] [--threads N]
//       [--dir DIR]
//
// Set-up, as chirond does it (no gRPC, no TLS: those cost the same in every mode): a real sealed
// Store on disk (a temporary directory under /var/tmp, or --dir), the owner's Fashion-MNIST
// subset (the first --train-limit training images, default 2,000) sealed in it as an upload
// stores it, the built-in recipes registered from build/recipes (RecipeRegistry), and one model
// per recipe (--recipes, default lenet and mlp) trained by a real jobs::TrainingQueue through the
// sandboxed chiron-worker (1 epoch).
//
// Then two ModelAccess instances on that store, one per isolation mode (their worker pools are
// separate), answer --requests (default 50) Predict calls per figure, of 1 image and of a --batch
// (default 64) image batch from Fashion-MNIST's test split, in three modes:
//   warm       per-principal, the owner again: its worker is already running (the baseline);
//   new        per-principal, the first request of a principal never seen before (a grantee
//              of the model): a worker is started for it (and, past 4 idle workers, the least
//              recently used one is stopped: what a server with many callers pays);
//   request    per-request: a fresh worker for the owner's request, stopped once it answered.
// The three modes are interleaved request by request on the same inputs (the order rotates), so
// a change in machine load hits all of them alike; the answers' top classes are compared across
// modes (the same model must answer the same). Latency is the wall clock of ModelAccess::Predict:
// budget charge and audit records in the store, the pool thread, the worker (started, for `new`
// and `request`, and for `request` also stopped before Predict returns), the output policy.
// Printed: p50 and p90 of each mode, and the ratios new / warm and request / warm.
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/jobs/model_access.h"
#include "runtime/jobs/recipe_registry.h"
#include "runtime/jobs/training_queue.h"
#include "runtime/store/store.h"
#include "shared/crypto/random.h"
#include "shared/dataset/container.h"
#include "shared/testing/fashion_mnist.h"

namespace chiron {
namespace {

using Clock = std::chrono::steady_clock;
using worker::testing::LabelledImages;

struct Flags {
  std::vector<std::string> recipes = {"lenet", "mlp"};
  size_t train_limit = 2000;
  int requests = 50;
  int batch = 64;
  int threads = 2;  // chirond's default --worker-threads
  std::string dir = "/var/tmp";
  std::string worker = CHIRON_WORKER_PATH;
  std::string recipes_dir = CHIRON_RECIPES_DIR;
};

[[noreturn]] void Usage() {
  std::fprintf(stderr,
               "usage: predict_isolation_bench [--recipes lenet,mlp] [--train-limit N] "
               "[--requests N] [--batch N] [--threads N] [--dir DIR]\n");
  std::exit(2);
}

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Usage();
      return argv[++i];
    };
    if (a == "--recipes") {
      f.recipes.clear();
      std::stringstream list(next());
      for (std::string name; std::getline(list, name, ',');) {
        if (!name.empty()) f.recipes.push_back(name);
      }
    } else if (a == "--train-limit") {
      f.train_limit = std::strtoull(next().c_str(), nullptr, 10);
    } else if (a == "--requests") {
      f.requests = std::atoi(next().c_str());
    } else if (a == "--batch") {
      f.batch = std::atoi(next().c_str());
    } else if (a == "--threads") {
      f.threads = std::atoi(next().c_str());
    } else if (a == "--dir") {
      f.dir = next();
    } else {
      Usage();
    }
  }
  if (f.recipes.empty() || f.train_limit < 100 || f.requests < 2 || f.batch < 1 || f.batch > 256 ||
      f.threads < 1) {
    std::fprintf(stderr,
                 "predict_isolation_bench: --recipes non-empty, --train-limit >= 100, "
                 "--requests >= 2, --batch 1..256, --threads >= 1\n");
    std::exit(2);
  }
  return f;
}

[[noreturn]] void Die(const std::string& what, const Status& status) {
  std::fprintf(stderr, "predict_isolation_bench: %s: %s\n", what.c_str(),
               status.ToString().c_str());
  std::exit(1);
}

double Milliseconds(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// Nearest-rank percentile.
double Percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  size_t rank = static_cast<size_t>(p / 100.0 * static_cast<double>(values.size()) + 0.999999);
  return values[std::clamp<size_t>(rank, 1, values.size()) - 1];
}

// The owner's upload: `images` sealed into a container under a fresh key, stored as chunks.
void StoreDataset(store::Store& store, const std::string& owner, const std::string& name,
                  const LabelledImages& images) {
  auto key = crypto::RandomBytes(dataset::kDatasetKeySize);
  auto id = dataset::NewDatasetId();
  if (!key.ok() || !id.ok()) Die("random key", key.ok() ? id.status() : key.status());
  dataset::DatasetSchema schema;
  schema.shape = {1, static_cast<uint32_t>(images.rows), static_cast<uint32_t>(images.columns)};
  schema.class_names = {"T-shirt", "trouser", "pullover", "dress", "coat",
                        "sandal",  "shirt",   "sneaker",  "bag",   "ankle boot"};
  schema.sample_count = images.count;
  Bytes header;
  std::vector<Bytes> chunks;
  auto sink = [&](const dataset::ContainerPiece& piece) -> Status {
    Bytes bytes(piece.bytes.begin(), piece.bytes.end());
    if (piece.kind == dataset::ContainerPiece::Kind::kHeader) {
      header = std::move(bytes);
    } else {
      chunks.push_back(std::move(bytes));
    }
    return Status::Ok();
  };
  auto writer = dataset::DatasetWriter::Create(*key, *id, schema, sink, {});
  if (!writer.ok()) Die("dataset writer", writer.status());
  const size_t image_size = static_cast<size_t>(images.rows * images.columns);
  for (size_t i = 0; i < images.count; ++i) {
    Status added = (*writer)->Add(static_cast<uint32_t>(images.labels[i]),
                                  ByteSpan(images.pixels.data() + i * image_size, image_size));
    if (!added.ok()) Die("dataset writer", added);
  }
  if (Status done = (*writer)->Finish(); !done.ok()) Die("dataset writer", done);
  auto record = store.BeginDataset(owner, name, header, *key);
  if (!record.ok()) Die("storing the dataset", record.status());
  std::vector<store::Store::ChunkToStore> to_store;
  for (size_t i = 0; i < chunks.size(); ++i)
    to_store.push_back({i, i + 1 == chunks.size(), chunks[i]});
  auto stored = store.AppendChunks(record->id, to_store);
  if (!stored.ok() || !stored->complete) Die("storing the chunks", stored.status());
}

// Trains `recipe` on the dataset into model `model` through the real queue; returns the job.
jobs::JobRecord Train(jobs::TrainingQueue& queue, const std::string& owner,
                      const std::string& recipe, const std::string& model) {
  jobs::StartTrainingArgs args;
  args.dataset_name = "fashion-mnist";
  args.recipe = recipe;
  args.model_name = model;
  args.epochs = 1;
  args.seed = 1;
  auto job = queue.StartTraining(owner, args);
  if (!job.ok()) Die("starting the " + recipe + " job", job.status());
  uint64_t version = 0;
  while (true) {
    auto record =
        queue.WaitForJob(owner, job->id, &version, Clock::now() + std::chrono::seconds(600));
    if (!record.ok()) Die("waiting for the " + recipe + " job", record.status());
    if (!jobs::Finished(record->state)) continue;
    if (record->state != jobs::JobState::kSucceeded) {
      Die("the " + recipe + " job", InternalError("did not succeed (failure category " +
                                                  std::to_string(record->failure) + ")"));
    }
    return *record;
  }
}

struct Mode {
  const char* name;
  std::vector<double> ms;
  uint32_t top_agrees = 0;  // top classes equal to the warm mode's on the same inputs
};

// The top class of every sample of one answer.
std::vector<uint32_t> TopClasses(const jobs::PredictOutput& out) {
  std::vector<uint32_t> top;
  for (const auto& row : out.predictions) top.push_back(row.empty() ? 9999 : row[0].class_index);
  return top;
}

}  // namespace
}  // namespace chiron

int main(int argc, char** argv) {
  using namespace chiron;
  const Flags flags = ParseFlags(argc, argv);

  auto train = worker::testing::ReadFashionMnist("train", flags.train_limit);
  if (!train.ok()) Die("reading Fashion-MNIST", train.status());
  auto test = worker::testing::ReadFashionMnist("t10k", 2000);
  if (!test.ok()) Die("reading Fashion-MNIST", test.status());
  const size_t image_size = static_cast<size_t>(test->rows * test->columns);

  std::string pattern = flags.dir + "/chiron-predict-bench-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) Die("temporary directory", InternalError(flags.dir));
  const std::string state_dir = pattern;
  auto store_key = crypto::RandomBytes(32);
  if (!store_key.ok()) Die("random key", store_key.status());
  auto opened = store::Store::Open(state_dir, SecretBytes(std::move(*store_key)), nullptr);
  if (!opened.ok()) Die("opening the store", opened.status());
  std::unique_ptr<store::Store> store = std::move(*opened);

  // The owner, and a grantee per `new` request of each batch size (each of them queries once).
  auto principal = [](int n) {
    char id[65];
    std::snprintf(id, sizeof id, "%064x", n);
    return std::string(id);
  };
  const std::string owner = principal(1);
  if (auto p = store->RegisterPrincipal(owner, store::Role::kOwner, "owner"); !p.ok()) {
    Die("registering the owner", p.status());
  }
  std::vector<std::string> grantees;
  for (int i = 0; i < 2 * flags.requests; ++i) {
    grantees.push_back(principal(1000 + i));
    auto p = store->RegisterPrincipal(grantees.back(), store::Role::kOwner, "grantee");
    if (!p.ok()) Die("registering a grantee", p.status());
  }
  StoreDataset(*store, owner, "fashion-mnist", *train);

  jobs::RecipeRegistry registry(store.get(), jobs::RecipeRegistryOptions{flags.recipes_dir});
  if (Status s = registry.RegisterBuiltins(); !s.ok()) Die("registering the recipes", s);
  train::WorkerSettings worker;
  worker.worker_path = flags.worker;
  worker.threads = flags.threads;
  const uint64_t budget = 10'000'000;

  std::string recipes;
  for (const std::string& recipe : flags.recipes) recipes += (recipes.empty() ? "" : ",") + recipe;
  std::printf(
      "predict_isolation_bench: recipes %s, worker %s (%d threads), Fashion-MNIST: %zu "
      "training images, 1 epoch\n",
      recipes.c_str(), flags.worker.c_str(), flags.threads, train->count);
  {
    jobs::TrainingQueueOptions options;
    options.worker = worker;
    options.initial_query_budget = budget;
    jobs::TrainingQueue queue(store.get(), &registry, options);
    if (Status s = queue.Start(); !s.ok()) Die("starting the queue", s);
    for (const std::string& recipe : flags.recipes) {
      const auto started = Clock::now();
      const jobs::JobRecord job = Train(queue, owner, recipe, "bench-" + recipe);
      const double accuracy = job.history.empty() ? 0 : job.history.back().validation_accuracy;
      std::printf("  trained %-6s in %5.1f s, validation accuracy %.3f\n", recipe.c_str(),
                  Milliseconds(Clock::now() - started) / 1000, accuracy);
    }
    queue.Stop();
  }

  auto access_options = [&](jobs::PredictionIsolation isolation) {
    jobs::ModelAccessOptions options;
    options.workers.worker = worker;
    options.workers.isolation = isolation;
    options.max_query_budget = budget;
    return options;
  };
  jobs::ModelAccess per_principal(store.get(),
                                  access_options(jobs::PredictionIsolation::kPerPrincipal));
  jobs::ModelAccess per_request(store.get(),
                                access_options(jobs::PredictionIsolation::kPerRequest));
  per_principal.Start();
  per_request.Start();

  std::printf("\n%d requests per figure, interleaved; latency of ModelAccess::Predict, ms\n\n",
              flags.requests);
  std::printf(
      "| recipe | images | warm: same principal p50 / p90 | new principal p50 / p90 | "
      "per request p50 / p90 | new / warm (p50, p90) | request / warm (p50, p90) | "
      "top classes equal |\n|---|---|---|---|---|---|---|---|\n");
  std::fflush(stdout);
  bool all_agree = true;
  for (const std::string& recipe : flags.recipes) {
    const std::string model = "bench-" + recipe;
    for (const auto& grantee : grantees) {
      auto granted = per_principal.GrantModel(owner, model, grantee, 0);
      if (!granted.ok()) Die("granting the model", granted.status());
    }
    for (const int images : {1, flags.batch}) {
      std::vector<std::string> samples(static_cast<size_t>(images));
      size_t next_grantee = images == 1 ? 0 : static_cast<size_t>(flags.requests);
      Mode modes[3] = {{"warm", {}, 0}, {"new", {}, 0}, {"request", {}, 0}};
      // The owner's first request starts its per-principal worker: not measured.
      samples.assign(static_cast<size_t>(images),
                     std::string(reinterpret_cast<const char*>(test->pixels.data()), image_size));
      if (auto warmup = per_principal.Predict(owner, "", model, samples, 1); !warmup.ok()) {
        Die("warm-up", warmup.status());
      }
      for (int i = 0; i < flags.requests; ++i) {
        for (int k = 0; k < images; ++k) {
          const size_t index = (static_cast<size_t>(i * images + k)) % test->count;
          samples[static_cast<size_t>(k)].assign(
              reinterpret_cast<const char*>(test->pixels.data() + index * image_size), image_size);
        }
        std::vector<uint32_t> tops[3];
        for (int step = 0; step < 3; ++step) {
          const int m = (i + step) % 3;  // the order rotates
          const auto start = Clock::now();
          auto out = m == 0 ? per_principal.Predict(owner, "", model, samples, 1)
                     : m == 1
                         ? per_principal.Predict(grantees[next_grantee], owner, model, samples, 1)
                         : per_request.Predict(owner, "", model, samples, 1);
          modes[m].ms.push_back(Milliseconds(Clock::now() - start));
          if (!out.ok()) Die(std::string(modes[m].name) + " prediction", out.status());
          tops[m] = TopClasses(*out);
        }
        ++next_grantee;
        for (int m : {1, 2}) modes[m].top_agrees += tops[m] == tops[0] ? 1 : 0;
      }
      auto p = [&](int m, double q) { return Percentile(modes[m].ms, q); };
      const bool agree = modes[1].top_agrees == static_cast<uint32_t>(flags.requests) &&
                         modes[2].top_agrees == static_cast<uint32_t>(flags.requests);
      all_agree &= agree;
      std::printf(
          "| %s | %d | %.2f / %.2f | %.1f / %.1f | %.1f / %.1f | %.1f, %.1f | %.1f, %.1f "
          "| %s |\n",
          recipe.c_str(), images, p(0, 50), p(0, 90), p(1, 50), p(1, 90), p(2, 50), p(2, 90),
          p(1, 50) / p(0, 50), p(1, 90) / p(0, 90), p(2, 50) / p(0, 50), p(2, 90) / p(0, 90),
          agree ? "yes" : "NO");
      std::fflush(stdout);
    }
  }
  per_principal.Stop();
  per_request.Stop();
  store.reset();
  std::filesystem::remove_all(state_dir);
  std::printf(
      "\n(warm: the owner's per-principal worker, already running; new: per-principal, "
      "a principal's first request; request: per-request isolation. Ratios against "
      "warm, measured in the same run.)\n");
  if (!all_agree) {
    std::fprintf(stderr, "predict_isolation_bench: the modes' answers differ\n");
    return 1;
  }
  return 0;
}
