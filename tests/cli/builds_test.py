#!/usr/bin/python3
"""The two builds of the podlb binary (src/cli/commands.h): the cluster build (the
production image's /podlb) carries only control-plane, proxy, endpoints and bootstrap, links no
sandbox, demo, test or client-library code, and says where the commands it lacks are; the
developer build keeps every command. Also `podlb test-server`, the demo's backend on a cluster,
called with Debian's python3-grpcio."""
import os
import re
import subprocess
import time
import unittest

import grpc

ROOT = os.environ.get("PODLB_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
PODLB = os.environ.get("PODLB_BINARY", os.path.join(ROOT, "build", "podlb"))
PODLB_CLUSTER = os.environ.get("PODLB_CLUSTER_BINARY", os.path.join(ROOT, "build", "podlb-cluster"))
CLUSTER_COMMANDS = ["bootstrap", "control-plane", "endpoints", "proxy"]
# Namespaces of the code that must stay out of the production binary.
DEVELOPER_ONLY = re.compile(r"\b(podlb::sandbox|podlb::demo|podlb::client|grpc::testing)::")


def run(*argv):
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=30)


def listed_commands(binary):
    """The subcommands `--help` lists (CLI11 prints them under "Subcommands:")."""
    text = run(binary, "--help").stdout
    section = text.split("Subcommands:", 1)[1]
    return sorted(line.split()[0] for line in section.splitlines() if line.strip())


def defined_symbols(binary):
    out = run("nm", "--demangle", "--defined-only", binary).stdout
    return {line.split(" ", 2)[2] for line in out.splitlines() if line.count(" ") >= 2}


class BuildsTest(unittest.TestCase):
    def test_cluster_build_lists_only_the_cluster_commands(self):
        self.assertEqual(listed_commands(PODLB_CLUSTER), CLUSTER_COMMANDS)
        self.assertEqual(run(PODLB_CLUSTER, "--version").stdout.strip(),
                         "podlb 0.1.0 (cluster build: control-plane, proxy, endpoints, bootstrap)")
        for command in CLUSTER_COMMANDS:
            self.assertEqual(run(PODLB_CLUSTER, command, "--help").returncode, 0, command)

    def test_developer_build_keeps_every_command(self):
        self.assertEqual(listed_commands(PODLB), sorted(CLUSTER_COMMANDS + ["demo", "sandbox", "test-server"]))
        self.assertEqual(run(PODLB, "--version").stdout.strip(), "podlb 0.1.0")

    def test_cluster_build_says_where_a_missing_command_is(self):
        for argv, where in ((["sandbox", "--state-dir", "/tmp/x"], "the developer build (build/podlb"),
                            (["sandbox", "scale", "default/greeter", "5"], "the developer build (build/podlb"),
                            (["sandbox", "--help"], "the developer build (build/podlb"),
                            (["demo", "--strategies", "xds"], "podlb-demo image"),
                            (["test-server"], "podlb-demo image")):
            result = run(PODLB_CLUSTER, *argv)
            self.assertEqual(result.returncode, 2, argv)
            self.assertEqual(result.stdout, "", argv)
            self.assertIn(f"this build of podlb (cluster build: control-plane, proxy, endpoints, "
                          f"bootstrap) has no `{argv[0]}` command; it is in ", result.stderr)
            self.assertIn(where, result.stderr, argv)

    def test_cluster_build_links_no_sandbox_demo_test_or_client_code(self):
        leaked = sorted(s for s in defined_symbols(PODLB_CLUSTER) if DEVELOPER_ONLY.search(s))
        self.assertEqual(leaked[:10], [], f"{len(leaked)} developer-only symbols in podlb-cluster")
        # The check can fail: the developer build has them.
        self.assertTrue(any(DEVELOPER_ONLY.search(s) for s in defined_symbols(PODLB)))


