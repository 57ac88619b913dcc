#!/usr/bin/env bash
# Sharded aggregators against one: runs the release binary with
# --aggregate.shards 1 and 2 (alternating, ROUNDS times each), drives it
# flat out with `loadgen --connections CONNS --models MODELS` for DURATION,
# and prints one line per run: shards, events received per second (wall,
# until everything was counted) and per exporter CPU-second.
#
#   bench/shards.sh [ROUNDS] [MODELS] [DURATION] [CONNS] [SHARD COUNTS...]
#   bench/shards.sh 5 8 5s 2 1 2
set -euo pipefail
ROUNDS=${1:-5}
MODELS=${2:-8}
DURATION=${3:-5s}
CONNS=${4:-2}
shift $(($# < 4 ? $# : 4))
COUNTS=("$@")
[ ${#COUNTS[@]} -eq 0 ] && COUNTS=(1 2)
BIN=${BIN:-target/release/model-exporter}
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT

echo "shards models conns received_per_s per_cpu_s cpu_s received"
for round in $(seq "$ROUNDS"); do
    for shards in "${COUNTS[@]}"; do
        PORT=$((20000 + RANDOM % 20000))
        "$BIN" --web.listen-address "127.0.0.1:$PORT" \
            --events.listen "unix://$D/ev.sock" \
            --aggregate.shards "$shards" --log.level warn &
        PID=$!
        for _ in $(seq 100); do
            [ -S "$D/ev.sock" ] && break
            sleep 0.05
        done
        sleep 0.3
        OUT=$("$BIN" loadgen --target "unix://$D/ev.sock" --duration "$DURATION" \
            --connections "$CONNS" --models "$MODELS" \
            --metrics-url "http://127.0.0.1:$PORT" --pid "$PID")
        kill -TERM "$PID"
        wait "$PID" || true
        get() { awk -v k="$1" '$1 == k { print $2 }' <<<"$OUT"; }
        echo "$shards $MODELS $CONNS $(get exporter_received_per_second) $(get exporter_events_per_cpu_second) $(get exporter_cpu_seconds) $(get exporter_received)"
    done
done
