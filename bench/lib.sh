# Shared by bench/soak.sh, bench/side_by_side.sh and bench/unixgram.sh;
# sourced after `set -euo pipefail` and a `cd` to the repository.
#
# Gives a temporary directory `$dir`, removed on exit together with the
# exporter whose pid the script keeps in `$exporter`, and `wait_port LOG`,
# which prints the HTTP port an exporter started with `--log.format json`
# logged, or fails with its log.

dir=$(mktemp -d)
exporter=""
cleanup() {
  if [ -n "$exporter" ]; then kill "$exporter" 2>/dev/null || true; wait "$exporter" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT

wait_port() {
  local port=""
  for _ in $(seq 200); do
    port=$(grep -o '"address":"127.0.0.1:[0-9]*"' "$1" | head -1 | grep -o '[0-9]*"$' | tr -d '"' || true)
    if [ -n "$port" ]; then
      echo "$port"
      return 0
    fi
    sleep 0.05
  done
  echo "exporter did not start" >&2
  cat "$1" >&2
  return 1
}
