// `chiron job list|watch|cancel` (owners: their jobs with metrics) and `chiron-operator job
// facts` (providers: the fixed list of coarse job facts, docs/provider-facts.md, nothing else).
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "chiron/v1/jobs.grpc.pb.h"
#include "client/cli/cli_common.h"
#include "client/cli/job_view.h"

namespace chiron::client {
namespace {

struct JobArgs {
  std::string job;
  bool json = false;
};

std::string Elapsed(uint32_t seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%u:%02u", seconds / 60, seconds % 60);
  return text;
}

int RunList(const GlobalOptions& global, bool json) {
  auto session = OpenSession(global);
  if (!session.ok()) return Fail(session.status());
  auto connection = ConnectSession(*session);
  if (!connection.ok()) return FailConnect(connection.status());
  auto jobs = ListJobs(**connection);
  if (!jobs.ok()) return Fail(jobs.status());
  if (json) {
    nlohmann::json list = nlohmann::json::array();
    for (const v1::OwnerJobView& job : *jobs) list.push_back(OwnerJobViewJson(job, {}));
    std::cout << list.dump(2) << "\n";
    return kExitOk;
  }
  if (jobs->empty()) {
    std::printf("no jobs; start one with `%s train --dataset D --recipe R --model M`\n",
                global.program.c_str());
    return kExitOk;
  }
  std::printf("%-34s %-10s %-18s %-20s %-20s %7s %8s %8s\n", "JOB", "STATE", "FAILURE", "MODEL",
              "DATASET", "EPOCHS", "VAL ACC", "ELAPSED");
  for (const v1::OwnerJobView& job : *jobs) {
    char accuracy[16] = "-";
    if (!job.history().empty()) {
      std::snprintf(accuracy, sizeof accuracy, "%.4f",
                    job.history(job.history_size() - 1).validation_accuracy());
    }
    std::string epochs = std::to_string(job.epochs_done()) + "/" +
                         std::to_string(job.epochs_total());
    std::printf("%-34s %-10s %-18s %-20s %-20s %7s %8s %8s\n", job.job_id().c_str(),
                JobStateName(job.state()).c_str(),
                job.failure() == v1::FAILURE_NONE ? "-" : FailureName(job.failure()).c_str(),
                job.model_name().c_str(), job.dataset_name().c_str(), epochs.c_str(), accuracy,
                Elapsed(job.elapsed_seconds()).c_str());
  }
  return kExitOk;
}

int RunWatch(const GlobalOptions& global, const JobArgs& args) {
  auto session = OpenSession(global);
  if (!session.ok()) return Fail(session.status());
  auto connection = ConnectSession(*session);
  if (!connection.ok()) return FailConnect(connection.status());
  auto job = FindJob(**connection, args.job, global.program);
  if (!job.ok()) return Fail(job.status());
  WatchOptions watch;
  watch.program = global.program;
  watch.print_epochs = !args.json;
  auto finished = WatchJob(**connection, *job, watch);
  if (!finished.ok()) return Fail(finished.status());
  return ReportFinishedJob(**connection, *finished, args.json, global.program);
}

int RunCancel(const GlobalOptions& global, const JobArgs& args) {
  auto session = OpenSession(global);
  if (!session.ok()) return Fail(session.status());
  auto connection = ConnectSession(*session);
  if (!connection.ok()) return FailConnect(connection.status());
  auto job = FindJob(**connection, args.job, global.program);
  if (!job.ok()) return Fail(job.status());
  v1::JobRef ref;
  ref.set_job_id(job->job_id());
  v1::OwnerJobView view;
  auto context = (*connection)->NewContext();
  Status status = FromGrpc(
      v1::Jobs::NewStub((*connection)->channel())->Cancel(context.get(), ref, &view),
      "Jobs.Cancel");
  if (!status.ok()) return Fail(status);
  if (args.json) {
    std::cout << OwnerJobViewJson(view, {}).dump(2) << "\n";
    return kExitOk;
  }
  if (view.state() == v1::JOB_STATE_CANCELLED) {
    std::printf("cancelled job %s after %u of %u epochs\n", view.job_id().c_str(),
                view.epochs_done(), view.epochs_total());
  } else {
    std::printf("job %s is %s%s\n", view.job_id().c_str(), JobStateName(view.state()).c_str(),
                IsFinished(view.state())
                    ? " already; nothing to cancel"
                    : "; its worker is being stopped and the job ends cancelled within seconds");
  }
  return kExitOk;
}

int RunFacts(const GlobalOptions& global, bool json) {
  auto session = OpenSession(global);
  if (!session.ok()) return Fail(session.status());
  auto connection = ConnectSession(*session);
  if (!connection.ok()) return FailConnect(connection.status());
  v1::ListJobFactsResponse response;
  auto context = (*connection)->NewContext();
  Status status = FromGrpc(v1::Jobs::NewStub((*connection)->channel())
                               ->ListJobFacts(context.get(), v1::ListJobsRequest(), &response),
                           "Jobs.ListJobFacts");
  if (!status.ok()) return Fail(status);
  if (json) {
    // Exactly the JobFacts fields: this is everything a provider may learn about a job.
    nlohmann::json list = nlohmann::json::array();
    for (const v1::JobFacts& facts : response.jobs()) {
      list.push_back({{"job_id", facts.job_id()},
                      {"recipe_id", facts.recipe_id()},
                      {"state", JobStateName(facts.state())},
                      {"failure", FailureName(facts.failure())},
                      {"epochs_done", facts.epochs_done()},
                      {"elapsed_minutes", facts.elapsed_minutes()},
                      {"peak_memory_bucket_log2", facts.peak_memory_bucket_log2()}});
    }
    std::cout << list.dump(2) << "\n";
    return kExitOk;
  }
  if (response.jobs().empty()) {
    std::printf("no jobs use your recipes yet\n");
    return kExitOk;
  }
  std::printf("%-34s %-18s %-10s %-18s %6s %8s %s\n", "JOB", "RECIPE", "STATE", "FAILURE",
              "EPOCHS", "MINUTES", "PEAK MEMORY");
  for (const v1::JobFacts& facts : response.jobs()) {
    std::string memory = "-";
    if (facts.peak_memory_bucket_log2() > 0 && facts.peak_memory_bucket_log2() < 64) {
      memory = "<= " + FormatBytes(uint64_t{1} << facts.peak_memory_bucket_log2()) + " (2^" +
               std::to_string(facts.peak_memory_bucket_log2()) + ")";
    }
    std::printf("%-34s %-18s %-10s %-18s %6u %8u %s\n", facts.job_id().c_str(),
                (facts.recipe_id().substr(0, 16) + "..").c_str(),
                JobStateName(facts.state()).c_str(),
                facts.failure() == v1::FAILURE_NONE ? "-" : FailureName(facts.failure()).c_str(),
                facts.epochs_done(), facts.elapsed_minutes(), memory.c_str());
  }
  std::printf("(these facts are all a provider learns about a job; a job's outcome shows once its "
              "time budget has run out: docs/provider-facts.md)\n");
  return kExitOk;
}

}  // namespace

void AddJobCommands(CLI::App& app, GlobalOptions& global, CommandAction& action) {
  if (global.operator_mode) {
    auto* job_cmd = app.add_subcommand("job", "The coarse facts of jobs that use your recipes");
    job_cmd->require_subcommand(1);
    job_cmd->footer("Example:\n  chiron-operator job facts --json");
    auto json = std::make_shared<bool>(false);
    auto* facts_cmd = job_cmd->add_subcommand(
        "facts", "List job facts: state, failure category, epochs, minutes, memory bucket");
    facts_cmd->footer(
        "A provider sees exactly these fields per job and nothing derived from the owner's data "
        "(no loss, accuracy or prediction): job_id, recipe_id, state, failure, epochs_done, "
        "elapsed_minutes, peak_memory_bucket_log2. A job shows running until its time budget "
        "has run out, however early it ended; then its outcome (or only \"ended\", if its "
        "owner chose --provider-view done-only). See docs/provider-facts.md.\n\nExample:\n"
        "  chiron-operator job facts --json");
    facts_cmd->add_flag("--json", *json, "print as JSON");
    facts_cmd->callback([&global, &action, json] {
      action = [&global, json] { return RunFacts(global, *json); };
    });
    return;
  }

  auto* job_cmd = app.add_subcommand("job", "List, follow and cancel your training jobs");
  job_cmd->require_subcommand(1);
  job_cmd->footer(
      "Examples:\n  chiron job list\n  chiron job watch 3f2a9c\n  chiron job cancel 3f2a9c");

  auto list_json = std::make_shared<bool>(false);
  auto* list_cmd = job_cmd->add_subcommand("list", "List your jobs with state and accuracy");
  list_cmd->footer("Example:\n  chiron job list --json");
  list_cmd->add_flag("--json", *list_json, "print as JSON");
  list_cmd->callback([&global, &action, list_json] {
    action = [&global, list_json] { return RunList(global, *list_json); };
  });

  auto watch = std::make_shared<JobArgs>();
  auto* watch_cmd = job_cmd->add_subcommand(
      "watch", "Follow a job live until it ends, then print its validation metrics");
  watch_cmd->footer(
      "JOB is the job id or an unambiguous prefix of at least 6 characters. On a terminal a "
      "live line shows the epoch, the batch within it, a bar, the server's training rate and "
      "the ETA, refreshed every few batches. Exit code 6 if the job failed or was "
      "cancelled.\n\nExample:\n  chiron job watch 3f2a9c");
  watch_cmd->add_option("JOB", watch->job, "job id (or prefix)")->required();
  watch_cmd->add_flag("--json", watch->json, "print the finished job as JSON");
  watch_cmd->callback([&global, &action, watch] {
    action = [&global, watch] { return RunWatch(global, *watch); };
  });

  auto cancel = std::make_shared<JobArgs>();
  auto* cancel_cmd = job_cmd->add_subcommand("cancel", "Stop a queued or running job");
  cancel_cmd->footer("Example:\n  chiron job cancel 3f2a9c");
  cancel_cmd->add_option("JOB", cancel->job, "job id (or prefix)")->required();
  cancel_cmd->add_flag("--json", cancel->json, "print the job as JSON");
  cancel_cmd->callback([&global, &action, cancel] {
    action = [&global, cancel] { return RunCancel(global, *cancel); };
  });
}

Result<std::vector<v1::OwnerJobView>> ListJobs(Connection& connection) {
  v1::ListOwnerJobsResponse response;
  auto context = connection.NewContext();
  CHIRON_RETURN_IF_ERROR(
      FromGrpc(v1::Jobs::NewStub(connection.channel())
                   ->ListOwnerJobs(context.get(), v1::ListJobsRequest(), &response),
               "Jobs.ListOwnerJobs"));
  return std::vector<v1::OwnerJobView>(response.jobs().begin(), response.jobs().end());
}

// The caller's job whose id is `id` or starts with it (at least 6 characters, unambiguous).
Result<v1::OwnerJobView> FindJob(Connection& connection, const std::string& id,
                                 const std::string& program) {
  CHIRON_ASSIGN_OR_RETURN(auto jobs, ListJobs(connection));
  const v1::OwnerJobView* match = nullptr;
  for (const v1::OwnerJobView& job : jobs) {
    if (job.job_id() == id) return job;
    if (id.size() >= 6 && job.job_id().compare(0, id.size(), id) == 0) {
      if (match != nullptr) {
        return InvalidArgumentError("job id prefix '" + id +
                                    "' matches several of your jobs; give more characters");
      }
      match = &job;
    }
  }
  if (match == nullptr) {
    return NotFoundError("you have no job '" + id + "': `" + program +
                         " job list` shows your jobs");
  }
  return *match;
}

}  // namespace chiron::client
