#!/usr/bin/env bash
# `make bench`: every benchmark harness, one after another, each printing its own table. Not part
# of `make test`; results with their exact commands are recorded in BENCHMARKS.md.
# Usage: scripts/bench.sh BUILD_DIR
set -euo pipefail
build="${1:-build}"

echo "== discovery (decode, initial list, change latency, watches)"
"$build/bench/discovery/discovery_bench" --services 1000 --endpoints 10 --changes 300 2>/dev/null

echo
echo "== xDS control plane fan-out (clients services changes)"
"$build/bench/xds/xds_fanout" --podlb "$build/podlb" --streams 1000 --steady-seconds 5 --bursts 5 2>/dev/null

echo
echo "== client library overhead per call"
"$build/bench/client/client_bench" --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
  --benchmark_min_time=0.3

echo
echo "== proxy vs nginx, HAProxy, nghttpx (h2load)"
bench/proxy/run.sh "$build"
