"""Watches EndpointSlices with the official Kubernetes Python client and prints one line per
event: "EVENT <type> <name> <resourceVersion>". Used by apiserver_python_test to prove the
API-server stand-in speaks the protocol a client nobody here wrote expects.

usage: watch_endpointslices.py KUBECONFIG NAMESPACE MAX_EVENTS TIMEOUT_SECONDS
"""
import sys

from kubernetes import client, config, watch


def main():
    kubeconfig, namespace = sys.argv[1], sys.argv[2]
    max_events, timeout = int(sys.argv[3]), int(sys.argv[4])
    config.load_kube_config(config_file=kubeconfig)
    api = client.DiscoveryV1Api()
    initial = api.list_namespaced_endpoint_slice(namespace)
    print("LISTED %d %s" % (len(initial.items), initial.metadata.resource_version), flush=True)
    seen = 0
    w = watch.Watch()
    for event in w.stream(api.list_namespaced_endpoint_slice, namespace,
                          resource_version=initial.metadata.resource_version,
                          timeout_seconds=timeout):
        obj = event["object"]
        print("EVENT %s %s %s" % (event["type"], obj.metadata.name, obj.metadata.resource_version),
              flush=True)
        seen += 1
        if seen >= max_events:
            w.stop()
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
