#!/usr/bin/env bash
# A long soak, run by hand or on a schedule (not in CI):
#
#   ./scripts/soak.sh [MINUTES]        (default 30)
#
# Runs the release demo service with malloc churn, thread churn, a busy
# thread and a heartbeat, and for MINUTES sends SIGUSR1 every 5 s, SIGUSR2
# (a 5 s CPU window) every 10 s and an HTTP request every 2 s. It reports RSS
# after a one-minute warm-up and at the end, the files written, the refusals,
# open fds and threads at both points, and the longest heartbeat gap (the
# program's own work stalling shows there). It exits non-zero when RSS grew
# by more than 16 MiB after warm-up, a file descriptor or thread leaked, the
# heartbeat stalled for more than 1 s, or the service died.
set -euo pipefail
cd "$(dirname "$0")/.."

minutes="${1:-30}"
cargo build --quiet --release -p hotprof-examples --bin demo-service
dir="$(mktemp -d "${TMPDIR:-/tmp}/hotprof-soak.XXXXXX")"
out="$dir/stdout.log"
err="$dir/stderr.log"
HOTPROF_DIR="$dir/files" HOTPROF_HTTP=127.0.0.1:0 HOTPROF_CPU_SECONDS=5 \
    HOTPROF_RATE_BURST=20 HOTPROF_RATE_REFILL=2s HOTPROF_MAX_FILES=200 \
    ./target/release/demo-service --malloc 2 --churn 2 --hot 1 --extra 50 --heartbeat >"$out" 2>"$err" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q "demo-service: ready" "$out" && break; sleep 0.1; done
port="$(grep -o 'debug HTTP server on http://127.0.0.1:[0-9]*' "$err" | grep -o '[0-9]*$')"

rss() { awk '/^VmRSS:/ {print int($2 / 1024)}' "/proc/$pid/status"; }
fds() { ls "/proc/$pid/fd" | wc -l; }
threads() { awk '/^Threads:/ {print $2}' "/proc/$pid/status"; }
http_get() {
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    printf 'GET /debug/pprof/goroutine?debug=1 HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n' >&3
    head -c 1 <&3 >/dev/null || true
    exec 3<&-
}

start=$(date +%s)
end=$((start + minutes * 60))
warm=$((start + 60))
warm_rss="" warm_fds="" warm_threads=""
tick=0
while [ "$(date +%s)" -lt "$end" ]; do
    kill -0 "$pid" 2>/dev/null || { echo "the service died"; tail -20 "$err"; exit 1; }
    [ $((tick % 5)) -eq 0 ] && kill -USR1 "$pid"
    [ $((tick % 10)) -eq 0 ] && kill -USR2 "$pid"
    [ $((tick % 2)) -eq 0 ] && http_get
    if [ -z "$warm_rss" ] && [ "$(date +%s)" -ge "$warm" ]; then
        warm_rss="$(rss)" warm_fds="$(fds)" warm_threads="$(threads)"
    fi
    sleep 1
    tick=$((tick + 1))
done
end_rss="$(rss)" end_fds="$(fds)" end_threads="$(threads)"
max_gap="$(grep -o 'max gap [0-9]*' "$out" | awk '{print $3}' | sort -n | tail -1)"

dumps="$(grep -c 'thread dump written to' "$err" || true)"
profiles="$(grep -c 'CPU profile (.* samples) written to .*pb.gz' "$err" || true)"
refused="$(grep -c 'refused' "$err" || true)"
echo "soak: $minutes min, service pid $pid, files in $dir/files"
echo "RSS after warm-up: ${warm_rss} MiB; at the end: ${end_rss} MiB (growth $((end_rss - warm_rss)) MiB; goal <= 16)"
echo "open fds: ${warm_fds} -> ${end_fds}; threads: ${warm_threads} -> ${end_threads} (churn threads come and go)"
echo "thread dumps written: $dumps; CPU profiles written: $profiles; refusal lines: $refused"
echo "longest heartbeat gap: ${max_gap} ms (ticks every 10 ms)"

status=0
[ $((end_rss - warm_rss)) -le 16 ] || { echo "FAIL: RSS grew more than 16 MiB"; status=1; }
[ "$end_fds" -le $((warm_fds + 2)) ] || { echo "FAIL: file descriptors leaked"; status=1; }
[ "$end_threads" -le $((warm_threads + 4)) ] || { echo "FAIL: threads leaked"; status=1; }
[ "${max_gap:-0}" -le 1000 ] || { echo "FAIL: the program stalled for ${max_gap} ms"; status=1; }
exit "$status"
