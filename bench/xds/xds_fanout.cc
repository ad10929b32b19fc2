// xds_fanout: the client side of the xDS scale benchmark. It starts `podlb control-plane --file`
// as a child PROCESS (so the server's CPU and memory are its own, read from /proc), opens
// --streams ADS streams on --streams / --streams-per-connection TCP connections, each stream
// subscribed to CDS + EDS of --watch of --services Services (svc0, the "hot" one, is watched by
// every stream), and ACKs every response as a real client does. It then drives the server
// through its file source (the file rewritten atomically, as a ConfigMap update would be):
//  - steady: --rate changes/s to random Services for --steady-seconds, svc0 left out: each
//    other Service is watched by about a tenth of the streams, as in a fleet where each client
//    watches 10 of 100 Services; svc0's changes are the bursts, measured next (--steady-hot
//    puts svc0 among the steady changes too: 1 in 100 of them is then a burst);
//  - burst: --bursts changes of svc0, which every stream watches, one at a time.
// For each change: from the file's rename to the moment the LAST watching stream has decoded
// that endpoint set or a newer one (p50/p99/max). Every endpoint set carries its generation in
// its content (each endpoint's port is 1000 + generation), and each client checks every
// ClusterLoadAssignment it decodes: the right addresses and count, and never a generation older
// than one it already had ("regressions", must be 0).
// Server figures come from /proc/PID (utime+stime, VmRSS, VmHWM) and its admin /metrics
// (responses and bytes written, encodes, the fan-out time per batch: the server's own push time).
// Two clients: --client native (default) is nghttp2 sessions on --client-threads epoll loops,
// about 30 us per response, most of it the kernel's TCP work, as the server's; --client grpc is grpc++
// channels (~300 us per response: on 2 cores the clients then cost more than the server).
// --json PATH also writes the figures as JSON (the smoke test reads it).
//   xds_fanout --podlb build/podlb [--streams 10000] [--streams-per-connection 1]
//              [--services 100] [--watch 10] [--endpoints 10] [--rate 20]
//              [--steady-seconds 20] [--steady-hot] [--bursts 20] [--seed 1] [--client native|grpc]
//              [--client-threads CORES] [--connect-window 256] [--json PATH]
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "ads_stream_check.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/service/discovery/v3/ads.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "native_ads_client.h"

extern char** environ;

namespace {

using envoy::service::discovery::v3::DiscoveryRequest;
using envoy::service::discovery::v3::DiscoveryResponse;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string podlb = "build/podlb";
  int streams = 10000;
  int per_connection = 1;
  int services = 100;
  int watch = 10;
  int endpoints = 10;
  double rate = 20;
  double steady_seconds = 20;
  bool steady_hot = false;
  int bursts = 20;
  unsigned seed = 1;
  double coalesce_ms = 2;
  std::string client = "native";
  // One epoll loop per core: a fleet's clients run in parallel, and one loop would queue all
  // 10,000 of them on one core (steady p99 137 ms with 1, 61 ms with 2, on 2 cores).
  int client_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int connect_window = 256;
  std::string json;
};

using podlb::bench::AdsStreamCheck;
using podlb::bench::Arrivals;
using podlb::bench::EndpointAddress;
using podlb::bench::kBasePort;
using podlb::bench::NowNs;
using podlb::bench::ServiceName;

