#!/usr/bin/env bash
# saltare developer entry point (Debian 12, run as root or with sudo for apt).
#
#   tools/dev.sh serve   install what is missing, build, serve examples/hello
#   tools/dev.sh test    install what is missing, build, run every test
#   tools/dev.sh deps    only install what is missing
#   tools/dev.sh build   only build bazel-bin/saltare
#   tools/dev.sh asan-e2e [PYTEST ARGS]   e2e tests (default tests/) on the ASan build
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
    nginx-light wrk haproxy
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

# The e2e suite against the ASan+UBSan binary ($SALTARE_ASAN_BIN, else built
# here; a no-op after `bazel test --config=asan //...`). The
# embedded CPython uses plain malloc (PYTHONMALLOC=malloc) so LeakSanitizer
# sees every object, and unwinds with DWARF (fast_unwind_on_malloc=0: the
# static libpython3.11.a has no frame pointers) so a leak's stack reaches the
# suppressions in tools/lsan-cpython.supp and our own frames. The tests check
# each server's output for sanitizer reports (tests/e2e/conftest.py).
asan_e2e() {
    local bin=${SALTARE_ASAN_BIN:-}
    if [ -z "$bin" ]; then
        bazel build --noshow_progress --config=asan //:saltare
        bin="$(bazel info --config=asan bazel-bin 2>/dev/null)/saltare"
    fi
    SALTARE_BIN="$bin" PYTHONMALLOC=malloc \
        ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0:abort_on_error=0 \
        LSAN_OPTIONS="suppressions=$ROOT/tools/lsan-cpython.supp:print_suppressions=0" \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "$PY" -m pytest -q -p no:cacheprovider "${@:-tests/}"
}

# The non-ASan e2e runs: the whole suite on uvloop, then on asyncio the
# files whose behaviour goes through the event loop. Left out of the asyncio
# run: what the C core answers alone or what the loop does not touch
# (command line, access log, malformed requests, listeners, systemd, PROXY
# and forwarding, TLS, intercept routes, log forging, the uvicorn
# differential test). Any new test file joins both runs unless listed here.
e2e() {
    local tmp=$1 bin=$2
    echo "== pytest end-to-end (tests/), uvloop" >&2
    SALTARE_BIN="$bin" SALTARE_E2E_LOOP=uvloop \
        "$PY" -m pytest -q -p no:cacheprovider --basetemp="$tmp/uvloop" tests/ || return 1
    echo "== pytest end-to-end (tests/), asyncio (loop-dependent files)" >&2
    SALTARE_E2E_LOOP=asyncio SALTARE_BIN="$bin" \
        "$PY" -m pytest -q -p no:cacheprovider --basetemp="$tmp/asyncio" \
        --ignore=tests/e2e/test_cli.py --ignore=tests/e2e/test_access_log.py \
        --ignore=tests/e2e/test_http_errors.py --ignore=tests/e2e/test_listeners.py \
        --ignore=tests/e2e/test_systemd.py --ignore=tests/e2e/test_proxy.py \
        --ignore=tests/e2e/test_haproxy.py \
        --ignore=tests/e2e/test_tls.py --ignore=tests/e2e/test_routes.py \
        --ignore=tests/e2e/test_logging.py --ignore=tests/compat tests/ || return 1
}

# The background ASan lane: its pid (a session leader) and scratch directory.
LANE_PID=""
LANE_TMP=""

# Stops the ASan lane if it still runs (the whole session: pytest and its
# servers) and removes the scratch directory; the EXIT trap, so that a
# failure or Ctrl-C in the other lane leaves nothing behind.
stop_lane() {
    if [ -n "$LANE_PID" ]; then
        kill -TERM -- "-$LANE_PID" 2>/dev/null || true
        wait "$LANE_PID" 2>/dev/null || true
        LANE_PID=""
    fi
    [ -z "$LANE_TMP" ] || rm -rf "$LANE_TMP"
}

# Seconds each fuzz target runs in the smoke step (tools/fuzz.sh smoke); the
# seed replay (bazel test //fuzz:all) runs every committed seed besides.
FUZZ_SMOKE_SECONDS=${FUZZ_SMOKE_SECONDS:-10}

# ASan e2e files run in this shell after the fuzz smoke rather than in the
# background lane, so that both lanes end at about the same time.
ASAN_LATE=(tests/e2e/test_tls.py tests/e2e/test_proxy.py tests/e2e/test_cli.py)

