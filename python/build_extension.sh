#!/usr/bin/env bash
# Builds the extension `flightpickle._native` into a venv (maturin develop,
# release), profile-guided unless PGO=0:
#
#   python/build_extension.sh VENV TARGET_DIR
#
# A profile-guided build compiles the extension once instrumented, runs
# benchmarks.profile_workload with it, and compiles it again with the counts:
# hot paths of the pickler are laid out together and inlined where they are
# called, which the loads' and dumps' wall clock depend on more than on their
# instruction counts (benchmarks/README.md, "A profile-guided build").
# Only the extension's own crate is instrumented (the flags go to its rustc
# alone), so its dependencies are built once and shared with plain builds.
#
# The counts are read by the llvm-profdata of rustc's own LLVM, from rustup's
# component llvm-tools, which this script adds when it is missing. Where it
# cannot be had, the build says so and is a plain release build; the module's
# PROFILE_GUIDED tells which one was made, and the benchmarks print it.
set -euo pipefail

venv=$(cd "$1" && pwd)
target_dir=$(mkdir -p "$2" && cd "$2" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
python="$venv/bin/python"
export VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH"

develop() {
    (cd "$here" && maturin develop --release --quiet --target-dir "$target_dir" -- "$@")
}

llvm_profdata() {
    local sysroot host tool
    sysroot=$(rustc --print sysroot)
    host=$(rustc -vV | sed -n 's/^host: //p')
    tool="$sysroot/lib/rustlib/$host/bin/llvm-profdata"
    if [[ ! -x "$tool" ]] && command -v rustup > /dev/null; then
        timeout 300 rustup component add llvm-tools > /dev/null 2>&1 || true
    fi
    [[ -x "$tool" ]] && echo "$tool"
}

if [[ "${PGO:-1}" == 0 ]]; then
    develop
    exit 0
fi
if ! profdata=$(llvm_profdata); then
    echo "build_extension: no llvm-profdata for this rustc (rustup component add llvm-tools);" \
        "building without a profile, so the benchmarks will read slower than they should" >&2
    develop
    exit 0
fi

profiles="$target_dir/pgo-profiles"
rm -rf "$profiles" "$profiles.profdata"
develop "-Cprofile-generate=$profiles"
(cd "$here/.." && "$python" -m benchmarks.profile_workload)
"$profdata" merge -o "$profiles.profdata" "$profiles"
develop "-Cprofile-use=$profiles.profdata" --cfg flightpickle_profile_guided
