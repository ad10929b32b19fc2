#!/usr/bin/python3
"""`make demo-repeat`: the whole `podlb demo --json` several times in a row, failing on any run
whose set-up failed (a flaky start once cost one full run in five its dns row before measuring).

Too long for `make test` (about a minute per run on two cores), so it is its own target.
Usage: demo_repeat.py PODLB [--runs N] [--duration S] [extra `podlb demo` flags...]
"""
import argparse
import json
import subprocess
import sys
import time


def entries(report):
    for scenario in report.get("scenarios", []):
        for entry in scenario.get("strategies", []):
            yield scenario.get("name"), entry


def check(report):
    """The problems of one run's JSON: set-up failures first, then any other error."""
    problems = []
    count = 0
    for scenario, entry in entries(report):
        count += 1
        where = f"{scenario}/{entry.get('name')}"
        if "setup_error" in entry:
            problems.append(f"{where}: set-up failed: {entry['setup_error']}")
        elif "error" in entry:
            problems.append(f"{where}: {entry['error']}")
        elif entry.get("calls", 0) == 0:
            problems.append(f"{where}: no calls measured")
    if count == 0:
        problems.append("the JSON lists no run at all")
    return problems, count


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("podlb")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", default="1")
    args, extra = parser.parse_known_args()

    failed = 0
    walls = []
    for run in range(1, args.runs + 1):
        command = [args.podlb, "demo", "--json", "--duration", args.duration] + extra
        start = time.monotonic()
        proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wall = time.monotonic() - start
        walls.append(wall)
        line = next((l for l in proc.stdout.splitlines() if l.startswith('{"scenarios"')), None)
        if line is None:
            problems, count = [f"no JSON on stdout (exit status {proc.returncode})"], 0
        else:
            problems, count = check(json.loads(line))
            if proc.returncode != 0 and not problems:
                problems.append(f"exit status {proc.returncode} with a clean JSON")
        verdict = "ok" if not problems else "FAILED"
        print(f"demo-repeat: run {run}/{args.runs}: {verdict}, {count} strategy runs, "
              f"{wall:.1f} s", flush=True)
        if problems:
            failed += 1
            for p in problems:
                print(f"  {p}", flush=True)
            print("  podlb demo's stderr (last 30 lines):", flush=True)
            for l in proc.stderr.splitlines()[-30:]:
                print(f"    {l}", flush=True)
    print(f"demo-repeat: {args.runs - failed} of {args.runs} runs clean; wall time per run "
          f"{min(walls):.1f}-{max(walls):.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
