// The wiring of every strategy family and of the cluster the demo runs on: the one place that
// knows which podlb pieces this build has. Call from the CLI thread.
#pragma once

#include <string>
#include <vector>

#include "demo/cluster.h"
#include "demo/strategy.h"

namespace podlb::demo {

// Baselines first, then the podlb strategies this build has.
void RegisterAllStrategies(StrategyCatalog& catalog);
// What `podlb demo` runs without --strategies.
std::vector<std::string> DefaultStrategies(const StrategyCatalog& catalog);
// A fresh sandbox cluster (MakeSandboxCluster) per scenario run.
ClusterFactory DefaultClusterFactory();

}  // namespace podlb::demo
