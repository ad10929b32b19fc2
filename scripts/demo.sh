#!/usr/bin/env bash
# `make demo`: every strategy (ClusterIP, headless DNS, DNS + MAX_CONNECTION_AGE, podlb xDS,
# podlb proxy, libpodlb) through every scenario (steady, scale 3→6, rolling restart, scale 6→2)
# on the sandbox, about two minutes on two cores. Tables on stdout, an HTML report on disk.
# Usage: scripts/demo.sh [PODLB_BINARY] [extra `podlb demo` flags…]
set -euo pipefail

podlb="${1:-build/podlb}"
shift || true
if [ ! -x "$podlb" ]; then
  echo "demo: $podlb not found; run 'make build' first" >&2
  exit 1
fi
report_dir="${PODLB_DEMO_DIR:-$(dirname "$podlb")/demo}"
mkdir -p "$report_dir"
report="$(cd "$report_dir" && pwd)/report.html"

# 24 runs of 4 s each. MAX_CONNECTION_AGE is 2 s here (10 s by default) so that it can act
# within a 4 s run; see the report for what it costs and why it still finds no new pod.
"$podlb" demo --duration 4 --max-connection-age 2 --report "$report" "$@"

echo
echo "demo: the HTML report (charts of calls/s per pod) is at $report"
echo "demo: open it with: xdg-open $report   (or any browser; it needs no network)"
