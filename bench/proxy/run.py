#!/usr/bin/python3
"""Driver for bench/proxy/run.sh: starts backends and one proxy at a time, loads it with h2load,
and records requests/s, latency percentiles (from h2load --log-file), peak RSS and CPU of the
proxy, grpc-status (checked with nghttp, since h2load counts HTTP statuses only) and the balance
over the backends. Binds only 127.0.0.0/8."""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

BACKENDS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
BACKEND_PORT = 50061
PATH = "/grpc.testing.TestService/UnaryCall"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def wait_port(host, port, timeout=10):
    import socket
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection((host, port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listening on %s:%d" % (host, port))


def stat_fields(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()


def process_tree(pid):
    """pid and its descendants (nginx, haproxy and nghttpx run workers as child processes)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                children.setdefault(int(stat_fields(int(entry))[1]), []).append(int(entry))
            except (OSError, IndexError):
                pass
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def cpu_seconds(pid):
    total = 0
    for p in process_tree(pid):
        try:
            fields = stat_fields(p)
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except OSError:
            pass
    return total / CLK_TCK


def peak_rss_mib(pid):
    """Sum of the peak RSS of every process of the proxy."""
    total = 0
    for p in process_tree(pid):
        try:
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


class Backends:
    def __init__(self, build):
        self.procs = []
        for i, host in enumerate(BACKENDS):
            p = subprocess.Popen([os.path.join(build, "bench/proxy/bench_backend"), "pod-%d" % i,
                                  "%s:%d" % (host, BACKEND_PORT)], stdout=subprocess.PIPE, text=True)
            p.stdout.readline()
            self.procs.append(p)

    def stop(self):
        counts = []
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
            out, _ = p.communicate(timeout=10)
            m = re.search(r"calls (\d+)", out)
            counts.append(int(m.group(1)) if m else 0)
        return counts


def configs(tmp, build):
    servers = "\n".join("    server %s:%d;" % (h, BACKEND_PORT) for h in BACKENDS)
    nginx_conf = os.path.join(tmp, "nginx.conf")
    with open(nginx_conf, "w") as f:
        f.write("""worker_processes 1;
daemon off;
pid %(tmp)s/nginx.pid;
error_log %(tmp)s/nginx.err warn;
events { worker_connections 10000; }
http {
  access_log off;
  client_body_temp_path %(tmp)s;
  upstream backends {
%(servers)s
    keepalive 64;
  }
  server {
    listen 127.0.0.1:18002 http2;
    keepalive_requests 100000000;
    location / { grpc_pass grpc://backends; }
  }
}
""" % {"tmp": tmp, "servers": servers})
    haproxy_conf = os.path.join(tmp, "haproxy.cfg")
    with open(haproxy_conf, "w") as f:
        f.write("""global
  nbthread 1
  maxconn 4096
defaults
  mode http
  http-reuse always
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend fe
  bind 127.0.0.1:18003 proto h2
  default_backend be
backend be
  balance leastconn
%s
""" % "\n".join("  server b%d %s:%d proto h2" % (i, h, BACKEND_PORT) for i, h in enumerate(BACKENDS)))
    endpoints = os.path.join(tmp, "endpoints.yaml")
    with open(endpoints, "w") as f:
        f.write("services:\n  - service: default/greeter:50051\n    endpoints:\n")
        for i, h in enumerate(BACKENDS):
            f.write("      - {address: %s, port: %d, pod: pod-%d}\n" % (h, BACKEND_PORT, i))
    return {
        "direct (1 backend)": (None, BACKENDS[0], BACKEND_PORT),
        "podlb proxy": ([os.path.join(build, "podlb"), "proxy", "--file", endpoints, "--listen",
                         "127.0.0.1:18001=default/greeter:50051", "--workers", "1", "--admin", ""],
                        "127.0.0.1", 18001),
        "nginx (grpc_pass)": (["nginx", "-p", tmp, "-e", os.path.join(tmp, "nginx.err"), "-c", nginx_conf],
                              "127.0.0.1", 18002),
        "haproxy (proto h2)": (["haproxy", "-f", haproxy_conf], "127.0.0.1", 18003),
        "nghttpx": (["nghttpx", "--frontend=127.0.0.1,18004;no-tls", "--workers=1",
                     "--accesslog-file=/dev/null", "--errorlog-file=" + os.path.join(tmp, "nghttpx.err"),
                     "--backend-http2-connections-per-worker=1"] +
                    ["--backend=%s,%d;;proto=h2" % (h, BACKEND_PORT) for h in BACKENDS],
                    "127.0.0.1", 18004),
    }


def h2load(host, port, body, requests, log_file):
    cmd = ["h2load", "-n", str(requests), "-c", "32", "-m", "64", "-t", "1", "-d", body,
           "-H", "content-type: application/grpc", "-H", "te: trailers",
           "http://%s:%d%s" % (host, port, PATH)]
    if log_file:
        cmd.insert(1, "--log-file=" + log_file)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600).stdout


def grpc_status(host, port, body):
    out = subprocess.run(["nghttp", "-v", "-d", body, "-H", "content-type: application/grpc",
                          "-H", "te: trailers", "http://%s:%d%s" % (host, port, PATH)],
                         capture_output=True, text=True, timeout=30).stdout
    m = re.search(r"grpc-status: (\d+)", out)
    return m.group(1) if m else "missing"


def percentiles(log_file):
    durations = []
    with open(log_file) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3:
                durations.append(int(parts[2]) / 1000.0)
    durations.sort()
    if not durations:
        return 0.0, 0.0
    return durations[len(durations) // 2], durations[min(len(durations) - 1, int(len(durations) * 0.99))]


def assert_free(host, port):
    """Backends and grpc servers use SO_REUSEPORT: a leftover process would silently share the port."""
    import socket
    try:
        socket.create_connection((host, port), timeout=0.2).close()
    except OSError:
        return
    raise RuntimeError("%s:%d is already in use by another process: stop it first" % (host, port))


def measure(name, cmd, host, port, args, tmp, body):
    """One run of one target; returns its result row."""
    for h in BACKENDS:
        assert_free(h, BACKEND_PORT)
    if cmd:
        assert_free(host, port)
    backends = Backends(args.build)
    proc = None
    log_file = os.path.join(tmp, "latency.log")
    try:
        if cmd:
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(host, port)
        status = grpc_status(host, port, body)
        h2load(host, port, body, 20000, None)  # warm-up: connections, caches
        pid = proc.pid if proc else backends.procs[0].pid
        cpu0 = cpu_seconds(pid)
        out = h2load(host, port, body, args.requests, log_file)
        cpu = cpu_seconds(pid) - cpu0
        rss = peak_rss_mib(pid)
    finally:
        if proc:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        counts = backends.stop()
    if os.environ.get("BENCH_DEBUG"):
        print(out, file=sys.stderr)
    m = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", out)
    rps = float(m.group(3)) if m else 0.0
    s = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    r = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored", out)
    failed = (int(r.group(2)) + int(r.group(3))) if r else -1
    if s:
        failed += int(s.group(3)) + int(s.group(4))
    p50, p99 = percentiles(log_file)
    used = [c for c in counts if c > 0]
    if name.startswith("direct"):
        balance = "n/a"
    elif len(used) == len(counts):
        balance = "%.2f (%s)" % (max(used) / min(used), "/".join(map(str, counts)))
    else:
        balance = "idle backend (%s)" % "/".join(map(str, counts))
    return {"target": name, "rps": rps, "p50": p50, "p99": p99, "rss": rss,
            "cpu": cpu / args.requests * 100000, "failed": failed, "grpc_status": status,
            "balance": balance}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--requests", type=int, default=200000)
    ap.add_argument("--only", default="")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved rounds; the median run is shown")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="podlb-bench-")
    body = os.path.join(tmp, "request.bin")
    with open(body, "wb") as f:
        f.write(b"\x00\x00\x00\x00\x00")  # an empty SimpleRequest in gRPC framing
    results = os.path.join(tmp, "results.jsonl")
    runs = {}
    try:
        for _ in range(args.repeat):
            for name, (cmd, host, port) in configs(tmp, args.build).items():
                if args.only and not any(o and o in name for o in args.only.split(",")):
                    continue
                row = measure(name, cmd, host, port, args, tmp, body)
                runs.setdefault(name, []).append(row)
                print("bench: %s: %.0f req/s" % (name, row["rps"]), file=sys.stderr)
        with open(results, "w") as f:
            for name, rows in runs.items():
                rows.sort(key=lambda r: r["rps"])
                median = dict(rows[len(rows) // 2])
                median["rps_range"] = "%.0f-%.0f" % (rows[0]["rps"], rows[-1]["rps"])
                f.write(json.dumps(median) + "\n")
        print("h2load -n %d -c 32 -m 64 -t 1 (unary grpc.testing.TestService/UnaryCall, empty request); "
              "one proxy worker; 3 backends on 127.0.0.2-4; %d CPUs; load average %.1f; median of %d "
              "interleaved runs" % (args.requests, os.cpu_count(), os.getloadavg()[0], args.repeat))
        sys.stdout.flush()
        subprocess.run([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "table.py"), results])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