// The grpc++ client (--client grpc): one bidi reactor per stream on grpc++ channels, kept as the
// reference the native client is compared with.
class LoadClient : public grpc::ClientBidiReactor<DiscoveryRequest, DiscoveryResponse> {
 public:
  LoadClient(envoy::service::discovery::v3::AggregatedDiscoveryService::Stub* stub,
             std::unique_ptr<AdsStreamCheck> check, Arrivals* arrivals)
      : arrivals_(arrivals), check_(std::move(check)) {
    stub->async()->StreamAggregatedResources(&context_, this);
    for (const DiscoveryRequest& r : check_->subscriptions()) Enqueue(r);
    StartRead(&response_);
    AddHold();  // the read loop; released on the last failed read
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      RemoveHold();
      return;
    }
    check_->OnResponse(response_, response_.ByteSizeLong(), NowNs(), &cla_);
    // ACK, as a real client does.
    DiscoveryRequest ack;
    if (check_->Ack(response_, &ack)) Enqueue(std::move(ack));
    StartRead(&response_);
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    queue_.pop_front();
    writing_ = false;
    if (ok && !queue_.empty()) {
      writing_ = true;
      StartWrite(&queue_.front());
    }
  }

  void OnDone(const grpc::Status& status) override {
    if (!status.ok() && !cancelled_.load()) {
      arrivals_->streams_failed.fetch_add(1);
      absl::MutexLock lock(&mu_);
      if (error_.empty()) error_ = status.error_message();
    }
    absl::MutexLock lock(&mu_);
    done_ = true;
  }

  void CancelAndWait() {
    cancelled_.store(true);
    context_.TryCancel();
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&done_));
  }
  std::string error() {
    absl::MutexLock lock(&mu_);
    return error_;
  }

 private:
  void Enqueue(DiscoveryRequest r) {
    absl::MutexLock lock(&mu_);
    queue_.push_back(std::move(r));
    if (!writing_) {
      writing_ = true;
      StartWrite(&queue_.front());
    }
  }

  grpc::ClientContext context_;
  Arrivals* arrivals_;
  std::unique_ptr<AdsStreamCheck> check_;  // read side only (one read at a time)
  DiscoveryResponse response_;
  envoy::config::endpoint::v3::ClusterLoadAssignment cla_;
  std::atomic<bool> cancelled_{false};
  absl::Mutex mu_;
  std::deque<DiscoveryRequest> queue_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  std::string error_ ABSL_GUARDED_BY(mu_);
};

// The endpoints file the control plane reads, rewritten atomically (write + rename).
class EndpointsFile {
 public:
  EndpointsFile(std::string path, const Options& options)
      : path_(std::move(path)), options_(options), gens_(options.services, 0) {}
  const std::string& path() const { return path_; }
  int generation(int s) const { return gens_[s]; }
  void Bump(int s) { ++gens_[s]; }
  void Write() const {
    std::string out = "{\"services\": [\n";
    for (int s = 0; s < options_.services; ++s) {
      absl::StrAppend(&out, s ? ",\n" : "", "{\"service\": \"", ServiceName(s),
                      "\", \"endpoints\": [");
      for (int j = 0; j < options_.endpoints; ++j) {
        absl::StrAppend(&out, j ? ", " : "", "{\"address\": \"", EndpointAddress(s, j),
                        "\", \"port\": ", kBasePort + gens_[s], ", \"pod\": \"svc", s, "-", j,
                        "\"}");
      }
      out += "]}";
    }
    out += "\n]}\n";
    std::string tmp = path_ + ".tmp";
    {
      std::ofstream f(tmp, std::ios::trunc);
      f << out;
    }
    std::filesystem::rename(tmp, path_);
  }

 private:
  std::string path_;
  const Options& options_;
  std::vector<int> gens_;
};

