// soak_client: the workload of the soak (tests/soak/soak.py). It calls
// grpc.testing.TestService/UnaryCall over one of podlb's three remedies and counts the calls:
//
//   soak_client --mode xds --target xds:///greeter.default:50051      (GRPC_XDS_BOOTSTRAP_CONFIG)
//   soak_client --mode proxy --target 127.0.0.1:PORT --authority greeter.default:50051
//   soak_client --mode library --target kubernetes:///greeter.default:grpc --kubeconfig FILE
//
// --channels N channels, each with one caller thread calling back to back (--pause-ms between
// calls). In library mode --churn-ms also makes, every that often, a channel of its own that
// makes a few calls and is destroyed (the library's tables and threads must not grow). Every
// --report-ms it prints one JSON line {"ok":..,"failed":..,"churned":..,"last_error":".."}; it
// runs --seconds (0: until stdin closes, so the driver ends it by closing the pipe) and exits 0
// (failed calls are the driver's judgement, not a crash).
// A channel's calls count from its first success on (before it, discovery may not have
// answered yet).
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "CLI/CLI.hpp"

#include "grpc/testing/test.grpc.pb.h"
#include "podlb/podlb.h"

namespace {

struct Flags {
  std::string mode = "proxy";
  std::string target;
  std::string authority;
  std::string kubeconfig;
  int channels = 1;
  int pause_ms = 20;
  int churn_ms = 0;
  int report_ms = 1000;
  double seconds = 0;
  int deadline_ms = 10000;
};

struct Counters {
  std::atomic<uint64_t> ok{0};
  std::atomic<uint64_t> failed{0};
  std::atomic<uint64_t> churned{0};
  std::mutex mu;
  std::string last_error;
};

// Flags through CLI11, as the podlb binary parses its own; exit status 2 on bad flags.
int ParseFlags(int argc, char** argv, Flags* flags) {
  CLI::App app("soak_client: the soak's workload client (tests/soak/soak.py)");
  app.add_option("--mode", flags->mode, "xds, proxy or library")
      ->check(CLI::IsMember({"xds", "proxy", "library"}));
  app.add_option("--target", flags->target, "the channel target")->required();
  app.add_option("--authority", flags->authority, "proxy mode: the :authority to route by");
  app.add_option("--kubeconfig", flags->kubeconfig, "library mode: the sandbox's kubeconfig");
  app.add_option("--channels", flags->channels, "channels, one caller thread each")
      ->check(CLI::Range(1, 64));
  app.add_option("--pause-ms", flags->pause_ms, "pause between two calls of a channel");
  app.add_option("--churn-ms", flags->churn_ms,
                 "library mode: make and destroy a channel this often (0: never)");
  app.add_option("--report-ms", flags->report_ms, "how often to print the counts")
      ->check(CLI::Range(10, 60000));
  app.add_option("--seconds", flags->seconds, "run this long (0: until stdin closes)");
  app.add_option("--deadline-ms", flags->deadline_ms, "deadline of each call");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  return -1;
}

std::shared_ptr<grpc::ChannelInterface> MakeChannel(const Flags& flags) {
  if (flags.mode == "library") {
    podlb::ChannelOptions options;
    options.kubeconfig = flags.kubeconfig;
    return podlb::CreateChannel(flags.target, options);
  }
  grpc::ChannelArguments args;
  if (!flags.authority.empty()) args.SetString(GRPC_ARG_DEFAULT_AUTHORITY, flags.authority);
  // One connection per channel, not shared through grpc's subchannel pool: each channel is a
  // client of its own, as separate processes would be.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(flags.target, grpc::InsecureChannelCredentials(), args);
}

// One call; true when it succeeded. The first call of a channel waits for it to be ready (its
// discovery's first answer); later ones fail at once if the channel has nowhere to send them.
bool Call(grpc::testing::TestService::Stub& stub, const Flags& flags, bool wait_for_ready,
          Counters& counters, bool count_failure = true) {
  grpc::ClientContext context;
  context.set_wait_for_ready(wait_for_ready);
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(flags.deadline_ms));
  grpc::testing::SimpleRequest request;
  grpc::testing::SimpleResponse response;
  grpc::Status status = stub.UnaryCall(&context, request, &response);
  if (status.ok()) {
    counters.ok.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  if (!count_failure) return false;
  counters.failed.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(counters.mu);
  counters.last_error = std::to_string(status.error_code()) + ": " + status.error_message();
  return false;
}

bool StdinClosed(int timeout_ms) {
  pollfd p{.fd = 0, .events = POLLIN, .revents = 0};
  if (poll(&p, 1, timeout_ms) <= 0) return false;
  char buf[256];
  return read(0, buf, sizeof(buf)) <= 0;
}

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    out += c;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  if (int exit_status = ParseFlags(argc, argv, &flags); exit_status >= 0) return exit_status;
  Counters counters;
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int c = 0; c < flags.channels; ++c) {
    threads.emplace_back([&] {
      auto channel = MakeChannel(flags);
      auto stub = grpc::testing::TestService::NewStub(channel);
      // Waits for the channel's first answer; from then on every call must succeed.
      while (!stop.load() && !Call(*stub, flags, /*wait_for_ready=*/true, counters,
                                   /*count_failure=*/false)) {
        // A proxy answers at once while it does not know the Service yet: do not spin.
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      while (!stop.load()) {
        Call(*stub, flags, /*wait_for_ready=*/false, counters);
        if (flags.pause_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(flags.pause_ms));
      }
    });
  }
  if (flags.churn_ms > 0) {
    threads.emplace_back([&] {
      while (!stop.load()) {
        {
          auto channel = MakeChannel(flags);
          auto stub = grpc::testing::TestService::NewStub(channel);
          bool ok = Call(*stub, flags, /*wait_for_ready=*/true, counters);
          for (int i = 0; ok && i < 3; ++i) ok = Call(*stub, flags, false, counters);
          counters.churned.fetch_add(1, std::memory_order_relaxed);
        }
        for (int waited = 0; waited < flags.churn_ms && !stop.load(); waited += 50)
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    });
  }
  auto report = [&] {
    std::string error;
    {
      std::lock_guard<std::mutex> lock(counters.mu);
      error = counters.last_error;
    }
    std::printf("{\"ok\":%llu,\"failed\":%llu,\"churned\":%llu,\"last_error\":\"%s\"}\n",
                static_cast<unsigned long long>(counters.ok.load()),
                static_cast<unsigned long long>(counters.failed.load()),
                static_cast<unsigned long long>(counters.churned.load()),
                JsonEscape(error).c_str());
    std::fflush(stdout);
  };
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    bool closed = false;
    if (flags.seconds > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(flags.report_ms));
    } else {
      closed = StdinClosed(flags.report_ms);
    }
    report();
    if (closed) break;
    if (flags.seconds > 0 &&
        std::chrono::steady_clock::now() - start >= std::chrono::duration<double>(flags.seconds))
      break;
  }
  stop.store(true);
  for (auto& t : threads) t.join();
  report();
  return 0;
}
