// `chiron report JOB --html FILE`: a self-contained HTML page about one of the owner's jobs
// (src/client/report/report.h): the server's claims from a fresh attestation over this
// connection, the job's learning curves, confusion matrix and per-class accuracy, the model's
// query budget, and the owner's audit chain verified as `chiron audit --verify` does.
//
// Exit codes: 0 written; 2 attestation failed (nothing written) or the audit chain did not
// verify (the report is written and shows the failure); others as for every command.
#include <ctime>
#include <cstdio>

#include "chiron/v1/audit.grpc.pb.h"
#include "chiron/v1/jobs.grpc.pb.h"
#include "chiron/v1/models.grpc.pb.h"
#include "client/cli/cli_common.h"
#include "client/cli/job_view.h"
#include "client/report/report.h"
#include "shared/audit/chain.h"
#include "shared/base/file_system.h"

namespace chiron::client {
namespace {

struct ReportArgs {
  std::string job;
  std::string html;
};


// The model the job produced: Models.List entry with the job's model name and id. Unset if the
// job left no model (or it was deleted, or the name now belongs to another job's model).
Result<std::optional<v1::ModelInfo>> FindJobModel(Connection& connection,
                                                  const v1::OwnerJobView& job) {
  v1::ListModelsResponse response;
  auto context = connection.NewContext();
  CHIRON_RETURN_IF_ERROR(FromGrpc(v1::Models::NewStub(connection.channel())
                                      ->List(context.get(), v1::ListModelsRequest(), &response),
                                  "Models.List"));
  for (const v1::ModelInfo& info : response.models()) {
    if (info.name() == job.model_name() && info.job_id() == job.job_id()) {
      return std::optional<v1::ModelInfo>(info);
    }
  }
  return std::optional<v1::ModelInfo>();
}


// Fetches and verifies the owner's chain against the head the profile remembers, saving the new
// head on success (as `chiron audit --verify` does). Errors other than the profile's own are
// reported in the status, not returned.
Result<report::AuditStatus> CheckAudit(Connection& connection, const Session& session) {
  report::AuditStatus status;
  auto records = FetchAuditRecords(connection);
  if (!records.ok()) {
    status.error = records.status().message();
    return status;
  }
  status.fetched = true;
  status.record_count = records->size();
  CHIRON_ASSIGN_OR_RETURN(std::optional<audit::AuditHead> previous,
                          session.profile.LoadAuditHead(session.server));
  Status verified = audit::VerifyAuditChain(*records, previous, session.profile.principal_id());
  if (!verified.ok()) {
    status.error = verified.message();
    return status;
  }
  status.verified = true;
  if (auto head = audit::ChainHead(*records, previous)) {
    status.head_sequence = head->sequence;
    status.head_hash_hex = HexEncode(head->hash);
    CHIRON_RETURN_IF_ERROR(session.profile.SaveAuditHead(session.server, *head)
                               .WithContext("saving the verified audit head"));
  }
  return status;
}

std::string NowUtc() {
  std::time_t now = std::time(nullptr);
  struct tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

int RunReport(const GlobalOptions& global, const ReportArgs& args) {
  auto session = OpenSession(global);
  if (!session.ok()) return Fail(session.status());
  auto connection = ConnectSession(*session);
  if (!connection.ok()) return FailConnect(connection.status());
  auto claims = (*connection)->FreshAttestation();
  if (!claims.ok()) return FailVerification(claims.status());
  auto job = FindJob(**connection, args.job, global.program);
  if (!job.ok()) return Fail(job.status());
  auto model = FindJobModel(**connection, *job);
  if (!model.ok()) return Fail(model.status());
  auto audit_status = CheckAudit(**connection, *session);
  if (!audit_status.ok()) return Fail(audit_status.status());

  report::ReportData data;
  data.generated_at = NowUtc();
  data.server = session->server;
  data.program = global.program;
  data.claims = *claims;
  data.job_id = job->job_id();
  data.state = JobStateName(job->state());
  if (job->failure() != v1::FAILURE_NONE) {
    data.failure = FailureName(job->failure());
    data.failure_advice = FailureAdvice(job->failure());
  }
  data.model_name = job->model_name();
  data.dataset_name = job->dataset_name();
  data.recipe_id = job->recipe_id();
  data.epochs_done = job->epochs_done();
  data.epochs_total = job->epochs_total();
  data.elapsed_seconds = job->elapsed_seconds();
  for (const v1::EpochMetrics& m : job->history()) {
    data.history.push_back(
        {m.epoch(), m.train_loss(), m.validation_loss(), m.validation_accuracy()});
  }
  data.per_class_accuracy.assign(job->per_class_accuracy().begin(),
                                 job->per_class_accuracy().end());
  data.confusion_matrix.assign(job->confusion_matrix().begin(), job->confusion_matrix().end());
  if (*model) {
    const v1::ModelInfo& info = **model;
    data.class_names.assign(info.class_names().begin(), info.class_names().end());
    data.query_budget = report::QueryBudget{info.queries_used(), info.query_budget()};
  }
  data.audit = *audit_status;

  std::string html = report::RenderHtmlReport(data);
  Status written = FileSystem::Default()->WriteFileAtomic(args.html, AsBytes(html), 0600);
  if (!written.ok()) return Fail(written.WithContext("writing the report"));
  std::printf("report for job %s written to %s (%s, audit chain %s)\n", data.job_id.c_str(),
              args.html.c_str(), data.state.c_str(),
              data.audit.verified ? "verified" : "NOT VERIFIED");
  if (!data.audit.verified) {
    std::fprintf(stderr, "%s: audit chain not verified: %s\n", global.program.c_str(),
                 data.audit.error.c_str());
    return kExitVerificationFailed;
  }
  return kExitOk;
}

}  // namespace

void AddReportCommands(CLI::App& app, GlobalOptions& global, CommandAction& action) {
  auto args = std::make_shared<ReportArgs>();
  auto* report_cmd =
      app.add_subcommand("report", "Write a self-contained HTML report about one of your jobs");
  report_cmd->footer(
      "The page shows the server's attestation claims (fresh evidence over this connection), "
      "the job's learning curves, confusion matrix and per-class accuracy, the model's query "
      "budget and your audit chain, verified as `audit --verify` does. It has no scripts and "
      "loads nothing from the network.\n\nExit code 2 if attestation fails (nothing is "
      "written) or the audit chain does not verify (the report is written and says why)."
      "\n\nExample:\n  chiron report 3f2a9c --html report.html");
  report_cmd->add_option("job", args->job, "job id (or a unique prefix of at least 6 characters)")
      ->required();
  report_cmd->add_option("--html", args->html, "the HTML file to write")->required();
  report_cmd->callback([&global, &action, args] {
    action = [&global, args] { return RunReport(global, *args); };
  });
}

}  // namespace chiron::client
