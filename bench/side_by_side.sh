#!/usr/bin/env bash
# Side by side: mtail and model-exporter processing the same N inference
# events, in CPU seconds. Run by hand (not in CI); needs mtail and
# /usr/bin/time (Debian: apt-get install mtail time).
#
#   bench/side_by_side.sh [N]          # default N = 1000000
#
# mtail reads the file in --one_shot mode; its CPU time (user + system, from
# /usr/bin/time -v) minus that of the same run over an empty file (start-up
# and program compilation) is its processing cost.
# model-exporter receives the same file over one unix stream connection
# (unix:// listener; python3 writes the file to the socket): its CPU time is
# read from /proc before the connection opens and again once /metrics counts
# all N events. Every event has its own request id (`r-<n>`), so the
# exporter's label join remembers each prediction (and, past
# --feedback.capacity, evicts the oldest), as with real traffic. Both compute
# the latency histogram and the error count; the exporter also computes
# everything else it always does (features, drift bins, windows, label join).
# FILE=1 has the exporter follow the file with a file:// listener instead.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
BIN=${BIN:-target/release/model-exporter}
[ -x "$BIN" ] || cargo build --release -q
command -v mtail >/dev/null || { echo "mtail is not installed" >&2; exit 1; }

. bench/lib.sh

# N events: latencies 1..500 ms, one in a hundred failed.
awk -v n="$N" 'BEGIN {
  for (i = 0; i < n; i++) {
    lat = (i * 7919) % 500 + 0.5
    if (i % 100 == 0)
      printf "{\"model\":\"fraud\",\"version\":\"v3\",\"id\":\"r-%d\",\"latency_ms\":%.1f,\"ok\":false,\"error\":\"timeout\"}\n", i, lat
    else
      printf "{\"model\":\"fraud\",\"version\":\"v3\",\"id\":\"r-%d\",\"latency_ms\":%.1f,\"ok\":true,\"prediction\":1,\"confidence\":0.91,\"features\":{\"age\":35,\"income\":51000,\"amount\":120.5}}\n", i, lat
  }
}' > "$dir/events.jsonl"
bytes=$(stat -c %s "$dir/events.jsonl")
echo "events: $N ($bytes bytes, $((bytes / N)) bytes each)"

# --- mtail -----------------------------------------------------------------
cpu_of() { # CPU seconds of a command, from /usr/bin/time -v
  /usr/bin/time -v "$@" 2>"$dir/time.txt" >"$dir/out.txt" || { cat "$dir/time.txt" >&2; exit 1; }
  awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {printf "%.3f", u+s}' "$dir/time.txt"
}
mtail_run() {
  cpu_of mtail --one_shot --one_shot_format prometheus --address 127.0.0.1 --port 0 \
    --progs bench/mtail --logs "$1" --logtostderr=false --alsologtostderr=false
}
: > "$dir/empty.jsonl"
mt_base=$(mtail_run "$dir/empty.jsonl")
mt_total=$(mtail_run "$dir/events.jsonl")
mt_count=$(awk '/^model_request_duration_seconds_count/ {print $2}' "$dir/out.txt")
mt_errors=$(awk '/^model_request_errors_total/ {print $2}' "$dir/out.txt")
mt_cpu=$(awk -v a="$mt_total" -v b="$mt_base" 'BEGIN {printf "%.3f", a - b}')
echo "mtail: counted $mt_count events, $mt_errors errors; CPU $mt_total s, $mt_base s of it start-up: $mt_cpu s"

# --- model-exporter ----------------------------------------------------------
if [ "${FILE:-0}" = 1 ]; then
  listen=(--events.listen "file://$dir/in.jsonl" --events.file-from-beginning)
else
  listen=(--events.listen "unix://$dir/events.sock")
fi
"$BIN" --web.listen-address 127.0.0.1:0 --log.format json "${listen[@]}" \
  2>"$dir/exporter.log" &
exporter=$!
port=$(wait_port "$dir/exporter.log")
ticks=$(getconf CLK_TCK)
cpu_now() { awk -v hz="$ticks" '{sub(/.*\) /, ""); split($0, f, " "); printf "%.3f", (f[12] + f[13]) / hz}' "/proc/$exporter/stat"; }
received() {
  curl -s "http://127.0.0.1:$port/metrics" |
    awk '/^model_exporter_events_received_total/ {s += $2} END {printf "%d", s}'
}
sleep 1
me_before=$(cpu_now)
start=$(date +%s.%N)
if [ "${FILE:-0}" = 1 ]; then
  mv "$dir/events.jsonl" "$dir/in.jsonl"
else
  python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
with open(sys.argv[2], "rb") as f:
    s.sendfile(f)
s.close()
' "$dir/events.sock" "$dir/events.jsonl"
fi
deadline=$((SECONDS + 600))
while [ "$(received)" -lt "$N" ] && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
end=$(date +%s.%N)
me_after=$(cpu_now)
me_count=$(received)
me_errors=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^model_requests_total\{.*outcome="error"/ {print $2}')
me_rss=$(awk '/VmRSS/ {print $2 * 1024}' "/proc/$exporter/status")
me_cpu=$(awk -v a="$me_after" -v b="$me_before" 'BEGIN {printf "%.3f", a - b}')
echo "model-exporter: counted $me_count events, $me_errors errors; CPU $me_cpu s;" \
  "wall $(awk -v a="$end" -v b="$start" 'BEGIN {printf "%.2f", a - b}') s (includes polls of 200 ms); RSS $me_rss bytes"

awk -v n="$N" -v m="$mt_cpu" -v e="$me_cpu" 'BEGIN {
  mt = n / m; me = n / e
  printf "events per CPU-second: mtail %.0f, model-exporter %.0f, ratio %.1fx\n", mt, me, me / mt
}'
