#!/usr/bin/env bash
# Renders the /debug/pprof/ index page of a running demo-service in headless
# Chromium (Debian's `chromium`), checks the rendered page has the profile
# links, and leaves a screenshot to look at. Not part of the test suite: it
# needs a browser, which CI does not install.
#
#   ./scripts/index-screenshot.sh [out.png]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/index.png}"

if ! command -v chromium >/dev/null 2>&1; then
    echo "installing chromium"
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi

cargo build --quiet -p hotprof-examples --bin demo-service
work="$(mktemp -d)"
HOTPROF_HTTP=127.0.0.1:0 HOTPROF_DIR="$work/dumps" ./target/debug/demo-service --exit-after 60 >"$work/out" 2>"$work/err" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do grep -q "debug HTTP server on" "$work/err" && break; sleep 0.1; done
url="$(grep -o 'http://[0-9.:]*/debug/pprof/' "$work/err" | head -n 1)"

flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
       --disable-background-networking --disable-component-update --disable-sync
       --user-data-dir="$work/profile")
chromium "${flags[@]}" --dump-dom "$url" >"$work/dom.html" 2>/dev/null
for name in cmdline flamegraph goroutine profile scopes symbol; do
    grep -q "href=['\"]$name" "$work/dom.html" || { echo "index lacks a link to $name"; exit 1; }
done
grep -q "goroutine?debug=2" "$work/dom.html" || { echo "index lacks the full dump link"; exit 1; }
chromium "${flags[@]}" --window-size=1000,900 --screenshot="$PWD/$out" "$url" 2>/dev/null
test -s "$out"
echo "index at $url rendered with all profile links; screenshot: $out"
