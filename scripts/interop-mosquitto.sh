#!/usr/bin/env bash
# Interop with a real MQTT broker: `kamstrup run` (simulated MULTICAL 403) publishes to its own
# Mosquitto on a free loopback port (login required), and mosquitto_sub checks what is left there:
# exact discovery topics, retained, with the right device_class/unit/state_class per register;
# the retained state with exact decimal text equal to the stored reading; availability online,
# then offline after SIGTERM; the `seed` JSON payload; re-publish on HA's birth message; removal
# of the configs of registers no longer configured; a wrong password reported as an auth error
# (Mosquitto's CONNACK 5). Exits non-zero on any mismatch; about 40 s.
#
# Env: KAMSTRUP_BIN (use this binary instead of building), E2E_RELEASE=1 (build --release),
#      E2E_KEEP=1 (keep the temp dir), E2E_VERBOSE=1 (print every check).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=e2e/lib.sh
source scripts/e2e/lib.sh
e2e_init mosquitto
CHECK="python3 $ROOT/scripts/e2e/check_mqtt.py"
COMPAT=2025.11 # the default; e2e-homeassistant.sh covers 2024.3 against a real HA

phase "setup (mosquitto install if missing, cargo build, broker)"
ensure_mosquitto
build_kamstrup
start_mosquitto

W=$E2E_WORK
printf '%s' "$MQTT_PASS" >"$W/mqtt-password"
printf '%s' "wrong-$MQTT_PASS" >"$W/mqtt-password-wrong"

write_config() { # $1 file, $2 password file, $3 client id, $4 db, [$5 registers line]
  cat >"$1" <<EOF
[storage]
path = "$4"

[web]
enabled = false

[[meter]]
name = "heat"
port = "sim:multical-403"
interval = "2s"
${5:-}

[mqtt]
url = "mqtt://127.0.0.1:$MQTT_PORT"
username = "$MQTT_USER"
password_file = "$2"
client_id = "$3"
timeout = "5s"

[homeassistant]
discovery_prefix = "homeassistant"
compat = "$COMPAT"
# Per-entity topics, what Domoticz' and openHAB's discovery readers take; device discovery (the
# default from 2024.11) is covered by the sinks' rumqttd tests and e2e-homeassistant.sh.
discovery = "entity"

[mqtt_json]
topic = "kamstrup/{meter}"
preset = "seed"
retain = true
EOF
}
write_config "$W/kamstrup.toml" "$W/mqtt-password" kamstrup-e2e "$W/kamstrup.db"
write_config "$W/kamstrup-wrong.toml" "$W/mqtt-password-wrong" kamstrup-e2e-wrong "$W/wrong.db"
write_config "$W/kamstrup-fewer.toml" "$W/mqtt-password" kamstrup-e2e "$W/kamstrup.db" \
  'registers = ["heat_energy", "volume", "t1", "t2"]'

phase "kamstrup run against the broker (3 polls)"
"$KAMSTRUP" run --config "$W/kamstrup.toml" >"$W/kamstrup.log" 2>&1 &
KPID=$!
track "$KPID"

export_json() { "$KAMSTRUP" history export --config "$W/kamstrup.toml" --format json >"$1" 2>>"$W/export.err"; }
readings() { export_json "$W/count.json" && python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$W/count.json"; }

wait_for '[[ $(readings) -ge 3 ]]' 30 || die "fewer than 3 readings stored after 30 s (see $W/kamstrup.log)"
export_json "$W/export-running.json"
SERIAL=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["serial"])' "$W/export-running.json")
log "meter serial $SERIAL; $(readings) readings stored"
wait_for "retained_dump kamstrup/$SERIAL/state | grep -q state" 10 || fail "no retained state on kamstrup/$SERIAL/state"

phase "availability while running"
retained_dump 'kamstrup/#' >"$W/running.dump"
run_checks "availability online while running" $CHECK topics --dump "$W/running.dump" \
  --expect "kamstrup/status=online" "kamstrup/$SERIAL/availability=online"

