// Helpers for the controller tests: wait on the ResourceStore's watch (no sleeping) until the
// objects of a type satisfy a predicate, and summarise EndpointSlices. Test thread only.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "sandbox/apiserver/resource_store.h"

namespace podlb::sandbox::testing {

using Objects = std::vector<nlohmann::json>;

// Waits until List(resource, ns) satisfies `done`, re-checking after every watch event.
[[nodiscard]] inline ::testing::AssertionResult WaitForObjects(
    ResourceStore& store, const std::string& resource, const std::string& ns,
    const std::function<bool(const Objects&)>& done, std::chrono::milliseconds timeout,
    const std::string& what) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto watcher = store.Watch(resource, ns, LabelSelector{}, 0);
  if (!watcher.ok()) return ::testing::AssertionFailure() << "watch failed: " << watcher.status();
  Objects last;
  while (true) {
    last = store.List(resource, ns, LabelSelector{}).items;
    if (done(last)) return ::testing::AssertionSuccess();
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    (*watcher)->Next(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now));
  }
  nlohmann::json dump = last;
  return ::testing::AssertionFailure()
         << "timed out waiting for " << what << "; last " << resource << ": " << dump.dump(1);
}

struct SliceEndpoint {
  std::string pod;
  std::string ip;
  bool ready, serving, terminating;
};

inline std::vector<SliceEndpoint> EndpointsOf(const Objects& slices) {
  std::vector<SliceEndpoint> out;
  for (const auto& slice : slices) {
    for (const auto& e : slice.value("endpoints", nlohmann::json::array())) {
      const auto& c = e["conditions"];
      out.push_back({e["targetRef"].value("name", ""), e["addresses"][0].get<std::string>(),
                     c.value("ready", false), c.value("serving", false),
                     c.value("terminating", false)});
    }
  }
  return out;
}

inline int CountReady(const Objects& slices) {
  int n = 0;
  for (const auto& e : EndpointsOf(slices)) n += e.ready ? 1 : 0;
  return n;
}

// Exactly `n` endpoints, all ready (no terminating or pending ones left).
inline std::function<bool(const Objects&)> ExactlyReady(int n) {
  return [n](const Objects& slices) {
    auto eps = EndpointsOf(slices);
    return static_cast<int>(eps.size()) == n && CountReady(slices) == n;
  };
}

}  // namespace podlb::sandbox::testing
