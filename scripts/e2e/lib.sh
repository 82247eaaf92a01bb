# Shared shell helpers for scripts/interop-mosquitto.sh and scripts/e2e-homeassistant.sh:
# result counting, timing, process cleanup, free ports, Mosquitto install/start, the binary.
# Source it after `set -euo pipefail` and `cd` to the repository root; call e2e_init first.

E2E_PIDS=()
E2E_CLEANUP=() # shell snippets run on exit after the processes stopped (unmounts), last first
E2E_PASSED=0
E2E_FAILED=0
E2E_FAILURES=()
E2E_START=$SECONDS
E2E_KEEP=${E2E_KEEP:-0}
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ in the work tree from the checkers

e2e_init() {
  E2E_NAME=$1
  E2E_WORK=$(mktemp -d "/tmp/kamstrup-$E2E_NAME.XXXXXX")
  trap e2e_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# Starts a timed phase (the previous one ends); the durations are printed on exit.
E2E_TIMES=()
E2E_PHASE=
E2E_PHASE_AT=$SECONDS
end_phase() {
  if [[ -n $E2E_PHASE ]]; then
    E2E_TIMES+=("$(printf '%5ss  %s' "$((SECONDS - E2E_PHASE_AT))" "$E2E_PHASE")")
  fi
  E2E_PHASE=
}
phase() {
  end_phase
  E2E_PHASE=$1
  E2E_PHASE_AT=$SECONDS
  log "phase: $1"
}

log() { printf '[%s +%ss] %s\n' "$E2E_NAME" "$((SECONDS - E2E_START))" "$*"; }

pass() {
  E2E_PASSED=$((E2E_PASSED + 1))
  printf '  PASS %s\n' "$*"
}

fail() {
  E2E_FAILED=$((E2E_FAILED + 1))
  E2E_FAILURES+=("$*")
  printf '  FAIL %s\n' "$*"
}

die() {
  printf '[%s] FATAL: %s\n' "$E2E_NAME" "$*" >&2
  E2E_FAILED=$((E2E_FAILED + 1))
  E2E_FAILURES+=("fatal: $*")
  exit 1
}

# Runs a checker that prints "PASS …"/"FAIL …" lines: every FAIL is shown and counted; the
# PASS lines are counted and summed up in one line under LABEL (all shown with E2E_VERBOSE=1).
# Usage: run_checks LABEL python3 scripts/e2e/check_mqtt.py …
run_checks() {
  local label=$1 out line n_pass=0 n_fail=0
  shift
  out=$("$@" 2>&1) || true
  while IFS= read -r line; do
    case $line in
      PASS\ *)
        n_pass=$((n_pass + 1))
        E2E_PASSED=$((E2E_PASSED + 1))
        if [[ ${E2E_VERBOSE:-0} == 1 ]]; then printf '  PASS %s\n' "${line#PASS }"; fi
        ;;
      FAIL\ *)
        n_fail=$((n_fail + 1))
        fail "$label: ${line#FAIL }"
        ;;
      '') ;;
      *) printf '       %s\n' "$line" ;;
    esac
  done <<<"$out"
  if ((n_pass + n_fail == 0)); then
    fail "$label: checker produced no result"
  elif ((n_fail == 0)); then
    printf '  PASS %s (%d checks)\n' "$label" "$n_pass"
  fi
}

# Remembers a background process to stop on exit.
track() { E2E_PIDS+=("$1"); }

