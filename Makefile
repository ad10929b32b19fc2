# podlb — the two set-up commands are `make demo` and `make test`; everything else is for us.
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
CMAKE_FLAGS ?=
JOBS ?= $(shell nproc)
CTEST_FLAGS ?=
# ccache keys on relative paths, so a fresh clone in another folder (CI) reuses earlier builds.
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1

.PHONY: all bootstrap configure build test demo demo-repeat bench bench-proxy bench-scale fuzz-proxy \
	fuzz-proxy-brief check-thread-safety test-sanitize image image-demo image-test soak clean format

all: build

bootstrap:
	@scripts/bootstrap.sh

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	  -DCMAKE_EXPORT_COMPILE_COMMANDS=ON $(CMAKE_FLAGS)

configure: $(BUILD_DIR)/build.ninja

build: bootstrap configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) $(CTEST_FLAGS)

# Only the binary the demo runs (the tests and benchmarks are `make test`'s and `make bench`'s).
demo: bootstrap configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target podlb
	@scripts/demo.sh $(BUILD_DIR)/podlb

# The whole demo (--duration 1) DEMO_RUNS times in a row, failing on any strategy whose set-up
# failed. A few minutes, so not part of `make test`.
DEMO_RUNS ?= 5
demo-repeat: configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target podlb
	tests/demo/demo_repeat.py $(BUILD_DIR)/podlb --runs $(DEMO_RUNS)

# The soak (tests/soak/soak.py): SOAK_MINUTES of churn against the sandbox, the control plane,
# the proxy and the library; fails on a failed call of a client that stays connected, on counts
# or fds/threads that do not return to their baseline, or on RSS growth of 5 % or more.
# `make test` runs a one-minute version without the RSS judgement.
SOAK_MINUTES ?= 30
soak: configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target podlb soak_client
	/usr/bin/python3 tests/soak/soak.py --podlb $(BUILD_DIR)/podlb \
	  --client $(BUILD_DIR)/tests/soak/soak_client --minutes $(SOAK_MINUTES) --rss

bench: build
	@scripts/bench.sh $(BUILD_DIR)

# podlb proxy vs nginx / HAProxy / nghttpx under h2load (needs `make bootstrap` for the peers).
bench-proxy: configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target podlb bench_backend
	@bench/proxy/run.sh $(BUILD_DIR)

# Issue #12's scale runs: 10,000 / 20,000 / 50,000 xDS streams against a control-plane process,
# a 5,000-endpoint Service, discovery cost per slice change (about 6 min; BENCHMARKS.md "Scale").
bench-scale: configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target podlb xds_fanout slice_change_bench
	@bench/xds/run_scale.sh $(BUILD_DIR)

# A longer libFuzzer run of the proxy's downstream HTTP/2 path (clang build in build-fuzz).
FUZZ_SECONDS ?= 600
fuzz-proxy:
	CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build build-fuzz -j $(JOBS) --target proxy_downstream_fuzzer
	mkdir -p build-fuzz/proxy-corpus
	build-fuzz/tests/proxy/fuzz/proxy_downstream_fuzzer -max_total_time=$(FUZZ_SECONDS) -max_len=8192 build-fuzz/proxy-corpus

# The brief run CI does: 20,000 inputs through the same fuzzer, as a ctest.
fuzz-proxy-brief: bootstrap
	CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPODLB_BUILD_BENCH=OFF
	cmake --build build-fuzz -j $(JOBS) --target proxy_downstream_fuzzer
	cd build-fuzz && ctest --output-on-failure -R proxy/fuzz_downstream_brief

# clang -Wthread-safety over src/ and the tests that lock (syntax only), with the flags of
# $(BUILD_DIR)'s compile_commands.json: checks the ABSL_GUARDED_BY family GCC ignores.
check-thread-safety: bootstrap configure
	JOBS=$(JOBS) scripts/check_thread_safety.sh $(BUILD_DIR)

# The unit tests of the core, the balancing code, the proxy and the ADS
# transport (protocol and hostile input, in process) under AddressSanitizer + UBSan:
# a Debug build in its own dir (-DPODLB_SANITIZE=ON) of only those test binaries, every finding
# fatal. About 3.5 min cold on 2 cores (30 s with ccache), README "What CI runs". Left out:
# - subset_test: its fleet simulations (1,000 clients x 5,000 pods) take minutes at -O0 under
#   ASan (run it there by name after changing src/balancing/subset.cc);
# - what runs the podlb binary, which would mean building the whole product a second time:
#   proxy_binary_test, sandbox_proxy_test (also the sandbox), UpstreamTlsFlagsTest;
# - ProxyTest.OneChannelSpreadsUnaryCallsOverThreeBackends, a balance figure over 0.7 s of
#   sequential calls: at ASan + -O0 speed, about 1 run in 10 has one call slower than peak_ewma's
#   10 ms "clearly slower" line (a stall, or the first call paying for its connection's set-up),
#   and that pod then takes few calls for seconds, as designed. It runs in `make test`.
SANITIZE_BUILD_DIR ?= build-asan
SANITIZE_TESTS ?= endpoint_test registry_test balancer_test grpc_util_test picking_test \
	proxy_test retry_test hostile_input_test unavailable_retry_test upstream_tls_test \
	ads_protocol_test ads_hostile_input_test ads_stream_parts_test
empty :=
space := $(empty) $(empty)
test-sanitize: bootstrap
	cmake -S . -B $(SANITIZE_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DPODLB_SANITIZE=ON \
	  -DPODLB_BUILD_BENCH=OFF
	cmake --build $(SANITIZE_BUILD_DIR) -j $(JOBS) --target $(SANITIZE_TESTS)
	cd $(SANITIZE_BUILD_DIR) && \
	  ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  GTEST_FILTER='-UpstreamTlsFlagsTest.*:ProxyTest.OneChannelSpreadsUnaryCallsOverThreeBackends' \
	  ctest --output-on-failure -j $(JOBS) $(CTEST_FLAGS) \
	    -R '^[a-z]+/($(subst $(space),|,$(strip $(SANITIZE_TESTS))))$$'

# The production image localhost/podlb:VERSION: the cluster build of the binary (control-plane,
# proxy, endpoints, bootstrap) FROM scratch with the Debian 12 libraries it loads, built with
# buildah into $(BUILD_DIR)/image/storage and saved as $(BUILD_DIR)/image/podlb-VERSION.oci.tar
# (deploy/image/build.sh; about 10 s once the binary is built). README "Deploy to a cluster"
# says how to load it onto a cluster.
VERSION := $(shell sed -n 's/^project.podlb VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
image: bootstrap configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target podlb-cluster
	deploy/image/build.sh $(BUILD_DIR)/podlb-cluster localhost/podlb:$(VERSION) $(BUILD_DIR)/image

# The demo image localhost/podlb-demo:VERSION, built the same way from the developer build
# (the demo, its test server and the sandbox included): for the demo on a cluster.
image-demo: bootstrap configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target podlb
	deploy/image/build.sh $(BUILD_DIR)/podlb localhost/podlb-demo:$(VERSION) $(BUILD_DIR)/image

# The image's smoke test alone (it also runs in `make test`): builds the image, runs
# `podlb --version` and a control plane from it against a sandbox, with an xDS client.
image-test: bootstrap configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target podlb podlb-cluster
	cd $(BUILD_DIR) && ctest --output-on-failure -R '^deploy/image_smoke_test$$'

clean:
	rm -rf $(BUILD_DIR)

format:
	find src tests bench include examples -name '*.cc' -o -name '*.h' | xargs clang-format -i
