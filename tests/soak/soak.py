#!/usr/bin/python3
"""The soak (issue #11 item 4): under churn, nothing in podlb may grow without bound.

It starts `podlb sandbox`, `podlb control-plane` and `podlb proxy` (both watching the sandbox),
and three workload clients that stay connected the whole run and call the sandbox's greeter
continuously: over xDS, through the proxy, and with the library (which also makes and destroys a
channel of its own every second). Then it churns, cycle after cycle: scale the greeter up,
create a Service of its own (a Deployment and a Service, with kubectl) and call it over xDS and
through the proxy from short-lived clients, delete it, roll the greeter's pods, scale back.

Every few cycles it stops churning at a quiet point (no extra Service, the greeter back at its
replicas, no short-lived client) and samples every podlb process (VmRSS, open fds, threads from
/proc) and the counts the control plane and the proxy export on /metrics (cached resources,
Services, clusters, upstream hosts, Registry keys, connected clients). The first quiet point
after warm-up is the baseline. Judged:
  - the clients that stay connected saw no failed call;
  - at every later quiet point, the counts equal the baseline's (each is waited for, up to a
    time limit, since the last deletion takes a moment to reach everyone) and open fds and
    threads are within a small fixed slack of it;
  - with --rss (`make soak`), the RSS at the last quiet point is within 5 % of the baseline's.
The short run in ctest leaves RSS out: it jitters, and a minute proves nothing about it.

Usage: soak.py --podlb build/podlb --client build/tests/soak/soak_client [--minutes 30] [--rss]
"""
import argparse
import json
import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

FD_SLACK = 8
THREAD_SLACK = 4
RSS_GROWTH_LIMIT = 0.05
SETTLE_TIMEOUT = 45.0
BASE_REPLICAS = 3


class Child:
    """A child process whose stdout lines are collected by a thread."""

    def __init__(self, name, argv, log_dir, env=None, stdin=False):
        self.name = name
        self.argv = argv
        self.lines = queue.Queue()
        self.all_lines = []
        self.stderr = open(os.path.join(log_dir, name + ".log"), "w")
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.stderr,
                                     stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                     env=env, text=True)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.all_lines.append(line)
            self.lines.put(line)

    def wait_line(self, pattern, timeout):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or (self.proc.poll() is not None and self.lines.empty()):
                raise RuntimeError(f"{self.name} never printed /{pattern}/ "
                                   f"(exit status {self.proc.poll()}); see {self.stderr.name}")
            try:
                line = self.lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            match = re.search(pattern, line)
            if match:
                return match

    def last_json(self):
        for line in reversed(self.all_lines):
            if line.startswith("{"):
                return json.loads(line)
        return {}

    def stop(self, timeout=20):
        if self.proc.poll() is None:
            if self.proc.stdin:
                self.proc.stdin.close()  # soak_client ends when its stdin closes
            else:
                self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.thread.join(5)
        self.stderr.close()


def proc_sample(pid):
    """VmRSS in KiB, open fds, threads of a live process."""
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return {"rss_kb": rss, "fds": len(os.listdir(f"/proc/{pid}/fd")),
            "threads": len(os.listdir(f"/proc/{pid}/task"))}


