#!/usr/bin/env bash
# Every test: formatting, lints, doc links, unit and integration tests, the fuzz
# targets' build, then the Python client's tests (which start the exporter binary the
# cargo tests built). First installs whatever the tests need and is missing
# (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked --quiet
cargo test --all-targets --locked
# The fuzz targets are a workspace of their own (fuzz/), which `cargo test` does not
# build: type-check them so they cannot stop compiling unnoticed. Stable rustc, no
# cargo-fuzz needed (running them is scripts/fuzz.sh).
cargo check --manifest-path fuzz/Cargo.toml --bins --locked --quiet
python3 -m pytest -q clients/python/tests
