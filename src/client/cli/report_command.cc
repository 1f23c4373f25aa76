// `chiron report JOB --html FILE`: a self-contained HTML page about one of the owner's jobs
// (src/client/report/report.h): the server's claims from a fresh attestation over this
// connection, the recipe's card (name, version), the job's learning curves, confusion matrix and
// per-class accuracy, the model's score on a test set (--test-set: Models.Evaluate, run now: the
// server keeps no evaluation), its output policy, limits, grants and query budget, and the
// owner's audit chain verified as `chiron audit --verify` does.
//
// Exit codes: 0 written; 2 attestation failed (nothing written) or the audit chain did not
// verify (the report is written and shows the failure); others as for every command.
#include <ctime>
#include <cstdio>

#include "chiron/v1/audit.grpc.pb.h"
#include "chiron/v1/jobs.grpc.pb.h"
#include "chiron/v1/models.grpc.pb.h"
#include "chiron/v1/recipes.grpc.pb.h"
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
  std::string test_set;  // a dataset to score the model on; empty: none
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

// The public card of the job's recipe (Recipes.List); unset if it is no longer listed.
Result<std::optional<v1::RecipeCard>> FindRecipeCard(Connection& connection,
                                                     const std::string& recipe_id) {
  v1::ListRecipesResponse response;
  auto context = connection.NewContext();
  CHIRON_RETURN_IF_ERROR(FromGrpc(v1::Recipes::NewStub(connection.channel())
                                      ->List(context.get(), v1::ListRecipesRequest(), &response),
                                  "Recipes.List"));
  for (const v1::RecipeCard& card : response.recipes()) {
    if (card.recipe_id() == recipe_id) return std::optional<v1::RecipeCard>(card);
  }
  return std::optional<v1::RecipeCard>();
}

report::OutputPolicy ToPolicy(const v1::OutputPolicy& p) {
  return report::OutputPolicy{p.label_only(), p.max_top_k(), p.decimals()};
}

report::ModelTerms ToTerms(const v1::ModelInfo& info) {
  report::ModelTerms terms;
  terms.recipe_policy = ToPolicy(info.provider_output_policy());
  terms.effective_policy = ToPolicy(info.output_policy());
  const v1::OutputLimits& limits = info.owner_output_limits();
  terms.owner_narrowed = limits.label_only() || limits.max_top_k() > 0 || limits.has_decimals();
  terms.rate_per_minute = info.rate_per_minute();
  terms.max_batch = info.max_batch();
  for (const v1::ModelGrant& g : info.grants()) {
    terms.grants.push_back({g.grantee_id(), g.budget(), g.used()});
  }
  return terms;
}

// Scores the model on `dataset` inside the runtime (Models.Evaluate).
Result<report::TestEvaluation> Evaluate(Connection& connection, const std::string& model,
                                        const std::string& dataset) {
  v1::EvaluateRequest request;
  request.set_model_name(model);
  request.set_dataset_name(dataset);
  v1::EvaluationReport response;
  auto context = connection.NewContext();
  CHIRON_RETURN_IF_ERROR(FromGrpc(v1::Models::NewStub(connection.channel())
                                      ->Evaluate(context.get(), request, &response),
                                  "Models.Evaluate"));
  report::TestEvaluation t;
  t.dataset_name = dataset;
  t.sample_count = response.sample_count();
  t.loss = response.loss();
  t.accuracy = response.accuracy();
  t.per_class_accuracy.assign(response.per_class_accuracy().begin(),
                              response.per_class_accuracy().end());
  t.confusion_matrix.assign(response.confusion_matrix().begin(),
                            response.confusion_matrix().end());
  return t;
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
  // Scoring a test set runs the model over the whole dataset in the sandbox: allow for that.
  auto connection = ConnectSession(*session, args.test_set.empty() ? std::chrono::seconds(30)
                                                                   : std::chrono::minutes(30));
  if (!connection.ok()) return FailConnect(connection.status());
  auto claims = (*connection)->FreshAttestation();
  if (!claims.ok()) return FailVerification(claims.status());
  auto job = FindJob(**connection, args.job, global.program);
  if (!job.ok()) return Fail(job.status());
  auto model = FindJobModel(**connection, *job);
  if (!model.ok()) return Fail(model.status());
  auto card = FindRecipeCard(**connection, job->recipe_id());
  if (!card.ok()) return Fail(card.status());
  std::optional<report::TestEvaluation> test;
  std::string test_error;
  if (!args.test_set.empty()) {
    if (!*model) {
      test_error = "the job left no model to score";
    } else {
      auto evaluated = Evaluate(**connection, job->model_name(), args.test_set);
      if (!evaluated.ok()) return Fail(evaluated.status().WithContext("--test-set"));
      test = std::move(*evaluated);
    }
  }
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
  if (*card) {
    data.recipe_name = (*card)->name();
    data.recipe_version = (*card)->version();
    data.recipe_time_budget_minutes = (*card)->time_budget_minutes();
    data.recipe_memory_budget_bytes = (*card)->memory_budget_bytes();
  }
  data.test_evaluation = std::move(test);
  data.test_evaluation_error = test_error;
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
    data.model_terms = ToTerms(info);
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
      "the recipe's name and version, the job's learning curves, confusion matrix and "
      "per-class accuracy, with --test-set the model's score on a test set, the model's output "
      "policy, limits, grants and query budget, and your audit chain, verified as `audit "
      "--verify` does. It has no scripts and loads nothing from the network.\n\nExit code 2 "
      "if attestation fails (nothing is written) or the audit chain does not verify (the "
      "report is written and says why).\n\nExample:\n  chiron report 3f2a9c --html "
      "report.html --test-set fmnist-test");
  report_cmd->add_option("job", args->job, "job id (or a unique prefix of at least 6 characters)")
      ->required();
  report_cmd->add_option("--html", args->html, "the HTML file to write")->required();
  report_cmd->add_option("--test-set", args->test_set,
                         "also score the model on this labelled dataset of yours (not the one "
                         "it was trained on), inside the runtime");
  report_cmd->callback([&global, &action, args] {
    action = [&global, args] { return RunReport(global, *args); };
  });
}

}  // namespace chiron::client
