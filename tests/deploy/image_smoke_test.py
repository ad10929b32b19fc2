#!/usr/bin/python3
"""Smoke test of podlb's production image (issue 13, item 1), as `make image` builds it.

Builds the image with deploy/image/build.sh (buildah, FROM scratch, about 10 s), then checks what
the image is (runs as 65532, entrypoint /podlb, no shell, only the cluster commands) and runs it:
`buildah run` of `podlb --version`, and of `podlb control-plane` and `podlb proxy` against a
running sandbox of the developer build, whose kubeconfig is mounted into the container. The control plane must become
ready (it listed the sandbox's endpoints through the image's own curl, OpenSSL and CA handling)
and answer a real xDS client: Debian's python3-grpcio dials xds:///greeter.default:50051 with the
bootstrap that the image's `podlb bootstrap` prints, and its call reaches a sandbox pod; the same
call through the image's proxy does too.

buildah runs the container with chroot isolation, which shares the host's network: the
container's 127.0.0.1 is the sandbox's. Needs root (buildah's vfs storage); exits 77 (skipped)
otherwise.
"""
import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import unittest
import urllib.request

ROOT = os.environ.get("PODLB_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(ROOT, "build")
PODLB = os.environ.get("PODLB_BINARY", os.path.join(BUILD, "podlb"))
PODLB_CLUSTER = os.environ.get("PODLB_CLUSTER_BINARY", os.path.join(BUILD, "podlb-cluster"))
IMAGE = os.environ.get("PODLB_IMAGE", "localhost/podlb:0.1.0")
IMAGE_DIR = os.environ.get("PODLB_IMAGE_DIR", os.path.join(BUILD, "image"))
ARCHIVE = os.path.join(IMAGE_DIR, IMAGE.rsplit("/", 1)[-1].replace(":", "-") + ".oci.tar")
BUILDAH = ["buildah", "--root", os.path.join(IMAGE_DIR, "storage"), "--runroot",
           os.path.join(IMAGE_DIR, "run"), "--storage-driver", "vfs"]
PYTHON = "/usr/bin/python3"

# An xDS client nobody here wrote: grpcio's own xDS resolver and balancer. UnaryCall with
# fill_server_id (field 9) set; the pod answers with its name in server_id and hostname.
XDS_CLIENT = r"""
import grpc, sys
channel = grpc.insecure_channel("xds:///greeter.default:50051")  # the Service's port
call = channel.unary_unary("/grpc.testing.TestService/UnaryCall")
sys.stdout.write(repr(call(b"\x48\x01", timeout=20)))
"""

# A plain gRPC client of the proxy: the same call, to the proxy's address.
PLAIN_CLIENT = XDS_CLIENT.replace('"xds:///greeter.default:50051"', "sys.argv[1]")
assert PLAIN_CLIENT != XDS_CLIENT


def buildah(*args, check=True, timeout=120):
    result = subprocess.run(BUILDAH + list(args), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"buildah {' '.join(args)} failed ({result.returncode}): "
                             f"{result.stdout}{result.stderr}")
    return result


class LineReader:
    """Reads a child's stdout lines on a thread, so the test waits on them with a deadline."""

    def __init__(self, process):
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, args=(process.stdout,), daemon=True).start()

    def _read(self, stream):
        for line in stream:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {what} within {timeout}s; output: {self.seen}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"exited before {what}; output: {self.seen}")
            self.seen.append(line)
            if predicate(line):
                return line


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(process):
    process.terminate()
    process.wait(timeout=30)
    process.stdout.close()


