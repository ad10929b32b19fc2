#!/usr/bin/env bash
# Proxy benchmark: the same three gRPC backends behind podlb proxy, nginx (grpc_pass), HAProxy
# (proto h2) and nghttpx, each with one worker, plus direct-to-one-backend as the ceiling; h2load
# sends unary gRPC calls (fixed count, -c 32 -m 64). Prints a table (bench/proxy/table.py).
#   bench/proxy/run.sh [BUILD_DIR] [REQUESTS]      (make bench-proxy)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-build}"
requests="${2:-200000}"
for tool in h2load nghttp nginx haproxy nghttpx; do
  command -v "$tool" >/dev/null || { echo "bench: $tool missing: run scripts/bootstrap.sh" >&2; exit 1; }
done
[ -x "$build/podlb" ] && [ -x "$build/bench/proxy/bench_backend" ] || {
  echo "bench: build podlb and bench_backend first: cmake --build $build --target podlb bench_backend" >&2
  exit 1
}
exec /usr/bin/python3 "$here/run.py" --build "$build" --requests "$requests"
