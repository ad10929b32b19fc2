// RenderRateChart: one run as an inline SVG line chart, calls per second each pod answered over
// time, the cluster events (scale, restart) as dashed vertical lines and each new pod's readiness
// as a dot on the time axis. No scripts, no external resources. Pure; any thread.
#pragma once

#include <string>

#include "demo/run_data.h"

namespace podlb::demo {

// <svg class="rate-chart" data-strategy=… data-scenario=…> with one <polyline class="series"
// data-pod=…> per pod.
std::string RenderRateChart(const ScenarioRun& run);

}  // namespace podlb::demo
