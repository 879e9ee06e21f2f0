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
    python3-httptools python3-websockets python3-multipart media-types
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

run_tests() {
    local t0=$SECONDS
    echo "== GoogleTest (bazel test //...)" >&2
    bazel test --noshow_progress //...
    echo "== GoogleTest under ASan+UBSan (bazel test --config=asan //...)" >&2
    bazel test --noshow_progress --config=asan //...
    # //tests:config_test (above) also fails when docs/config.md is stale.
    build
    echo "== pytest end-to-end (tests/)" >&2
    SALTARE_BIN="$ROOT/bazel-bin/saltare" "$PY" -m pytest -q -p no:cacheprovider tests/
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
