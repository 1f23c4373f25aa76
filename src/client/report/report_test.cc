// The HTML job report renderer: content, escaping of hostile strings, self-containment and the
// degenerate inputs (no epochs, no model, a failed audit, a malformed confusion matrix); the
// recipe's card, the test set, output policy, limits and grants; the zoomed accuracy axis and a
// one-epoch job.
#include "client/report/report.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

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
  EXPECT_NE(html.find(">accuracy (axis zoomed to the data)</text>"), std::string::npos);
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
  data.recipe_name = evil;
  data.recipe_version = evil;
  data.test_evaluation = TestEvaluation{evil, 10, 0.5, 0.5, {0.5, 0.5, 0.5}, {}};
  data.model_terms = ModelTerms{};
  data.model_terms->grants = {{evil, 0, 0}};
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
  data.model_terms.reset();
  std::string html = RenderHtmlReport(data);
  EXPECT_NE(html.find("sandbox-violation &mdash; the recipe tried a forbidden system call"),
            std::string::npos);
  EXPECT_EQ(html.find("<polyline"), std::string::npos);
  EXPECT_EQ(Count(html, "no finished epochs yet"), 2u);
  EXPECT_NE(html.find("No per-class metrics"), std::string::npos);
  EXPECT_NE(html.find("id=\"budget-none\""), std::string::npos);
  EXPECT_NE(html.find("id=\"terms-none\""), std::string::npos);
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

// The y tick labels of the chart `id`, in order from the bottom.
std::vector<std::string> YTicks(const std::string& html, const std::string& id) {
  size_t start = html.find("id=\"" + id + "\"");
  size_t end = html.find("</svg>", start);
  std::vector<std::string> ticks;
  const std::string tick = "<text class=\"tick\"";
  const std::string y_tick_end = "text-anchor=\"end\">";
  for (size_t at = html.find(tick, start); at < end; at = html.find(tick, at + 1)) {
    size_t close = html.find('>', at);
    if (html.compare(close - y_tick_end.size() + 1, y_tick_end.size(), y_tick_end) != 0) continue;
    ticks.push_back(html.substr(close + 1, html.find('<', close) - close - 1));
  }
  return ticks;
}

TEST(RenderHtmlReportTest, RecipeTestSetOutputPolicyLimitsAndGrants) {
  ReportData data = Realistic();
  data.recipe_id = "c0ffee00112233445566778899";
  data.recipe_name = "acme-lenet";
  data.recipe_version = "1.0";
  data.recipe_time_budget_minutes = 30;
  data.recipe_memory_budget_bytes = 2'000'000'000;
  data.test_evaluation =
      TestEvaluation{"fm-test", 10000, 0.52, 0.8123, {0.81, 0.97, 0.66}, {81, 2, 17, 1, 97, 2,
                                                                          20, 14, 66}};
  ModelTerms terms;
  terms.recipe_policy = OutputPolicy{false, 5, 3};
  terms.effective_policy = OutputPolicy{false, 3, 2};
  terms.owner_narrowed = true;
  terms.rate_per_minute = 60;
  terms.max_batch = 256;
  terms.grants = {{"ab12cd34", 500, 17}, {"ee77ff88", 0, 3}};
  data.model_terms = terms;
  std::string html = RenderHtmlReport(data);
  // The recipe by name and version, in the header and the job table.
  EXPECT_NE(html.find("recipe acme-lenet 1.0. Generated"), std::string::npos);
  EXPECT_NE(html.find("<span id=\"recipe-name\">acme-lenet 1.0</span> <code>c0ffee0011223344"
                      "</code>"),
            std::string::npos);
  // The job's limits: the recipe's declared budget.
  EXPECT_NE(html.find("<span id=\"job-limits\">30 min, 2.0 GB of memory</span>"),
            std::string::npos);
  // The test set: its figures, its own per-class table and confusion matrix, and its accuracy
  // as a reference line on the accuracy chart.
  EXPECT_NE(html.find("<strong id=\"test-accuracy\">81.2%</strong>"), std::string::npos);
  EXPECT_NE(html.find("<td>fm-test</td>"), std::string::npos);
  EXPECT_NE(html.find("<td>10000</td>"), std::string::npos);
  EXPECT_NE(html.find("id=\"test-per-class\""), std::string::npos);
  EXPECT_NE(html.find("id=\"test-confusion\""), std::string::npos);
  EXPECT_EQ(Count(html, "class=\"cm-cell"), 18u);
  EXPECT_NE(html.find("class=\"reference\""), std::string::npos);
  EXPECT_NE(html.find(">test set 81.2%</text>"), std::string::npos);
  // What a prediction returns, the recipe's policy, the owner's limits, rate, batch, grants.
  EXPECT_NE(html.find("<span id=\"effective-policy\">the top 3 classes with probabilities "
                      "rounded to 2 decimals</span>"),
            std::string::npos);
  EXPECT_NE(html.find("the top 5 classes with probabilities rounded to 3 decimals"),
            std::string::npos);
  EXPECT_NE(html.find("narrowed (<code>chiron model limit</code>)"), std::string::npos);
  EXPECT_NE(html.find("60 queries a minute per querying principal"), std::string::npos);
  EXPECT_NE(html.find("at most 256 samples per request"), std::string::npos);
  EXPECT_NE(html.find("<td><code>ab12cd34</code></td><td>17</td><td>500</td>"),
            std::string::npos);
  EXPECT_NE(html.find("<td><code>ee77ff88</code></td><td>3</td><td>the model's</td>"),
            std::string::npos);

  // Label only, no limits, nobody else; no test set: the command that adds one.
  data.model_terms = ModelTerms{OutputPolicy{true, 0, 0}, OutputPolicy{true, 0, 0}, false, 0,
                                0, {}};
  data.test_evaluation.reset();
  html = RenderHtmlReport(data);
  EXPECT_NE(html.find("the most probable class only, no scores"), std::string::npos);
  EXPECT_NE(html.find("none: the recipe's policy applies"), std::string::npos);
  EXPECT_NE(html.find("id=\"grants-none\""), std::string::npos);
  EXPECT_NE(html.find("id=\"test-none\""), std::string::npos);
  EXPECT_NE(html.find("chiron report JOB --html FILE --test-set DATASET"), std::string::npos);
  EXPECT_EQ(html.find("class=\"reference\""), std::string::npos);
  data.test_evaluation_error = "the job left no model to score";
  EXPECT_NE(RenderHtmlReport(data).find("Not evaluated: the job left no model to score"),
            std::string::npos);
}

