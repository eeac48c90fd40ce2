#!/usr/bin/env bash
# Builds one libFuzzer target with clang (-fsanitize=fuzzer,address) in
# build/fuzz and runs it on a copy of its seed corpus.
# usage: fuzz.sh <target> [seconds] [extra libFuzzer flags...]
#   targets: manifest_parser kube_object http_codec csr raw_request
# New inputs that libFuzzer finds go to build/fuzz/corpus/<target>; a crash
# leaves crash-*/leak-*/timeout-* in build/fuzz/artifacts/<target>/. Add a
# minimized crasher to tests/fuzz/corpus/<target>/ as a regression seed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${1:?usage: fuzz.sh <target> [seconds] [libFuzzer flags...]}"
seconds="${2:-60}"
shift $(($# >= 2 ? 2 : 1))

seeds="${root}/tests/fuzz/corpus/${target}"
[[ -d "${seeds}" ]] || { echo "fuzz.sh: no target ${target} (no ${seeds})" >&2; exit 2; }

export CCACHE_BASEDIR="${root}"
export CCACHE_NOHASHDIR=1
build="${root}/build/fuzz"
if [[ ! -f "${build}/build.ninja" ]]; then
  CC=clang CXX=clang++ cmake -S "${root}" -B "${build}" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DWEFT_FUZZ=ON >/dev/null
fi
# FUZZ_NO_BUILD=1 runs what is built (while another build uses the dir).
if [[ "${FUZZ_NO_BUILD:-0}" != 1 ]]; then
  cmake --build "${build}" -- -j"${FUZZ_BUILD_JOBS:-1}" "fuzz_${target}"
fi

corpus="${build}/corpus/${target}"
artifacts="${build}/artifacts/${target}"
mkdir -p "${corpus}" "${artifacts}"
exec "${build}/tests/fuzz/fuzz_${target}" -max_total_time="${seconds}" -timeout=10 -rss_limit_mb=2048 \
  -artifact_prefix="${artifacts}/" -print_final_stats=1 "$@" "${corpus}" "${seeds}"
