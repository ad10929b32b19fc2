#include "demo/html_chart.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace podlb::demo {
namespace {

constexpr double kWidth = 520, kPlotHeight = 200;
constexpr double kLeft = 48, kRight = 12, kTop = 12, kAxis = 34;
constexpr double kLegendRow = 16;
constexpr const char* kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                   "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

// 1, 2, 5 × 10^n at or above `value`.
double NiceCeiling(double value) {
  if (value <= 0) return 1;
  double magnitude = std::pow(10, std::floor(std::log10(value)));
  for (double step : {1.0, 2.0, 5.0, 10.0}) {
    if (step * magnitude >= value) return step * magnitude;
  }
  return 10 * magnitude;
}

std::string ShortPod(const std::string& pod) {
  auto dash = pod.rfind('-');
  return dash == std::string::npos ? pod : pod.substr(dash + 1);
}

}  // namespace

std::string RenderRateChart(const ScenarioRun& run) {
  const double duration = std::max(run.duration_s, 0.1);
  // At 200 calls/s over a few pods, buckets under ~0.25 s show counting noise, not balancing.
  const double bucket = std::clamp(duration / 16, 0.25, 2.0);
  RateSeries series = ComputeRates(run, bucket);
  double peak = 0;
  for (const auto& [pod, values] : series.per_pod) {
    for (double v : values) peak = std::max(peak, v);
  }
  const double y_max = NiceCeiling(peak * 1.05);
  const double plot_w = kWidth - kLeft - kRight;
  const size_t legend_rows = (series.per_pod.size() + 3) / 4;
  const double height = kTop + kPlotHeight + kAxis + kLegendRow * static_cast<double>(legend_rows);
  auto x_of = [&](double t) { return kLeft + plot_w * std::clamp(t / duration, 0.0, 1.0); };
  auto y_of = [&](double v) { return kTop + kPlotHeight * (1 - v / y_max); };

  std::string svg = absl::StrFormat(
      "<svg class=\"rate-chart\" data-strategy=\"%s\" data-scenario=\"%s\" "
      "xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
      "viewBox=\"0 0 %.0f %.0f\" font-size=\"11\" font-family=\"sans-serif\">\n",
      run.strategy, run.scenario, kWidth, height, kWidth, height);
  // Axes and grid.
  for (int i = 0; i <= 4; ++i) {
    double v = y_max * i / 4;
    absl::StrAppendFormat(&svg,
                          "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>"
                          "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n",
                          kLeft, y_of(v), kLeft + plot_w, y_of(v), kLeft - 4, y_of(v) + 4, v);
  }
  double x_step = NiceCeiling(duration / 8);
  for (double t = 0; t <= duration + 1e-9; t += x_step) {
    absl::StrAppendFormat(&svg,
                          "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n",
                          x_of(t), kTop + kPlotHeight + 14, t);
  }
  absl::StrAppendFormat(&svg,
                        "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">seconds</text>"
                        "<text x=\"12\" y=\"%.1f\" transform=\"rotate(-90 12 %.1f)\" "
                        "text-anchor=\"middle\">calls/s per pod</text>\n",
                        kLeft + plot_w / 2, kTop + kPlotHeight + 28, kTop + kPlotHeight / 2,
                        kTop + kPlotHeight / 2);
  absl::StrAppendFormat(&svg,
                        "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                        "fill=\"none\" stroke=\"#999\"/>\n",
                        kLeft, kTop, plot_w, kPlotHeight);
  // Cluster events.
  for (const auto& event : run.events) {
    absl::StrAppendFormat(&svg,
                          "<line class=\"event\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                          "stroke=\"#c00\" stroke-dasharray=\"4 3\"/>"
                          "<text x=\"%.1f\" y=\"%.1f\" fill=\"#c00\">%s</text>\n",
                          x_of(event.at_s), kTop, x_of(event.at_s), kTop + kPlotHeight,
                          x_of(event.at_s) + 3, kTop + 11, event.label);
  }
  // One line per pod, and a dot where a new pod turned ready.
  size_t index = 0;
  for (const auto& [pod, values] : series.per_pod) {
    const char* color = kColors[index % (sizeof(kColors) / sizeof(kColors[0]))];
    std::string points;
    for (size_t b = 0; b < values.size(); ++b) {
      double t = std::min(duration, (static_cast<double>(b) + 0.5) * bucket);
      absl::StrAppendFormat(&points, "%.1f,%.1f ", x_of(t), y_of(values[b]));
    }
    absl::StrAppendFormat(&svg,
                          "<polyline class=\"series\" data-pod=\"%s\" fill=\"none\" stroke=\"%s\" "
                          "stroke-width=\"1.5\" points=\"%s\"/>\n",
                          pod, color, points);
    auto life = run.pods.find(pod);
    if (life != run.pods.end() && life->second.ready_at_s && *life->second.ready_at_s > 0) {
      absl::StrAppendFormat(&svg,
                            "<circle class=\"ready\" cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" "
                            "fill=\"%s\"><title>%s ready at %.2f s</title></circle>\n",
                            x_of(*life->second.ready_at_s), kTop + kPlotHeight, color, pod,
                            *life->second.ready_at_s);
    }
    double lx = kLeft + static_cast<double>(index % 4) * 115;
    double ly = kTop + kPlotHeight + kAxis + static_cast<double>(index / 4) * kLegendRow + 8;
    absl::StrAppendFormat(&svg,
                          "<rect x=\"%.1f\" y=\"%.1f\" width=\"10\" height=\"10\" fill=\"%s\"/>"
                          "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n",
                          lx, ly - 9, color, lx + 14, ly, ShortPod(pod));
    ++index;
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace podlb::demo
