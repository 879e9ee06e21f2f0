#!/usr/bin/env bash
# Builds and runs libFuzzer targets with clang (outside Bazel), under ASan+UBSan.
#
#   tools/fuzz.sh TARGET [SECONDS] [LIBFUZZER FLAGS...]   a long run (default 60 s)
#   tools/fuzz.sh smoke [SECONDS]                          every target (default 30 s each)
#
# A long run keeps its state in fuzz/out/TARGET/: the binary, the growing corpus
# (seeded from the target's seeds), logs and any crash-* / leak-* / timeout-*
# reproducer. Reproduce one with fuzz/out/TARGET/TARGET_fuzz fuzz/out/TARGET/crash-...
# (or, built by Bazel with gcc: bazel-bin/fuzz/TARGET_replay FILE).
#
# smoke (CI, tools/dev.sh test) runs every fuzz/*_fuzz.c for SECONDS from its
# committed seeds only, in fuzz/out/smoke/, and fails on the first finding.
#
# To add a target NAME: write fuzz/NAME_fuzz.c, add NAME to FUZZERS in
# fuzz/BUILD.bazel (the seed replay test) and a case below that sets srcs,
# libs, seeds (directories whose files become the first corpus) and
# optionally dict. smoke picks it up by itself, and fails while it has no case.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# Sets srcs, libs, seeds and dict for target $1; returns 1 for an unknown one.
configure() {
    dict=""
    case "$1" in
    config)
        srcs=(config/*.c base/log.c fuzz/config_fuzz.c)
        libs=(-lyaml)
        seeds=(tests/config)
        dict=fuzz/config.dict
        ;;
    h1)
        srcs=(server/h1.c fuzz/h1_fuzz.c)
        libs=()
        seeds=(fuzz/corpus/h1)
        dict=fuzz/h1.dict
        ;;
    route)
        srcs=(server/route_path.c fuzz/route_fuzz.c)
        libs=()
        seeds=(fuzz/corpus/route)
        ;;
    ws)
        srcs=(server/ws.c fuzz/ws_fuzz.c)
        libs=()
        seeds=(fuzz/corpus/ws)
        dict=fuzz/ws.dict
        ;;
    ws_deflate)
        srcs=(server/ws_deflate.c fuzz/ws_deflate_fuzz.c)
        libs=(-l:libz.a)
        seeds=(fuzz/corpus/ws_deflate)
        ;;
    proxy)
        srcs=(server/proxy.c server/cidr.c server/h1.c fuzz/proxy_fuzz.c)
        libs=()
        seeds=(fuzz/corpus/proxy)
        ;;
    listen)
        srcs=(server/listen.c base/log.c fuzz/listen_fuzz.c)
        libs=()
        seeds=(fuzz/corpus/listen)
        ;;
    *) return 1 ;;
    esac
}

usage() {
    sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2
    echo "targets: $(targets | tr '\n' ' ')" >&2
    exit 2
}

# Every fuzz target in the tree, one name a line.
targets() {
    for f in fuzz/*_fuzz.c; do
        f=${f#fuzz/}
        echo "${f%_fuzz.c}"
    done
}

# build TARGET OUTDIR: the libFuzzer binary OUTDIR/TARGET_fuzz and a corpus
# directory OUTDIR/corpus holding at least the seeds.
build() {
    local out=$2
    mkdir -p "$out/corpus"
    clang -g -O1 -std=c11 -D_GNU_SOURCE -I. \
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
        "${srcs[@]}" "${libs[@]}" -o "$out/$1_fuzz"
    for dir in "${seeds[@]}"; do
        find "$dir" -type f ! -name '*.md' -exec cp -n {} "$out/corpus/" \;
    done
}

smoke() {
    local seconds=${1:-30} t out
    for t in $(targets); do
        configure "$t" || {
            echo "fuzz/${t}_fuzz.c has no case in tools/fuzz.sh" >&2
            exit 2
        }
        out=$root/fuzz/out/smoke/$t
        rm -rf "$out"
        build "$t" "$out"
        echo "fuzz smoke: $t for ${seconds}s" >&2
        local args=(-max_total_time="$seconds" -artifact_prefix="$out/" -print_final_stats=1)
        [ -n "$dict" ] && args+=(-dict="$root/$dict")
        # Fresh corpus each run: the smoke test starts from the committed seeds.
        if ! (cd "$out" && "./${t}_fuzz" "${args[@]}" corpus >"$out/fuzz.log" 2>&1); then
            tail -n 60 "$out/fuzz.log" >&2
            echo "fuzz smoke: $t FAILED; reproducer and log in $out/" >&2
            exit 1
        fi
        grep -E '^stat::number_of_executed_units' "$out/fuzz.log" >&2 || true
    done
}

target=${1:-}
case "$target" in
smoke)
    smoke "${2:-30}"
    exit 0
    ;;
"" | -h | --help) usage ;;
esac
configure "$target" || usage
seconds=${2:-60}
shift $(($# < 2 ? $# : 2))

out=$root/fuzz/out/$target
build "$target" "$out"
args=(-max_total_time="$seconds" -jobs=1 -workers=1 -artifact_prefix="$out/"
    -print_final_stats=1)
[ -n "$dict" ] && args+=(-dict="$root/$dict")
echo "fuzzing $target for ${seconds}s (log: $out/fuzz-0.log)" >&2
cd "$out" # -jobs writes fuzz-N.log into the working directory
exec "./${target}_fuzz" "${args[@]}" "$@" "$out/corpus"
