#!/usr/bin/env bash
# Times /metrics on a running exporter holding about N counter series
# (model_feature_missing_total: MODELS models x FEATURES null features),
# then scrapes in a loop while `loadgen` sends events, to see whether
# ingest slows down during scrapes.
#
#   bench/scrape.sh 10000        # 10 models x 1,000 features
#   bench/scrape.sh 100000       # 100 models x 1,000 features
#
# Needs target/release/model-exporter, curl and python3. CONFIG=rules.yaml
# replaces the built-in rules (with the built-in rules, every feature adds
# about two model_rule_signal_value samples once the rules are evaluated).
set -euo pipefail
N=${1:-10000}
SCRAPES=${SCRAPES:-20}
BIN=${BIN:-target/release/model-exporter}
FEATURES=1000
MODELS=$(( (N + FEATURES - 1) / FEATURES ))
D=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$D"' EXIT

"$BIN" --web.listen-address 127.0.0.1:0 --events.listen "unix://$D/ev.sock" \
    --limits.models $((MODELS + 1)) --limits.features $FEATURES \
    ${CONFIG:+--config.file "$CONFIG"} >"$D/log" 2>&1 &
PID=$!
for _ in $(seq 100); do
    PORT=$(ss -ltnp 2>/dev/null | grep "pid=$PID," | sed -E 's/.*127\.0\.0\.1:([0-9]+).*/\1/' | head -1)
    [ -n "$PORT" ] && [ -S "$D/ev.sock" ] && break
    sleep 0.1
done
URL="http://127.0.0.1:$PORT/metrics"

# One event per model and 100 features: {"model":..,"features":{"f0":null,..}}
python3 - "$D/ev.sock" "$MODELS" "$FEATURES" <<'PY'
import json, socket, sys
path, models, features = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
for m in range(models):
    for start in range(0, features, 100):
        f = {f"feature_{i}": None for i in range(start, min(start + 100, features))}
        s.sendall((json.dumps({"model": f"model-{m}", "version": "v1", "features": f}) + "\n").encode())
s.close()
PY
WANT=$(( MODELS * FEATURES ))
for _ in $(seq 300); do
    HAVE=$(curl -s "$URL" | grep -c '^model_feature_missing_total{' || true)
    [ "$HAVE" -ge "$WANT" ] && break
    sleep 0.2
done
# SETTLE=seconds: wait, e.g. for the first rule evaluation to publish.
sleep "${SETTLE:-0}"
echo "series $HAVE (model_feature_missing_total)"
curl -s "$URL" >"$D/page"
echo "bytes $(wc -c <"$D/page")"
if [ -n "${SHOW_FAMILIES:-}" ]; then grep -v "^#" "$D/page" | sed -E "s/[{ ].*//" | sort | uniq -c | sort -rn | head; fi

stats() { sort -n | awk '{a[NR]=$1} END {printf "min %s median %s max %s (n=%d)\n", a[1], a[int((NR+1)/2)], a[NR], NR}'; }
for _ in $(seq "$SCRAPES"); do curl -s -o /dev/null -w '%{time_total}\n' "$URL"; done \
    | stats | sed 's/^/curl_seconds /'
# model_exporter_scrape_duration_seconds: the exporter's encode time of the
# previous scrape (read by the next one).
for _ in $(seq "$SCRAPES"); do
    curl -s "$URL" | grep '^model_exporter_scrape_duration_seconds ' | cut -d' ' -f2
done | stats | sed 's/^/encode_seconds /'

echo "# ingest with and without scrapes (loadgen, 4 s each)"
"$BIN" loadgen --target "unix://$D/ev.sock" --duration 4s --metrics-url "http://127.0.0.1:$PORT" \
    | grep -E '^exporter_received_per_second' | sed 's/^/no_scrapes /'
( end=$((SECONDS + 5)); n=0; while [ $SECONDS -lt $end ]; do curl -s -o /dev/null "$URL"; n=$((n+1)); done; echo "scrapes_during_run $n" ) &
SC=$!
"$BIN" loadgen --target "unix://$D/ev.sock" --duration 4s --metrics-url "http://127.0.0.1:$PORT" \
    | grep -E '^exporter_received_per_second' | sed 's/^/scraping_back_to_back /'
wait $SC