# SIGTERM, up to 10 s grace, then SIGKILL; only the processes we started, by pid.
stop_pid() {
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

e2e_cleanup() {
  local rc=$? pid i
  trap - EXIT INT TERM
  for ((i = ${#E2E_PIDS[@]} - 1; i >= 0; i--)); do
    pid=${E2E_PIDS[$i]}
    stop_pid "$pid"
    wait "$pid" 2>/dev/null || true
  done
  for ((i = ${#E2E_CLEANUP[@]} - 1; i >= 0; i--)); do
    eval "${E2E_CLEANUP[$i]}" || true
  done
  local total=$((SECONDS - E2E_START))
  end_phase
  echo
  if ((${#E2E_TIMES[@]} > 0)); then
    echo "$E2E_NAME: time per phase"
    printf '  %s\n' "${E2E_TIMES[@]}"
  fi
  if [[ $rc -eq 0 && $E2E_FAILED -eq 0 ]]; then
    echo "$E2E_NAME: PASS ($E2E_PASSED checks, ${total}s)"
  else
    echo "$E2E_NAME: FAIL ($E2E_FAILED failed, $E2E_PASSED passed, ${total}s)"
    for f in "${E2E_FAILURES[@]}"; do echo "  - $f"; done
    echo "  logs kept in $E2E_WORK"
    E2E_KEEP=1
    [[ $rc -eq 0 ]] && rc=1
  fi
  if [[ $E2E_KEEP != 1 ]]; then
    rm -rf "$E2E_WORK"
  fi
  exit "$rc"
}

# A TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Waits until something accepts connections on 127.0.0.1:$1 (up to $2 seconds).
wait_port() {
  local port=$1 limit=${2:-10} start=$SECONDS
  while ((SECONDS - start < limit)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}

ensure_mosquitto() {
  PATH=$PATH:/usr/sbin # Debian installs the broker there, outside a normal user's PATH
  if command -v mosquitto >/dev/null && command -v mosquitto_sub >/dev/null &&
    command -v mosquitto_passwd >/dev/null; then
    return 0
  fi
  [[ $(id -u) -eq 0 ]] || die "Mosquitto is missing; run: sudo apt-get install -y mosquitto mosquitto-clients"
  log "installing mosquitto mosquitto-clients"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y mosquitto mosquitto-clients >"$E2E_WORK/apt.log" 2>&1; then
    apt-get update >>"$E2E_WORK/apt.log" 2>&1 || true
    apt-get install -y mosquitto mosquitto-clients >>"$E2E_WORK/apt.log" 2>&1 ||
      die "apt-get install mosquitto failed (see $E2E_WORK/apt.log)"
  fi
  PATH=$PATH:/usr/sbin
  command -v mosquitto >/dev/null || die "mosquitto not found after install"
}

# Starts a private broker on 127.0.0.1:$MQTT_PORT with one user; sets MQTT_PORT, MQTT_USER,
# MQTT_PASS, MQTT_PID. Anonymous clients are refused.
start_mosquitto() {
  PATH=$PATH:/usr/sbin
  local dir=$E2E_WORK/mosquitto
  mkdir -p "$dir"
  MQTT_PORT=$(free_port)
  MQTT_USER=kamstrup
  MQTT_PASS="e2e-$RANDOM-$RANDOM"
  mosquitto_passwd -b -c "$dir/passwd" "$MQTT_USER" "$MQTT_PASS" >/dev/null 2>&1
  {
    echo "listener $MQTT_PORT 127.0.0.1"
    echo "persistence false"
    echo "allow_anonymous false"
    echo "password_file $dir/passwd"
    echo "log_dest file $dir/mosquitto.log"
    echo "log_type error"
    echo "log_type warning"
    echo "log_type notice"
    echo "log_type information"
    echo "connection_messages true"
    # Started as root, Mosquitto drops to user "mosquitto", which cannot read our temp dir.
    if [[ $(id -u) -eq 0 ]]; then echo "user root"; fi
  } >"$dir/mosquitto.conf"
  chmod 600 "$dir/passwd"
  mosquitto -c "$dir/mosquitto.conf" >"$dir/stdout.log" 2>&1 &
  MQTT_PID=$!
  track "$MQTT_PID"
  wait_port "$MQTT_PORT" 10 || die "mosquitto did not start (see $dir)"
  log "mosquitto $(mosquitto -h 2>/dev/null | head -1 | awk '{print $3}') on 127.0.0.1:$MQTT_PORT (pid $MQTT_PID)"
}

# mosquitto_sub with our broker and credentials.
msub() { mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -u "$MQTT_USER" -P "$MQTT_PASS" "$@"; }
mpub() { mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -u "$MQTT_USER" -P "$MQTT_PASS" "$@"; }

# Every retained message under the given filters, one per line: "<retain>\t<topic>\t<payload>".
retained_dump() {
  local args=() f
  for f in "$@"; do args+=(-t "$f"); done
  msub "${args[@]}" --retained-only -W 2 -F '%r\t%t\t%p' 2>/dev/null || true
}

# Builds (if needed) and locates the kamstrup binary; sets KAMSTRUP.
# KAMSTRUP_BIN overrides; otherwise `cargo build -p kamstrup-cli --bin kamstrup` into
# $CARGO_TARGET_DIR (default ./target), with --release when E2E_RELEASE=1.
build_kamstrup() {
  if [[ -n ${KAMSTRUP_BIN:-} ]]; then
    KAMSTRUP=$KAMSTRUP_BIN
  else
    local profile=debug flags=()
    if [[ ${E2E_RELEASE:-0} == 1 ]]; then
      profile=release
      flags=(--release)
    fi
    log "cargo build -p kamstrup-cli --bin kamstrup ${flags[*]}"
    cargo build -q -p kamstrup-cli --bin kamstrup "${flags[@]}" ||
      die "cargo build failed"
    KAMSTRUP=${CARGO_TARGET_DIR:-target}/$profile/kamstrup
  fi
  [[ -x $KAMSTRUP ]] || die "no kamstrup binary at $KAMSTRUP"
  KAMSTRUP=$(realpath "$KAMSTRUP")
}

# Waits until $1 (a command string) succeeds, up to $2 seconds.
wait_for() {
  local what=$1 limit=$2 start=$SECONDS
  while ((SECONDS - start < limit)); do
    if eval "$what" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  return 1
}
