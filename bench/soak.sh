#!/usr/bin/env bash
# Soak: runs the exporter under a steady load for a bounded time while
# Prometheus-style scrapes and rule reloads go on, then says whether every
# event sent over the stream was received and whether RSS stayed flat.
# Run by hand (it is not part of the test suite).
#
#   bench/soak.sh [RATE] [SECONDS]     # default 100000 events/s for 600 s
#   REPEAT_ID=1 bench/soak.sh ...       # every event with the same request id
#
# Every event has its own request id unless REPEAT_ID=1 (loadgen --repeat-id).
#
# Every 5 s: a scrape of /metrics (must succeed) and an RSS sample.
# Every 30 s, in turn: a reload through POST /-/reload after editing the
# rules file, a reload of a broken rules file (must be refused, the old rules
# kept), and a SIGHUP. RSS is "flat" when the mean of the last quarter of the
# samples is within 10% (or 4 MiB) of the mean of the second quarter (the
# first quarter is warm-up: windows and the feedback store fill).
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-100000}
SECS=${2:-600}
BIN=${BIN:-target/release/model-exporter}
[ -x "$BIN" ] || cargo build --release -q

. bench/lib.sh

cp rules.yaml "$dir/rules.yaml"
"$BIN" --web.listen-address 127.0.0.1:0 --log.format json \
  --config.file "$dir/rules.yaml" --web.enable-lifecycle \
  --events.listen "unix://$dir/events.sock" 2>"$dir/exporter.log" &
exporter=$!
port=$(wait_port "$dir/exporter.log")
url="http://127.0.0.1:$port"
rss() { awk '/VmRSS/ {print $2 * 1024}' "/proc/$exporter/status"; }
metric() { curl -sf "$url/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
echo "idle RSS: $(rss) bytes"

ids=()
[ "${REPEAT_ID:-0}" = 1 ] && ids=(--repeat-id)
"$BIN" loadgen --target "unix://$dir/events.sock" --rate "$RATE" --duration "${SECS}s" "${ids[@]}" \
  --metrics-url "$url" --pid "$exporter" >"$dir/loadgen.txt" &
load=$!
start=$SECONDS
scrapes=0
scrape_failures=0
reloads=0
reload_failures=0
broken_refused=0
hups=0
step=0
: >"$dir/rss.txt"
while kill -0 "$load" 2>/dev/null; do
  if curl -sf -o /dev/null "$url/metrics"; then
    scrapes=$((scrapes + 1))
  else
    scrape_failures=$((scrape_failures + 1))
  fi
  t=$((SECONDS - start))
  r=$(rss)
  echo "$t $r" >>"$dir/rss.txt"
  step=$((step + 1))
  if [ $((step % 6)) = 0 ]; then
    case $(((step / 6) % 3)) in
    1) # an edited, valid rules file through the lifecycle endpoint
      sed -i "s/^# soak edit.*//" "$dir/rules.yaml"
      echo "# soak edit $step" >>"$dir/rules.yaml"
      if curl -sf -o /dev/null -X POST "$url/-/reload"; then
        reloads=$((reloads + 1))
      else
        reload_failures=$((reload_failures + 1))
      fi
      ;;
    2) # a broken file must be refused and the running rules kept
      cp "$dir/rules.yaml" "$dir/rules.good"
      printf 'groups:\n  - name: [broken\n' >"$dir/rules.yaml"
      code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$url/-/reload")
      if [ "$code" != 200 ] && [ "$(metric model_exporter_config_last_reload_successful)" = 0 ]; then
        broken_refused=$((broken_refused + 1))
      else
        reload_failures=$((reload_failures + 1))
      fi
      cp "$dir/rules.good" "$dir/rules.yaml"
      ;;
    0) # a SIGHUP reload of the restored, valid file
      kill -HUP "$exporter"
      hups=$((hups + 1))
      ;;
    esac
    echo "t=${t}s RSS $r bytes, scrapes $scrapes, reloads $reloads, broken refused $broken_refused, SIGHUPs $hups"
  fi
  sleep 5
done
wait "$load"
cat "$dir/loadgen.txt"
sent=$(awk '$1 == "sent_events" {print $2}' "$dir/loadgen.txt")
received=$(awk '$1 == "exporter_received" {print $2}' "$dir/loadgen.txt")
ok_after=$(metric model_exporter_config_last_reload_successful)
# RSS flatness: mean of the second quarter against the mean of the last.
read -r q2 q4 < <(awk '{ r[NR] = $2 } END {
  n = NR; a = int(n / 4); b = int(n / 2); c = int(3 * n / 4);
  for (i = a + 1; i <= b; i++) s2 += r[i];
  for (i = c + 1; i <= n; i++) s4 += r[i];
  printf "%d %d\n", s2 / (b - a), s4 / (n - c) }' "$dir/rss.txt")
echo "RSS samples: $(wc -l <"$dir/rss.txt"), max $(sort -k2 -n "$dir/rss.txt" | tail -1 | cut -d' ' -f2) bytes"
echo "RSS mean 2nd quarter $q2 bytes, last quarter $q4 bytes"
echo "scrapes: $scrapes ok, $scrape_failures failed"
echo "feedback join: $(curl -sf "$url/metrics" | awk '/^model_feedback_pending|^model_exporter_feedback_total\{result="(evicted|duplicate_inference)"\}/ {printf "%s %s; ", $1, $2}')"
echo "reloads: $reloads ok, $broken_refused broken files refused, $hups SIGHUPs, $reload_failures unexpected outcomes; last reload successful: $ok_after"
flat=$(awk -v a="$q2" -v b="$q4" 'BEGIN { d = b - a; if (d < 0) d = -d; print (d <= 0.10 * a || d <= 4194304) ? 1 : 0 }')
fail=0
[ "$sent" = "$received" ] || { echo "LOST: $received of $sent events received"; fail=1; }
[ "$scrape_failures" = 0 ] || { echo "FAILED: $scrape_failures scrapes"; fail=1; }
[ "$reload_failures" = 0 ] || { echo "FAILED: $reload_failures reloads behaved unexpectedly"; fail=1; }
[ "$ok_after" = 1 ] || { echo "FAILED: the last reload was not successful"; fail=1; }
[ "$flat" = 1 ] || { echo "RSS GREW: $q2 -> $q4 bytes"; fail=1; }
[ "$fail" = 0 ] || exit 1
echo "nothing lost: $received of $sent events received; RSS flat"
