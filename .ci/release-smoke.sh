#!/usr/bin/env bash
# Runs the release binaries of target/dist: aarch64 under qemu-aarch64, ARMv6 under qemu-arm with
# the Pi Zero's CPU (arm1176: an ARMv7 binary dies there with "Illegal instruction"), x86_64
# natively. Each: --version, and a read over TCP of a meter simulated by the host's binary, with
# the exact values of that meter (its clock nearly stopped, so they cannot move); the x86_64 one
# also runs `kamstrup demo` for a few seconds. The release tarballs must unpack to a binary that
# is byte-identical to the one tested.
#   KAMSTRUP_BIN=target/debug/kamstrup bash .ci/release-smoke.sh
set -euo pipefail
cd "$(dirname "$0")/.."
host=${KAMSTRUP_BIN:-target/debug/kamstrup}
dist=${DIST_DIR:-target/dist}
version=$("$host" --version | awk '{print $2}')
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "release-smoke: FAIL: $*" >&2; exit 1; }

# The meter: a MULTICAL 403 whose model clock runs a millionth of real time.
"$host" simulate --model multical-403 --listen 127.0.0.1:0 --speed 0.000001 >"$work/sim.out" 2>"$work/sim.err" &
pids+=($!)
for _ in $(seq 50); do grep -q 'tcp://' "$work/sim.out" && break; sleep 0.1; done
port=$(grep -o 'tcp://127\.0\.0\.1:[0-9]*' "$work/sim.out") || fail "simulator did not start: $(cat "$work/sim.err")"

# name=value unit for every register, as the README's JSON contract gives them.
values() { python3 -c '
import json, sys
doc = json.load(sys.stdin)
print("serial", doc["meter"]["serial"])
for r in doc["registers"]:
    print((r["name"] + "=" + r["value"] + " " + r["unit"]).rstrip())'; }
# The simulator's state is a function of absolute UTC time; --speed 0.000001 freezes it for the
# length of this script, so the host binary's reading is the reference every release binary must
# reproduce exactly (same registers, same decimals, same units).
expected=$("$host" read --port "$port" --format json | values)
for want in '^serial [0-9]+$' '^heat_energy=[0-9]+\.[0-9]+ GJ$' '^volume=[0-9]+\.[0-9]+ m³$' \
  '^t1=[0-9]+\.[0-9]+ °C$' '^t2=[0-9]+\.[0-9]+ °C$' '^power=[0-9.]+ kW$' '^flow=[0-9]+ l/h$' \
  '^hours=[0-9]+ h$' '^info=[0-9]+$' '^t1_t2=-?[0-9]+\.[0-9]+ K$'; do
  grep -Eq "$want" <<<"$expected" || fail "the host binary's reading lacks $want:
$expected"
done

declare -A triple=([x86_64]=x86_64-unknown-linux-musl [aarch64]=aarch64-unknown-linux-musl
  [armv6hf]=arm-unknown-linux-musleabihf)
declare -A runner=([x86_64]="" [aarch64]="qemu-aarch64-static" [armv6hf]="qemu-arm-static -cpu arm1176")
for name in ${SMOKE_TARGETS:-x86_64 aarch64 armv6hf}; do
  start=$(date +%s.%N)
  stem=kamstrup-$version-$name-linux-musl
  tar -xzf "$dist/$stem.tar.gz" -C "$work"
  for f in kamstrup README.md kamstrup.example.toml kamstrup.service; do
    [[ -f $work/$stem/$f ]] || fail "$stem.tar.gz lacks $f"
  done
  cmp -s "$work/$stem/kamstrup" "$dist/bin/${triple[$name]}/kamstrup" || fail "$stem.tar.gz holds another binary"
  grep -q '^ExecStart=/usr/local/bin/kamstrup run' "$work/$stem/kamstrup.service" || fail "$stem: unit's ExecStart"
  bin=$work/$stem/kamstrup
  # shellcheck disable=SC2086 # runner is a command with arguments
  got=$(${runner[$name]} "$bin" --version)
  [[ $got == "kamstrup $version" ]] || fail "$name --version: $got"
  # shellcheck disable=SC2086
  got=$(${runner[$name]} "$bin" read --port "$port" --format json | values)
  [[ $got == "$expected" ]] || fail "$name read differs from the host binary's reading:
$(diff <(echo "$expected") <(echo "$got"))"
  printf 'release-smoke: %-8s %s, --version and an exact read over TCP in %.1f s\n' "$name" \
    "${runner[$name]:-native}" "$(echo "$(date +%s.%N) - $start" | bc)"
done

# The x86_64 release binary runs the whole demo: simulated meters, daemon, dashboard.
bin=$work/kamstrup-$version-x86_64-linux-musl/kamstrup
"$bin" demo --dir "$work/demo" --port 0 --interval 1s >"$work/demo.out" 2>"$work/demo.err" &
demo=$!
pids+=($demo)
url=
for _ in $(seq 100); do
  url=$(sed -n 's|^dashboard: \(http://127\.0\.0\.1:[0-9]*/\)$|\1|p' "$work/demo.out" | head -1)
  [[ -n $url ]] && break
  sleep 0.1
done
[[ -n $url ]] || fail "demo printed no dashboard: $(cat "$work/demo.err")"
sleep 4
python3 - "$url" <<'PY' || fail "demo's API"
import json, sys, urllib.request
base = sys.argv[1]
meters = json.load(urllib.request.urlopen(base + "api/meters", timeout=10))["meters"]
assert len(meters) == 2, meters
page = urllib.request.urlopen(base, timeout=10).read().decode()
assert "app.js" in page
print(f"release-smoke: x86_64 demo: {len(meters)} meters on {base}")
PY
kill -TERM "$demo"
wait "$demo" || fail "demo exited non-zero after SIGTERM"
echo "release-smoke: ok"
