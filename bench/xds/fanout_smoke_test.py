#!/usr/bin/python3
"""xds_fanout --client native at small scale against a real `podlb control-plane` process.

Checks the figures the harness writes with --json, not only its exit code: no stream ever saw an
older endpoint set after a newer one, none decoded wrong content, none failed, every change of
both phases reached every stream watching it, and the clients decoded responses at all. First,
that bad client flags are refused with exit status 2 and a message naming them.
Usage: fanout_smoke_test.py XDS_FANOUT PODLB
"""
import json
import os
import subprocess
import sys
import tempfile


def check_flag_errors(fanout, podlb):
    """A bad --client or --client-threads is refused before anything starts, saying why."""
    for flags, message in ((["--client", "grcp"], "--client grcp: expected native or grpc"),
                           (["--client-threads", "0"], "client-threads"),
                           (["--connect-window", "x"], "--connect-window x: not a number")):
        run = subprocess.run([fanout, "--podlb", podlb] + flags, capture_output=True, text=True,
                             timeout=30)
        assert run.returncode == 2, f"{flags}: exit {run.returncode}, want 2"
        assert message in run.stderr, f"{flags}: {run.stderr!r} does not say {message!r}"


def main():
    fanout, podlb = sys.argv[1], sys.argv[2]
    check_flag_errors(fanout, podlb)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "fanout.json")
        run = subprocess.run(
            [fanout, "--podlb", podlb, "--client", "native", "--client-threads", "2",
             "--streams", "50", "--streams-per-connection", "2", "--services", "5",
             "--watch", "2", "--steady-seconds", "1", "--rate", "10", "--bursts", "2",
             "--json", out],
            capture_output=True, text=True, timeout=120)
        sys.stdout.write(run.stdout)
        sys.stderr.write(run.stderr)
        assert run.returncode == 0, f"xds_fanout exited {run.returncode}"
        with open(out) as f:
            figures = json.load(f)
    failures = []
    for key in ("regressions", "bad_content", "streams_failed", "setup_incomplete"):
        if figures[key] != 0:
            failures.append(f"{key} = {figures[key]}, want 0")
    if figures["client"] != "native" or figures["streams"] != 50 or figures["connections"] != 25:
        failures.append(f"ran {figures['client']} with {figures['streams']} streams on "
                        f"{figures['connections']} connections, want native, 50 on 25")
    phases = {p["name"]: p for p in figures["phases"]}
    if set(phases) != {"steady", "burst"}:
        failures.append(f"phases {sorted(phases)}, want burst and steady")
    for name, want in (("steady", 10), ("burst", 2)):
        p = phases.get(name, {})
        if p.get("changes") != want or p.get("incomplete") != 0:
            failures.append(f"{name}: {p.get('changes')} changes, {p.get('incomplete')} not at "
                            f"every watcher; want {want}, 0")
    # Set-up alone is 2 responses per stream (CDS + EDS); each burst reaches all 50.
    if figures["responses"] < 50 * 2 + 2 * 50:
        failures.append(f"only {figures['responses']} responses decoded")
    if failures:
        sys.exit("fanout_smoke_test: " + "; ".join(failures))
    print("fanout_smoke_test: ok")


if __name__ == "__main__":
    main()
