#!/usr/bin/env bash
# Installs the amd64 .deb of target/dist into a Debian bookworm chroot (debootstrap minbase plus
# systemd, cached as a tarball in /var/cache/kamstrup-ci) and checks what a user gets: files,
# the conffile, the service user and its groups, `systemd-analyze verify` of the unit,
# `kamstrup check` as the service user against a simulated meter, and dpkg's conffile rules:
#   remove keeps the edited /etc/kamstrup/kamstrup.toml, a reinstall keeps the edit (no prompt),
#   purge deletes it, and a reinstall after purge brings back the shipped one.
# Also checks the arm64/armhf .debs' control fields and binaries. Runs as root.
#   KAMSTRUP_BIN=target/debug/kamstrup bash .ci/deb-chroot.sh
set -euo pipefail
cd "$(dirname "$0")/.."
host=${KAMSTRUP_BIN:-target/debug/kamstrup}
dist=${DIST_DIR:-target/dist}
cache=${KAMSTRUP_CI_CACHE:-/var/cache/kamstrup-ci}
version=$("$host" --version | awk '{print $2}')
pkg=kamstrup-bridge
fail() { echo "deb-chroot: FAIL: $*" >&2; exit 1; }
say() { echo "deb-chroot: $*"; }

# The arm .debs: right architecture, a static binary for the right CPU (ARMv6 for armhf, so it
# runs on every Raspberry Pi OS as on Debian).
# (DEB_ARM_CHECK=0 skips them, for a local run with only the amd64 package built.)
[[ ${DEB_ARM_CHECK:-1} == 0 ]] && arm_pairs=() || arm_pairs=(arm64:aarch64 armhf:ARM)
for pair in "${arm_pairs[@]}"; do
  arch=${pair%%:*} cpu=${pair#*:}
  deb=$dist/${pkg}_${version}-1_${arch}.deb
  [[ -f $deb ]] || fail "missing $deb"
  [[ $(dpkg-deb -f "$deb" Architecture) == "$arch" ]] || fail "$deb: Architecture"
  x=$(mktemp -d)
  dpkg-deb -x "$deb" "$x"
  file -b "$x/usr/bin/kamstrup" | grep -Eq "statically linked|static-pie linked" || fail "$deb: binary not static"
  file -b "$x/usr/bin/kamstrup" | grep -q "$cpu" || fail "$deb: not an $cpu binary"
  if [[ $arch == armhf ]]; then
    # The ELF attributes name the CPU architecture the binary was built for: v6, not v7.
    readelf -A "$x/usr/bin/kamstrup" | grep -q 'Tag_CPU_arch: v6' || fail "$deb: not ARMv6"
  fi
  rm -rf "$x"
  say "$deb: $arch, static, $cpu"
done

deb=$dist/${pkg}_${version}-1_amd64.deb
[[ -f $deb ]] || fail "missing $deb"
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
tarball=$cache/bookworm-minbase-systemd.tar.gz
mkdir -p "$cache"
if [[ ! -f $tarball ]]; then
  say "debootstrap bookworm (minbase) from $mirror, plus systemd; cached as $tarball"
  command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null
  build=$(mktemp -d)
  debootstrap --variant=minbase bookworm "$build" "$mirror" >/dev/null
  chroot "$build" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null
  chroot "$build" apt-get clean
  tar -C "$build" -czf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  rm -rf "$build"
fi

root=$(mktemp -d)
sim_pid=
cleanup() {
  [[ -n $sim_pid ]] && kill "$sim_pid" 2>/dev/null || true
  for m in dev/pts dev sys proc; do mountpoint -q "$root/$m" && umount -l "$root/$m"; done
  rm -rf "$root"
}
trap cleanup EXIT
tar -C "$root" -xzf "$tarball"
chmod 755 "$root" # the chroot's / (the tarball's "./" came from a 0700 mktemp dir)
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
mount --bind /sys "$root/sys"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
cp "$deb" "$root/tmp/"
in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@" </dev/null; }
install_deb() { in_root apt-get install -y -qq "/tmp/$(basename "$deb")" >/dev/null || fail "apt-get install"; }

install_deb
say "installed $(basename "$deb") with apt-get"
for f in /usr/bin/kamstrup /etc/kamstrup/kamstrup.toml /usr/lib/sysusers.d/$pkg.conf \
  /usr/share/man/man1/kamstrup.1.gz /usr/share/doc/$pkg/README.md /usr/share/doc/$pkg/kamstrup.example.toml; do
  [[ -f $root$f ]] || fail "$f not installed"
done
unit=$(in_root dpkg -L $pkg | grep '/systemd/system/kamstrup.service$') || fail "no kamstrup.service in the package"
[[ $(in_root kamstrup --version) == "kamstrup $version" ]] || fail "kamstrup --version"
in_root dpkg-query -W -f='${Conffiles}\n' $pkg | grep -q '^ /etc/kamstrup/kamstrup.toml ' || fail "kamstrup.toml is not a conffile"
in_root zcat /usr/share/man/man1/kamstrup.1.gz | grep -q 'kamstrup addon-config' || fail "man page lacks the subcommands"
say "files: /usr/bin/kamstrup, conffile /etc/kamstrup/kamstrup.toml, $unit, sysusers, man page, docs"

# The service user: a system user with no login, in its own group and in dialout.
IFS=: read -r _ _ uid _ _ home shell < <(in_root getent passwd kamstrup) || fail "no user kamstrup"
((uid < 1000)) || fail "kamstrup is not a system user (uid $uid)"
[[ $shell == /usr/sbin/nologin && $home == /var/lib/kamstrup ]] || fail "user kamstrup: home $home, shell $shell"
groups=$(in_root id -nG kamstrup)
[[ " $groups " == *" kamstrup "* && " $groups " == *" dialout "* ]] || fail "groups of kamstrup: $groups"
say "user kamstrup: uid $uid, groups: $groups, home $home, shell $shell"

# --man=no: minbase has no man-db to resolve Documentation=man:kamstrup(1) (checked above).
in_root systemd-analyze verify --man=no "$unit" || fail "systemd-analyze verify $unit"
score=$(in_root systemd-analyze security --offline=true "$unit" 2>/dev/null | tail -1)
say "systemd-analyze verify: ok; security: $score"
for want in 'User=kamstrup' 'SupplementaryGroups=dialout' 'StateDirectory=kamstrup' 'DevicePolicy=closed' \
  'DeviceAllow=char-ttyUSB rw' 'DeviceAllow=char-ttyACM rw' 'Restart=on-failure' 'After=time-sync.target' \
  'ExecStart=/usr/bin/kamstrup run --config /etc/kamstrup/kamstrup.toml'; do
  grep -q "^$want" "$root$unit" || fail "unit lacks $want"
done
grep -q '^PrivateDevices=yes' "$root$unit" && fail "PrivateDevices=yes would hide the IR head"

# `kamstrup check` as the service user against a simulated meter (host binary, TCP on
# 127.0.0.1, which the chroot shares). The edit is also what the conffile checks below keep.
"$host" simulate --model multical-403 --listen 127.0.0.1:0 >"$root/tmp/sim.out" 2>/dev/null &
sim_pid=$!
for _ in $(seq 50); do grep -q 'tcp://' "$root/tmp/sim.out" && break; sleep 0.1; done
port=$(grep -o 'tcp://127\.0\.0\.1:[0-9]*' "$root/tmp/sim.out") || fail "simulator did not start"
sed -i "s|^port = \"/dev/ttyUSB0\"|port = \"$port\"|" "$root/etc/kamstrup/kamstrup.toml"
grep -q "^port = \"$port\"" "$root/etc/kamstrup/kamstrup.toml" || fail "could not edit the config"
# What systemd's StateDirectory= would make.
in_root install -d -o kamstrup -g kamstrup -m 0750 /var/lib/kamstrup
check() {
  local out
  out=$(in_root runuser -u kamstrup -- kamstrup check --config /etc/kamstrup/kamstrup.toml 2>&1) ||
    fail "kamstrup check as user kamstrup:
$out"
  grep -q "^ok   meter heat on $port" <<<"$out" || fail "check did not read the meter: $out"
  say "kamstrup check as user kamstrup: $(grep -c '^ok' <<<"$out") ok"
}
check

# dpkg conffile rules.
in_root apt-get remove -y -qq $pkg >/dev/null || fail "apt-get remove"
[[ ! -e $root/usr/bin/kamstrup ]] || fail "remove left /usr/bin/kamstrup"
[[ $(in_root dpkg-query -W -f='${db:Status-Abbrev}' $pkg) == "rc " ]] || fail "after remove: not in state config-files"
grep -q "^port = \"$port\"" "$root/etc/kamstrup/kamstrup.toml" || fail "remove lost the edited config"
say "remove: binary gone, edited /etc/kamstrup/kamstrup.toml kept (state rc)"
install_deb
grep -q "^port = \"$port\"" "$root/etc/kamstrup/kamstrup.toml" || fail "reinstall replaced the edited config"
check
say "reinstall after remove: the edit kept, no prompt"
in_root apt-get purge -y -qq $pkg >/dev/null || fail "apt-get purge"
[[ ! -e $root/etc/kamstrup/kamstrup.toml ]] || fail "purge kept /etc/kamstrup/kamstrup.toml"
say "purge: /etc/kamstrup/kamstrup.toml deleted"
install_deb
grep -q '^port = "/dev/ttyUSB0"' "$root/etc/kamstrup/kamstrup.toml" || fail "reinstall after purge: not the shipped config"
in_root getent passwd kamstrup >/dev/null || fail "reinstall after purge: no user"
say "reinstall after purge: the shipped config is back, user kamstrup exists"
say "ok"
