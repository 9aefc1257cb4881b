#!/usr/bin/env bash
# Runs every test. Installs what the tests need when it is missing: gdb (our
# thread list is checked against gdb's), Go (`go tool pprof` reads our
# profiles the way users do) and chromium (examples/tests/browser.rs renders
# the /debug/pprof/ page in it headless, follows its links and keeps a
# screenshot at target/index.png) and binutils (a stripped copy of the demo
# is checked against the unstripped one with strip, readelf and addr2line)
# and linux-perf (CPU profiles are checked against perf's), and make and a C
# compiler (jemalloc is built from source for the jemalloc example).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v gdb >/dev/null 2>&1 || missing+=(gdb)
command -v go >/dev/null 2>&1 || missing+=(golang-go)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v strip >/dev/null 2>&1 && command -v addr2line >/dev/null 2>&1 || missing+=(binutils)
command -v perf >/dev/null 2>&1 || missing+=(linux-perf)
# jemalloc-service builds jemalloc from its C sources (feature `jemalloc`).
command -v make >/dev/null 2>&1 && command -v cc >/dev/null 2>&1 || missing+=(make gcc)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing ${missing[*]} (needed by the tests)"
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The commit every hotprof file records (the metadata tests check it).
HOTPROF_GIT_COMMIT="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
export HOTPROF_GIT_COMMIT

# A clean build never reuses incremental state; writing it only costs disk
# (a clean run's target folder is about 6 GB without it).
export CARGO_INCREMENTAL=0
echo "disk free before the tests: $(df -h --output=avail . | tail -1 | tr -d ' ')"

cargo test --workspace "$@"
