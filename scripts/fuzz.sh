#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time.
#
#   scripts/fuzz.sh            # each target for 60 s
#   FUZZ_SECONDS=600 scripts/fuzz.sh parse_event config
#
# cargo-fuzz needs nightly-only flags (-Zsanitizer=address). Only the
# stable toolchain is installed here, so the script sets RUSTC_BOOTSTRAP=1,
# which lets stable rustc accept them. Install the runner once with
# `cargo install cargo-fuzz`. Crashes are written to
# fuzz/artifacts/TARGET/; replay one with
#   fuzz/target/x86_64-unknown-linux-gnu/release/TARGET fuzz/artifacts/TARGET/crash-...
# The corpora (fuzz/corpus/) are kept between runs and not committed.
# Not part of CI: the property tests in tests/properties.rs are.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${FUZZ_SECONDS:-60}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(parse_event framing expr config baseline)
fi
command -v cargo-fuzz >/dev/null || {
  echo "cargo-fuzz is not installed: cargo install cargo-fuzz" >&2
  exit 1
}
export RUSTC_BOOTSTRAP=1

# Seeds: the shipped rules and a few valid inputs of each kind.
mkdir -p corpus/config corpus/parse_event corpus/expr corpus/baseline corpus/framing
cp ../rules.yaml corpus/config/rules.yaml
printf '%s' '{"model":"fraud","version":"v3","id":"r-17","latency_ms":52.3,"ok":true,"prediction":1,"confidence":0.91,"features":{"age":35,"country":"DE","b":true,"m":null},"counters":{"shown":10},"resources":{"cpu_percent":50},"ts":"2026-11-01T00:00:00Z"}' \
  > corpus/parse_event/inference.json
printf '%s' '{"type":"feedback","id":"r-17","actual":0}' > corpus/parse_event/feedback.json
printf '%s' '{"type":"log","level":"error","component":"x","message":"y","metadata":{"a":1}}' \
  > corpus/parse_event/log.json
printf '%s' 'p99.9(latency) > 500ms' > corpus/expr/quantile.txt
printf '%s' 'ratio(counter.clicks, counter."ad views") < 1.5%' > corpus/expr/ratio.txt
printf '%s' '{{ $labels.model }}: {{ $value | humanizePercentage }}' > corpus/expr/template.txt
printf '\x08\x03{"a":1}\nlong line here\n\nx' > corpus/framing/lines.bin
printf '%s' '{"format":"model-exporter-baseline","version":1,"created_at":"2026-11-01T00:00:00.000Z","source":"t.csv","rows":10,"features":{"age":{"type":"numeric","count":8,"missing":2,"missing_rate":0.2,"mean":30.0,"std":5.0,"min":20.0,"max":40.0,"edges":[20.0,30.0,40.0],"proportions":[0.0,0.5,0.5,0.0]},"c":{"type":"categorical","count":10,"missing":0,"missing_rate":0.0,"categories":{"DE":0.5,"US":0.3},"other":0.2}}}' \
  > corpus/baseline/sample.json

# Build every target once, then run the binaries: `cargo fuzz run` would
# rebuild the library for each target (its build script reruns in a git
# worktree, where .git/HEAD is not a file).
echo "== building the fuzz targets"
cargo fuzz build -O
bin="target/$(rustc -vV | sed -n 's/^host: //p')/release"

status=0
for t in "${targets[@]}"; do
  echo "== fuzz $t for ${seconds}s"
  mkdir -p "artifacts/$t"
  rc=0
  "$bin/$t" -artifact_prefix="artifacts/$t/" -max_total_time="$seconds" -max_len=4096 \
    "corpus/$t" >"target/fuzz-$t.log" 2>&1 || rc=$?
  grep -E '^(Done|SUMMARY)|panicked|Test unit written' "target/fuzz-$t.log" || true
  if [ "$rc" -ne 0 ]; then
    echo "== $t: FAILED (log: fuzz/target/fuzz-$t.log, input: fuzz/artifacts/$t/)"
    status=1
  fi
done
exit $status
