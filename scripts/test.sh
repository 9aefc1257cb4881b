#!/usr/bin/env bash
# Runs every test. Installs what the tests need when it is missing (gdb, to
# check our thread list against gdb's).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v gdb >/dev/null 2>&1; then
    echo "installing gdb (the thread-list test compares against it)"
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq gdb >/dev/null
fi

cargo test --workspace "$@"
