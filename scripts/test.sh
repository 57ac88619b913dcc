#!/usr/bin/env bash
# Every test: formatting, lints, doc links, unit and integration tests, then the Python
# client's tests (which start the exporter binary the cargo tests built).
# First installs whatever the tests need and is missing (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked --quiet
cargo test --all-targets --locked
python3 -m pytest -q clients/python/tests
