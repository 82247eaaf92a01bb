#!/usr/bin/env bash
# Installs the release/packaging tool chain if missing and prints the environment to use it:
#   eval "$(bash scripts/packaging-tools.sh)"
# Heavy things live in /var/cache/kamstrup-ci (outside the repository), so a repeat run is quick.
# Tools: musl-tools (x86_64 musl linker), cargo-zigbuild + ziglang (aarch64/ARMv6 musl linker),
# rust-src (std for ARMv6, which has no prebuilt std), qemu-user-static, cargo-deb, debootstrap.
set -euo pipefail
cache=${KAMSTRUP_CI_CACHE:-/var/cache/kamstrup-ci}
tools=$cache/tools
mkdir -p "$tools"
log() { printf '%s\n' "$*" >&2; }

need_apt=()
command -v musl-gcc >/dev/null || need_apt+=(musl-tools)
command -v qemu-aarch64-static >/dev/null || need_apt+=(qemu-user-static)
command -v debootstrap >/dev/null || need_apt+=(debootstrap)
command -v help2man >/dev/null || need_apt+=(help2man)
if ((${#need_apt[@]})); then
  log "apt: installing ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >&2 ||
    { apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >&2; }
fi

installed_targets=$(rustup target list --installed)
for t in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
  grep -qx "$t" <<<"$installed_targets" || { log "rustup: target $t"; rustup target add "$t" >&2; }
done
rustup component list --installed | grep -q '^rust-src' || { log "rustup: rust-src"; rustup component add rust-src >&2; }

# Pinned versions: a new release of a tool never changes CI behind our back.
cargo_tool() { # binary crate version
  if ! "$tools/bin/$1" --version 2>/dev/null | grep -qF "$3"; then
    log "cargo install $2 $3 (once, ~2 min)"
    cargo install --quiet --locked --root "$tools" "$2" --version "$3" >&2
  fi
}
cargo_tool cargo-zigbuild cargo-zigbuild 0.24.1
cargo_tool cargo-deb cargo-deb 3.8.0

zig_version=0.15.2
if ! "$tools/zig-venv/bin/python" -m ziglang version 2>/dev/null | grep -qx "$zig_version"; then
  log "pip: ziglang $zig_version (once, ~400 MB)"
  python3 -m venv "$tools/zig-venv"
  "$tools/zig-venv/bin/pip" install --quiet "ziglang==$zig_version" >&2
fi
# cargo-zigbuild runs `zig` from PATH: a small wrapper around the PyPI package.
mkdir -p "$tools/zig-bin"
printf '#!/bin/sh\nexec %q -m ziglang "$@"\n' "$tools/zig-venv/bin/python" >"$tools/zig-bin/zig"
chmod +x "$tools/zig-bin/zig"

echo "export PATH=$tools/bin:$tools/zig-bin:\$PATH"
