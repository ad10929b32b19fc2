#!/usr/bin/python3
"""Checks deploy/01-rbac.yaml: podlb's role grants exactly get/list/watch on what discovery reads."""
import os
import sys
import unittest

import yaml

ROOT = os.environ.get("PODLB_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))


class RbacTest(unittest.TestCase):
    def setUp(self):
        with open(os.path.join(ROOT, "deploy", "01-rbac.yaml")) as f:
            self.docs = [d for d in yaml.safe_load_all(f) if d]

    def role(self):
        roles = [d for d in self.docs if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "podlb-discovery"]
        self.assertEqual(len(roles), 1)
        return roles[0]

    def test_grants_read_only_on_exactly_the_discovery_resources(self):
        granted = set()
        for rule in self.role()["rules"]:
            self.assertEqual(sorted(rule["verbs"]), ["get", "list", "watch"], rule)
            self.assertNotIn("*", rule["resources"])
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    granted.add((group, resource))
        self.assertEqual(granted, {("discovery.k8s.io", "endpointslices"), ("", "services"), ("", "endpoints")})

    def test_binding_names_the_role_and_the_service_account(self):
        bindings = [d for d in self.docs if d["kind"] == "ClusterRoleBinding"]
        self.assertEqual(len(bindings), 1)
        self.assertEqual(bindings[0]["roleRef"]["name"], "podlb-discovery")
        sa = [d for d in self.docs if d["kind"] == "ServiceAccount"][0]
        subject = bindings[0]["subjects"][0]
        self.assertEqual((subject["name"], subject["namespace"]), (sa["metadata"]["name"], sa["metadata"]["namespace"]))


if __name__ == "__main__":
    unittest.main(verbosity=2)
