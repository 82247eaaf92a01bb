#!/usr/bin/env bash
# Builds (once) a Debian 13 chroot with Python 3.13 and a Home Assistant venv, for the "newest HA"
# e2e tier: HA >= 2025.5 needs Python >= 3.13.2, which the host (Debian 12) does not have.
#
# Usage: ha-chroot.sh build ROOT VERSION   debootstrap trixie into ROOT, HA VERSION into ROOT/opt/ha
#        ha-chroot.sh mount ROOT           proc, /dev, /dev/pts (idempotent)
#        ha-chroot.sh umount ROOT          undo mount (only our mounts, by path)
# Each stage leaves a marker in ROOT/.kamstrup-ci/, so an interrupted build resumes where it stopped
# and a finished one costs nothing. HA is installed exactly as on the host tier: HA's own
# package_constraints.txt, the frontend it pins, the integrations' requirements, run with --skip-pip.
# Needs root (debootstrap, chroot, mount). First build about 7 min and 1.5 GB; a cached one 0 s.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)

say() { printf '[ha-chroot +%ss] %s\n' "$SECONDS" "$*"; }
die() {
  printf '[ha-chroot] FATAL: %s\n' "$*" >&2
  exit 1
}

mounted() { grep -qs " $(realpath -m "$1") " /proc/mounts; }

do_mount() {
  local root=$1
  mkdir -p "$root/proc" "$root/dev" "$root/dev/pts"
  mounted "$root/proc" || mount -t proc proc "$root/proc"
  mounted "$root/dev" || mount --bind /dev "$root/dev"
  mounted "$root/dev/pts" || mount --bind /dev/pts "$root/dev/pts"
}

do_umount() {
  local root=$1 m
  for m in dev/pts dev proc; do
    if mounted "$root/$m"; then umount "$root/$m" || umount -l "$root/$m"; fi
  done
}

# The host's Debian mirror (the machine may only reach this one).
mirror() {
  local m=
  if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
    m=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [[ -z $m && -f /etc/apt/sources.list ]]; then
    m=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list)
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

build() {
  local root=$1 version=$2
  [[ $(id -u) -eq 0 ]] || die "building the chroot needs root"
  local mark=$root/.kamstrup-ci
  if [[ -f $mark/ha-$version ]]; then
    say "Home Assistant $version in $root is ready (cached)"
    return 0
  fi
  local t0=$SECONDS
  if [[ ! -f $mark/debootstrap ]]; then
    command -v debootstrap >/dev/null || {
      say "apt-get install debootstrap"
      DEBIAN_FRONTEND=noninteractive apt-get install -y debootstrap >/dev/null 2>&1 ||
        { apt-get update >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y debootstrap >/dev/null; } ||
        die "cannot install debootstrap"
    }
    do_umount "$root"
    rm -rf "$root"
    mkdir -p "$root"
    say "debootstrap trixie into $root from $(mirror) (about 2 min)"
    debootstrap --variant=minbase --include=python3.13,python3.13-venv,python3-pip,ca-certificates \
      trixie "$root" "$(mirror)" >"$root.debootstrap.log" 2>&1 ||
      die "debootstrap failed (see $root.debootstrap.log)"
    mkdir -p "$mark"
    touch "$mark/debootstrap"
  fi
  cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
  if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
    mkdir -p "$root/etc/ssl/certs"
    cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  fi
  [[ -f /etc/pip.conf ]] && cp /etc/pip.conf "$root/etc/pip.conf"
  do_mount "$root"
  CHROOT_ROOT=$root
  trap 'do_umount "$CHROOT_ROOT"' EXIT
  if [[ ! -f $mark/build-deps ]]; then
    say "apt-get install build tools inside the chroot (lru-dict and others build from source)"
    chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y build-essential \
      python3.13-dev libturbojpeg0 libffi-dev libssl-dev pkg-config >"$mark/apt.log" 2>&1 ||
      die "apt-get in the chroot failed (see $mark/apt.log)"
    touch "$mark/build-deps"
  fi
  say "Home Assistant $version into $root/opt/ha (about 4 min)"
  local w=$root/opt/ha-install
  rm -rf "$w" "$root/opt/ha"
  mkdir -p "$w"
  cp "$HERE/ha_requirements.py" "$w/"
  chroot "$root" python3.13 -m venv /opt/ha
  chroot "$root" /opt/ha/bin/pip download -q --no-deps "homeassistant==$version" -d /opt/ha-install \
    >"$w/pip.log" 2>&1 || die "pip download homeassistant failed (see $w/pip.log)"
  local wheel
  wheel=$(cd "$w" && ls homeassistant-"$version"-*.whl)
  chroot "$root" /opt/ha/bin/python -c 'import sys, zipfile; sys.stdout.write(zipfile.ZipFile(sys.argv[1]).read("homeassistant/package_constraints.txt").decode())' \
    "/opt/ha-install/$wheel" >"$w/constraints.txt"
  chroot "$root" /opt/ha/bin/pip install -q "/opt/ha-install/$wheel" -c /opt/ha-install/constraints.txt \
    >>"$w/pip.log" 2>&1 || die "pip install homeassistant failed (see $w/pip.log)"
  chroot "$root" /opt/ha/bin/python /opt/ha-install/ha_requirements.py >"$w/ha-requirements.txt" 2>>"$w/pip.log"
  say "integration requirements: $(tr '\n' ' ' <"$w/ha-requirements.txt")"
  chroot "$root" /opt/ha/bin/pip install -q -r /opt/ha-install/ha-requirements.txt \
    -c /opt/ha-install/constraints.txt >>"$w/pip.log" 2>&1 ||
    die "pip install of integration requirements failed (see $w/pip.log)"
  chroot "$root" /opt/ha/bin/python -c 'import hass_frontend, paho.mqtt.client, turbojpeg, av, numpy, sqlalchemy, aiohttp' ||
    die "the chroot's HA venv misses a module"
  [[ $(chroot "$root" /opt/ha/bin/hass --version) == "$version" ]] || die "hass --version is not $version"
  touch "$mark/ha-$version"
  say "Home Assistant $version ready in $root in $((SECONDS - t0)) s ($(du -sh "$root" 2>/dev/null | cut -f1))"
}

case ${1:-} in
  build) build "${2:?ROOT}" "${3:?VERSION}" ;;
  mount) do_mount "${2:?ROOT}" ;;
  umount) do_umount "${2:?ROOT}" ;;
  *) die "usage: ha-chroot.sh build ROOT VERSION | mount ROOT | umount ROOT" ;;
esac
