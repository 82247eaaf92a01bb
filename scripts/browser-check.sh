#!/usr/bin/env bash
# Opens the `kamstrup demo` dashboard in headless Debian Chromium, waits until every chart has
# drawn real data, fails on any console error, and saves screenshots to target/dashboard*.png.
# Installs Chromium with apt-get when it is missing (CI runs as root); needs python3 (stdlib).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
  echo "browser-check: installing Debian chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
fi
chromium --version

target_dir="${CARGO_TARGET_DIR:-target}"
cargo build -q -p kamstrup-cli --bin kamstrup
mkdir -p target
python3 scripts/browser-check.py "$target_dir/debug/kamstrup" target
