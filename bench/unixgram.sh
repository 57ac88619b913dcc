#!/usr/bin/env bash
# Datagrams: the exporter against a do-nothing reader, in turn, ROUNDS times.
#
#   bench/unixgram.sh [ROUNDS] [DURATION]     # defaults: 5 rounds of 4s
#   PIN=0 bench/unixgram.sh ...               # leave placement to the scheduler
#
# Each round runs `loadgen --null-reader` (the load generator binds the
# socket itself and discards every datagram), then the exporter with a
# unixgram listener driven by the same `loadgen`, flat out, each for
# DURATION. The kernel queues at most `net.unix.max_dgram_qlen` (10)
# datagrams per socket; what does not fit is refused to the sender
# (`send_drops`), so the received rate is how fast the reader empties the
# queue. Prints each round and the median of the per-round ratios.
#
# By default the sender runs on CPU 0 and the reader (the do-nothing
# reader's thread, or the whole exporter, with taskset) on CPU 1: on a
# 2-core machine with a sender that never sleeps, the scheduler otherwise
# often wakes the reader on the sender's CPU, where it waits for the
# sender's time slice while the queue overflows, and single runs of either
# reader vary by a factor of ten.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
DURATION=${2:-4s}
BIN=${BIN:-target/release/model-exporter}
PIN=${PIN:-1}
if [ "$PIN" = 1 ]; then
  send_pin=(--sender-cpu 0)
  read_pin=(--reader-cpu 1)
  exporter_pin=(taskset -c 1)
  echo "sender on CPU 0, reader on CPU 1"
else
  send_pin=()
  read_pin=()
  exporter_pin=()
  echo "placement left to the scheduler"
fi
[ -x "$BIN" ] || cargo build --release -q

. bench/lib.sh
value() { awk -v k="$1" '$1 == k {print $2}' "$2"; }

ratios=()
for round in $(seq "$ROUNDS"); do
  rm -f "$dir/null.sock"
  "$BIN" loadgen --target "unixgram://$dir/null.sock" --null-reader --duration "$DURATION" \
    "${send_pin[@]}" "${read_pin[@]}" >"$dir/null.txt"
  null=$(value null_reader_per_second "$dir/null.txt")

  rm -f "$dir/ev.sock" "$dir/exporter.log"
  "${exporter_pin[@]}" "$BIN" --web.listen-address 127.0.0.1:0 --log.format json \
    --events.listen "unixgram://$dir/ev.sock" 2>"$dir/exporter.log" &
  exporter=$!
  port=$(wait_port "$dir/exporter.log")
  "$BIN" loadgen --target "unixgram://$dir/ev.sock" --duration "$DURATION" \
    --metrics-url "http://127.0.0.1:$port" --pid "$exporter" "${send_pin[@]}" >"$dir/exporter.txt"
  kill "$exporter"; wait "$exporter" 2>/dev/null || true; exporter=""
  got=$(value exporter_received_per_second "$dir/exporter.txt")
  sent=$(value sent_events "$dir/exporter.txt")
  received=$(value exporter_received "$dir/exporter.txt")
  per_cpu=$(value exporter_events_per_cpu_second "$dir/exporter.txt")
  ratio=$(awk -v a="$got" -v b="$null" 'BEGIN {printf "%.2f", a / b}')
  ratios+=("$ratio")
  echo "round $round: null reader $null/s, exporter $got/s (sent $sent, received $received, $per_cpu per CPU-second): $ratio"
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{r[NR] = $1} END {printf "median ratio %.2f (min %.2f, max %.2f)\n", r[int((NR + 1) / 2)], r[1], r[NR]}'
