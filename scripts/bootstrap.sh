#!/usr/bin/env bash
# Installs what podlb needs to build and test on Debian 12. Idempotent: installs only what is
# missing, so a second run costs a few dpkg queries. Run as root (or with sudo available).
set -euo pipefail

packages=(
  # toolchain (clang for the thread-safety check; with compiler-rt for the libFuzzer target)
  build-essential cmake ninja-build ccache pkg-config git clang libclang-rt-14-dev
  # libraries
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  libnghttp2-dev libssl-dev libc-ares-dev libcurl4-openssl-dev nlohmann-json3-dev
  libspdlog-dev libfmt-dev libcli11-dev libyaml-cpp-dev libgtest-dev libgmock-dev libbenchmark-dev
  libgoogle-perftools-dev
  grpc-proto
  # real third-party peers used by the tests
  python3 python3-kubernetes python3-grpcio python3-h2 python3-yaml dnsmasq-base
  # test certificates (TLS and mTLS tests)
  openssl
  # promtool checks the proxy's /metrics text in a test
  prometheus
  # headless browser that renders the demo's HTML report in a test
  chromium
  # proxy benchmark peers and load generator (bench/proxy/run.sh; not needed by the tests)
  nginx haproxy nghttp2-proxy nghttp2-client
  # `make image`: builds podlb's OCI image from scratch with Debian's buildah (no registry pulls)
  buildah ca-certificates
)
# kubectl: whichever is on PATH; Debian's kubernetes-client when there is none.
command -v kubectl >/dev/null 2>&1 || packages+=(kubernetes-client)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "bootstrap: all packages present"

# Debian 12's own kubectl (1.20, package kubernetes-client) as a second, older kubectl for the
# sandbox's kubectl tests: it validates manifests against /openapi/v2 and pages the old way.
# Installing it would replace the kubectl on PATH, so it is only downloaded and unpacked into
# .cache/kubectl-1.20 (gitignored); tests/CMakeLists.txt hands it to the tests as
# PODLB_KUBECTL_LEGACY. Re-run cmake after the first extraction.
cd "$(dirname "$0")/.."
legacy_kubectl=.cache/kubectl-1.20/usr/bin/kubectl
if [ -x "$legacy_kubectl" ]; then
  echo "bootstrap: kubectl 1.20 present in .cache/kubectl-1.20"
else
  download_dir=$(mktemp -d)
  mkdir -p .cache/kubectl-1.20
  if (cd "$download_dir" && apt-get download -qq kubernetes-client >/dev/null 2>&1) &&
     dpkg -x "$download_dir"/kubernetes-client_*.deb .cache/kubectl-1.20 &&
     [ -x "$legacy_kubectl" ]; then
    echo "bootstrap: kubectl $("$legacy_kubectl" version --client --short 2>/dev/null | sed 's/.*: //') extracted into .cache/kubectl-1.20"
  else
    echo "bootstrap: could not download kubernetes-client (kubectl 1.20); its test variants will be skipped"
  fi
  rm -rf "$download_dir"
fi

# Test-only npm peers (grpc-js-xds, the second independent xDS client of the control-plane
# tests), pinned by package-lock.json; node_modules is gitignored.
if [ -f package-lock.json ] && command -v npm >/dev/null 2>&1; then
  # npm ci wipes and reinstalls node_modules; skip it while the install is newer than the lock.
  if [ node_modules/.package-lock.json -nt package-lock.json ]; then
    echo "bootstrap: node_modules up to date"
    exit 0
  fi
  npm ci --no-audit --no-fund --loglevel=error
  echo "bootstrap: node_modules installed from package-lock.json"
fi
