#!/usr/bin/env bash
# Builds and runs a libFuzzer target with clang (outside Bazel), under ASan+UBSan.
#
#   tools/fuzz.sh TARGET [SECONDS] [LIBFUZZER FLAGS...]
#
# TARGET is one of the cases below (config, h1, ...). Output lives in fuzz/out/TARGET/:
# the binary, the growing corpus (seeded from the target's test cases), logs and any
# crash-* / leak-* / timeout-* reproducer. Reproduce one with
#   fuzz/out/TARGET/TARGET_fuzz fuzz/out/TARGET/crash-...
# To add a target: add a case that sets srcs, libs, seeds (directories whose files
# become the first corpus) and optionally dict.
set -euo pipefail
cd "$(dirname "$0")/.."

target=${1:-}
seconds=${2:-60}
shift $(($# < 2 ? $# : 2))

dict=""
case "$target" in
config)
    srcs=(config/*.c fuzz/config_fuzz.c)
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
*)
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
    echo "targets: config h1" >&2
    exit 2
    ;;
esac

root=$PWD
out=$root/fuzz/out/$target
bin=$out/${target}_fuzz
mkdir -p "$out/corpus"
clang -g -O1 -std=c11 -D_GNU_SOURCE -I. \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    "${srcs[@]}" "${libs[@]}" -o "$bin"
for dir in "${seeds[@]}"; do
    find "$dir" -type f ! -name '*.md' -exec cp -n {} "$out/corpus/" \;
done
args=(-max_total_time="$seconds" -jobs=1 -workers=1 -artifact_prefix="$out/"
    -print_final_stats=1)
[ -n "$dict" ] && args+=(-dict="$root/$dict")
echo "fuzzing $target for ${seconds}s (log: $out/fuzz-0.log)" >&2
cd "$out" # -jobs writes fuzz-N.log into the working directory
exec "$bin" "${args[@]}" "$@" "$out/corpus"
