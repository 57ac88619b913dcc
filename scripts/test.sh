#!/usr/bin/env bash
# Every test: formatting, lints, doc links, unit and integration tests, then the Python
# client's tests (which start the exporter binary the cargo tests built).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked --quiet
cargo test --all-targets --locked
python3 -m pytest -q clients/python/tests
