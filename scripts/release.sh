#!/usr/bin/env bash
# Release build: static musl binaries of `kamstrup` for x86_64, aarch64 and ARMv6 hard-float (one
# binary for every 32-bit Raspberry Pi, Pi Zero included), each in a .tar.gz with the README, the
# example config and the systemd unit; Debian packages (amd64, arm64, armhf) from the same
# binaries; SHA256SUMS over all of it. Everything lands in target/dist/.
#
#   scripts/release.sh                 # all three targets, tarballs and .debs
#   scripts/release.sh --no-deb        # tarballs only
#   TARGETS="x86_64" scripts/release.sh
#   NO_BUILD=1 TARGETS=aarch64 scripts/release.sh   # pack what target/<triple>/release-small holds
#
# Profile `release-small` (workspace Cargo.toml). Tools are installed when missing by
# scripts/packaging-tools.sh (cached in /var/cache/kamstrup-ci). Prints size and build time per
# target. CARGO_TARGET_DIR is honoured for the build; the output always goes to target/dist/
# of this checkout (or $DIST_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
build_debs=1
[[ ${1:-} == --no-deb ]] && build_debs=0

eval "$(bash scripts/packaging-tools.sh)"

profile=release-small
target_dir=${CARGO_TARGET_DIR:-$repo/target}
dist=${DIST_DIR:-$repo/target/dist}
version=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"]=="kamstrup-cli"))')

# Only ring may provide TLS crypto: aws-lc-sys needs cmake and a heavy C build, and doubles the
# crypto code in the binary. `cargo tree -i` fails with "did not match" when it is absent.
for crate in aws-lc-sys aws-lc-rs; do
  if tree=$(cargo tree --locked -p kamstrup-cli -e normal,build --target all -i "$crate" 2>&1) ||
    ! grep -q 'did not match any packages' <<<"$tree"; then
    echo "error: $crate is in the dependency tree of kamstrup-cli; use ring only:" >&2
    echo "$tree" >&2
    exit 1
  fi
done
cargo tree --locked -p kamstrup-cli -e normal --target all -i ring >/dev/null

# name in the tarball | Rust target | Debian architecture
declare -A triple=([x86_64]=x86_64-unknown-linux-musl [aarch64]=aarch64-unknown-linux-musl
  [armv6hf]=arm-unknown-linux-musleabihf)
declare -A debarch=([x86_64]=amd64 [aarch64]=arm64 [armv6hf]=armhf)
targets=${TARGETS:-x86_64 aarch64 armv6hf}

build() { # short-name
  local t=${triple[$1]}
  case $1 in
    x86_64)
      # Debian's musl-gcc compiles the C parts (SQLite, ring); rustc links with its own musl
      # start files. No linker override: `linker = "musl-gcc"` gives a binary that segfaults.
      cargo build --locked --profile "$profile" --target "$t" -p kamstrup-cli --bin kamstrup ;;
    aarch64)
      cargo zigbuild --locked --profile "$profile" --target "$t" -p kamstrup-cli --bin kamstrup ;;
    armv6hf)
      # No prebuilt std for the 32-bit ARM musl targets: build it from rust-src (stable compiler,
      # RUSTC_BOOTSTRAP for -Zbuild-std). zig's libc replaces Rust's self-contained musl objects.
      RUSTC_BOOTSTRAP=1 CARGO_TARGET_ARM_UNKNOWN_LINUX_MUSLEABIHF_RUSTFLAGS="-C link-self-contained=no" \
        cargo zigbuild --locked -Zbuild-std=std,panic_abort --profile "$profile" --target "$t" \
        -p kamstrup-cli --bin kamstrup ;;
  esac
}

# How to run a built binary here: natively, or under qemu-user (ARMv6: the Pi Zero's CPU).
declare -A runner=([x86_64]="" [aarch64]="qemu-aarch64-static" [armv6hf]="qemu-arm-static -cpu arm1176")

