#!/usr/bin/env bash
# saltare developer entry point (Debian 12, run as root or with sudo for apt).
#
#   tools/dev.sh serve   install what is missing, build, serve examples/hello
#   tools/dev.sh test    install what is missing, build, run every test
#   tools/dev.sh deps    only install what is missing
#   tools/dev.sh build   only build bazel-bin/saltare
#
# Every step is idempotent; package installation is silent when nothing is
# missing. Python is always Debian's /usr/bin/python3, never a PATH python.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
PY=/usr/bin/python3

# Build + runtime + test dependencies, all Debian packages.
PACKAGES=(
    bazel-bootstrap gcc g++ libc6-dev
    libyaml-dev libssl-dev openssl python3-dev libexpat1-dev zlib1g-dev libgtest-dev
    python3-pytest python3-httpx python3-fastapi python3-uvicorn python3-uvloop
    python3-httptools python3-websockets python3-multipart testssl.sh media-types
    clang libclang-rt-14-dev valgrind
    nginx-light wrk
    prometheus python3-prometheus-client
)

deps() {
    local missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing: ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq >/dev/null
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

build() {
    bazel build --noshow_progress //:saltare
}

serve() {
    build
    echo "serving examples/hello at http://127.0.0.1:8000/ (Ctrl-C stops)" >&2
    exec "$ROOT/bazel-bin/saltare" -c "$ROOT/examples/hello/saltare.yaml"
}

# The e2e suite against the ASan+UBSan binary. The embedded CPython uses
# plain malloc (PYTHONMALLOC=malloc) so LeakSanitizer sees every object, and
# unwinds with DWARF (fast_unwind_on_malloc=0: the static libpython3.11.a has
# no frame pointers) so a leak's stack reaches the suppressions in
# tools/lsan-cpython.supp and our own frames. The tests check each server's
# output for sanitizer reports (tests/e2e/conftest.py).
asan_e2e() {
    bazel build --noshow_progress --config=asan //:saltare
    local bin
    bin="$(bazel info --config=asan bazel-bin 2>/dev/null)/saltare"
    SALTARE_BIN="$bin" PYTHONMALLOC=malloc \
        ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0:abort_on_error=0 \
        LSAN_OPTIONS="suppressions=$ROOT/tools/lsan-cpython.supp:print_suppressions=0" \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "$PY" -m pytest -q -p no:cacheprovider "$@" tests/
}

# Seconds each fuzz target runs in the smoke step (tools/fuzz.sh smoke).
FUZZ_SMOKE_SECONDS=${FUZZ_SMOKE_SECONDS:-20}

run_tests() {
    local t0=$SECONDS t
    echo "== GoogleTest (bazel test //...)" >&2
    bazel test --noshow_progress //...
    echo "== GoogleTest under ASan+UBSan (bazel test --config=asan //...)" >&2
    bazel test --noshow_progress --config=asan //...
    # //tests:config_test (above) also fails when docs/config.md is stale.
    build
    echo "== pytest end-to-end (tests/), uvloop" >&2
    SALTARE_BIN="$ROOT/bazel-bin/saltare" SALTARE_E2E_LOOP=uvloop \
        "$PY" -m pytest -q -p no:cacheprovider tests/
    echo "== pytest end-to-end (tests/), asyncio" >&2
    SALTARE_BIN="$ROOT/bazel-bin/saltare" SALTARE_E2E_LOOP=asyncio \
        "$PY" -m pytest -q -p no:cacheprovider tests/
    # A representative subset, to keep this script well under 15 minutes on
    # a 2-core machine: under ASan with DWARF unwinding every server start
    # costs seconds. Left out: test_fastapi.py (FastAPI's import takes ~10 s
    # per server; its routes use the same C paths as the raw ASGI apps),
    # test_lifecycle.py (signals and worker supervision: mostly waiting),
    # test_threads.py (FastAPI again, 1,000 requests through its thread pool)
    # and tests/compat (FastAPI and uvicorn side by side). Any
    # new test file joins this run unless it is listed here.
    echo "== pytest end-to-end under ASan+UBSan (all but fastapi, lifecycle, threads, compat)" >&2
    t=$SECONDS
    asan_e2e --ignore=tests/e2e/test_fastapi.py --ignore=tests/e2e/test_lifecycle.py \
        --ignore=tests/e2e/test_threads.py --ignore=tests/compat
    echo "   (ASan e2e: $((SECONDS - t)) s)" >&2
    echo "== fuzz smoke (${FUZZ_SMOKE_SECONDS} s per target)" >&2
    tools/fuzz.sh smoke "$FUZZ_SMOKE_SECONDS"
    echo "== all tests passed in $((SECONDS - t0)) s" >&2
}

case "${1:-}" in
deps) deps ;;
build) deps && build ;;
serve) deps && serve ;;
test) deps && run_tests ;;
*)
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
