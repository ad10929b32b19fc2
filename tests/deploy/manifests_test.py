#!/usr/bin/python3
"""Checks the manifests under deploy/ by parsing them: every document is well formed, the
control plane and the node proxy carry what their issues ask for, and every container runs a
podlb subcommand that exists."""
import os
import subprocess
import unittest

import yaml

ROOT = os.environ.get("PODLB_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
# The binary of the production image (the cluster build), which the manifests' containers run.
PODLB = os.environ.get("PODLB_BINARY", os.path.join(ROOT, "build", "podlb-cluster"))
# What `make image` tags (deploy/image/build.sh).
IMAGE = os.environ.get("PODLB_IMAGE", "localhost/podlb:0.1.0")


def load(name):
    with open(os.path.join(ROOT, "deploy", name)) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def find(docs, kind, name=None):
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    if not found:
        raise AssertionError(f"no {kind} {name or ''} in manifest")
    return found[0]


def podlb_containers(docs):
    for d in docs:
        if d["kind"] in ("Deployment", "DaemonSet"):
            for c in d["spec"]["template"]["spec"].get("containers", []):
                if "podlb" in c.get("image", ""):
                    yield d, c


class ManifestsTest(unittest.TestCase):
    def test_every_document_has_kind_api_version_and_name(self):
        for name in sorted(os.listdir(os.path.join(ROOT, "deploy"))):
            if not name.endswith(".yaml"):
                continue
            for d in load(name):
                self.assertIn("apiVersion", d, name)
                self.assertTrue(d["metadata"]["name"], name)

    def test_control_plane_has_two_replicas_probes_and_a_disruption_budget(self):
        docs = load("control-plane.yaml")
        deploy = find(docs, "Deployment", "podlb-control-plane")
        self.assertEqual(deploy["spec"]["replicas"], 2)
        container = deploy["spec"]["template"]["spec"]["containers"][0]
        self.assertIn("control-plane", container.get("args", []) + container.get("command", []))
        self.assertEqual(container["readinessProbe"]["httpGet"]["path"], "/readyz")
        self.assertEqual(container["livenessProbe"]["httpGet"]["path"], "/healthz")
        find(docs, "PodDisruptionBudget")
        find(docs, "Service", "podlb-control-plane")

    def test_node_proxy_is_a_daemonset_behind_a_node_local_service(self):
        docs = load("node-proxy.yaml")
        find(docs, "DaemonSet", "podlb-proxy")
        service = find(docs, "Service", "podlb-proxy")
        self.assertEqual(service["spec"]["internalTrafficPolicy"], "Local")

    def test_containers_run_subcommands_podlb_has(self):
        for name in ("control-plane.yaml", "node-proxy.yaml"):
            for owner, c in podlb_containers(load(name)):
                args = c.get("command", []) + c.get("args", [])
                sub = next(a for a in args if not a.startswith("-") and "podlb" not in a)
                if not os.path.exists(PODLB):
                    self.skipTest("podlb binary not built")
                rc = subprocess.run([PODLB, sub, "--help"], capture_output=True).returncode
                self.assertEqual(rc, 0, f"{name}: {owner['metadata']['name']} runs `podlb {sub}`")

    def test_podlb_containers_run_the_image_make_image_builds(self):
        names = [n for n in sorted(os.listdir(os.path.join(ROOT, "deploy"))) if n.endswith(".yaml")]
        images = {c["image"] for name in names for _, c in podlb_containers(load(name))}
        self.assertEqual(images, {IMAGE})


if __name__ == "__main__":
    unittest.main(verbosity=2)
