// The job report of `chiron report JOB --html FILE`: one self-contained HTML page (inline CSS and
// inline SVG, no scripts, no external resources) with the server's verified attestation claims,
// the recipe's name and version, the job's learning curves (the accuracy axis zoomed to the
// data), its confusion matrix and per-class accuracy, the model's score on a test set, its
// output policy, limits, grants and query budget, and the status of the owner's audit chain.
//
// RenderHtmlReport is a pure function of ReportData: the command (src/client/cli/
// report_command.cc) gathers the data over an attested connection; tests build it by hand.
// Every string from the data (which a hostile server could choose) is HTML-escaped and made
// valid UTF-8; numbers that are not finite are shown as "n/a" and left out of the charts.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shared/attest/claims.h"

namespace chiron::client::report {

struct EpochPoint {
  uint32_t epoch = 0;
  double train_loss = 0;
  double validation_loss = 0;
  double validation_accuracy = 0;  // 0..1
};

struct QueryBudget {
  uint64_t used = 0;
  uint64_t budget = 0;
};

// What Predict returns (models.proto OutputPolicy).
struct OutputPolicy {
  bool label_only = false;  // the most probable class only, no scores
  uint32_t max_top_k = 0;   // classes per sample at most; 0: every class
  uint32_t decimals = 0;    // probabilities rounded to this many decimal places
};

struct Grant {
  std::string grantee_id;  // principal id (hex)
  uint64_t budget = 0;     // 0: only the model's budget bounds the grantee
  uint64_t used = 0;
};

// The model's terms from its ModelInfo: what a prediction returns and who may ask how often.
struct ModelTerms {
  OutputPolicy recipe_policy;     // declared by the recipe
  OutputPolicy effective_policy;  // the recipe's narrowed by the owner's limits
  bool owner_narrowed = false;    // the owner set limits (`chiron model limit`)
  uint32_t rate_per_minute = 0;   // per querying principal; 0: no limit
  uint32_t max_batch = 0;         // samples per request at most; 0: unknown
  std::vector<Grant> grants;
};

// The model scored on one of the owner's labelled datasets (Models.Evaluate), e.g. a test set.
struct TestEvaluation {
  std::string dataset_name;
  uint64_t sample_count = 0;
  double loss = 0;
  double accuracy = 0;  // 0..1
  std::vector<double> per_class_accuracy;
  std::vector<uint64_t> confusion_matrix;  // row-major: true class × predicted class
};

struct AuditStatus {
  // False: the records could not be fetched (`error` says why); nothing was verified.
  bool fetched = false;
  bool verified = false;
  uint64_t record_count = 0;
  // The verifier's (or fetch's) exact message when !verified.
  std::string error;
  // The verified head (sequence and hex hash), when the chain has records.
  uint64_t head_sequence = 0;
  std::string head_hash_hex;
};

struct ReportData {
  std::string generated_at;  // e.g. "2026-01-02T03:04:05Z"
  std::string server;        // host:port
  std::string program = "chiron";

  // The server's claims from a fresh attestation over the report's own connection (verified:
  // the command refuses to write a report otherwise).
  attest::Claims claims;

  std::string job_id;
  std::string state;    // "succeeded", ... (JobStateName)
  std::string failure;  // empty or "none" when the job did not fail
  std::string failure_advice;
  std::string model_name;
  std::string dataset_name;
  std::string recipe_id;
  // From the recipe's public card (Recipes.List); empty if the card is gone.
  std::string recipe_name;
  std::string recipe_version;
  // The budget the recipe declares (its card; 0: unknown): the job's limits within chirond's.
  uint32_t recipe_time_budget_minutes = 0;
  uint64_t recipe_memory_budget_bytes = 0;
  uint32_t epochs_done = 0;
  uint32_t epochs_total = 0;
  uint32_t elapsed_seconds = 0;
  std::vector<EpochPoint> history;
  std::vector<double> per_class_accuracy;
  std::vector<uint64_t> confusion_matrix;  // row-major: true class × predicted class
  // From the model's ModelInfo.class_names (empty: class indices are shown).
  std::vector<std::string> class_names;

  // Unset when the job left no model (e.g. it failed) or the model was deleted.
  std::optional<QueryBudget> query_budget;
  std::optional<ModelTerms> model_terms;

  // Set when the report scored the model on a test set (`chiron report --test-set`); when that
  // was asked for and failed, `test_evaluation_error` says why.
  std::optional<TestEvaluation> test_evaluation;
  std::string test_evaluation_error;

  AuditStatus audit;
};

// Escapes & < > " ' and replaces invalid UTF-8 and control characters (other than tab and
// newline) with U+FFFD, so the text is safe in element content and quoted attribute values.
std::string EscapeHtml(std::string_view text);

// The whole page, starting with <!DOCTYPE html>.
std::string RenderHtmlReport(const ReportData& data);

}  // namespace chiron::client::report