# kamstrup(1) from the binary's own --help (help2man), every subcommand's --help included.
man_page() { # short-name output.gz
  local name=$1 out=$2 bin=$dist/bin/${triple[$1]}/kamstrup work
  work=$(mktemp -d)
  printf '#!/bin/sh\nexec %s %s "$@"\n' "${runner[$name]}" "$bin" >"$work/kamstrup"
  chmod +x "$work/kamstrup"
  {
    echo "[COMMANDS]"
    # Every subcommand the binary lists (two-space indent, name, then its summary).
    for sub in $("$work/kamstrup" --help | sed -n '/^Commands:/,/^$/s/^  \([a-z][a-z0-9-]*\) .*/\1/p' | grep -vx help); do
      echo ".SS \"kamstrup $sub\""
      echo ".nf"
      "$work/kamstrup" "$sub" --help | sed 's/\\/\\e/g; s/^\./\\\&./'
      echo ".fi"
    done
    echo "[FILES]"
    echo "/etc/kamstrup/kamstrup.toml: the service's configuration (every key: /usr/share/doc/kamstrup-bridge/kamstrup.example.toml)."
    echo ".br"
    echo "/var/lib/kamstrup/: the service's SQLite history."
  } >"$work/extra.h2m"
  help2man --no-info --section 1 --name "read Kamstrup heat meters and deliver every reading" \
    --include "$work/extra.h2m" "$work/kamstrup" | gzip -9n >"$out"
  rm -rf "$work"
}

mkdir -p "$dist"
rm -f "$dist"/SHA256SUMS
summary=()
for name in $targets; do
  t=${triple[$name]}
  start=$SECONDS
  echo "--- build $name ($t, profile $profile)"
  # NO_BUILD=1 packs binaries built before (e.g. on another machine) without invoking cargo.
  [[ ${NO_BUILD:-0} == 1 ]] || build "$name"
  secs=$((SECONDS - start))
  bin=$target_dir/$t/$profile/kamstrup
  if ! file -b "$bin" | grep -Eq 'statically linked|static-pie linked'; then
    echo "error: $bin is not statically linked: $(file -b "$bin")" >&2
    exit 1
  fi
  stem=kamstrup-$version-$name-linux-musl
  stage=$dist/$stem
  rm -rf "$stage"
  mkdir -p "$stage"
  install -m 755 "$bin" "$stage/kamstrup"
  install -m 644 README.md kamstrup.example.toml "$stage/"
  # The tarball's binary goes to /usr/local/bin (the .deb's to /usr/bin): same unit otherwise.
  sed 's#/usr/bin/kamstrup#/usr/local/bin/kamstrup#g' packaging/kamstrup.service >"$stage/kamstrup.service"
  tar -C "$dist" --owner=0 --group=0 --numeric-owner -czf "$dist/$stem.tar.gz" "$stem"
  # The bare binary stays beside the tarball for the emulator runs and the .debs.
  mkdir -p "$dist/bin/$t"
  mv "$stage/kamstrup" "$dist/bin/$t/kamstrup"
  rm -rf "$stage"
  size=$(stat -c %s "$dist/bin/$t/kamstrup")
  summary+=("$(awk -v n="$name" -v t="$t" -v b="$size" -v z="$(stat -c %s "$dist/$stem.tar.gz")" -v s="$secs" \
    'BEGIN { printf "%-8s %-30s binary %.2f MB, tarball %.2f MB, built in %d s", n, t, b / 1e6, z / 1e6, s }')")
  if ((size > 8000000)); then
    echo "warning: $name binary is $size bytes, above the 8 MB goal" >&2
  fi

  if ((build_debs)); then
    man_page "$name" "$target_dir/$t/$profile/kamstrup.1.gz"
    # cargo-deb packs the binary built above (no rebuild); metadata in crates/cli/Cargo.toml.
    # It names the architecture from the target: amd64, arm64, armhf (musleabihf = hard-float).
    cargo deb --no-build --no-strip -p kamstrup-cli --target "$t" --profile "$profile" \
      --output "$dist/" >/dev/null
    [[ -f $dist/kamstrup-bridge_${version}-1_${debarch[$name]}.deb ]] ||
      { echo "error: no ${debarch[$name]} .deb in $dist" >&2; exit 1; }
  fi
done

(cd "$dist" && sha256sum -- *.tar.gz $(ls -- *.deb 2>/dev/null) >SHA256SUMS)
echo
echo "target/dist ($dist):"
printf '  %s\n' "${summary[@]}"
ls -l "$dist" | tail -n +2 | sed 's/^/  /'
