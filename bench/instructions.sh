#!/bin/bash
# Instructions per event of the ingest stages, counted by callgrind (exact
# and unaffected by other load on the machine, unlike times).
#   bench/instructions.sh [N]
# Builds examples/ingest_cost in release mode and runs it under
# `valgrind --tool=callgrind` for each stage: `frame` (cut lines), `parse`
# (cut and parse), `apply` (cut, parse and apply with the built-in rules),
# and `apply-ids`: `apply` with a distinct request id in each event (the
# feedback join then remembers every one; the id is 14 characters, and
# writing its digits into the buffer costs about 100 instructions an event),
# and `apply-refs`: `apply` with a reference for each of the three features,
# so that every value is also binned and checked against expectations.
set -euo pipefail
n=${1:-20000}
cargo build --release --example ingest_cost >/dev/null
bin=target/release/examples/ingest_cost
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for stage in frame parse apply apply-ids apply-refs; do
    valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" "$stage" "$n" >/dev/null 2>&1
    total=$(awk '/^(summary|totals):/ {print $2; exit}' "$out")
    echo "$stage instructions_per_event $((total / n))"
done