// Accuracy between 71% and 84% fills the chart: the axis runs from 65% to 90% in 5% steps,
// not from 0% to 100% (where the curve was a flat line at the top).
TEST(RenderHtmlReportTest, AccuracyAxisIsZoomedToTheData) {
  std::string html = RenderHtmlReport(Realistic());
  EXPECT_EQ(YTicks(html, "chart-accuracy"),
            (std::vector<std::string>{"65%", "70%", "75%", "80%", "85%", "90%"}));
  // A test accuracy outside the validation range widens the axis to show it.
  ReportData data = Realistic();
  data.test_evaluation = TestEvaluation{"fm-test", 100, 0.9, 0.55, {}, {}};
  auto ticks = YTicks(RenderHtmlReport(data), "chart-accuracy");
  ASSERT_FALSE(ticks.empty());
  EXPECT_EQ(ticks.front(), "50%");
  EXPECT_EQ(ticks.back(), "90%");
  // Near the top the axis stops at 100%.
  data = Realistic();
  data.history = {{1, 0.2, 0.1, 0.985}, {2, 0.1, 0.05, 0.995}};
  ticks = YTicks(RenderHtmlReport(data), "chart-accuracy");
  ASSERT_FALSE(ticks.empty());
  EXPECT_EQ(ticks.back(), "100%");
}

// A one-epoch job: its points sit on the single tick "1" (no epoch 0 or 2), carry their values,
// and a note says why the curves are points.
TEST(RenderHtmlReportTest, OneEpochJobReadsWell) {
  ReportData data = Realistic();
  data.epochs_done = 1;
  data.epochs_total = 1;
  data.history = {{1, 1.1125, 0.7666, 0.712}};
  std::string html = RenderHtmlReport(data);
  EXPECT_NE(html.find("id=\"one-epoch\""), std::string::npos);
  EXPECT_NE(html.find("<td>1 of 1</td>"), std::string::npos);
  EXPECT_EQ(Count(html, "text-anchor=\"middle\">1</text>"), 2u);  // one x tick per chart
  EXPECT_EQ(html.find("text-anchor=\"middle\">0</text>"), std::string::npos);
  EXPECT_EQ(html.find("text-anchor=\"middle\">2</text>"), std::string::npos);
  EXPECT_NE(html.find(">71.2%</text>"), std::string::npos);   // the accuracy point's label
  EXPECT_NE(html.find(">1.1125</text>"), std::string::npos);  // the train loss point's label
  EXPECT_NE(html.find(">0.7666</text>"), std::string::npos);
  auto ticks = YTicks(html, "chart-accuracy");
  ASSERT_FALSE(ticks.empty());
  EXPECT_NE(ticks.front(), "0%");
  EXPECT_NE(ticks.back(), "100%");
  // Several epochs: no note.
  EXPECT_EQ(RenderHtmlReport(Realistic()).find("id=\"one-epoch\""), std::string::npos);
}

}  // namespace
}  // namespace chiron::client::report