phase "HA birth message (homeassistant/status = online) → configs re-published"
retained_dump 'homeassistant/#' >"$W/before-birth.dump"
N_CONFIGS=$(grep -c "	homeassistant/sensor/kamstrup_${SERIAL}_" "$W/before-birth.dump" || true)
# Live messages only (-R); the probe topic tells us the subscription is in place.
msub -t 'homeassistant/sensor/+/config' -t e2e/probe -R -W 8 -F '%r\t%t\t%p' >"$W/live.dump" 2>/dev/null &
SUBPID=$!
track "$SUBPID"
wait_for "mpub -t e2e/probe -m x && grep -q e2e/probe '$W/live.dump'" 5 || fail "live subscriber not ready"
mpub -t homeassistant/status -m online
wait_for "[[ \$(grep -c '	homeassistant/sensor/kamstrup_${SERIAL}_' '$W/live.dump') -ge $N_CONFIGS ]]" 6 || true
stop_pid "$SUBPID"
wait "$SUBPID" 2>/dev/null || true
run_checks "re-publish on birth ($N_CONFIGS configs)" $CHECK republished \
  --before "$W/before-birth.dump" --live "$W/live.dump" --serial "$SERIAL"

phase "SIGTERM → bridge offline; every retained message against the store"
kill -TERM "$KPID"
for _ in $(seq 1 100); do kill -0 "$KPID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$KPID" 2>/dev/null; then
  fail "kamstrup still running 10 s after SIGTERM"
  stop_pid "$KPID"
fi
set +e
wait "$KPID"
KRC=$?
set -e
if [[ $KRC -eq 0 ]]; then pass "kamstrup exited 0 on SIGTERM"; else fail "kamstrup exit code $KRC on SIGTERM"; fi
export_json "$W/export.json"
retained_dump 'homeassistant/#' 'kamstrup/#' >"$W/final.dump"
run_checks "retained discovery, state, availability, seed payload" $CHECK retained \
  --dump "$W/final.dump" --export "$W/export.json" --serial "$SERIAL" --compat "$COMPAT" \
  --seed-topic kamstrup/heat --bridge-status offline
if grep -q ' ERROR \|panicked' "$W/kamstrup.log"; then
  fail "kamstrup logged errors: $(grep -m3 ' ERROR \|panicked' "$W/kamstrup.log" | tr '\n' ' ')"
else
  pass "kamstrup log has no ERROR"
fi

phase "restart with registers = [heat_energy, volume, t1, t2] → dropped entities removed"
BEFORE=$(readings)
"$KAMSTRUP" run --config "$W/kamstrup-fewer.toml" >"$W/kamstrup-fewer.log" 2>&1 &
KPID3=$!
track "$KPID3"
wait_for "[[ \$(readings) -ge $((BEFORE + 2)) ]]" 20 || fail "no new readings after the restart"
retained_dump 'homeassistant/#' >"$W/fewer.dump"
stop_pid "$KPID3"
wait "$KPID3" 2>/dev/null || true
run_checks "stale discovery configs cleared" $CHECK removed --dump "$W/fewer.dump" --serial "$SERIAL" \
  --gone power flow hours info --kept heat_energy volume t1 t2

phase "wrong password → auth error"
set +e
CHECK_OUT=$("$KAMSTRUP" check --no-meters --config "$W/kamstrup-wrong.toml" 2>&1)
CHECK_RC=$?
set -e
for sink in homeassistant mqtt_json; do
  if [[ $CHECK_RC -ne 0 ]] && grep -q "^FAIL $sink: .*not authorised.*(auth)\$" <<<"$CHECK_OUT"; then
    pass "kamstrup check: $sink FAIL with kind auth"
  else
    fail "kamstrup check with a wrong password (rc $CHECK_RC), $sink: $(tr '\n' ' ' <<<"$CHECK_OUT")"
  fi
done
"$KAMSTRUP" run --config "$W/kamstrup-wrong.toml" >"$W/kamstrup-wrong.log" 2>&1 &
KPID2=$!
track "$KPID2"
wait_for "[[ \$(grep -c 'delivery failed' '$W/kamstrup-wrong.log') -ge 2 ]]" 20 || true
stop_pid "$KPID2"
wait "$KPID2" 2>/dev/null || true
for sink in homeassistant mqtt_json; do
  if grep "delivery failed" "$W/kamstrup-wrong.log" | grep "sink=$sink" | grep -q "not authorised: broker refused the login (NotAuthorized)"; then
    pass "daemon logs $sink delivery failure as not authorised (CONNACK 5)"
  else
    fail "daemon log for $sink lacks the auth error: $(grep -m2 'sink=' "$W/kamstrup-wrong.log" | tr '\n' ' ')"
  fi
done
if grep -q "not authorised" "$W/mosquitto/mosquitto.log"; then
  pass "mosquitto refused the wrong password (not authorised)"
else
  fail "mosquitto log does not show the refused login"
fi
