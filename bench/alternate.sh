#!/usr/bin/env bash
# Two builds of the exporter measured in turn, flat out over one Unix stream
# connection with a distinct request id in every event: the comparison of
# docs/performance.md ("events per exporter CPU-second", alternating runs).
# Run by hand (not in CI).
#
#   bench/alternate.sh OLD_BIN NEW_BIN [ROUNDS] [DURATION]   # default 9 rounds of 4s
#   REPEAT_ID=1 bench/alternate.sh ...                        # one repeated request id
#
# Each round starts a fresh exporter of OLD_BIN, drives it with NEW_BIN's
# `loadgen --connections 1 --duration DURATION --metrics-url ... --pid ...`,
# stops it, then does the same for NEW_BIN. Prints one line a run (events
# received, events per exporter CPU-second, peak RSS), then each build's
# runs sorted and their median. A run that did not receive all it sent or
# had rejects is marked; the script then exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n '2,16p' "$0" >&2; exit 2; }
old=$1
new=$2
rounds=${3:-9}
duration=${4:-4s}
repeat=()
[ "${REPEAT_ID:-0}" = 1 ] && repeat=(--repeat-id)

. bench/lib.sh

bad=0
run() {
  local bin=$1 label=$2
  local log="$dir/$label.log"
  rm -f "$dir/ev.sock"
  "$bin" --web.listen-address 127.0.0.1:0 --log.format json \
    --events.listen "unix://$dir/ev.sock" >"$log" 2>&1 &
  exporter=$!
  local port
  port=$(wait_port "$log")
  for _ in $(seq 100); do [ -S "$dir/ev.sock" ] && break; sleep 0.05; done
  local out
  out=$("$new" loadgen --target "unix://$dir/ev.sock" --duration "$duration" \
    --connections 1 --metrics-url "http://127.0.0.1:$port" --pid "$exporter" "${repeat[@]}")
  kill "$exporter"
  wait "$exporter" 2>/dev/null || true
  exporter=""
  local sent received rejected per_cpu rss mark=""
  sent=$(awk '$1 == "sent_events" {print $2}' <<<"$out")
  received=$(awk '$1 == "exporter_received" {print $2}' <<<"$out")
  rejected=$(awk '$1 == "exporter_rejected" {print $2}' <<<"$out")
  per_cpu=$(awk '$1 == "exporter_events_per_cpu_second" {print $2}' <<<"$out")
  rss=$(awk '$1 == "exporter_max_rss_bytes" {printf "%.1f", $2 / 1e6}' <<<"$out")
  if [ "$sent" != "$received" ] || [ "$rejected" != 0 ]; then
    mark=" (sent $sent, rejected $rejected)"
    bad=1
  fi
  echo "$label received $received events_per_cpu_second $per_cpu peak_rss_mb $rss$mark"
  echo "$per_cpu" >>"$dir/$label.rates"
}

for r in $(seq "$rounds"); do
  run "$old" old
  run "$new" new
done
for label in old new; do
  sort -n "$dir/$label.rates" | awk -v l="$label" '
    { v[NR] = $1 }
    END {
      m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      printf "%s sorted:", l
      for (i = 1; i <= NR; i++) printf " %.2f", v[i] / 1e6
      printf " M; median %.2f M events per exporter CPU-second\n", m / 1e6
    }'
done
exit "$bad"