def metrics(admin_port):
    """The unlabelled series of a podlb /metrics page."""
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        m = re.match(r"^([a-z_]+) ([0-9.e+-]+)$", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


CP_COUNTS = ["podlb_xds_cache_resources", "podlb_xds_cache_services", "podlb_xds_registry_keys",
             "podlb_xds_connected_clients"]
PROXY_COUNTS = ["podlb_proxy_clusters", "podlb_proxy_services", "podlb_proxy_upstream_hosts",
                "podlb_proxy_registry_keys", "podlb_proxy_downstream_connections_active"]

TEMP_SERVICE = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: default, labels: {{app: {name}}}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: backend
        image: podlb/backend-pod
        ports: [{{name: grpc, containerPort: {port}, protocol: TCP}}]
        readinessProbe: {{grpc: {{port: {port}}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: default}}
spec:
  selector: {{app: {name}}}
  ports: [{{name: grpc, port: 50051, targetPort: {port}, protocol: TCP}}]
"""


class Soak:
    def __init__(self, args):
        self.args = args
        self.dir = tempfile.mkdtemp(prefix="podlb-soak-")
        self.children = []
        self.clients = {}
        self.rows = []
        self.problems = []
        self.cycle = 0
        self.start = time.monotonic()
        self.pod_port = free_port()

    # --- set-up ---------------------------------------------------------------------------
    def spawn(self, name, argv, **kw):
        child = Child(name, argv, self.dir, **kw)
        self.children.append(child)
        return child

    def start_all(self):
        a = self.args
        octet = os.getpid() % 250 + 1
        self.sandbox = self.spawn("sandbox", [
            a.podlb, "sandbox", "--state-dir", self.dir, "--replicas", str(BASE_REPLICAS),
            "--pod-port", str(self.pod_port), "--grace-period", "1",
            "--first-pod-ip", f"127.60.{octet}.2"])
        self.sandbox.wait_line(r"^ready$", 60)
        self.kubeconfig = os.path.join(self.dir, "kubeconfig")
        source = ["--kubeconfig", self.kubeconfig]
        self.cp = self.spawn("control-plane", [a.podlb, "control-plane", *source,
                                               "--listen", "127.0.0.1:0",
                                               "--admin", "127.0.0.1:0"])
        m = self.cp.wait_line(r"xds port (\d+) admin port (\d+)", 60)
        self.xds_port, self.cp_admin = int(m.group(1)), int(m.group(2))
        self.proxy = self.spawn("proxy", [a.podlb, "proxy", *source, "--listen", "127.0.0.1:0",
                                          "--admin", "127.0.0.1:0"])
        self.proxy_port = int(self.proxy.wait_line(r"listening on 127\.0\.0\.1:(\d+)", 60).group(1))
        self.proxy_admin = int(self.proxy.wait_line(r"admin on port (\d+)", 60).group(1))
        self.podlb_processes = {"sandbox": self.sandbox, "control-plane": self.cp,
                                "proxy": self.proxy}
        # The steady clients: they stay connected all run and must see no failed call.
        self.steady = {
            "xds": self.client("steady-xds", "xds", "greeter", stdin=True),
            "proxy": self.client("steady-proxy", "proxy", "greeter", stdin=True, channels=2),
            "library": self.client("steady-library", "library", "greeter", stdin=True,
                                   extra=["--churn-ms", "1000"]),
        }
        for child in self.steady.values():
            child.wait_line(r'"ok":[1-9]', 60)

    def client(self, name, mode, service, stdin=False, seconds=None, channels=1, extra=()):
        env = dict(os.environ)
        argv = [self.args.client, "--mode", mode, "--channels", str(channels)]
        if mode == "xds":
            bootstrap = subprocess.run(
                [self.args.podlb, "bootstrap", "--server", f"127.0.0.1:{self.xds_port}",
                 "--node-id", name], check=True, capture_output=True, text=True).stdout
            env["GRPC_XDS_BOOTSTRAP_CONFIG"] = bootstrap
            argv += ["--target", f"xds:///{service}.default:50051"]
        elif mode == "proxy":
            argv += ["--target", f"127.0.0.1:{self.proxy_port}",
                     "--authority", f"{service}.default:50051"]
        else:
            argv += ["--target", f"kubernetes:///{service}.default:grpc",
                     "--kubeconfig", self.kubeconfig]
        if seconds is not None:
            argv += ["--seconds", str(seconds)]
        argv += list(extra)
        return self.spawn(name, argv, env=env, stdin=stdin)

    # --- churn ----------------------------------------------------------------------------
    def podlb(self, *argv):
        subprocess.run([self.args.podlb, "sandbox", *argv, "--state-dir", self.dir],
                       check=True, capture_output=True, text=True)

    def kubectl(self, *argv, stdin=None):
        return subprocess.run(["kubectl", "--kubeconfig", self.kubeconfig, *argv], input=stdin,
                              check=True, capture_output=True, text=True).stdout

    def wait_for(self, what, predicate, timeout=SETTLE_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.25)
        self.problems.append(f"cycle {self.cycle}: gave up waiting for {what} after {timeout:.0f} s")
        return False

    def greeter_settled(self):
        pods = json.loads(self.kubectl("get", "pods", "-l", "app=greeter", "-o", "json"))["items"]
        ready = [p for p in pods if any(c.get("type") == "Ready" and c.get("status") == "True"
                                        for c in p.get("status", {}).get("conditions", []))
                 and not p["metadata"].get("deletionTimestamp")]
        return len(pods) == BASE_REPLICAS and len(ready) == BASE_REPLICAS

    def churn_cycle(self):
        """One cycle of churn; leaves the system at BASE_REPLICAS with no extra Service."""
        self.cycle += 1
        name = f"soak-svc-{self.cycle}"
        self.podlb("scale", "default/greeter", str(BASE_REPLICAS + 2))
        self.kubectl("apply", "-f", "-",
                     stdin=TEMP_SERVICE.format(name=name, port=self.pod_port))
        # Short-lived clients: of the new Service over xDS and through the proxy, and of the
        # greeter over xDS, through the proxy and with the library; each connects and leaves.
        seconds = self.args.client_seconds
        short = [self.client(f"c{self.cycle}-xds-{name}", "xds", name, seconds=seconds),
                 self.client(f"c{self.cycle}-proxy-{name}", "proxy", name, seconds=seconds),
                 self.client(f"c{self.cycle}-xds", "xds", "greeter", seconds=seconds),
                 self.client(f"c{self.cycle}-proxy", "proxy", "greeter", seconds=seconds,
                             channels=3),
                 self.client(f"c{self.cycle}-library", "library", "greeter", seconds=seconds)]
        self.podlb("restart", "default/greeter")
        # Mid-cycle: the extra Service and the short-lived clients are there (the peaks).
        time.sleep(seconds / 2)
        self.sample("busy")
        for child in short:
            child.proc.wait(seconds + 60)
            child.stop()
            self.children.remove(child)
            result = child.last_json()
            if result.get("ok", 0) == 0:
                self.problems.append(f"cycle {self.cycle}: short-lived client {child.name} made "
                                     f"no successful call: {result.get('last_error', '')}")
        self.kubectl("delete", "deployment/" + name, "service/" + name, "--wait=false")
        self.podlb("scale", "default/greeter", str(BASE_REPLICAS))

    # --- sampling -------------------------------------------------------------------------
    def counts(self):
        cp, px = metrics(self.cp_admin), metrics(self.proxy_admin)
        out = {k: cp.get(k) for k in CP_COUNTS}
        out.update({k: px.get(k) for k in PROXY_COUNTS})
        return out

    def sample(self, label):
        row = {"t": time.monotonic() - self.start, "label": label, "cycle": self.cycle}
        for name, child in self.podlb_processes.items():
            row[name] = proc_sample(child.proc.pid)
        row["library-client"] = proc_sample(self.steady["library"].proc.pid)
        row["counts"] = self.counts()
        self.rows.append(row)
        self.print_row(row)
        return row

    def quiet_point(self, label):
        """Waits until churn has settled (greeter rolled and scaled back, the extra Service gone
        everywhere, counts stable), then samples."""
        self.wait_for("the greeter to be back at its replicas, all ready", self.greeter_settled)
        self.wait_for("no extra Service in the sandbox", lambda: "soak-svc" not in self.kubectl(
            "get", "services,deployments,pods", "-o", "name"))
        if self.rows and self.baseline is not None:
            want = self.baseline["counts"]
            self.wait_for("the counts to return to the baseline",
                          lambda: self.counts() == want)
        else:
            # Before the baseline: counts stable over two seconds.
            previous = [None]

            def stable():
                now = self.counts()
                same = now == previous[0]
                previous[0] = now
                return same
            self.wait_for("stable counts", lambda: (time.sleep(1), stable())[1])
        return self.sample(label)

    HEADER = ("{:>6} {:>5} {:>8} | {:>21} | {:>21} | {:>21} | {:>21} | {}".format(
        "t(s)", "cycle", "point", "sandbox rss/fd/thr", "control-plane rss/fd/thr",
        "proxy rss/fd/thr", "library-client", "counts: xds res/svc/keys/clients  "
        "proxy clusters/svc/hosts/keys/conns"))

    def print_row(self, row):
        def p(s):
            return "{:>8.1f}M {:>4} {:>5}".format(s["rss_kb"] / 1024, s["fds"], s["threads"])
        c = row["counts"]

        def n(k):
            return "-" if c.get(k) is None else str(int(c[k]))
        print("{:>6.0f} {:>5} {:>8} | {} | {} | {} | {} | {}  {}".format(
            row["t"], row["cycle"], row["label"], p(row["sandbox"]), p(row["control-plane"]),
            p(row["proxy"]), p(row["library-client"]),
            "/".join(n(k) for k in CP_COUNTS), "/".join(n(k) for k in PROXY_COUNTS)),
            flush=True)

    # --- the run --------------------------------------------------------------------------
    def run(self):
        a = self.args
        total = a.minutes * 60
        warmup = max(total * 0.2, 0)
        self.baseline = None
        print(f"soak: {a.minutes} min, state and logs in {self.dir}", flush=True)
        self.start_all()
        print(self.HEADER, flush=True)
        self.sample("start")
        # Warm-up: at least one full cycle, so whatever is made lazily on first use exists.
        while True:
            self.churn_cycle()
            if time.monotonic() - self.start >= warmup:
                break
        self.baseline = self.quiet_point("baseline")
        last_quiet = time.monotonic()
        while time.monotonic() - self.start < total:
            self.churn_cycle()
            if time.monotonic() - last_quiet >= a.quiet_every:
                self.check(self.quiet_point("quiet"))
                last_quiet = time.monotonic()
        final = self.quiet_point("final")
        self.check(final)
        self.check_clients()
        if a.rss:
            self.check_rss(final)
        self.summary(final)

    def check(self, row):
        base = self.baseline
        for name in list(self.podlb_processes) + ["library-client"]:
            for key, slack in (("fds", FD_SLACK), ("threads", THREAD_SLACK)):
                if row[name][key] > base[name][key] + slack:
                    self.problems.append(
                        f"t={row['t']:.0f}s {name}: {key} {row[name][key]} > baseline "
                        f"{base[name][key]} + {slack}")
        for key, value in row["counts"].items():
            if value != base["counts"][key]:
                self.problems.append(f"t={row['t']:.0f}s {key} = {value}, baseline "
                                     f"{base['counts'][key]}")

    def check_clients(self):
        for name, child in self.steady.items():
            result = child.last_json()
            if result.get("failed", 1) != 0 or result.get("ok", 0) == 0:
                self.problems.append(f"steady {name} client: {result.get('ok')} calls ok, "
                                     f"{result.get('failed')} failed; last error: "
                                     f"{result.get('last_error')}")

    def check_rss(self, final):
        # The sandbox is the test's own tool: its RSS is reported, not judged (its API server
        # keeps a bounded history of 10,000 events, which fills during the first minutes).
        for name in ["control-plane", "proxy", "library-client"]:
            base, now = self.baseline[name]["rss_kb"], final[name]["rss_kb"]
            growth = (now - base) / base
            if growth >= RSS_GROWTH_LIMIT:
                self.problems.append(f"{name}: RSS grew {growth * 100:.1f} % after warm-up "
                                     f"({base / 1024:.1f} → {now / 1024:.1f} MiB)")

    def summary(self, final):
        print("\nsummary (baseline after warm-up → final quiet point):")
        for name in list(self.podlb_processes) + ["library-client"]:
            b, f = self.baseline[name], final[name]
            peak = max(r[name]["rss_kb"] for r in self.rows if r["t"] >= self.baseline["t"])
            print(f"  {name:<15} rss {b['rss_kb'] / 1024:7.1f} → {f['rss_kb'] / 1024:7.1f} MiB "
                  f"({(f['rss_kb'] - b['rss_kb']) * 100 / b['rss_kb']:+.1f} %, peak "
                  f"{peak / 1024:.1f})  fds {b['fds']} → {f['fds']}  threads {b['threads']} → "
                  f"{f['threads']}")
        for key in CP_COUNTS + PROXY_COUNTS:
            peak = max((r["counts"][key] or 0) for r in self.rows)
            print(f"  {key:<42} {self.baseline['counts'][key]} → {final['counts'][key]} "
                  f"(peak {peak})")
        for name, child in self.steady.items():
            r = child.last_json()
            print(f"  steady {name:<8} client: {r.get('ok')} calls ok, {r.get('failed')} failed"
                  + (f", {r.get('churned')} channels made and destroyed" if r.get("churned")
                     else ""))
        print(f"  {self.cycle} churn cycles in {(time.monotonic() - self.start) / 60:.1f} min")

    def stop(self):
        for child in reversed(self.children):
            child.stop()


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--podlb", required=True)
    parser.add_argument("--client", required=True, help="the soak_client binary")
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--quiet-every", type=float, default=180,
                        help="seconds of churn between quiet points")
    parser.add_argument("--client-seconds", type=float, default=3,
                        help="how long each short-lived client stays")
    parser.add_argument("--rss", action="store_true", help="also judge RSS growth (< 5 %%)")
    args = parser.parse_args()
    soak = Soak(args)
    try:
        soak.run()
    except Exception as e:  # a set-up or churn step failed: say which, then clean up
        soak.problems.append(f"soak aborted: {e}")
    finally:
        soak.stop()
    if soak.problems:
        print("\nFAILED:", file=sys.stderr)
        for p in soak.problems:
            print("  " + p, file=sys.stderr)
        print(f"logs: {soak.dir}", file=sys.stderr)
        return 1
    print("soak passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