def descendants(pid):
    """pid and every process below it (from /proc), for finding the container's process."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


class ImageSmokeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        build = subprocess.run([os.path.join(ROOT, "deploy", "image", "build.sh"), PODLB_CLUSTER,
                                IMAGE, IMAGE_DIR], capture_output=True, text=True, timeout=300)
        if build.returncode != 0:
            raise AssertionError(f"deploy/image/build.sh failed: {build.stdout}{build.stderr}")
        print(build.stdout.strip(), file=sys.stderr)
        cls.container = f"podlb-smoke-{os.getpid()}"
        buildah("from", "--pull-never", "--name", cls.container, IMAGE)

    @classmethod
    def tearDownClass(cls):
        buildah("rm", cls.container, check=False)

    def run_in_image(self, *args, timeout=30):
        return buildah("run", "--isolation", "chroot", self.container, "--", "/podlb", *args,
                       check=False, timeout=timeout)

    def test_image_runs_podlb_as_65532_without_a_shell(self):
        config = json.loads(buildah("inspect", "--type", "image", IMAGE).stdout)["OCIv1"]["config"]
        self.assertEqual(config["User"], "65532:65532")
        self.assertEqual(config["Entrypoint"], ["/podlb"])
        # What the image ships: the files of its layers, read from the archive build.sh pushed.
        files = {}
        with tarfile.open(ARCHIVE) as archive:
            def blob(digest):
                return archive.extractfile("blobs/sha256/" + digest.split(":")[1])
            index = json.load(archive.extractfile("index.json"))
            manifest = json.load(blob(index["manifests"][0]["digest"]))
            for layer in manifest["layers"]:
                with tarfile.open(fileobj=blob(layer["digest"])) as content:
                    for member in content.getmembers():
                        files[os.path.normpath(member.name)] = member
        self.assertEqual(sorted({name.split("/")[0] for name in files}),
                         ["etc", "lib", "lib64", "podlb", "tmp", "usr"])
        self.assertFalse([n for n in files if os.path.basename(n) in ("sh", "bash", "busybox")],
                         "a shell in the image")
        self.assertEqual(files["podlb"].mode & 0o755, 0o755)
        self.assertTrue(files["lib64/ld-linux-x86-64.so.2"].isfile())
        mount = buildah("mount", self.container).stdout.strip()
        try:
            with open(os.path.join(mount, "etc", "passwd")) as f:
                self.assertIn("nonroot:x:65532:65532:", f.read())
        finally:
            buildah("umount", self.container, check=False)

    def test_version_names_the_cluster_build(self):
        result = self.run_in_image("--version")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(),
                         "podlb 0.1.0 (cluster build: control-plane, proxy, endpoints, bootstrap)")

    def test_sandbox_and_demo_are_not_in_the_image(self):
        for command, where in (("sandbox", "the developer build"), ("demo", "podlb-demo image"),
                               ("test-server", "podlb-demo image")):
            result = self.run_in_image(command, "--state-dir", "/tmp/x")
            self.assertEqual(result.returncode, 2, command)
            self.assertIn(f"has no `{command}` command", result.stderr)
            self.assertIn(where, result.stderr)

    def start_in_image(self, mounted, *args):
        """`buildah run` of /podlb ARGS with `mounted` at /config; its output lines as they come."""
        process = subprocess.Popen(
            BUILDAH + ["run", "--isolation", "chroot", "--volume", f"{mounted}:/config:ro",
                       self.container, "--", "/podlb", *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.addCleanup(stop, process)
        return process, LineReader(process)

    def test_control_plane_and_proxy_from_the_image_serve_the_sandbox(self):
        work = tempfile.mkdtemp(prefix="podlb-image-smoke-")
        self.addCleanup(shutil.rmtree, work, True)
        pod_port = free_port()
        # Pods on loopback addresses and a port no other test's sandbox uses (127.<n>.<pid>.x).
        sandbox = subprocess.Popen([PODLB, "sandbox", "--state-dir", os.path.join(work, "sandbox"),
                                    "--pod-port", str(pod_port), "--first-pod-ip",
                                    f"127.21.{os.getpid() % 250 + 1}.2"],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.addCleanup(stop, sandbox)
        LineReader(sandbox).wait_for(lambda l: l == "ready", 30, "sandbox ready")

        # The container runs as 65532: hand it a copy of the kubeconfig it can read.
        mounted = os.path.join(work, "mounted")
        os.makedirs(mounted)
        os.chmod(work, 0o755)
        os.chmod(mounted, 0o755)
        shutil.copy(os.path.join(work, "sandbox", "kubeconfig"), os.path.join(mounted, "kubeconfig"))
        os.chmod(os.path.join(mounted, "kubeconfig"), 0o644)
        control_plane, output = self.start_in_image(
            mounted, "control-plane", "--kubeconfig", "/config/kubeconfig", "--listen",
            "127.0.0.1:0", "--admin", "127.0.0.1:0")
        line = output.wait_for(lambda l: l.startswith("podlb control-plane: xds port"), 30,
                               "control plane ports")
        words = line.split()
        xds_port, admin_port = int(words[4]), int(words[7])

        # The process serving is the image's /podlb, as the image's user.
        uids = []
        for pid in descendants(control_plane.pid):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
                with open(f"/proc/{pid}/status") as f:
                    status = f.read()
            except OSError:
                continue
            if argv[:2] == [b"/podlb", b"control-plane"]:
                uids.append([l.split()[1] for l in status.splitlines() if l.startswith("Uid:")][0])
        self.assertIn("65532", uids)

        deadline = time.monotonic() + 20
        while True:  # /readyz turns 200 once the first endpoint list arrived: no event to wait on
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/readyz", timeout=5) as r:
                    self.assertEqual(r.read(), b"ready\n")
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

        bootstrap = self.run_in_image("bootstrap", "--server", f"127.0.0.1:{xds_port}",
                                      "--node-id", "image-smoke")
        self.assertEqual(bootstrap.returncode, 0, bootstrap.stderr)
        client = subprocess.run([PYTHON, "-c", XDS_CLIENT], capture_output=True, text=True,
                                timeout=60,
                                env=dict(os.environ, GRPC_XDS_BOOTSTRAP_CONFIG=bootstrap.stdout))
        self.assertEqual(client.returncode, 0, client.stderr)
        self.assertIn("greeter-", client.stdout, "the call did not reach a sandbox pod")

        # The node proxy from the image (nghttp2 and tcmalloc, which the control plane does not
        # load) balances a plain gRPC client's call to a sandbox pod.
        _, output = self.start_in_image(
            mounted, "proxy", "--kubeconfig", "/config/kubeconfig", "--listen",
            "127.0.0.1:0=default/greeter:50051", "--admin", "127.0.0.1:0")
        line = output.wait_for(lambda l: l.startswith("podlb proxy listening on 127.0.0.1:"), 30,
                               "proxy port")
        proxy_port = int(line.split()[4].rsplit(":", 1)[1])
        output.wait_for(lambda l: l.startswith("podlb proxy admin on port"), 30, "proxy admin")
        client = subprocess.run([PYTHON, "-c", PLAIN_CLIENT, f"127.0.0.1:{proxy_port}"],
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(client.returncode, 0, client.stderr)
        self.assertIn("greeter-", client.stdout, "the call through the proxy did not reach a pod")


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("image_smoke_test: skipped: not root (buildah's vfs storage and chroot isolation, "
              "as `make image` uses them, need root)", file=sys.stderr)
        sys.exit(77)
    unittest.main(verbosity=2)
