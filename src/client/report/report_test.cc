// The HTML job report renderer: content, escaping of hostile strings, self-containment and the
// degenerate inputs (no epochs, no model, a failed audit, a malformed confusion matrix).
#include "client/report/report.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace chiron::client::report {
namespace {

size_t Count(const std::string& haystack, const std::string& needle) {
  size_t count = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + needle.size())) {
    ++count;
  }
  return count;
}

ReportData Realistic() {
  ReportData data;
  data.generated_at = "2026-01-02T03:04:05Z";
  data.server = "127.0.0.1:7443";
  data.claims.platform = "sim";
  data.claims.simulated = true;
  data.claims.measurement = Bytes(48, 0xAB);
  data.claims.report_data = Bytes(64, 0x01);
  data.claims.svn = 3;
  data.claims.details = {{"sim_root_key", "00ff"}};
  data.claims.warnings = {"INSECURE: simulated platform"};
  data.job_id = "job-0123456789abcdef";
  data.state = "succeeded";
  data.failure = "none";
  data.model_name = "fm-lenet";
  data.dataset_name = "fm-train";
  data.recipe_id = "c0ffee";
  data.epochs_done = 3;
  data.epochs_total = 3;
  data.elapsed_seconds = 125;
  data.history = {{1, 0.9, 0.7, 0.71}, {2, 0.6, 0.55, 0.80}, {3, 0.45, 0.5, 0.84}};
  data.class_names = {"T-shirt/top", "Trouser", "Pullover"};
  data.per_class_accuracy = {0.8, 0.95, 0.7};
  data.confusion_matrix = {80, 5, 15, 2, 95, 3, 20, 10, 70};
  data.query_budget = QueryBudget{42, 1000};
  data.audit.fetched = true;
  data.audit.verified = true;
  data.audit.record_count = 7;
  data.audit.head_sequence = 7;
  data.audit.head_hash_hex = "deadbeef";
  return data;
}

TEST(EscapeHtmlTest, EscapesMarkupCharacters) {
  EXPECT_EQ(EscapeHtml("<a href=\"x\">Tom & 'Jerry'</a>"),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;");
  EXPECT_EQ(EscapeHtml("plain text"), "plain text");
}

TEST(EscapeHtmlTest, KeepsValidUtf8AndReplacesInvalidBytesAndControls) {
  EXPECT_EQ(EscapeHtml("caf\xC3\xA9 \xE2\x9C\x93 \xF0\x9F\x98\x80"),
            "caf\xC3\xA9 \xE2\x9C\x93 \xF0\x9F\x98\x80");
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(EscapeHtml("a\xFFz"), "a" + fffd + "z");
  EXPECT_EQ(EscapeHtml("\xC0\xAF"), fffd + fffd);          // overlong '/'
  EXPECT_EQ(EscapeHtml("\xED\xA0\x80"), fffd + fffd + fffd);  // surrogate
  EXPECT_EQ(EscapeHtml("\xE2\x9C"), fffd + fffd);          // truncated
  EXPECT_EQ(EscapeHtml(std::string("a\0b\x1B", 4)), "a" + fffd + "b" + fffd);
  EXPECT_EQ(EscapeHtml("a\tb\nc"), "a\tb\nc");
}

TEST(RenderHtmlReportTest, ContainsEverySection) {
  std::string html = RenderHtmlReport(Realistic());
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html.find("</html>"), std::string::npos);
  // Claims, with the sim platform's warning first.
  EXPECT_NE(html.find("id=\"claims\""), std::string::npos);
  size_t warning = html.find("id=\"insecure-warning\"");
  ASSERT_NE(warning, std::string::npos);
  EXPECT_LT(warning, html.find("id=\"claims\""));
  EXPECT_NE(html.find("<code>" + std::string(96, 'x').replace(0, 96, HexEncode(Bytes(48, 0xAB))) + "</code>"), std::string::npos);
  EXPECT_NE(html.find("sim_root_key"), std::string::npos);
  EXPECT_NE(html.find("INSECURE: simulated platform"), std::string::npos);
  // Two charts: train and validation loss, validation accuracy, each with a polyline.
  EXPECT_NE(html.find("<svg class=\"chart\" id=\"chart-loss\""), std::string::npos);
  EXPECT_NE(html.find("<svg class=\"chart\" id=\"chart-accuracy\""), std::string::npos);
  EXPECT_EQ(Count(html, "<polyline"), 3u);
  EXPECT_NE(html.find("series train-loss"), std::string::npos);
  EXPECT_NE(html.find("series validation-loss"), std::string::npos);
  EXPECT_NE(html.find("series validation-accuracy"), std::string::npos);
  EXPECT_EQ(Count(html, "<circle"), 9u);
  EXPECT_NE(html.find(">epoch</text>"), std::string::npos);
  EXPECT_NE(html.find(">loss</text>"), std::string::npos);
  EXPECT_NE(html.find(">accuracy</text>"), std::string::npos);
  // Confusion matrix: 9 cells, 3 on the diagonal, with class names on both axes.
  EXPECT_NE(html.find("id=\"confusion\""), std::string::npos);
  EXPECT_EQ(Count(html, "class=\"cm-cell"), 9u);
  EXPECT_EQ(Count(html, "cm-cell cm-diag"), 3u);
  EXPECT_GE(Count(html, ">T-shirt/top</th>"), 3u);  // per-class row, column and row headers
  EXPECT_NE(html.find(">95</td>"), std::string::npos);
  // The diagonal cell holding 95 of 100 is dark with white text; a 2 of 100 cell is light.
  EXPECT_NE(html.find("color:#ffffff\" title=\"true Trouser, predicted Trouser: 95"),
            std::string::npos);
  EXPECT_NE(html.find("color:#111111\" title=\"true Trouser, predicted T-shirt/top: 2"),
            std::string::npos);
  // Per-class accuracy, budget, audit.
  EXPECT_NE(html.find("id=\"per-class\""), std::string::npos);
  EXPECT_NE(html.find("95.0%"), std::string::npos);
  EXPECT_NE(html.find("42 of 1000 predictions used (4.2%); 958 left."), std::string::npos);
  EXPECT_NE(html.find("class=\"audit-status verified ok\""), std::string::npos);
  EXPECT_NE(html.find("Verified: 7 records"), std::string::npos);
  // Self-contained: no scripts, no external resources.
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("href="), std::string::npos);
  EXPECT_EQ(html.find("http:"), std::string::npos);
  EXPECT_EQ(html.find("https:"), std::string::npos);
  EXPECT_EQ(html.find("url("), std::string::npos);
}

