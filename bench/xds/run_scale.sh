#!/usr/bin/env bash
# `make bench-scale`: issue #12's scale figures, each run printing its own table (recorded with
# the machine's load in BENCHMARKS.md, "Scale"). Not part of `make test`: about 6 minutes.
#  1. xDS fan-out against a `podlb control-plane` process: 10,000 ADS streams, one connection
#     each, watching 10 of 100 Services; 20 changes/s for 30 s, then 20 bursts to the Service
#     every stream watches.
#  2. Past the 20,000-descriptor limit: 20,000 and 50,000 streams sharing connections.
#  3. A 5,000-endpoint Service: one EDS encode per version for 200 streams, bytes per change.
#  4. The discovery core's time per EndpointSlice change at 50, 500 and 5,000 endpoints.
# The xds_fanout runs use its native nghttp2 client (the default; ~50 us per response where the
# grpc++ client, `--client grpc`, costs ~200-350 us): BENCHMARKS.md "Scale", section 5.
# Usage: bench/xds/run_scale.sh BUILD_DIR [quick]   ("quick": 1,000 streams, short phases)
set -uo pipefail
build="${1:-build}"
quick="${2:-}"
podlb="$build/podlb"
fanout="$build/bench/xds/xds_fanout"
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
echo "machine: $(nproc) cores; open-files limit $(ulimit -n); $(uptime)"
status=0
run() {
  echo
  echo "\$ $*"
  "$@" || status=1
}
if [[ "$quick" == quick ]]; then
  run "$fanout" --podlb "$podlb" --streams 1000 --steady-seconds 5 --bursts 5
  run "$build/bench/discovery/slice_change_bench" --changes 300
  exit $status
fi
echo "== 1. 10,000 streams, each on its own connection"
run "$fanout" --podlb "$podlb" --streams 10000 --streams-per-connection 1 --steady-seconds 30 --bursts 20
echo
echo "== 2. past the descriptor limit: streams share connections"
run "$fanout" --podlb "$podlb" --streams 20000 --streams-per-connection 2 --steady-seconds 15 --bursts 10
run "$fanout" --podlb "$podlb" --streams 50000 --streams-per-connection 5 --steady-seconds 10 --bursts 5
echo
echo "== 3. a 5,000-endpoint Service, 200 streams"
run "$fanout" --podlb "$podlb" --streams 200 --services 1 --watch 1 --endpoints 5000 --rate 1 --steady-seconds 5 --bursts 5
echo
echo "== 4. discovery core per slice change"
run "$build/bench/discovery/slice_change_bench" --sizes 50,500,5000 --changes 1000
exit $status
