#include "demo/report.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "demo/html_chart.h"

namespace podlb::demo {
namespace {

// "greeter-6f7d9c8b4-x7k2q" → "x7k2q": the part that tells pods apart.
std::string ShortPod(const std::string& pod) {
  auto dash = pod.rfind('-');
  return dash == std::string::npos ? pod : pod.substr(dash + 1);
}

std::string ShareText(const Figures& f) {
  return f.max_min_share ? absl::StrFormat("%.2f", *f.max_min_share) : "inf";
}

std::string NewPodText(const Figures& f) {
  if (!f.has_new_pods) return "n/a";
  return f.new_pod_seconds ? absl::StrFormat("%.2f s", *f.new_pod_seconds) : "never";
}

std::string PerPodText(const Figures& f) {
  std::vector<std::pair<uint64_t, std::string>> pods;
  for (const auto& [pod, n] : f.per_pod) pods.emplace_back(n, pod);
  std::sort(pods.rbegin(), pods.rend());
  std::vector<std::string> parts;
  for (const auto& [n, pod] : pods) parts.push_back(absl::StrCat(ShortPod(pod), ":", n));
  return absl::StrJoin(parts, " ");
}

std::string NotRunText(const ScenarioRun& run) {
  if (run.unavailable) return "not available on this cluster";
  return run.setup_failed ? "SET-UP FAILED, nothing measured" : "not run";
}

std::string ScenarioTitle(const std::string& scenario) {
  const Scenario* s = FindScenario(scenario);
  if (!s || s->event_label.empty()) return scenario + " (3 pods, nothing changes)";
  return absl::StrCat(scenario, " (", s->event_label, " at a quarter of the run)");
}

std::vector<std::string> ScenarioOrder(const DemoResult& result) {
  std::vector<std::string> order;
  for (const auto& run : result.runs) {
    if (std::find(order.begin(), order.end(), run.scenario) == order.end()) {
      order.push_back(run.scenario);
    }
  }
  return order;
}

std::string Escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string Percent(const std::optional<double>& share, int decimals) {
  return share ? absl::StrFormat("%.*f %%", decimals, *share * 100) : "-";
}

// The fault scenarios' table: where the calls went once the pod turned bad.
void PrintFaultTable(const DemoResult& result, const std::string& scenario, std::ostream& out) {
  out << absl::StrFormat("%-22s %-14s %6s %9s %9s %7s %8s %8s %9s\n", "strategy", "policy",
                         "calls", "bad pod", "success", "failed", "p50 ms", "p99 ms", "shed after");
  for (const auto& run : result.runs) {
    if (run.scenario != scenario) continue;
    if (!run.error.empty()) {
      out << absl::StrFormat("%-22s %s: %s\n", run.strategy, NotRunText(run), run.error);
      continue;
    }
    Figures f = ComputeFigures(run);
    out << absl::StrFormat(
        "%-22s %-14s %6d %9s %9s %7d %8s %8s %9s\n", run.strategy,
        run.policy.empty() ? "-" : run.policy, f.calls, Percent(f.bad_pod_share, 1),
        Percent(f.success_rate, 2), f.failed_after_fault,
        f.fault_p50_ms ? absl::StrFormat("%.2f", *f.fault_p50_ms) : "-",
        f.fault_p99_ms ? absl::StrFormat("%.2f", *f.fault_p99_ms) : "-",
        f.bad_pod_shed_s ? absl::StrFormat("%.2f s", *f.bad_pod_shed_s) : "never");
  }
}

}  // namespace

void PrintTables(const DemoResult& result, std::ostream& out) {
  bool any_fault = false;
  for (const auto& scenario : ScenarioOrder(result)) {
    out << "\n== " << ScenarioTitle(scenario) << "\n";
    const Scenario* s = FindScenario(scenario);
    if (s != nullptr && s->fault) {
      any_fault = true;
      PrintFaultTable(result, scenario, out);
      continue;
    }
    out << absl::StrFormat("%-11s %6s %8s %9s %7s %7s %7s  %s\n", "strategy", "calls", "max/min",
                           "new pods", "failed", "p50 ms", "p99 ms", "calls per pod");
    for (const auto& run : result.runs) {
      if (run.scenario != scenario) continue;
      if (!run.error.empty()) {
        out << absl::StrFormat("%-11s %s: %s\n", run.strategy, NotRunText(run), run.error);
        continue;
      }
      Figures f = ComputeFigures(run);
      out << absl::StrFormat("%-11s %6d %8s %9s %7d %7.2f %7.2f  %s\n", run.strategy, f.calls,
                             ShareText(f), NewPodText(f), f.failed_calls, f.p50_ms, f.p99_ms,
                             PerPodText(f));
    }
    for (const auto& run : result.runs) {
      if (run.scenario != scenario || !run.error.empty()) continue;
      for (const auto& [message, n] : ComputeFigures(run).errors) {
        out << absl::StrFormat("  %s: %d failed with \"%s\"\n", run.strategy, n, message);
      }
    }
  }
  out << "\nmax/min: busiest / idlest pod among those ready at the end, counting calls sent "
         "after the last change\n(inf: a ready pod got nothing). new pods: seconds from a new "
         "pod turning ready to its first call, worst pod.\n";
  if (any_fault) {
    out << "fault scenarios: bad pod, success, p50 and p99 over the calls sent from 2 s after "
           "the fault on (a failed call\ncounts as the bad pod's); failed: calls failed after "
           "the fault; shed after: seconds from the fault to the last\ncall sent to the bad pod "
           "(never: it still got calls in the run's last second). xds runs grpc++ 1.51, which\n"
           "has no latency-aware policy: round_robin plus the Service's outlier detection "
           "(evaluated every 1 s).\n";
  }
}

nlohmann::json ToJson(const DemoResult& result) {
  nlohmann::json scenarios = nlohmann::json::array();
  for (const auto& scenario : ScenarioOrder(result)) {
    nlohmann::json strategies = nlohmann::json::array();
    for (const auto& run : result.runs) {
      if (run.scenario != scenario) continue;
      Figures f = ComputeFigures(run);
      nlohmann::json per_pod = nlohmann::json::object();
      for (const auto& [pod, n] : f.per_pod) per_pod[pod] = n;
      nlohmann::json entry = {
          {"name", run.strategy},
          {"policy", run.policy},
          {"calls", f.calls},
          {"per_pod", per_pod},
          {"max_min_share", f.max_min_share ? nlohmann::json(*f.max_min_share) : nullptr},
          {"new_pod_seconds", f.new_pod_seconds ? nlohmann::json(*f.new_pod_seconds) : nullptr},
          {"failed_calls", f.failed_calls},
          {"p50_ms", f.p50_ms},
          {"p99_ms", f.p99_ms},
      };
      if (!run.error.empty()) entry["error"] = run.error;
      if (run.fault_at_s || !run.bad_pod.empty()) {
        auto optional = [](const std::optional<double>& v) {
          return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
        };
        entry["bad_pod"] = run.bad_pod;
        entry["bad_pod_share"] = optional(f.bad_pod_share);
        entry["success_rate"] = optional(f.success_rate);
        entry["fault_p50_ms"] = optional(f.fault_p50_ms);
        entry["fault_p99_ms"] = optional(f.fault_p99_ms);
        entry["bad_pod_shed_seconds"] = optional(f.bad_pod_shed_s);
        entry["failed_after_fault"] = f.failed_after_fault;
      }
      // Set-up failures are named apart: the zeros above are then "not measured", not "none".
      if (run.setup_failed) entry["setup_error"] = run.error;
      if (run.unavailable) entry["unavailable"] = true;
      strategies.push_back(std::move(entry));
    }
    scenarios.push_back({{"name", scenario}, {"strategies", std::move(strategies)}});
  }
  return {{"scenarios", std::move(scenarios)}};
}

std::string RenderHtml(const DemoResult& result) {
  std::string html = R"(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>podlb demo report</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
h1{font-size:1.5em} h2{margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0} td,th{padding:.2em .6em;text-align:right;
border-bottom:1px solid #eee} td:first-child,th:first-child{text-align:left}
.grid{display:flex;flex-wrap:wrap;gap:1em} figure{margin:0;border:1px solid #ddd;padding:.5em}
figcaption{font-weight:bold} .bad{color:#b00} .good{color:#070} .note{color:#555;font-size:.9em}
</style></head><body>
<h1>podlb demo: gRPC load balancing in Kubernetes, measured</h1>
)";
  absl::StrAppend(&html, "<p class=\"note\">Workload: ", result.workload.clients,
                  " client channels, ", result.workload.rate, " unary calls/s in total, ",
                  result.workload.duration_s, " s per run, deadline ",
                  result.workload.deadline.count(), " ms. Each run gets a fresh cluster.</p>\n");
  html += R"(<p>A gRPC client keeps one HTTP/2 connection and sends every call over it. Behind a
ClusterIP, kube-proxy balances <i>connections</i>, so each client is pinned to one pod and pods
added later get nothing. Behind a headless Service, grpc's <code>dns</code> resolver looks the
name up again only when a connection fails, and then at most once every 30 s
(<code>grpc.dns_min_time_between_resolutions_ms</code>): new pods stay idle, and when a rolling
restart replaces every pod faster than that, calls fail until the next lookup.
<code>MAX_CONNECTION_AGE</code> forces reconnects (churn), but discovery is still bounded by that
30 s floor. podlb's three strategies follow the EndpointSlices and balance each call.</p>
)";
  html += "<h2>Strategies</h2><ul>\n";
  for (const auto& [name, description] : result.descriptions) {
    absl::StrAppend(&html, "<li><b>", Escape(name), "</b>: ", Escape(description), "</li>\n");
  }
  absl::StrAppend(&html, "</ul><p class=\"note\">", Escape(kFigureDefinitions), "</p>\n");

  for (const auto& scenario : ScenarioOrder(result)) {
    absl::StrAppend(&html, "<h2 id=\"", scenario, "\">", Escape(ScenarioTitle(scenario)),
                    "</h2>\n<table><tr><th>strategy</th><th>calls</th><th>max/min</th>"
                    "<th>new pods</th><th>failed</th><th>p50 ms</th><th>p99 ms</th></tr>\n");
    for (const auto& run : result.runs) {
      if (run.scenario != scenario) continue;
      if (!run.error.empty()) {
        absl::StrAppend(&html, "<tr><td>", run.strategy, "</td><td colspan=\"6\" class=\"bad\">",
                        NotRunText(run), ": ", Escape(run.error), "</td></tr>\n");
        continue;
      }
      Figures f = ComputeFigures(run);
      bool even = f.max_min_share && *f.max_min_share <= 1.2;
      bool discovers = !f.has_new_pods || f.new_pod_seconds;
      absl::StrAppend(
          &html, "<tr><td>", run.strategy, "</td><td>", f.calls, "</td><td class=\"",
          even ? "good" : "bad", "\">", ShareText(f), "</td><td class=\"",
          discovers ? "good" : "bad", "\">", NewPodText(f), "</td><td class=\"",
          f.failed_calls == 0 ? "good" : "bad", "\">", f.failed_calls, "</td><td>",
          absl::StrFormat("%.2f", f.p50_ms), "</td><td>", absl::StrFormat("%.2f", f.p99_ms),
          "</td></tr>\n");
    }
    html += "</table>\n";
    for (const auto& run : result.runs) {
      if (run.scenario != scenario || !run.error.empty()) continue;
      for (const auto& [message, n] : ComputeFigures(run).errors) {
        absl::StrAppend(&html, "<p class=\"note\">", run.strategy, ": ", n,
                        n == 1 ? " call" : " calls", " failed with \"", Escape(message),
                        "\"</p>\n");
      }
    }
    html += "<div class=\"grid\">\n";
    for (const auto& run : result.runs) {
      if (run.scenario != scenario || !run.error.empty()) continue;
      absl::StrAppend(&html, "<figure><figcaption>", run.strategy,
                      "</figcaption>\n", RenderRateChart(run), "</figure>\n");
    }
    html += "</div>\n";
  }
  html += "</body></html>\n";
  return html;
}

absl::Status WriteHtmlReport(const DemoResult& result, const std::string& path) {
  std::ofstream out(path, std::ios::trunc);
  out << RenderHtml(result);
  if (!out) {
    return absl::UnavailableError("demo: cannot write the report to " + path +
                                  " (does its directory exist and is it writable?)");
  }
  return absl::OkStatus();
}

}  // namespace podlb::demo