TEST(RenderHtmlReportTest, HardwarePlatformHasNoInsecureBanner) {
  ReportData data = Realistic();
  data.claims.platform = "tdx";
  data.claims.simulated = false;
  data.claims.warnings.clear();
  std::string html = RenderHtmlReport(data);
  EXPECT_EQ(html.find("insecure-warning"), std::string::npos);
  EXPECT_EQ(html.find("SIMULATED"), std::string::npos);
}

TEST(RenderHtmlReportTest, EscapesEveryServerChosenString) {
  ReportData data = Realistic();
  const std::string evil = "<script>alert('x')</script>\"><img src=x onerror=alert(1)>";
  data.server = evil;
  data.generated_at = evil;
  data.job_id = evil;
  data.state = evil;
  data.failure = evil;
  data.failure_advice = evil;
  data.model_name = evil;
  data.dataset_name = evil;
  data.recipe_id = evil;
  data.class_names = {evil, evil, evil};
  data.claims.platform = evil;
  data.claims.details = {{evil, evil}};
  data.claims.warnings = {evil};
  data.audit.verified = false;
  data.audit.error = evil;
  data.audit.head_hash_hex = evil;
  data.program = evil;
  std::string html = RenderHtmlReport(data);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<img"), std::string::npos);
  EXPECT_EQ(html.find("alert(1)>"), std::string::npos);
  EXPECT_EQ(html.find("\"><img"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&gt;&lt;img"),
            std::string::npos);
}

TEST(RenderHtmlReportTest, FailedJobWithoutEpochsOrModel) {
  ReportData data = Realistic();
  data.state = "failed";
  data.failure = "sandbox-violation";
  data.failure_advice = "the recipe tried a forbidden system call";
  data.history.clear();
  data.per_class_accuracy.clear();
  data.confusion_matrix.clear();
  data.query_budget.reset();
  std::string html = RenderHtmlReport(data);
  EXPECT_NE(html.find("sandbox-violation &mdash; the recipe tried a forbidden system call"),
            std::string::npos);
  EXPECT_EQ(html.find("<polyline"), std::string::npos);
  EXPECT_EQ(Count(html, "no finished epochs yet"), 2u);
  EXPECT_NE(html.find("No per-class metrics"), std::string::npos);
  EXPECT_NE(html.find("id=\"budget-none\""), std::string::npos);
  EXPECT_EQ(html.find("id=\"history\""), std::string::npos);
}

TEST(RenderHtmlReportTest, AuditFailureShowsTheExactMessage) {
  ReportData data = Realistic();
  data.audit.verified = false;
  data.audit.record_count = 5;
  data.audit.error = "audit record 3: hash does not match its contents";
  std::string html = RenderHtmlReport(data);
  EXPECT_NE(html.find("class=\"audit-status failed bad\""), std::string::npos);
  EXPECT_NE(html.find("NOT VERIFIED (5 records): audit record 3: hash does not match its "
                      "contents"),
            std::string::npos);
  data.audit.fetched = false;
  data.audit.record_count = 0;
  data.audit.error = "Audit.List: unavailable";
  html = RenderHtmlReport(data);
  EXPECT_NE(html.find("NOT FETCHED (0 records): Audit.List: unavailable"), std::string::npos);
}

TEST(RenderHtmlReportTest, MalformedConfusionMatrixIsNotDrawn) {
  ReportData data = Realistic();
  data.confusion_matrix = {1, 2, 3, 4, 5};
  std::string html = RenderHtmlReport(data);
  EXPECT_EQ(html.find("class=\"cm-cell"), std::string::npos);
  EXPECT_NE(html.find("id=\"confusion-invalid\""), std::string::npos);
}

TEST(RenderHtmlReportTest, NonFiniteMetricsAreLeftOutOfCharts) {
  ReportData data = Realistic();
  data.history[1].train_loss = std::numeric_limits<double>::quiet_NaN();
  data.history[2].validation_loss = std::numeric_limits<double>::infinity();
  std::string html = RenderHtmlReport(data);
  EXPECT_EQ(html.find("nan"), std::string::npos);
  EXPECT_EQ(html.find(">inf"), std::string::npos);
  EXPECT_EQ(html.find("\"inf"), std::string::npos);
  EXPECT_NE(html.find("<td>n/a</td>"), std::string::npos);
  EXPECT_EQ(Count(html, "<circle"), 7u);
}

TEST(RenderHtmlReportTest, ClassIndicesWithoutNames) {
  ReportData data = Realistic();
  data.class_names.clear();
  std::string html = RenderHtmlReport(data);
  EXPECT_NE(html.find("<th scope=\"col\">0</th><th scope=\"col\">1</th><th scope=\"col\">2"),
            std::string::npos);
}

}  // namespace
}  // namespace chiron::client::report