class TestServerTest(unittest.TestCase):
    def start(self, *flags):
        process = subprocess.Popen([PODLB, "test-server", "--listen", "127.0.0.1:0", *flags],
                                   stdout=subprocess.PIPE, text=True)
        self.addCleanup(process.stdout.close)
        self.addCleanup(lambda: process.poll() is not None or (process.kill(), process.wait()))
        line = process.stdout.readline()  # one line once it serves; EOF if it failed to start
        match = re.fullmatch(r"podlb test-server: (\S+) serving on (127\.0\.0\.1:\d+)\n", line)
        self.assertTrue(match, f"unexpected first line {line!r}")
        channel = grpc.insecure_channel(match.group(2))
        self.addCleanup(channel.close)
        return process, match.group(1), channel

    def test_serves_test_service_and_health_then_drains_on_sigterm(self):
        # A drain long enough that a loaded machine still sees the health change before the
        # server stops answering.
        process, name, channel = self.start("--name", "backend-7", "--drain", "5")
        self.assertEqual(name, "backend-7")
        # SimpleRequest{fill_server_id: true}: the answer carries the server's name.
        response = channel.unary_unary("/grpc.testing.TestService/UnaryCall")(b"\x48\x01", timeout=10)
        self.assertIn(b"backend-7", response)
        check = channel.unary_unary("/grpc.health.v1.Health/Check")
        self.assertEqual(check(b"", timeout=10), b"\x08\x01")  # SERVING

        process.terminate()
        # Health turns NOT_SERVING while calls are still answered for --drain; the signal's
        # arrival has no event to wait on here, so poll within the drain.
        deadline = time.monotonic() + 4.5
        while check(b"", timeout=10) != b"\x08\x02":  # NOT_SERVING
            self.assertLess(time.monotonic(), deadline, "health still SERVING after SIGTERM")
        self.assertIn(b"backend-7", channel.unary_unary("/grpc.testing.TestService/UnaryCall")(
            b"\x48\x01", timeout=10))
        self.assertEqual(process.wait(timeout=10), 0)

    def test_name_defaults_to_pod_name(self):
        process = subprocess.Popen([PODLB, "test-server", "--listen", "127.0.0.1:0"],
                                   stdout=subprocess.PIPE, text=True,
                                   env=dict(os.environ, POD_NAME="greeter-abc"))
        self.addCleanup(process.stdout.close)
        self.addCleanup(lambda: (process.kill(), process.wait()))
        self.assertTrue(process.stdout.readline().startswith("podlb test-server: greeter-abc serving on"))

    def test_bad_flags_are_refused(self):
        for flags, message in ((["--listen", "nowhere"], "--listen must be HOST:PORT"),
                               (["--listen", "127.0.0.1:70000"], "--listen must be HOST:PORT"),
                               (["--drain", "-1"], "--drain and --max-connection-age must be >= 0")):
            result = run(PODLB, "test-server", *flags)
            self.assertEqual(result.returncode, 2, flags)
            self.assertIn(message, result.stdout + result.stderr, flags)

    def test_faults_from_pod_needs_a_cluster(self):
        # Outside a cluster and without --kubeconfig there is no API to follow the Pod through:
        # refused before serving, saying what to pass.
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_SERVICE")}
        result = subprocess.run([PODLB, "test-server", "--listen", "127.0.0.1:0",
                                 "--faults-from-pod"], capture_output=True, text=True, env=env,
                                timeout=30)
        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stdout, "")
        self.assertIn("--faults-from-pod: not running in a cluster (KUBERNETES_SERVICE_HOST is not "
                      "set); pass --kubeconfig FILE", result.stderr)
        result = subprocess.run([PODLB, "test-server", "--listen", "127.0.0.1:0",
                                 "--faults-from-pod", "--kubeconfig", "/nonexistent/kubeconfig"],
                                capture_output=True, text=True, env=env, timeout=30)
        self.assertEqual(result.returncode, 2)
        self.assertIn("/nonexistent/kubeconfig", result.stderr)


class BootstrapOutputTest(unittest.TestCase):
    """`podlb bootstrap --output FILE`: what an init container of the shell-less image uses."""

    def setUp(self):
        import tempfile
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)

    def test_writes_the_same_bootstrap_it_prints(self):
        import json
        flags = ["bootstrap", "--server", "cp.podlb-system.svc:18000", "--node-id", "n1", "--zone", "zone-a"]
        printed = run(PODLB_CLUSTER, *flags)
        self.assertEqual(printed.returncode, 0, printed.stderr)
        path = os.path.join(self.dir.name, "bootstrap.json")
        written = run(PODLB_CLUSTER, *flags, "--output", path)
        self.assertEqual(written.returncode, 0, written.stderr)
        self.assertEqual(written.stdout, "")
        with open(path) as f:
            text = f.read()
        self.assertEqual(text, printed.stdout)
        self.assertEqual(json.loads(text)["node"]["id"], "n1")
        self.assertEqual(os.listdir(self.dir.name), ["bootstrap.json"])  # no temporary left

    def test_an_unwritable_path_is_an_error_and_leaves_nothing(self):
        path = os.path.join(self.dir.name, "missing-dir", "bootstrap.json")
        result = run(PODLB_CLUSTER, "bootstrap", "--server", "cp:18000", "--output", path)
        self.assertEqual(result.returncode, 1)
        self.assertIn(f"bootstrap: cannot write {path}.tmp: No such file or directory", result.stderr)
        self.assertEqual(os.listdir(self.dir.name), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
