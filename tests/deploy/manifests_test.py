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


def manifest_files():
    """Every manifest under deploy/ (the top level, as `kubectl apply -f deploy/` reads it, then
    deploy/examples/), as paths relative to deploy/."""
    top = sorted(n for n in os.listdir(os.path.join(ROOT, "deploy")) if n.endswith(".yaml"))
    examples = sorted("examples/" + n for n in os.listdir(os.path.join(ROOT, "deploy", "examples"))
                      if n.endswith(".yaml"))
    return top, examples


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
        top, examples = manifest_files()
        for name in top + examples:
            for d in load(name):
                self.assertIn("apiVersion", d, name)
                self.assertTrue(d["metadata"]["name"], name)

    def test_namespace_comes_first_in_apply_order(self):
        # kubectl apply -f deploy/ reads the files in name order; a real API server answers
        # NotFound to an object whose namespace does not exist yet.
        top, _ = manifest_files()
        created = set()
        for name in top:
            for d in load(name):
                if d["kind"] == "Namespace":
                    created.add(d["metadata"]["name"])
                ns = d["metadata"].get("namespace")
                if ns and ns != "default":
                    self.assertIn(ns, created, f"{name}: {d['kind']} {d['metadata']['name']} "
                                               f"comes before the Namespace {ns}")

    def test_each_object_is_defined_once(self):
        # Two different definitions of one object make every apply flip it.
        top, examples = manifest_files()
        seen = {}
        for name in top + examples:
            for d in load(name):
                key = (d["apiVersion"].split("/")[0] if "/" in d["apiVersion"] else "",
                       d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"])
                self.assertNotIn(key, seen, f"{key} is defined in {seen.get(key)} and {name}")
                seen[key] = name

    def test_client_examples_live_apart(self):
        top, examples = manifest_files()
        for name in top:
            for d in load(name):
                self.assertNotEqual(d["metadata"].get("namespace"), "default",
                                    f"{name}: client examples belong in deploy/examples/")
        self.assertIn("examples/xds-client.yaml", examples)
        self.assertIn("examples/sidecar-client.yaml", examples)

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
        for name in ("control-plane.yaml", "node-proxy.yaml", "examples/sidecar-client.yaml"):
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
