// The job report of `chiron report JOB --html FILE`: one self-contained HTML page (inline CSS and
// inline SVG, no scripts, no external resources) with the server's verified attestation claims,
// the job's learning curves, its confusion matrix and per-class accuracy, the model's query
// budget and the status of the owner's audit chain.
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

  AuditStatus audit;
};

// Escapes & < > " ' and replaces invalid UTF-8 and control characters (other than tab and
// newline) with U+FFFD, so the text is safe in element content and quoted attribute values.
std::string EscapeHtml(std::string_view text);

// The whole page, starting with <!DOCTYPE html>.
std::string RenderHtmlReport(const ReportData& data);

}  // namespace chiron::client::report
