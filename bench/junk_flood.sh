#!/usr/bin/env bash
# RSS and /metrics latency of an exporter flooded with junk names while
# the names rules.yaml declares are in use: 100,000 junk model names, then
# 100,000 junk feature names on the declared model, each sent once.
# The declared model and feature must keep their own series (checked), and
# memory and scrape time must stay those of the capped series.
#
#   bench/junk_flood.sh              # 100,000 junk models and features
#   JUNK=1000000 bench/junk_flood.sh
#
# Needs target/release/model-exporter, curl and python3. Prints RSS
# (VmRSS of /proc), the exporter's open descriptors (/proc/PID/fd) and the median and 90th percentile of SCRAPES timed
# GET /metrics, before and after the flood.
set -euo pipefail
cd "$(dirname "$0")/.."
JUNK=${JUNK:-100000}
SCRAPES=${SCRAPES:-20}
BIN=${BIN:-target/release/model-exporter}
source bench/lib.sh

cat >"$dir/rules.yaml" <<'YAML'
defaults: {evaluation_interval: 1s, min_samples: 5}
models:
  fraud:
    features:
      amount: {mean: 100, std: 10}
groups:
  - name: ops
    rules:
      - alert: HighErrorRate
        expr: error_rate > 5%
YAML
"$BIN" --web.listen-address 127.0.0.1:0 --log.format json \
    --events.listen "unix://$dir/ev.sock" --config.file "$dir/rules.yaml" \
    >"$dir/log" 2>&1 &
exporter=$!
port=$(wait_port "$dir/log")
url="http://127.0.0.1:$port/metrics"
for _ in $(seq 100); do [ -S "$dir/ev.sock" ] && break; sleep 0.05; done

send() { # MODE: declared | models | features
    python3 - "$dir/ev.sock" "$1" "$JUNK" <<'PY'
import socket, sys
path, mode, junk = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
buf = []
def flush():
    s.sendall("".join(buf).encode())
    buf.clear()
if mode == "declared":
    for i in range(1000):
        err = ',"error":"timeout"' if i % 10 == 0 else ""
        buf.append('{"model":"fraud","latency_ms":20,"features":{"amount":%d}%s}\n' % (100 + i % 20, err))
elif mode == "models":
    for i in range(junk):
        buf.append('{"model":"junk-model-%d","latency_ms":5}\n' % i)
        if len(buf) == 1000:
            flush()
else:
    for start in range(0, junk, 500):
        names = ",".join('"junk-feature-%d":1' % i for i in range(start, min(junk, start + 500)))
        buf.append('{"model":"fraud","features":{%s,"amount":100}}\n' % names)
        if len(buf) == 20:
            flush()
flush()
s.close()
PY
}

received() {
    curl -s "$url" | awk '/^model_exporter_events_received_total\{type="inference"\}/ {print $2}'
}

wait_received() {
    for _ in $(seq 600); do
        [ "$(received)" = "$1" ] && return 0
        sleep 0.1
    done
    echo "events not applied: $(received) of $1" >&2
    return 1
}

measure() { # LABEL
    local rss fds bytes times
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$exporter/status")
    fds=$(ls "/proc/$exporter/fd" | wc -l)
    bytes=$(curl -s "$url" | wc -c)
    times=$(for _ in $(seq "$SCRAPES"); do curl -s -o /dev/null -w '%{time_total}\n' "$url"; done | sort -n)
    local p50 p90
    p50=$(echo "$times" | awk -v n="$SCRAPES" 'NR == int((n + 1) / 2) {printf "%.1f", $1 * 1000}')
    p90=$(echo "$times" | awk -v n="$SCRAPES" 'NR == int(n * 0.9) {printf "%.1f", $1 * 1000}')
    printf '%-34s RSS %6.1f MiB   fds %4d   /metrics %7d bytes   p50 %6s ms   p90 %6s ms\n' \
        "$1" "$(echo "$rss / 1024" | bc -l)" "$fds" "$bytes" "$p50" "$p90"
}

n=0
send declared; n=$((n + 1000)); wait_received "$n"
measure "declared traffic only"
send models; n=$((n + JUNK)); wait_received "$n"
send features; n=$((n + (JUNK + 499) / 500)); wait_received "$n"
send declared; n=$((n + 1000)); wait_received "$n"
sleep 2 # one evaluation round with everything in
measure "after $JUNK junk models + features"

m=$(curl -s "$url")
check() {
    if ! grep -qF "$1" <<<"$m"; then echo "missing: $1" >&2; exit 1; fi
}
check 'model_request_errors_total{error="timeout",model="fraud",version=""} 200'
check 'model_feature_value_count{feature="amount",model="fraud",version=""} '
check 'model_feature_drift{feature="amount",method="psi",model="fraud",version="",window="5m"}'
echo "declared model and feature kept their own series; folded:"
grep '^model_exporter_series_dropped_total' <<<"$m"
