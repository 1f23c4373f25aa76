#include "client/report/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "shared/base/bytes.h"

namespace chiron::client::report {
namespace {

constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD

// Length of the valid UTF-8 sequence starting at text[i], or 0 if it is not valid (overlong
// forms, surrogates and code points above U+10FFFF are invalid).
size_t ValidUtf8Length(std::string_view text, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  unsigned char b0 = byte(i);
  if (b0 < 0x80) return 1;
  size_t length = 0;
  uint32_t code = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    length = 2;
    code = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    length = 3;
    code = b0 & 0x0F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    length = 4;
    code = b0 & 0x07;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  for (size_t k = 1; k < length; ++k) {
    unsigned char b = byte(i + k);
    if ((b & 0xC0) != 0x80) return 0;
    code = (code << 6) | (b & 0x3F);
  }
  if (length == 3 && (code < 0x800 || (code >= 0xD800 && code <= 0xDFFF))) return 0;
  if (length == 4 && (code < 0x10000 || code > 0x10FFFF)) return 0;
  return length;
}

std::string Number(double value, const char* format) {
  if (!std::isfinite(value)) return "n/a";
  char text[64];
  std::snprintf(text, sizeof text, format, value);
  return text;
}

std::string Percent(double fraction) {
  if (!std::isfinite(fraction)) return "n/a";
  return Number(fraction * 100.0, "%.1f") + "%";
}

// A coordinate for SVG attributes (fixed notation, 2 decimals).
std::string Coord(double value) { return Number(value, "%.2f"); }

// "1, 2, 5 × 10^k" steps giving about `count` ticks over [lo, hi].
double NiceStep(double span, int count) {
  if (!(span > 0)) return 1;
  double raw = span / count;
  double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double fraction = raw / magnitude;
  double nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10;
  return nice * magnitude;
}

struct Series {
  std::string name;
  std::string color;
  std::string css_class;
  std::vector<std::pair<double, double>> points;  // (epoch, value), finite only
};

struct ChartSpec {
  std::string id;
  std::string title;
  std::string y_label;
  // Bounds the axis may not pass (accuracy: 0..1); the axis is zoomed to the data within them.
  std::optional<std::pair<double, double>> y_bounds;
  bool y_percent = false;
  // Horizontal dashed lines (name, value), e.g. the test-set accuracy; part of the zoomed range.
  std::vector<std::pair<std::string, double>> references;
};

std::string LineChart(const ChartSpec& spec, const std::vector<Series>& series) {
  constexpr double kWidth = 540, kHeight = 330;
  constexpr double kLeft = 70, kRight = 20, kTop = 54, kBottom = 56;
  const double plot_w = kWidth - kLeft - kRight;
  const double plot_h = kHeight - kTop - kBottom;

  double x_min = 1, x_max = 1, y_min = 0, y_max = 1;
  bool any = false;
  for (const Series& s : series) {
    for (auto [x, y] : s.points) {
      if (!any) {
        x_min = x_max = x;
        y_min = y_max = y;
        any = true;
      }
      x_min = std::min(x_min, x);
      x_max = std::max(x_max, x);
      y_min = std::min(y_min, y);
      y_max = std::max(y_max, y);
    }
  }
  for (const auto& [name, value] : spec.references) {
    if (!std::isfinite(value)) continue;
    if (!any) {
      y_min = y_max = value;
      any = true;
    }
    y_min = std::min(y_min, value);
    y_max = std::max(y_max, value);
  }
  if (spec.y_bounds && any) {
    // Zoomed to the data (an accuracy between 71% and 84% fills the chart), on whole ticks,
    // never past the bounds.
    double pad = std::max((y_max - y_min) * 0.15, 0.02);
    double step = NiceStep(y_max - y_min + 2 * pad, 5);
    y_min = std::max(spec.y_bounds->first, std::floor((y_min - pad) / step) * step);
    y_max = std::min(spec.y_bounds->second, std::ceil((y_max + pad) / step) * step);
  } else if (spec.y_bounds) {
    y_min = spec.y_bounds->first;
    y_max = spec.y_bounds->second;
  } else if (any) {
    double pad = (y_max - y_min) * 0.08;
    if (!(pad > 0)) pad = std::max(std::fabs(y_max) * 0.1, 0.1);
    y_min = y_min - pad;
    y_max = y_max + pad;
    if (y_min < 0 && std::all_of(series.begin(), series.end(), [](const Series& s) {
          return std::all_of(s.points.begin(), s.points.end(),
                             [](const auto& p) { return p.second >= 0; });
        })) {
      y_min = 0;
    }
  }
  if (x_max <= x_min) {  // one epoch: its point in the middle, one tick
    x_min -= 0.5;
    x_max += 0.5;
  }
  if (y_max <= y_min) y_max = y_min + 1;

  auto px = [&](double x) { return kLeft + (x - x_min) / (x_max - x_min) * plot_w; };
  auto py = [&](double y) { return kTop + (1 - (y - y_min) / (y_max - y_min)) * plot_h; };

  std::string svg = "<svg class=\"chart\" id=\"" +
                    EscapeHtml(spec.id) + "\" viewBox=\"0 0 " + Coord(kWidth) + " " +
                    Coord(kHeight) + "\" width=\"" + Coord(kWidth) + "\" height=\"" +
                    Coord(kHeight) + "\" role=\"img\" aria-label=\"" + EscapeHtml(spec.title) +
                    "\">";
  svg += "<title>" + EscapeHtml(spec.title) + "</title>";
  svg += "<rect x=\"0\" y=\"0\" width=\"" + Coord(kWidth) + "\" height=\"" + Coord(kHeight) +
         "\" fill=\"#ffffff\"/>";
  svg += "<text class=\"chart-title\" x=\"" + Coord(kWidth / 2) +
         "\" y=\"22\" text-anchor=\"middle\">" + EscapeHtml(spec.title) + "</text>";

  // Grid and y ticks.
  double y_step = NiceStep(y_max - y_min, 5);
  std::string grid, labels;
  for (double t = std::ceil(y_min / y_step) * y_step; t <= y_max + y_step * 1e-9; t += y_step) {
    double y = py(t);
    grid += "<line class=\"grid\" x1=\"" + Coord(kLeft) + "\" y1=\"" + Coord(y) + "\" x2=\"" +
            Coord(kLeft + plot_w) + "\" y2=\"" + Coord(y) + "\"/>";
    double shown = std::fabs(t) < y_step * 1e-9 ? 0.0 : t;
    std::string text = spec.y_percent
                           ? Number(shown * 100, y_step * 100 >= 1 - 1e-9 ? "%.0f" : "%.1f") + "%"
                           : Number(shown, "%.3g");
    labels += "<text class=\"tick\" x=\"" + Coord(kLeft - 8) + "\" y=\"" + Coord(y + 4) +
              "\" text-anchor=\"end\">" + text + "</text>";
  }
  // x ticks: whole epochs, at most about 10 of them.
  double x_step = std::max(1.0, std::ceil((x_max - x_min) / 10.0));
  for (double t = std::ceil(x_min); t <= x_max + 1e-9; t += x_step) {
    double x = px(t);
    grid += "<line class=\"grid\" x1=\"" + Coord(x) + "\" y1=\"" + Coord(kTop) + "\" x2=\"" +
            Coord(x) + "\" y2=\"" + Coord(kTop + plot_h) + "\"/>";
    labels += "<text class=\"tick\" x=\"" + Coord(x) + "\" y=\"" + Coord(kTop + plot_h + 18) +
              "\" text-anchor=\"middle\">" + Number(t, "%.0f") + "</text>";
  }
  svg += "<g class=\"grid-lines\">" + grid + "</g>";
  // Axes.
  svg += "<path class=\"axis\" d=\"M" + Coord(kLeft) + " " + Coord(kTop) + " L" + Coord(kLeft) +
         " " + Coord(kTop + plot_h) + " L" + Coord(kLeft + plot_w) + " " +
         Coord(kTop + plot_h) + "\"/>";
  svg += "<g class=\"tick-labels\">" + labels + "</g>";
  svg += "<text class=\"axis-label\" x=\"" + Coord(kLeft + plot_w / 2) + "\" y=\"" +
         Coord(kHeight - 12) + "\" text-anchor=\"middle\">epoch</text>";
  svg += "<text class=\"axis-label\" x=\"16\" y=\"" + Coord(kTop + plot_h / 2) +
         "\" text-anchor=\"middle\" transform=\"rotate(-90 16 " + Coord(kTop + plot_h / 2) +
         ")\">" + EscapeHtml(spec.y_label) + "</text>";

  if (!any) {
    svg += "<text class=\"no-data\" x=\"" + Coord(kLeft + plot_w / 2) + "\" y=\"" +
           Coord(kTop + plot_h / 2) + "\" text-anchor=\"middle\">no finished epochs yet</text>";
  }
  double legend_x = kLeft + 10;
  for (const auto& [name, value] : spec.references) {
    if (!std::isfinite(value)) continue;
    std::string label = name + " " + (spec.y_percent ? Percent(value) : Number(value, "%.4f"));
    svg += "<line class=\"reference\" x1=\"" + Coord(kLeft) + "\" y1=\"" + Coord(py(value)) +
           "\" x2=\"" + Coord(kLeft + plot_w) + "\" y2=\"" + Coord(py(value)) +
           "\" stroke=\"#7b3294\" stroke-width=\"2\" stroke-dasharray=\"6 4\"><title>" +
           EscapeHtml(label) + "</title></line>";
    svg += "<text class=\"reference-label\" x=\"" + Coord(kLeft + plot_w - 4) + "\" y=\"" +
           Coord(py(value) - 6) + "\" text-anchor=\"end\">" + EscapeHtml(label) + "</text>";
  }
  // Series: a polyline and a marker per point (a lone point also gets its value written).
  for (const Series& s : series) {
    if (!s.points.empty()) {
      std::string points;
      for (auto [x, y] : s.points) {
        if (!points.empty()) points += " ";
        points += Coord(px(x)) + "," + Coord(py(y));
      }
      svg += "<polyline class=\"series " + s.css_class + "\" fill=\"none\" stroke=\"" + s.color +
             "\" stroke-width=\"2.5\" points=\"" + points + "\"/>";
      for (auto [x, y] : s.points) {
        svg += "<circle class=\"marker " + s.css_class + "\" cx=\"" + Coord(px(x)) + "\" cy=\"" +
               Coord(py(y)) + "\" r=\"3.5\" fill=\"" + s.color + "\"><title>" +
               EscapeHtml(s.name) + ", epoch " + Number(x, "%.0f") + ": " +
               (spec.y_percent ? Percent(y) : Number(y, "%.4f")) + "</title></circle>";
      }
      if (s.points.size() == 1) {
        auto [x, y] = s.points.front();
        svg += "<text class=\"point-label " + s.css_class + "\" x=\"" + Coord(px(x) + 8) +
               "\" y=\"" + Coord(py(y) + 4) + "\">" +
               (spec.y_percent ? Percent(y) : Number(y, "%.4f")) + "</text>";
      }
    }
    svg += "<rect x=\"" + Coord(legend_x) + "\" y=\"" + Coord(kTop - 18) +
           "\" width=\"14\" height=\"4\" fill=\"" + s.color + "\"/>";
    svg += "<text class=\"legend\" x=\"" + Coord(legend_x + 20) + "\" y=\"" + Coord(kTop - 12) +
           "\">" + EscapeHtml(s.name) + "</text>";
    legend_x += 30 + 7.5 * static_cast<double>(s.name.size());
  }
  svg += "</svg>";
  return svg;
}

std::string Row(const std::string& key, const std::string& value_html) {
  return "<tr><th scope=\"row\">" + EscapeHtml(key) + "</th><td>" + value_html + "</td></tr>";
}

std::string Mono(const std::string& text) {
  return "<code>" + EscapeHtml(text) + "</code>";
}

std::string ClaimsSection(const ReportData& data) {
  const attest::Claims& c = data.claims;
  std::string html = "<section id=\"attestation\"><h2>Server attestation</h2>";
  if (c.simulated) {
    html +=
        "<div id=\"insecure-warning\" class=\"warning\" role=\"alert\"><strong>INSECURE: "
        "simulated TEE.</strong> This server runs on the <code>sim</code> platform, a software "
        "simulation with no hardware protection: its evidence proves nothing and the host can "
        "read everything. Do not send real data to it.</div>";
  }
  for (const std::string& warning : c.warnings) {
    html += "<p class=\"claim-warning\">Warning: " + EscapeHtml(warning) + "</p>";
  }
  html +=
      "<p>Fresh evidence over a random nonce and the TLS keys of this report's own connection, "
      "verified under your attestation policy when the report was made.</p>";
  html += "<table id=\"claims\" class=\"kv\"><tbody>";
  html += Row("verified", "<span class=\"ok\">yes</span>");
  html += Row("server", Mono(data.server));
  html += Row("platform", EscapeHtml(c.platform) +
                              (c.simulated ? " <span class=\"bad\">(SIMULATED, INSECURE)</span>"
                                           : ""));
  html += Row("measurement", Mono(HexEncode(c.measurement)));
  html += Row("report data", Mono(HexEncode(c.report_data)));
  html += Row("debug", c.debug ? "<span class=\"bad\">yes</span>" : "no");
  html += Row("security version", std::to_string(c.svn));
  for (const auto& [key, value] : c.details) html += Row(key, Mono(value));
  html += "</tbody></table></section>";
  return html;
}

std::string JobSection(const ReportData& data) {
  std::string html = "<section id=\"job\"><h2>Job</h2><table id=\"job-summary\" class=\"kv\">"
                     "<tbody>";
  html += Row("job", Mono(data.job_id));
  std::string state_class = data.state == "succeeded" ? "ok" : data.state == "failed" ||
                                                                       data.state == "cancelled"
                                                                   ? "bad"
                                                                   : "";
  html += Row("state", "<span class=\"" + state_class + "\">" + EscapeHtml(data.state) +
                           "</span>");
  if (!data.failure.empty() && data.failure != "none") {
    html += Row("failure", EscapeHtml(data.failure) +
                               (data.failure_advice.empty()
                                    ? ""
                                    : " &mdash; " + EscapeHtml(data.failure_advice)));
  }
  html += Row("model", EscapeHtml(data.model_name));
  html += Row("dataset", EscapeHtml(data.dataset_name));
  html += Row("recipe", data.recipe_name.empty()
                            ? Mono(data.recipe_id)
                            : "<span id=\"recipe-name\">" + EscapeHtml(data.recipe_name) + " " +
                                  EscapeHtml(data.recipe_version) + "</span> " +
                                  Mono(data.recipe_id.substr(0, 16)));
  html += Row("epochs", std::to_string(data.epochs_done) + " of " +
                            std::to_string(data.epochs_total));
  char elapsed[32];
  std::snprintf(elapsed, sizeof elapsed, "%u:%02u", data.elapsed_seconds / 60,
                data.elapsed_seconds % 60);
  html += Row("elapsed", elapsed);
  if (data.recipe_time_budget_minutes > 0 || data.recipe_memory_budget_bytes > 0) {
    std::string limits;
    if (data.recipe_time_budget_minutes > 0) {
      limits += std::to_string(data.recipe_time_budget_minutes) + " min";
    }
    if (data.recipe_memory_budget_bytes > 0) {
      limits += std::string(limits.empty() ? "" : ", ") +
                Number(static_cast<double>(data.recipe_memory_budget_bytes) / 1e9, "%.1f") +
                " GB of memory";
    }
    html += Row("limits", "<span id=\"job-limits\">" + limits +
                              "</span> (the recipe's declared budget, within the server's)");
  }
  if (!data.history.empty()) {
    const EpochPoint& last = data.history.back();
    html += Row("final validation accuracy", Percent(last.validation_accuracy));
    html += Row("final validation loss", Number(last.validation_loss, "%.4f"));
    html += Row("final train loss", Number(last.train_loss, "%.4f"));
  }
  html += "</tbody></table></section>";
  return html;
}

std::string CurvesSection(const ReportData& data) {
  Series train{"train loss", "#d95f02", "train-loss", {}};
  Series validation{"validation loss", "#1b9e77", "validation-loss", {}};
  Series accuracy{"validation accuracy", "#3366cc", "validation-accuracy", {}};
  for (const EpochPoint& p : data.history) {
    double x = p.epoch;
    if (std::isfinite(p.train_loss)) train.points.emplace_back(x, p.train_loss);
    if (std::isfinite(p.validation_loss)) validation.points.emplace_back(x, p.validation_loss);
    if (std::isfinite(p.validation_accuracy)) {
      accuracy.points.emplace_back(x, std::clamp(p.validation_accuracy, 0.0, 1.0));
    }
  }
  std::string html = "<section id=\"curves\"><h2>Learning curves</h2><div class=\"charts\">";
  ChartSpec accuracy_spec{"chart-accuracy", "Validation accuracy per epoch",
                          "accuracy (axis zoomed to the data)", std::make_pair(0.0, 1.0), true,
                          {}};
  if (data.test_evaluation) {
    accuracy_spec.references.emplace_back("test set", data.test_evaluation->accuracy);
  }
  html += LineChart({"chart-loss", "Loss per epoch", "loss", std::nullopt, false, {}},
                    {train, validation});
  html += LineChart(accuracy_spec, {accuracy});
  html += "</div>";
  if (data.history.size() == 1) {
    html += "<p class=\"note\" id=\"one-epoch\">One epoch: each curve is a single point. "
            "Train for more epochs (<code>--epochs</code>) to see a trend.</p>";
  }
  if (!data.history.empty()) {
    html += "<table id=\"history\" class=\"grid\"><thead><tr><th>epoch</th><th>train loss</th>"
            "<th>validation loss</th><th>validation accuracy</th></tr></thead><tbody>";
    for (const EpochPoint& p : data.history) {
      html += "<tr><td>" + std::to_string(p.epoch) + "</td><td>" +
              Number(p.train_loss, "%.4f") + "</td><td>" + Number(p.validation_loss, "%.4f") +
              "</td><td>" + Percent(p.validation_accuracy) + "</td></tr>";
    }
    html += "</tbody></table>";
  }
  html += "</section>";
  return html;
}

std::string ClassLabel(const ReportData& data, size_t index) {
  if (index < data.class_names.size() && !data.class_names[index].empty()) {
    return data.class_names[index];
  }
  return std::to_string(index);
}

// The per-class accuracy table and the confusion matrix; element ids start with `id_prefix`
// ("" for the validation split, "test-" for the test set). "" when there is nothing to show.
std::string ClassTables(const ReportData& data, const std::vector<double>& per_class,
                        const std::vector<uint64_t>& cm, const std::string& id_prefix) {
  std::string html;
  size_t n = per_class.size();
  if (n == 0 && !cm.empty()) {
    n = static_cast<size_t>(std::llround(std::sqrt(static_cast<double>(cm.size()))));
  }
  if (n == 0) return html;

  // Per-class accuracy with a bar.
  if (!per_class.empty()) {
    html += "<table id=\"" + id_prefix +
            "per-class\" class=\"grid\"><thead><tr><th>class</th><th>accuracy</th>"
            "<th></th></tr></thead><tbody>";
    for (size_t i = 0; i < per_class.size(); ++i) {
      double a = per_class[i];
      double width = std::isfinite(a) ? std::clamp(a, 0.0, 1.0) * 200 : 0;
      html += "<tr><th scope=\"row\">" + EscapeHtml(ClassLabel(data, i)) + "</th><td>" +
              Percent(a) + "</td><td><div class=\"bar\"><div class=\"fill\" style=\"width:" +
              Number(width, "%.0f") + "px\"></div></div></td></tr>";
    }
    html += "</tbody></table>";
  }

  if (cm.empty()) {
    html += "<p class=\"note\">No confusion matrix.</p>";
  } else if (cm.size() != n * n) {
    html += "<p class=\"note\" id=\"" + id_prefix +
            "confusion-invalid\">The confusion matrix has " + std::to_string(cm.size()) +
            " cells, which is not " + std::to_string(n) + " × " + std::to_string(n) +
            "; it is not shown.</p>";
  } else {
    html += "<h3>Confusion matrix</h3><p class=\"note\">Rows: true class; columns: predicted "
            "class. Shading: share of the row (the true class's samples).</p>";
    html += "<table id=\"" + id_prefix +
            "confusion\" class=\"confusion\"><thead><tr><th class=\"corner\">true \\ "
            "predicted</th>";
    for (size_t j = 0; j < n; ++j) {
      html += "<th scope=\"col\">" + EscapeHtml(ClassLabel(data, j)) + "</th>";
    }
    html += "</tr></thead><tbody>";
    for (size_t i = 0; i < n; ++i) {
      uint64_t row_total = 0;
      for (size_t j = 0; j < n; ++j) row_total += cm[i * n + j];
      html += "<tr><th scope=\"row\">" + EscapeHtml(ClassLabel(data, i)) + "</th>";
      for (size_t j = 0; j < n; ++j) {
        uint64_t v = cm[i * n + j];
        double share = row_total == 0 ? 0 : static_cast<double>(v) / row_total;
        // White to dark blue.
        int r = static_cast<int>(std::lround(255 - share * (255 - 8)));
        int g = static_cast<int>(std::lround(255 - share * (255 - 69)));
        int b = static_cast<int>(std::lround(255 - share * (255 - 148)));
        char style[96];
        std::snprintf(style, sizeof style, "background-color:rgb(%d,%d,%d);color:%s", r, g, b,
                      share > 0.45 ? "#ffffff" : "#111111");
        html += "<td class=\"cm-cell" + std::string(i == j ? " cm-diag" : "") +
                "\" style=\"" + style + "\" title=\"true " + EscapeHtml(ClassLabel(data, i)) +
                ", predicted " + EscapeHtml(ClassLabel(data, j)) + ": " + std::to_string(v) +
                " (" + Percent(share) + " of the row)\">" + std::to_string(v) + "</td>";
      }
      html += "</tr>";
    }
    html += "</tbody></table>";
  }
  return html;
}

std::string ClassesSection(const ReportData& data) {
  std::string html = "<section id=\"classes\"><h2>Per-class results (validation split)</h2>";
  std::string tables = ClassTables(data, data.per_class_accuracy, data.confusion_matrix, "");
  if (tables.empty()) {
    return html + "<p class=\"note\">No per-class metrics: the job finished no epoch.</p>"
                  "</section>";
  }
  return html + tables + "</section>";
}

std::string TestSection(const ReportData& data) {
  std::string html = "<section id=\"test-set\"><h2>Test set</h2>";
  if (!data.test_evaluation) {
    if (!data.test_evaluation_error.empty()) {
      return html + "<p class=\"bad\" id=\"test-error\">Not evaluated: " +
             EscapeHtml(data.test_evaluation_error) + "</p></section>";
    }
    return html + "<p class=\"note\" id=\"test-none\">Not evaluated on a test set: <code>" +
           EscapeHtml(data.program) +
           " report JOB --html FILE --test-set DATASET</code> scores the model on one of your "
           "labelled datasets it was not trained on, inside the runtime.</p></section>";
  }
  const TestEvaluation& t = *data.test_evaluation;
  html += "<table id=\"test-summary\" class=\"kv\"><tbody>";
  html += Row("dataset", EscapeHtml(t.dataset_name));
  html += Row("samples", std::to_string(t.sample_count));
  html += Row("test accuracy", "<strong id=\"test-accuracy\">" + Percent(t.accuracy) +
                                   "</strong>");
  html += Row("test loss", Number(t.loss, "%.4f"));
  if (!data.history.empty()) {
    html += Row("final validation accuracy", Percent(data.history.back().validation_accuracy));
  }
  html += "</tbody></table><p class=\"note\">Scored inside the runtime when this report was "
          "made; only these aggregates left it.</p>";
  html += ClassTables(data, t.per_class_accuracy, t.confusion_matrix, "test-");
  return html + "</section>";
}

std::string PolicyText(const OutputPolicy& p) {
  if (p.label_only) return "the most probable class only, no scores";
  std::string classes = p.max_top_k == 0 ? "every class" : "the top " +
                                                               std::to_string(p.max_top_k) +
                                                               (p.max_top_k == 1 ? " class"
                                                                                 : " classes");
  return classes + " with probabilities rounded to " + std::to_string(p.decimals) + " decimal" +
         (p.decimals == 1 ? "" : "s");
}

std::string TermsSection(const ReportData& data) {
  std::string html = "<section id=\"terms\"><h2>Predictions: output policy, limits and "
                     "grants</h2>";
  if (!data.model_terms) {
    return html + "<p class=\"note\" id=\"terms-none\">No model: the job left none, or it "
                  "was deleted.</p></section>";
  }
  const ModelTerms& m = *data.model_terms;
  html += "<table id=\"terms-table\" class=\"kv\"><tbody>";
  html += Row("a prediction returns", "<span id=\"effective-policy\">" +
                                          EscapeHtml(PolicyText(m.effective_policy)) + "</span>");
  html += Row("the recipe's output policy", EscapeHtml(PolicyText(m.recipe_policy)));
  html += Row("your limits", m.owner_narrowed
                                 ? "narrowed (<code>" + EscapeHtml(data.program) +
                                       " model limit</code>)"
                                 : "none: the recipe's policy applies");
  html += Row("rate limit", m.rate_per_minute == 0
                                ? std::string("none")
                                : std::to_string(m.rate_per_minute) +
                                      " queries a minute per querying principal");
  if (m.max_batch > 0) html += Row("batch", "at most " + std::to_string(m.max_batch) +
                                                " samples per request");
  html += "</tbody></table>";
  if (m.grants.empty()) {
    html += "<p id=\"grants-none\">Shared with nobody: only you can query this model.</p>";
  } else {
    html += "<h3>Shared with</h3><table id=\"grants\" class=\"grid\"><thead><tr><th>principal"
            "</th><th>queries used</th><th>budget</th></tr></thead><tbody>";
    for (const Grant& g : m.grants) {
      html += "<tr><td>" + Mono(g.grantee_id) + "</td><td>" + std::to_string(g.used) +
              "</td><td>" +
              (g.budget == 0 ? std::string("the model's") : std::to_string(g.budget)) +
              "</td></tr>";
    }
    html += "</tbody></table>";
  }
  return html + "</section>";
}

std::string BudgetSection(const ReportData& data) {
  std::string html = "<section id=\"budget\"><h2>Query budget</h2>";
  if (!data.query_budget) {
    return html + "<p class=\"note\" id=\"budget-none\">No model: the job left none, or it was "
                  "deleted.</p></section>";
  }
  const QueryBudget& q = *data.query_budget;
  double share = q.budget == 0 ? 1.0 : std::min(1.0, static_cast<double>(q.used) / q.budget);
  html += "<p id=\"budget-used\">" + std::to_string(q.used) + " of " + std::to_string(q.budget) +
          " predictions used (" + Percent(share) + "); " +
          std::to_string(q.budget > q.used ? q.budget - q.used : 0) + " left.</p>";
  html += "<div class=\"bar wide\"><div class=\"fill\" style=\"width:" +
          Number(share * 400, "%.0f") + "px\"></div></div></section>";
  return html;
}

std::string AuditSection(const ReportData& data) {
  const AuditStatus& a = data.audit;
  std::string html = "<section id=\"audit\"><h2>Audit chain</h2>";
  if (a.verified) {
    html += "<p class=\"audit-status verified ok\" id=\"audit-status\">Verified: " +
            std::to_string(a.record_count) + " record" + (a.record_count == 1 ? "" : "s") +
            ", hash chain intact from record 1";
    if (!a.head_hash_hex.empty()) {
      html += ", head " + std::to_string(a.head_sequence) + " " + Mono(a.head_hash_hex);
    }
    html += ".</p>";
  } else {
    html += "<p class=\"audit-status failed bad\" id=\"audit-status\">" +
            std::string(a.fetched ? "NOT VERIFIED" : "NOT FETCHED") + " (" +
            std::to_string(a.record_count) + " record" + (a.record_count == 1 ? "" : "s") +
            "): " + EscapeHtml(a.error) + "</p>";
  }
  html += "<p class=\"note\">The same check as <code>" + EscapeHtml(data.program) +
          " audit --verify</code>: every record's hash and link, and that the chain extends the "
          "head your profile verified before.</p></section>";
  return html;
}

constexpr char kStyle[] = R"css(
body{font-family:-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:24px;color:#111;background:#fafafa;max-width:1150px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:28px}
h3{font-size:16px}
.meta{color:#555;margin:0 0 12px}
.warning{background:#b00020;color:#fff;padding:14px 18px;border-radius:6px;font-size:17px;margin:12px 0}
.warning code{color:#fff}
.claim-warning{color:#8a1c00;font-weight:bold}
table{border-collapse:collapse;background:#fff}
table.kv th{text-align:left;padding:4px 14px 4px 8px;color:#333;vertical-align:top;white-space:nowrap}
table.kv td{padding:4px 8px;word-break:break-all}
table.grid th,table.grid td{border:1px solid #ddd;padding:4px 10px;text-align:right}
table.grid th[scope=row]{text-align:left}
table.confusion th,table.confusion td{border:1px solid #ccc;padding:6px 8px;text-align:center;min-width:40px}
table.confusion th{background:#f0f0f0;font-weight:600}
.cm-diag{outline:2px solid #222;outline-offset:-2px}
code{font-family:"DejaVu Sans Mono",monospace;font-size:12px}
.ok{color:#1a7f37;font-weight:bold}.bad{color:#b00020;font-weight:bold}
.note{color:#555;font-size:14px}
.charts{display:flex;flex-wrap:wrap;gap:16px}
svg.chart{border:1px solid #ddd;background:#fff}
svg .grid{stroke:#e4e4e4;stroke-width:1}
svg .axis{stroke:#333;stroke-width:1.5;fill:none}
svg text{font-family:"DejaVu Sans",sans-serif;font-size:12px;fill:#333}
svg .chart-title{font-size:15px;font-weight:bold}
svg .axis-label{font-size:13px}
.bar{width:200px;height:12px;background:#e8e8e8;border-radius:3px}
.bar.wide{width:400px;height:16px}
.bar .fill{height:100%;background:#3366cc;border-radius:3px}
footer{margin-top:32px;color:#777;font-size:13px}
svg .reference-label{fill:#7b3294;font-weight:bold}
)css";

}  // namespace

std::string EscapeHtml(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (size_t i = 0; i < text.size();) {
    size_t length = ValidUtf8Length(text, i);
    if (length == 0) {
      out += kReplacement;
      ++i;
      continue;
    }
    if (length > 1) {
      out.append(text.substr(i, length));
      i += length;
      continue;
    }
    char c = text[i++];
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      case '\t':
      case '\n': out += c; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
          out += kReplacement;
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string RenderHtmlReport(const ReportData& data) {
  std::string title = "Chiron report: job " + data.job_id;
  std::string html =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
      "style-src 'unsafe-inline'; img-src data:\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<title>" +
      EscapeHtml(title) + "</title><style>" + kStyle + "</style></head><body>\n";
  std::string recipe =
      data.recipe_name.empty() ? "" : ", recipe " + data.recipe_name + " " + data.recipe_version;
  html += "<header><h1>" + EscapeHtml(title) + "</h1><p class=\"meta\">Model " +
          EscapeHtml(data.model_name) + " on dataset " + EscapeHtml(data.dataset_name) +
          EscapeHtml(recipe) + ". Generated " + EscapeHtml(data.generated_at) + " by <code>" +
          EscapeHtml(data.program) + " report</code> from " + EscapeHtml(data.server) +
          ".</p></header>\n";
  html += ClaimsSection(data) + "\n";
  html += JobSection(data) + "\n";
  html += CurvesSection(data) + "\n";
  html += ClassesSection(data) + "\n";
  html += TestSection(data) + "\n";
  html += TermsSection(data) + "\n";
  html += BudgetSection(data) + "\n";
  html += AuditSection(data) + "\n";
  html += "<footer>All metrics were computed inside the attested runtime on your validation "
          "split and test set; of the provider's recipe this page shows only its public card's "
          "name and version and its declared output policy.</footer>\n";
  html += "</body></html>\n";
  return html;
}

}  // namespace chiron::client::report
