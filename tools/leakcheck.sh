#!/usr/bin/env bash
# Leak check: a short e2e run with every saltare process under valgrind memcheck.
#
#   tools/leakcheck.sh [PYTEST ARGS...]    default: the raw-ASGI e2e files below
#
# Fails when valgrind finds a definitely-lost block, or a memory error (invalid
# read/write, use of uninitialised memory, bad free), whose stack has a frame in
# our code (config/, server/, python/). CPython's own leftovers at exit are
# suppressed with Debian's /usr/lib/valgrind/python3.supp (package python3), and
# the interpreter runs with PYTHONMALLOC=malloc so memcheck sees every object.
# Logs: build/leakcheck/vg.PID.log, one per process.
#
# How often: before a release, and on changes to memory ownership (the
# python/ bridge's references, connection and request lifetimes). Not on every
# CI run: under valgrind the interpreter runs ~50x slower, so this short run
# takes minutes, and the ASan+LSan e2e run in tools/dev.sh test already covers
# most of the same paths on every run. What it adds: a second, independent
# leak checker over the unmodified -O2 binary that CI ships, and the
# definitely-lost Python objects that our C code forgets to release.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=/usr/bin/python3
SUPP=/usr/lib/valgrind/python3.supp

command -v valgrind >/dev/null || { echo "valgrind is missing: tools/dev.sh deps" >&2; exit 2; }
[ -r "$SUPP" ] || { echo "$SUPP is missing (Debian package python3)" >&2; exit 2; }

bazel build --noshow_progress //:saltare
out=$ROOT/build/leakcheck
rm -rf "$out"
mkdir -p "$out"
# The e2e fixtures start SALTARE_BIN: a wrapper that runs the real binary
# under valgrind. Workers are forked (no exec), so valgrind follows them.
cat >"$out/saltare" <<EOF
#!/bin/sh
exec valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite \\
    --errors-for-leak-kinds=definite --num-callers=40 --track-origins=no --fullpath-after= \\
    --suppressions=$SUPP --suppressions=$ROOT/tools/valgrind-cpython.supp --log-file=$out/vg.%p.log \\
    $ROOT/bazel-bin/saltare "\$@"
EOF
chmod +x "$out/saltare"

if [ $# -eq 0 ]; then
    set -- tests/e2e/test_http.py tests/e2e/test_errors.py tests/e2e/test_lifespan.py \
        tests/e2e/test_tasks.py tests/e2e/test_loop.py
fi
t0=$SECONDS
SALTARE_BIN="$out/saltare" SALTARE_E2E_SANITIZED=1 PYTHONMALLOC=malloc \
    "$PY" -m pytest -q -p no:cacheprovider "$@"
echo "pytest under valgrind: $((SECONDS - t0)) s, $(ls "$out"/vg.*.log | wc -l) process logs" >&2

# Each memcheck record is a paragraph in the log; keep those that are a
# definite leak or an error and have one of our source files in the stack.
"$PY" - "$out" <<'EOF'
import pathlib, re, sys

ours = re.compile(r"[(/](?:config|server|python)/\w+\.c:\d+\)")
kind = re.compile(r"definitely lost in|Invalid (?:read|write|free)|uninitialised|Mismatched free")
found, summary = [], {"definitely": 0, "errors": 0}
for log in sorted(pathlib.Path(sys.argv[1]).glob("vg.*.log")):
    text = log.read_text(errors="replace")
    for record in re.split(r"\n==\d+== \n", text):
        if kind.search(record) and ours.search(record):
            found.append(f"{log.name}:\n{record}")
    m = re.search(r"definitely lost: ([\d,]+) bytes", text)
    if m:
        summary["definitely"] += int(m.group(1).replace(",", ""))
    m = re.search(r"ERROR SUMMARY: (\d+) errors", text)
    if m:
        summary["errors"] += int(m.group(1))
print(f"all processes: {summary['definitely']} bytes definitely lost, "
      f"{summary['errors']} errors after suppressions (ours and CPython's)", file=sys.stderr)
if found:
    print("\n\n".join(found), file=sys.stderr)
    print(f"leakcheck: {len(found)} record(s) with a frame in our code", file=sys.stderr)
    sys.exit(1)
print("leakcheck: no definite leak or memory error from our code", file=sys.stderr)
EOF
