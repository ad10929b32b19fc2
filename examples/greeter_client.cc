// A client that balances every call over a Service's pods with libpodlb, then prints how many
// calls each pod served. Usage:
//   podlb_greeter_client TARGET [CALLS]
//   podlb_greeter_client kubernetes:///greeter.default:grpc 300
//   podlb_greeter_client dns:///greeter.default.svc.cluster.local:50051
//   podlb_greeter_client file:///tmp/endpoints.yaml#default/greeter:grpc
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>

#include "grpc/testing/test.grpc.pb.h"
#include "podlb/podlb.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: " << argv[0] << " TARGET [CALLS]\n";
    return 2;
  }
  const int calls = argc > 2 ? std::atoi(argv[2]) : 100;

  // The two lines a user writes: a podlb channel, and the generated stub on top of it.
  podlb::ChannelOptions options;
  options.policy = podlb::LbPolicy::kPeakEwma;  // the default; a Service annotation wins
  auto channel = podlb::CreateChannel(argv[1], options);
  auto stub = grpc::testing::TestService::NewStub(channel);

  std::map<std::string, int> per_pod;
  int failed = 0;
  for (int i = 0; i < calls; ++i) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    grpc::testing::SimpleRequest request;
    grpc::testing::SimpleResponse response;
    grpc::Status status = stub->UnaryCall(&context, request, &response);
    if (status.ok()) {
      ++per_pod[response.hostname()];
    } else {
      ++failed;
      if (failed == 1) std::cerr << "call failed: " << status.error_message() << "\n";
    }
  }
  for (const auto& [pod, n] : per_pod) std::cout << pod << "\t" << n << "\n";
  std::cout << "failed\t" << failed << "\n";
  // What the balancer saw: per pod its latency estimate, and whether it was ejected.
  if (auto stats = podlb::GetChannelStats(*channel); stats.ok()) {
    for (const auto& e : stats->endpoints) {
      std::cerr << e.pod_name << " " << e.address << " latency~" << e.latency_estimate_ms
                << " ms" << (e.ejected ? " EJECTED" : "") << "\n";
    }
  }
  return failed == calls ? 1 : 0;
}
