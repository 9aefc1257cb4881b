#!/usr/bin/env bash
# The main job: start the demo service under hotprof, send it SIGUSR1, and
# show where the thread dump went and how it begins. The service keeps running
# until the end of the demo. Then logical stacks of marked functions, and the
# Go-compatible /debug/pprof server of a service that asked for it in its
# #[hotprof::main(http = ...)].
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet -p hotprof-examples --bin demo-service --bin scoped-service --bin web-service
dir="$(mktemp -d "${TMPDIR:-/tmp}/hotprof-demo.XXXXXX")"
log="$dir/service.log"
HOTPROF_DIR="$dir/dumps" ./target/debug/demo-service --exit-after 30 >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT

for _ in $(seq 100); do grep -q "demo-service: ready" "$log" && break; sleep 0.1; done
grep "hotprof: ready" "$log"

echo "+ kill -USR1 $pid"
kill -USR1 "$pid"
for _ in $(seq 100); do grep -q "thread dump written to" "$log" && break; sleep 0.1; done
grep "thread dump written to" "$log"

dump="$(ls "$dir"/dumps/*-threads.txt | head -n 1)"
echo
echo "== first lines of $dump =="
head -n 11 "$dump"
echo "..."
grep -A 12 '"sleeper"' "$dump"
echo "..."
echo
kill -0 "$pid" && echo "demo-service (pid $pid) is still running after the dump."

# Scoped samplers: functions marked #[hotprof::profile] show up as logical
# stacks, including tokio tasks parked at an .await.
kill "$pid" 2>/dev/null || true
slog="$dir/scoped.log"
HOTPROF_DIR="$dir/scoped" ./target/debug/scoped-service --workers 2 --tasks 20 --exit-after 30 >"$slog" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q "scoped-service: ready" "$slog" && break; sleep 0.1; done
sleep 0.5
echo
echo "+ kill -USR1 $pid   (scoped-service: 2 worker threads, 20 parked tasks)"
kill -USR1 "$pid"
for _ in $(seq 100); do grep -q "scope profile written to" "$slog" && break; sleep 0.1; done
sdump="$(ls "$dir"/scoped/*-threads.txt | head -n 1)"
sed -n '/^logical stacks:/,/^each/p' "$sdump"
grep "scope profile written to" "$slog"

# The debug HTTP server: web-service has #[hotprof::main(http = "127.0.0.1:0")].
# Fetched with bash's /dev/tcp so the demo needs no HTTP client.
kill "$pid" 2>/dev/null || true
wlog="$dir/web.log"
HOTPROF_DIR="$dir/web" ./target/debug/web-service >"$wlog" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q "web-service: app on" "$wlog" && break; sleep 0.1; done
grep "debug HTTP server on" "$wlog"
addr="$(grep -o 'debug HTTP server on http://[0-9.]*:[0-9]*' "$wlog" | sed 's|.*http://||')"
http_get() {
    exec 3<>"/dev/tcp/${addr%:*}/${addr##*:}"
    printf 'GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$1" "$addr" >&3
    cat <&3
    exec 3<&-
}
echo
echo "+ GET http://$addr/debug/pprof/goroutine?debug=1   (Go's format: go tool pprof, Parca and Alloy read it)"
http_get "/debug/pprof/goroutine?debug=1" | tr -d '\r' >"$dir/goroutine.txt"
grep "^goroutine profile" "$dir/goroutine.txt"
# One line per group: its thread count and name (the full text lists every frame).
awk '/^[0-9]+ @/ { n = $1 }
     /^# labels/ { name = $0; sub(/.*"thread_name":"/, "", name); sub(/"}$/, "", name); print "  " n " x " name }' \
    "$dir/goroutine.txt"
echo "(go tool pprof http://$addr/debug/pprof/profile?seconds=10 takes a CPU profile the same way)"
