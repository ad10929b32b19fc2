#!/usr/bin/python3
"""Prints benchmark results (JSON lines from run.py) as a Markdown table.  table.py RESULTS.jsonl"""
import json
import sys


def main():
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    head = ["target", "req/s (median)", "req/s range", "p50 ms", "p99 ms", "peak RSS MiB", "CPU s/100k", "non-2xx",
            "grpc-status", "balance max/min"]
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for r in rows:
        print("| {target} | {rps:,.0f} | {rps_range} | {p50:.2f} | {p99:.2f} | {rss:.1f} | {cpu:.2f} | {failed} | "
              "{grpc_status} | {balance} |".format(**r))


if __name__ == "__main__":
    main()
