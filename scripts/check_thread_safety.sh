#!/usr/bin/env bash
# Checks the ABSL_GUARDED_BY / ABSL_EXCLUSIVE_LOCKS_REQUIRED / ABSL_ACQUIRED_AFTER ...
# annotations with clang's -Wthread-safety (GCC ignores them). Syntax-only: nothing is compiled or
# linked, so it reuses a configured build dir (its compile_commands.json for the include paths and
# definitions, its gen/ for the protobuf headers) and costs about one parse of every file.
#
#   scripts/check_thread_safety.sh [BUILD_DIR]      (default: build; `make check-thread-safety`)
#
# Checks every .cc under src/ and tests/support/, and the tests that lock (they or a helper header
# of theirs use absl::Mutex); headers through the files that include them.
# Exit status: 0 when clang finds nothing, 1 on any finding, 2 when it cannot run.
#
# Speed: the third-party headers (standard library, abseil, fmt, spdlog, nlohmann, grpc++,
# protobuf) go into one precompiled header per distinct set of flags, built with
# -fpch-instantiate-templates; that cuts the parse of a typical file from 2-5 s to 0.5-2 s.
# Only third-party headers are precompiled, so every line of podlb is analysed in each file that
# includes it. THREAD_SAFETY_PCH=0 checks without it (to compare).
set -euo pipefail
cd "$(dirname "$0")/.."
SOURCE_DIR=$PWD
BUILD_DIR=${1:-build}
CLANGXX=${CLANGXX:-clang++}
JOBS=${JOBS:-2}
USE_PCH=${THREAD_SAFETY_PCH:-1}

if [[ ! -f $BUILD_DIR/compile_commands.json ]]; then
  echo "check-thread-safety: no $BUILD_DIR/compile_commands.json: configure first (make configure)" >&2
  exit 2
fi
command -v "$CLANGXX" >/dev/null || {
  echo "check-thread-safety: $CLANGXX not found: apt-get install clang" >&2
  exit 2
}

