"""Lists pods page by page with the official Kubernetes Python client (limit and _continue) and
prints one line per page: "PAGE <resourceVersion> <remainingItemCount or -> <name>@<rv> ...".
A 410 prints "EXPIRED <reason> <token|no-token>"; the list then finishes with the token the
Status carries, as the API documents. Ends with "DONE". Used by apiserver_python_test.

usage: list_pods_paged.py KUBECONFIG NAMESPACE LIMIT
"""
import json
import sys

from kubernetes import client, config
from kubernetes.client.rest import ApiException


def main():
    kubeconfig, namespace, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
    config.load_kube_config(config_file=kubeconfig)
    api = client.CoreV1Api()
    token = None
    while True:
        kwargs = {"limit": limit}
        if token:
            kwargs["_continue"] = token
        try:
            page = api.list_namespaced_pod(namespace, **kwargs)
        except ApiException as e:
            if e.status != 410:
                raise
            status = json.loads(e.body)
            token = (status.get("metadata") or {}).get("continue")
            print("EXPIRED %s %s" % (status.get("reason"), "token" if token else "no-token"),
                  flush=True)
            if not token:
                break
            continue
        remaining = page.metadata.remaining_item_count
        names = " ".join("%s@%s" % (p.metadata.name, p.metadata.resource_version)
                         for p in page.items)
        print("PAGE %s %s %s" % (page.metadata.resource_version,
                                 "-" if remaining is None else remaining, names), flush=True)
        token = page.metadata._continue
        if not token:
            break
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