# Under 15 minutes on a 2-core machine, leaving room for more tests: the
# builds and GoogleTest run first (bazel uses both cores); then two lanes run
# side by side: most of the ASan e2e subset in the background (its output is
# shown when it ends) and, in this shell, the plain e2e runs, the fuzz smoke
# and the rest of the ASan subset (ASAN_LATE).
run_tests() {
    local t0=$SECONDS t t_asan tmp asan_rc=0
    echo "== GoogleTest (bazel test //...)" >&2
    t=$SECONDS
    bazel test --noshow_progress //...
    echo "   (GoogleTest: $((SECONDS - t)) s)" >&2
    echo "== GoogleTest under ASan+UBSan (bazel test --config=asan //...)" >&2
    t=$SECONDS
    bazel test --noshow_progress --config=asan //...
    echo "   (GoogleTest under ASan: $((SECONDS - t)) s)" >&2
    # //tests:config_test (above) also fails when docs/config.md is stale.
    # Both binaries are built now (//:saltare is part of //...). Their real
    # paths, not the bazel-bin symlink, which follows the last build's config.
    local bin asan_bin
    build
    bin="$(bazel info bazel-bin 2>/dev/null)/saltare"
    bazel build --noshow_progress --config=asan //:saltare
    asan_bin="$(bazel info --config=asan bazel-bin 2>/dev/null)/saltare"
    tmp=$(mktemp -d)
    LANE_TMP=$tmp
    trap stop_lane EXIT
    # A representative subset under ASan: with DWARF unwinding every server
    # start costs seconds. Left out: test_fastapi.py (FastAPI's import takes
    # ~10 s per server; its routes use the same C paths as the raw ASGI apps),
    # test_lifecycle.py (signals and worker supervision: mostly waiting),
    # test_threads.py (FastAPI again, 1,000 requests through its thread pool)
    # and tests/compat (FastAPI and uvicorn side by side). Any new test file
    # joins this run unless it is listed here.
    echo "== pytest end-to-end under ASan+UBSan (all but fastapi, lifecycle, threads," \
        "compat), in the background" >&2
    SALTARE_ASAN_BIN="$asan_bin" setsid "$ROOT/tools/dev.sh" asan-e2e --basetemp="$tmp/asan" \
        --ignore=tests/e2e/test_fastapi.py --ignore=tests/e2e/test_lifecycle.py \
        --ignore=tests/e2e/test_threads.py --ignore=tests/compat --durations=10 \
        "${ASAN_LATE[@]/#/--ignore=}" tests/ >"$tmp/asan.log" 2>&1 &
    LANE_PID=$!
    t_asan=$SECONDS
    t=$SECONDS
    e2e "$tmp" "$bin" || return 1
    echo "   (e2e, uvloop + asyncio: $((SECONDS - t)) s)" >&2
    t=$SECONDS
    echo "== fuzz smoke (${FUZZ_SMOKE_SECONDS} s per target)" >&2
    tools/fuzz.sh smoke "$FUZZ_SMOKE_SECONDS" || return 1
    echo "   (fuzz smoke: $((SECONDS - t)) s)" >&2
    t=$SECONDS
    echo "== pytest end-to-end under ASan+UBSan: ${ASAN_LATE[*]}" >&2
    SALTARE_ASAN_BIN="$asan_bin" asan_e2e --basetemp="$tmp/asan-late" "${ASAN_LATE[@]}" ||
        return 1
    echo "   (ASan e2e, this lane: $((SECONDS - t)) s)" >&2
    echo "== waiting for the ASan e2e run (started $((SECONDS - t_asan)) s ago)" >&2
    wait "$LANE_PID" || asan_rc=$?
    LANE_PID=""
    echo "== pytest end-to-end under ASan+UBSan: its output" >&2
    cat "$tmp/asan.log" >&2
    echo "   (ASan e2e, background lane: $((SECONDS - t_asan)) s)" >&2
    if [ "$asan_rc" -ne 0 ]; then
        echo "== ASan e2e FAILED (exit $asan_rc)" >&2
        return 1
    fi
    echo "== all tests passed in $((SECONDS - t0)) s" >&2
}

case "${1:-}" in
deps) deps ;;
build) deps && build ;;
serve) deps && serve ;;
test) deps && run_tests ;;
asan-e2e) shift && asan_e2e "$@" ;;
*)
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