# The generated protobuf headers, without compiling anything else (a no-op after a full build).
if [[ -f $BUILD_DIR/build.ninja ]]; then
  mapfile -t protos < <(ninja -C "$BUILD_DIR" -t targets all | grep -o '^[^:]*\.pb\.h' | sort -u)
  ((${#protos[@]} == 0)) || ninja -C "$BUILD_DIR" -j "$JOBS" "${protos[@]}" >/dev/null
fi

WORK=$(cd "$BUILD_DIR" && pwd)/thread-safety
rm -rf "$WORK"
mkdir -p "$WORK"

# The build's own list of third-party headers (cmake/pch/third_party.h) plus the whole standard
# library; the build's precompiled header itself is GCC's and clang cannot read it.
cat >"$WORK/pch.h" <<EOF
// Third-party headers only (see scripts/check_thread_safety.sh).
#include <bits/stdc++.h>
#include "$SOURCE_DIR/cmake/pch/third_party.h"
#ifdef GTEST_HAS_PTHREAD  // the tests' flags
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#endif
EOF

# One clang response file per translation unit (NNNN.rsp): the real command minus the compiler,
# the output, optimisation, debug info and warning flags, plus -fsyntax-only and the
# thread-safety warnings. Files with the same flags share a precompiled header (gN.rsp).
python3 - "$SOURCE_DIR" "$BUILD_DIR/compile_commands.json" "$WORK" <<'EOF'
import json, os, re, shlex, sys

source_dir, db_path, work = sys.argv[1:]
src_dirs = [os.path.join(source_dir, d) + os.sep for d in ("src", "tests/support")]
tests_dir = os.path.join(source_dir, "tests") + os.sep
include_re = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)

def local_includes(path):
    """The headers under tests/ that `path` includes directly."""
    try:
        text = open(path).read()
    except OSError:
        return "", []
    out = []
    for inc in include_re.findall(text):
        for base in (os.path.dirname(path), tests_dir):
            h = os.path.normpath(os.path.join(base, inc))
            if h.startswith(tests_dir) and os.path.isfile(h):
                out.append(h)
                break
    return text, out

def closure(paths):
    seen, todo = set(), list(paths)
    while todo:
        p = todo.pop()
        if p not in seen:
            seen.add(p)
            todo += local_includes(p)[1]
    return seen

# Headers the checked tests/support files already bring in.
covered = closure(os.path.join(source_dir, "tests/support", f)
                  for f in os.listdir(os.path.join(source_dir, "tests/support")) if f.endswith(".cc"))

def wanted(f):
    if any(f.startswith(d) for d in src_dirs):
        return True
    # Another test only if it, or a helper header of tests/ nothing above checks, locks: the
    # rest has nothing to check and would double the time.
    if not f.startswith(tests_dir):
        return False
    return any("absl::Mutex" in local_includes(p)[0] for p in closure([f]) - covered)

# -Wthread-safety-beta adds the lock-order checks (ABSL_ACQUIRED_AFTER/BEFORE), which plain
# -Wthread-safety ignores in clang 14.
checks = ["-Wno-everything", "-Wthread-safety", "-Wthread-safety-beta", "-Werror=thread-safety"]
groups = {}
n = 0
seen = set()
for e in json.load(open(db_path)):
    f = os.path.normpath(os.path.join(e["directory"], e["file"]))
    if not f.endswith(".cc") or f in seen or not wanted(f):
        continue
    seen.add(f)
    argv = e["arguments"] if "arguments" in e else shlex.split(e["command"])
    args, skip = [], False
    for a in argv[1:]:
        if skip:
            skip = False
            continue
        if a in ("-o", "-MF", "-MT", "-MQ"):
            skip = True
            continue
        # The build's GCC precompiled header (cmake/podlb_pch.cmake): clang uses its own.
        if a == "-include":
            skip = True
            continue
        if a in ("-c", "-g", "-MD", "-MMD", e["file"], f) or a.startswith(("-W", "-O", "-fsanitize", "-w")):
            continue
        args.append(a)
    key = tuple(args)
    if key not in groups:
        groups[key] = len(groups)
        g = os.path.join(work, f"g{groups[key]}")
        with open(g + ".rsp", "w") as rsp:
            rsp.write(" ".join(shlex.quote(a) for a in args + checks + [
                "-fpch-instantiate-templates", "-x", "c++-header", os.path.join(work, "pch.h"),
                "-o", g + ".pch"]) + "\n")
        with open(g + ".dir", "w") as d:
            d.write(e["directory"] + "\n" + f"precompiled header {groups[key]}" + "\n")
    n += 1
    base = os.path.join(work, f"{n:04d}")
    with open(base + ".rsp", "w") as rsp:
        rsp.write(" ".join(shlex.quote(a) for a in args + checks + ["-fsyntax-only", f]) + "\n")
    with open(base + ".dir", "w") as d:
        d.write(e["directory"] + "\n" + os.path.relpath(f, source_dir) + "\n")
    with open(base + ".group", "w") as g:
        g.write(f"g{groups[key]}\n")
if n == 0:
    sys.exit("check-thread-safety: no file of src/ or tests/ in " + db_path)
EOF

# Runs clang on one response file: its log goes to NNNN.log, a failure leaves NNNN.failed.
# With a precompiled header for its group (gN.pch, when that built), a file uses it.
run_one='
  rsp=$1 base=${1%.rsp} pch=()
  { read -r dir; read -r what; } <"$base.dir"
  if [[ -f $base.group ]]; then
    g=$(<"$base.group")
    [[ -f $WORK/$g.pch ]] && pch=(-include-pch "$WORK/$g.pch")
  fi
  (cd "$dir" && "$CLANGXX" @"$rsp" "${pch[@]}") >"$base.log" 2>&1 || echo "$what" >"$base.failed"
'
export CLANGXX WORK
count=$(find "$WORK" -name '[0-9]*.rsp' | wc -l)
echo "check-thread-safety: clang -Wthread-safety over $count files of src/ and tests/ ($JOBS jobs)"
start=$SECONDS
if [[ $USE_PCH != 0 ]]; then
  find "$WORK" -name 'g*.rsp' | sort | xargs -r -P "$JOBS" -n 1 bash -c "$run_one" _
  for f in "$WORK"/g*.failed; do
    [[ -e $f ]] || continue
    echo "check-thread-safety: note: $(cat "$f") did not build; its files are checked without it:"
    head -5 "${f%.failed}.log"
    rm -f "$f"
  done
fi
find "$WORK" -name '[0-9]*.rsp' | sort | xargs -r -P "$JOBS" -n 1 bash -c "$run_one" _
elapsed=$((SECONDS - start))

failed=()
for f in "$WORK"/[0-9]*.failed; do
  [[ -e $f ]] && failed+=("$(cat "$f")")
done
if ((${#failed[@]} == 0)); then
  echo "check-thread-safety: OK, no findings in $count files (${elapsed}s)"
  exit 0
fi
for f in "$WORK"/[0-9]*.failed; do
  [[ -e $f ]] && cat "${f%.failed}.log"
done
# A finding in a header is reported by every file that includes it: count each place once.
findings=$(cat "$WORK"/[0-9]*.log | grep 'error: .*\[-Werror,-Wthread-safety' | sort -u | wc -l)
other=$(cat "$WORK"/[0-9]*.log | grep 'error:' | grep -v '\[-Werror,-Wthread-safety' | sort -u | wc -l)
echo
echo "check-thread-safety: FAILED: $findings thread-safety findings and $other other errors" \
  "(distinct places), reported by ${#failed[@]} of $count files (${elapsed}s):"
printf '  %s\n' "${failed[@]}"
echo "Fix the locking or the annotation (ABSL_GUARDED_BY, ABSL_EXCLUSIVE_LOCKS_REQUIRED, a Locked"
echo "suffix); ABSL_NO_THREAD_SAFETY_ANALYSIS only with a comment saying what clang cannot follow."
exit 1
