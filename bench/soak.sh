#!/usr/bin/env bash
# Soak: runs the exporter under a steady load for a bounded time, scraping
# /metrics every 5 s and recording its RSS every 10 s, then says whether
# every event sent over the stream was received. Run by hand.
#
#   bench/soak.sh [RATE] [SECONDS]     # default 100000 events/s for 600 s
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-100000}
SECS=${2:-600}
BIN=${BIN:-target/release/model-exporter}
[ -x "$BIN" ] || cargo build --release -q

dir=$(mktemp -d)
exporter=""
cleanup() {
  if [ -n "$exporter" ]; then kill "$exporter" 2>/dev/null || true; wait "$exporter" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT

"$BIN" --web.listen-address 127.0.0.1:0 --log.format json \
  --events.listen "unix://$dir/events.sock" 2>"$dir/exporter.log" &
exporter=$!
port=""
for _ in $(seq 200); do
  port=$(grep -o '"address":"127.0.0.1:[0-9]*"' "$dir/exporter.log" | head -1 | grep -o '[0-9]*"$' | tr -d '"' || true)
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { echo "exporter did not start" >&2; exit 1; }
echo "idle RSS: $(awk '/VmRSS/ {print $2 * 1024}' /proc/$exporter/status) bytes"

"$BIN" loadgen --target "unix://$dir/events.sock" --rate "$RATE" --duration "${SECS}s" \
  --metrics-url "http://127.0.0.1:$port" --pid "$exporter" >"$dir/loadgen.txt" &
load=$!
start=$SECONDS
scrapes=0
scrape_failures=0
while kill -0 "$load" 2>/dev/null; do
  if curl -sf -o /dev/null "http://127.0.0.1:$port/metrics"; then
    scrapes=$((scrapes + 1))
  else
    scrape_failures=$((scrape_failures + 1))
  fi
  t=$((SECONDS - start))
  if [ $((t % 10)) -lt 5 ]; then
    echo "t=${t}s RSS $(awk '/VmRSS/ {print $2 * 1024}' /proc/$exporter/status) bytes"
  fi
  sleep 5
done
wait "$load"
cat "$dir/loadgen.txt"
sent=$(awk '$1 == "sent_events" {print $2}' "$dir/loadgen.txt")
received=$(awk '$1 == "exporter_received" {print $2}' "$dir/loadgen.txt")
echo "scrapes: $scrapes ok, $scrape_failures failed"
if [ "$sent" = "$received" ] && [ "$scrape_failures" = 0 ]; then
  echo "nothing lost: $received of $sent events received"
else
  echo "LOST: $received of $sent events received, $scrape_failures scrapes failed"
  exit 1
fi