// `podlb control-plane` as a child process; its stdout's first line carries the ports.
class ServerProcess {
 public:
  bool Start(const Options& options, const std::string& file, const std::string& log) {
    int out[2];
    if (pipe(out) != 0) return false;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addclose(&actions, out[0]);
    std::vector<std::string> args = {options.podlb, "control-plane", "--file", file,
                                     "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
                                     "--log-level", "warn", "--coalesce-ms",
                                     absl::StrCat(options.coalesce_ms)};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    if (rc != 0) {
      std::fprintf(stderr, "xds_fanout: cannot start %s: %s\n", argv[0], std::strerror(rc));
      return false;
    }
    FILE* f = fdopen(out[0], "r");
    char line[512];
    if (!f || !std::fgets(line, sizeof line, f)) return false;
    std::string s = line;
    auto x = s.find("xds port ");
    auto a = s.find("admin port ");
    if (x == std::string::npos || a == std::string::npos) return false;
    xds_port_ = std::atoi(s.c_str() + x + 9);
    admin_port_ = std::atoi(s.c_str() + a + 11);
    stdout_ = f;  // kept open: the server writes nothing more, but a closed pipe would SIGPIPE it
    return true;
  }
  ~ServerProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status;
      waitpid(pid_, &status, 0);
    }
    if (stdout_) fclose(stdout_);
  }
  int xds_port() const { return xds_port_; }
  pid_t pid() const { return pid_; }

  // utime + stime in seconds, from /proc/PID/stat.
  double CpuSeconds() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), {});
    auto close_paren = stat.rfind(')');
    std::istringstream fields(stat.substr(close_paren + 2));
    std::string field;
    double ticks = 0;
    for (int i = 3; fields >> field; ++i) {
      if (i == 14 || i == 15) ticks += std::stod(field);
      if (i == 15) break;
    }
    return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
  }
  // A "VmRSS"/"VmHWM" line of /proc/PID/status, in MB.
  double StatusMb(const std::string& key) const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind(key + ":", 0) == 0) return std::stod(line.substr(key.size() + 1)) / 1024.0;
    }
    return -1;
  }
  // The server's Prometheus samples (name → value, labels included in the name).
  std::map<std::string, double> Metrics() const {
    std::map<std::string, double> out;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(admin_port_));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      close(fd);
      return out;
    }
    std::string request = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    (void)!write(fd, request.data(), request.size());
    std::string body;
    char buf[8192];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) body.append(buf, static_cast<size_t>(n));
    close(fd);
    std::istringstream lines(body);
    std::string line;
    while (std::getline(lines, line)) {
      if (line.empty() || line[0] == '#') continue;
      auto space = line.rfind(' ');
      if (space == std::string::npos) continue;
      double v;
      if (absl::SimpleAtod(line.substr(space + 1), &v)) out[line.substr(0, space)] = v;
    }
    return out;
  }

 private:
  pid_t pid_ = -1;
  int xds_port_ = 0;
  int admin_port_ = 0;
  FILE* stdout_ = nullptr;
};

double SelfCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

struct Change {
  int service;
  int gen;
  int64_t written_ns;
};

struct PhaseResult {
  std::string name;
  std::vector<double> latencies_ms;
  int incomplete = 0;
  int64_t deliveries = 0;  // change × watching streams
  double server_cpu = 0;
  double client_cpu = 0;
  int64_t client_responses = 0;  // responses the clients decoded during the phase
  double seconds = 0;
  std::map<std::string, double> metrics_delta;
};

// Waits for every change to reach every watching stream (or `timeout`), then collects latencies.
void Collect(const std::vector<Change>& changes, Arrivals& arrivals, PhaseResult* result,
             std::chrono::seconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (const Change& c : changes) {
    if (arrivals.expected[c.service] == 0) continue;  // nobody watches it: nothing to time
    size_t slot = arrivals.Slot(c.service, c.gen);
    while (arrivals.done_ns[slot].load() == 0 && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));  // harness polling, not a test
    }
    int64_t done = arrivals.done_ns[slot].load();
    result->deliveries += arrivals.expected[c.service];
    if (done == 0) {
      ++result->incomplete;
      continue;
    }
    result->latencies_ms.push_back(static_cast<double>(done - c.written_ns) / 1e6);
  }
}

std::map<std::string, double> Delta(const std::map<std::string, double>& after,
                                    const std::map<std::string, double>& before) {
  std::map<std::string, double> out;
  for (const auto& [k, v] : after) {
    auto it = before.find(k);
    out[k] = v - (it == before.end() ? 0 : it->second);
  }
  return out;
}

double Get(const std::map<std::string, double>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? -1 : it->second;
}

int ParseFlags(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--steady-hot") {
      o->steady_hot = true;
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "xds_fanout: %s needs a value\n", flag.c_str());
      return 2;
    }
    std::string value = argv[++i];
    bool ok = true;
    if (flag == "--podlb") o->podlb = value;
    else if (flag == "--streams") ok = absl::SimpleAtoi(value, &o->streams);
    else if (flag == "--streams-per-connection") ok = absl::SimpleAtoi(value, &o->per_connection);
    else if (flag == "--services") ok = absl::SimpleAtoi(value, &o->services);
    else if (flag == "--watch") ok = absl::SimpleAtoi(value, &o->watch);
    else if (flag == "--endpoints") ok = absl::SimpleAtoi(value, &o->endpoints);
    else if (flag == "--rate") ok = absl::SimpleAtod(value, &o->rate);
    else if (flag == "--steady-seconds") ok = absl::SimpleAtod(value, &o->steady_seconds);
    else if (flag == "--bursts") ok = absl::SimpleAtoi(value, &o->bursts);
    else if (flag == "--seed") ok = absl::SimpleAtoi(value, &o->seed);
    else if (flag == "--coalesce-ms") ok = absl::SimpleAtod(value, &o->coalesce_ms);
    else if (flag == "--client") o->client = value;
    else if (flag == "--client-threads") ok = absl::SimpleAtoi(value, &o->client_threads);
    else if (flag == "--connect-window") ok = absl::SimpleAtoi(value, &o->connect_window);
    else if (flag == "--json") o->json = value;
    else {
      std::fprintf(stderr, "xds_fanout: unknown flag %s (see the header of xds_fanout.cc)\n",
                   flag.c_str());
      return 2;
    }
    if (!ok) {
      std::fprintf(stderr, "xds_fanout: %s %s: not a number\n", flag.c_str(), value.c_str());
      return 2;
    }
  }
  if (o->streams < 1 || o->per_connection < 1 || o->services < 1 || o->watch < 1 ||
      o->watch > o->services || o->endpoints < 1 || o->endpoints > 60000 || o->rate <= 0 ||
      o->client_threads < 1 || o->connect_window < 1) {
    std::fprintf(stderr, "xds_fanout: need streams, streams-per-connection, services, "
                         "client-threads, connect-window >= 1, 1 <= watch <= services, "
                         "1 <= endpoints <= 60000, rate > 0\n");
    return 2;
  }
  if (o->client != "native" && o->client != "grpc") {
    std::fprintf(stderr, "xds_fanout: --client %s: expected native or grpc\n", o->client.c_str());
    return 2;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (int rc = ParseFlags(argc, argv, &o); rc != 0) return rc;
  signal(SIGPIPE, SIG_IGN);
  // 10,000 connections need 10,000 descriptors on each side: the open-files limit here is
  // 20,000, raised from the soft to the hard limit (the child inherits it).
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);
  const int connections = (o.streams + o.per_connection - 1) / o.per_connection;

  std::string dir = std::filesystem::temp_directory_path() /
                    ("xds_fanout." + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  EndpointsFile file(dir + "/endpoints.json", o);
  file.Write();
  ServerProcess server;
  if (!server.Start(o, file.path(), dir + "/control-plane.log")) {
    std::fprintf(stderr, "xds_fanout: the control plane did not start; see %s/control-plane.log\n",
                 dir.c_str());
    return 1;
  }
  double rss_idle = server.StatusMb("VmRSS");
  // What the file source alone costs the server per change (read, parse, publish) with no
  // stream connected, so the per-push figures below can be read net of it.
  double source_cpu_per_change = 0;
  {
    int n = static_cast<int>(std::min(5.0, o.steady_seconds) * o.rate);
    double before = server.CpuSeconds();
    auto start = Clock::now();
    for (int k = 0; k < n; ++k) {
      std::this_thread::sleep_until(start + std::chrono::duration_cast<Clock::duration>(
                                                std::chrono::duration<double>(k / o.rate)));
      file.Bump(k % o.services);
      file.Write();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the last reload
    source_cpu_per_change = (server.CpuSeconds() - before) / std::max(1, n);
  }

  // Which Services each stream watches: svc0 (the burst target) plus watch-1 others.
  std::mt19937 rng(o.seed);
  std::vector<std::vector<int>> watched(o.streams);
  Arrivals arrivals(o.services);
  for (int i = 0; i < o.streams; ++i) {
    std::vector<int> pool(o.services - 1);
    for (int s = 1; s < o.services; ++s) pool[s - 1] = s;
    std::shuffle(pool.begin(), pool.end(), rng);
    watched[i].push_back(0);
    watched[i].insert(watched[i].end(), pool.begin(), pool.begin() + (o.watch - 1));
    for (int s : watched[i]) ++arrivals.expected[s];
  }

  auto setup_start = Clock::now();
  std::vector<std::unique_ptr<AdsStreamCheck>> checks;
  checks.reserve(o.streams);
  for (int i = 0; i < o.streams; ++i) {
    checks.push_back(std::make_unique<AdsStreamCheck>(i, watched[i], o.endpoints, &arrivals));
  }
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<envoy::service::discovery::v3::AggregatedDiscoveryService::Stub>>
      stubs;
  std::vector<std::unique_ptr<LoadClient>> fleet;
  std::unique_ptr<podlb::bench::NativeAdsFleet> native;
  if (o.client == "native") {
    podlb::bench::NativeAdsOptions native_options;
    native_options.port = server.xds_port();
    native_options.connections = connections;
    native_options.threads = o.client_threads;
    native_options.connect_window = o.connect_window;
    native = std::make_unique<podlb::bench::NativeAdsFleet>(native_options, std::move(checks),
                                                            &arrivals);
    if (auto status = native->Start(); !status.ok()) {
      std::fprintf(stderr, "xds_fanout: native client: %s\n", status.ToString().c_str());
      return 1;
    }
  } else {
    for (int c = 0; c < connections; ++c) {
      grpc::ChannelArguments args;
      // Each channel its own subchannel, so its own TCP connection, as separate client pods have.
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      args.SetMaxReceiveMessageSize(-1);
      channels.push_back(grpc::CreateCustomChannel(
          "127.0.0.1:" + std::to_string(server.xds_port()), grpc::InsecureChannelCredentials(),
          args));
      stubs.push_back(
          envoy::service::discovery::v3::AggregatedDiscoveryService::NewStub(channels.back()));
    }
    fleet.reserve(o.streams);
    for (int i = 0; i < o.streams; ++i) {
      fleet.push_back(std::make_unique<LoadClient>(stubs[i % connections].get(),
                                                   std::move(checks[i]), &arrivals));
    }
  }
  auto first_error = [&]() -> std::string {
    if (native) return native->FirstError();
    for (auto& client : fleet) {
      if (std::string e = client->error(); !e.empty()) return e;
    }
    return "";
  };
  // Set-up done when every stream holds generation 0 of everything it watches.
  PhaseResult setup;
  std::vector<Change> initial;
  for (int s = 0; s < o.services; ++s) initial.push_back({s, 0, NowNs()});
  Collect(initial, arrivals, &setup, std::chrono::seconds(120));
  double setup_seconds = std::chrono::duration<double>(Clock::now() - setup_start).count();
  double rss_connected = server.StatusMb("VmRSS");
  if (setup.incomplete > 0) {
    std::fprintf(stderr,
                 "xds_fanout: after %.0f s, %d Services had not reached every stream "
                 "(%ld streams failed; first error: %s)\n",
                 setup_seconds, setup.incomplete, static_cast<long>(arrivals.streams_failed.load()),
                 first_error().c_str());
  }

  auto run_phase = [&](const std::string& name, auto&& drive) {
    PhaseResult result;
    result.name = name;
    auto metrics_before = server.Metrics();
    double cpu_before = server.CpuSeconds();
    double self_before = SelfCpuSeconds();
    int64_t responses_before = arrivals.responses.load();
    auto start = Clock::now();
    std::vector<Change> changes = drive();
    Collect(changes, arrivals, &result, std::chrono::seconds(30));
    result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    result.server_cpu = server.CpuSeconds() - cpu_before;
    result.client_cpu = SelfCpuSeconds() - self_before;
    result.client_responses = arrivals.responses.load() - responses_before;
    result.metrics_delta = Delta(server.Metrics(), metrics_before);
    return result;
  };
  auto change = [&](int s) {
    file.Bump(s);
    arrivals.Reset(s, file.generation(s));
    int64_t at = NowNs();
    file.Write();
    return Change{s, file.generation(s), at};
  };

  std::vector<PhaseResult> results;
  results.push_back(run_phase("steady", [&] {
    std::vector<Change> changes;
    std::uniform_int_distribution<int> pick(o.steady_hot || o.services == 1 ? 0 : 1, o.services - 1);
    int n = static_cast<int>(o.rate * o.steady_seconds);
    auto start = Clock::now();
    for (int k = 0; k < n; ++k) {
      std::this_thread::sleep_until(start + std::chrono::duration_cast<Clock::duration>(
                                                std::chrono::duration<double>(k / o.rate)));
      changes.push_back(change(pick(rng)));
    }
    return changes;
  }));
  results.push_back(run_phase("burst", [&] {
    std::vector<Change> changes;
    for (int k = 0; k < o.bursts; ++k) {
      changes.push_back(change(0));
      // One burst at a time: wait for it to land everywhere, then let the acks settle.
      PhaseResult one;
      Collect({changes.back()}, arrivals, &one, std::chrono::seconds(30));
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return changes;
  }));
  double rss_end = server.StatusMb("VmRSS");
  double hwm = server.StatusMb("VmHWM");

  const std::string load = LoadAverage();
  std::printf("xds_fanout: %d streams on %d connections, each watching %d of %d Services "
              "(%d endpoints each); steady changes to %s; %s client%s; set-up %.1f s; "
              "load average %s\n",
              o.streams, connections, o.watch, o.services, o.endpoints,
              o.steady_hot ? "every Service (svc0 too)" : "svc1.. (not svc0)", o.client.c_str(),
              o.client == "native" ? absl::StrCat(", ", o.client_threads, " thread(s)").c_str()
                                   : "",
              setup_seconds, load.c_str());
  std::printf("| phase | changes | change -> last client p50 | p99 | max | incomplete | "
              "server CPU per push per client (net of the file source) | server fan-out time per batch (mean: change batch to its last response written) | "
              "bytes sent per change | encodes per change | client CPU | "
              "client CPU per response received |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const PhaseResult& r : results) {
    double pushes = Get(r.metrics_delta, "podlb_xds_pushes_total");
    double bytes = Get(r.metrics_delta, "podlb_xds_bytes_sent_total");
    double batches = Get(r.metrics_delta, "podlb_xds_fanout_batches_total");
    double fanout_s = Get(r.metrics_delta, "podlb_xds_fanout_seconds_total");
    double encodes = Get(r.metrics_delta, "podlb_xds_resource_encodes_total{type=\"EDS\"}");
    size_t n = r.latencies_ms.size() + static_cast<size_t>(r.incomplete);
    double net_cpu = r.server_cpu - source_cpu_per_change * static_cast<double>(
                                        r.latencies_ms.size() + static_cast<size_t>(r.incomplete));
    std::printf("| %s | %zu | %.1f ms | %.1f ms | %.1f ms | %d | %.1f us (%.1f us; %.0f responses) | %s | "
                "%s | %s | %.2f s | %.1f us (%ld responses) |\n",
                r.name.c_str(), n, Percentile(r.latencies_ms, 0.5),
                Percentile(r.latencies_ms, 0.99),
                r.latencies_ms.empty() ? -1.0
                                       : *std::max_element(r.latencies_ms.begin(),
                                                           r.latencies_ms.end()),
                r.incomplete, r.server_cpu * 1e6 / std::max(1.0, pushes),
                net_cpu * 1e6 / std::max(1.0, pushes), pushes,
                batches > 0 ? absl::StrCat(fanout_s * 1e3 / batches, " ms").c_str() : "n/a",
                bytes >= 0 ? absl::StrCat(static_cast<int64_t>(bytes / std::max<size_t>(1, n)), " B")
                                 .c_str()
                           : "n/a",
                encodes >= 0 ? absl::StrCat(encodes / std::max<size_t>(1, n)).c_str() : "n/a",
                r.client_cpu,
                r.client_cpu * 1e6 / static_cast<double>(std::max<int64_t>(1, r.client_responses)),
                static_cast<long>(r.client_responses));
  }
  std::printf("\n| server | value |\n|---|---|\n");
  std::printf("| RSS idle (no clients) | %.0f MB |\n", rss_idle);
  std::printf("| file source alone, CPU per change (no clients) | %.2f ms |\n",
              source_cpu_per_change * 1e3);
  std::printf("| RSS with all streams connected | %.0f MB |\n", rss_connected);
  std::printf("| RSS at the end / peak (VmHWM) | %.0f MB / %.0f MB |\n", rss_end, hwm);
  std::printf("| server CPU, whole run | %.1f s |\n", server.CpuSeconds());
  std::printf("| regressions (older set after newer) | %ld |\n",
              static_cast<long>(arrivals.regressions.load()));
  std::printf("| endpoint sets with wrong content | %ld |\n",
              static_cast<long>(arrivals.bad_content.load()));
  std::printf("| streams failed | %ld |\n", static_cast<long>(arrivals.streams_failed.load()));
  std::fflush(stdout);
  if (!o.json.empty()) {
    std::string phases;
    for (const PhaseResult& r : results) {
      absl::StrAppend(
          &phases, phases.empty() ? "" : ", ", "{\"name\": \"", r.name,
          "\", \"changes\": ", r.latencies_ms.size() + static_cast<size_t>(r.incomplete),
          ", \"incomplete\": ", r.incomplete, ", \"p50_ms\": ", Percentile(r.latencies_ms, 0.5),
          ", \"p99_ms\": ", Percentile(r.latencies_ms, 0.99),
          ", \"client_cpu_s\": ", r.client_cpu, ", \"client_responses\": ", r.client_responses,
          ", \"server_cpu_s\": ", r.server_cpu, "}");
    }
    std::ofstream out(o.json, std::ios::trunc);
    out << absl::StrCat(
        "{\"client\": \"", o.client, "\", \"streams\": ", o.streams,
        ", \"connections\": ", connections, ", \"setup_seconds\": ", setup_seconds,
        ", \"setup_incomplete\": ", setup.incomplete, ", \"load_average\": \"", load,
        "\", \"regressions\": ", arrivals.regressions.load(),
        ", \"bad_content\": ", arrivals.bad_content.load(),
        ", \"streams_failed\": ", arrivals.streams_failed.load(),
        ", \"responses\": ", arrivals.responses.load(), ", \"phases\": [", phases, "]}\n");
    if (!out) std::fprintf(stderr, "xds_fanout: cannot write %s\n", o.json.c_str());
  }

  if (native) native->Stop();
  for (auto& c : fleet) c->CancelAndWait();
  fleet.clear();
  // A stream that failed is a failed run even if its changes were counted before it failed.
  bool ok = arrivals.regressions.load() == 0 && arrivals.bad_content.load() == 0 &&
            arrivals.streams_failed.load() == 0 && setup.incomplete == 0;
  for (const auto& r : results) ok = ok && r.incomplete == 0;
  std::filesystem::remove_all(dir);
  return ok ? 0 : 1;
}
