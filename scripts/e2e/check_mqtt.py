"""Checks what kamstrup left on a real MQTT broker, from mosquitto_sub dumps.

Dump format (mosquitto_sub -F '%r\\t%t\\t%p'): one message per line, "<retained>\\t<topic>\\t<payload>".

  check_mqtt.py retained --dump F --export E --serial S --compat C [--prefix P] [--base B]
                [--seed-topic T] [--bridge-status offline|online]
      discovery configs (exact topics, retained, device_class/unit/state_class/…), the state
      topic (retained, exact decimal text equal to the stored reading it names), availability,
      and the seed-preset JSON payload.
  check_mqtt.py republished --before F --live L --serial S [--prefix P]
      every config seen retained before was re-published live, unchanged.
  check_mqtt.py topics --dump F --expect TOPIC=PAYLOAD ...
      each topic is retained with exactly that payload.
  check_mqtt.py removed --dump F --serial S --gone REG… --kept REG…
      configs of registers no longer configured were cleared; the others are still retained.
"""

import argparse
import json
import sys

from expect import Checks, exact, expected, find_reading, latest, load_export, version

ALLOWED_DEVICE_KEYS_2024_3 = {
    "identifiers", "connections", "name", "manufacturer", "model", "serial_number",
    "sw_version", "hw_version", "suggested_area", "via_device", "configuration_url",
}


def read_dump(path):
    """{topic: (retained, payload)}; the last message per topic wins."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            parts = line.split("\t", 2)
            if len(parts) < 3:
                parts.append("")
            retained, topic, payload = parts
            out[topic] = (retained == "1", payload)
    return out


def slug(text):
    out = ""
    for ch in text:
        if ch.isascii() and ch.isalnum():
            out += ch.lower()
        elif not out.endswith("_"):
            out += "_"
    return out.strip("_") or "x"


def decimals(text):
    return len(text.split(".", 1)[1]) if "." in text else 0


def check_retained(a, c):
    dump = read_dump(a.dump)
    readings = load_export(a.export)
    serial = int(a.serial)
    mine = [r for r in readings if int(r["serial"]) == serial and not r.get("implausible")]
    if not c.ok(bool(mine), f"store has readings of serial {serial}"):
        return
    # Every register delivered since start has a config (the sink keeps them all).
    registers = {}
    for r in mine:
        for reg in r["reading"]["registers"]:
            registers[reg["name"]] = reg
    for n in a.require:
        c.ok(n in registers, f"store has register {n}")
    want_topics = {f"{a.prefix}/sensor/kamstrup_{serial}_{slug(n)}/config": n for n in registers}
    have = {t for t in dump if t.startswith(f"{a.prefix}/sensor/kamstrup_{serial}_")}
    # The bridge's own health per meter: diagnostic sensors on <base>/<serial>/health.
    health = {f"{a.prefix}/sensor/kamstrup_{serial}_{n}/config": n
              for n in ("last_read", "read_errors_24h")}
    c.eq(sorted(have - set(want_topics) - set(health)), [], "no unexpected discovery topics")
    for topic, name in sorted(health.items()):
        if c.ok(topic in dump, f"health config {topic} exists"):
            cfg = exact(dump[topic][1])
            c.eq(cfg.get("entity_category"), "diagnostic", f"{name}: entity_category")
            c.eq(cfg.get("state_topic"), f"{a.base}/{serial}/health", f"{name}: state_topic")
    state_topic = f"{a.base}/{serial}/state"
    meter_avail = f"{a.base}/{serial}/availability"
    for topic, name in sorted(want_topics.items()):
        if not c.ok(topic in dump, f"config {topic} exists"):
            continue
        retained, payload = dump[topic]
        c.ok(retained, f"config {topic} is retained")
        try:
            cfg = exact(payload)
        except ValueError as e:
            c.ok(False, f"config {topic} is JSON", str(e))
            continue
        reg = registers[name]
        dc, unit, sc, diag, ha_value = expected(name, reg["unit"], reg["value"], a.compat)
        what = f"{name}:"
        c.eq(cfg.get("device_class"), dc, f"{what} device_class")
        c.eq(cfg.get("unit_of_measurement"), unit, f"{what} unit_of_measurement")
        c.eq(cfg.get("state_class"), sc, f"{what} state_class")
        c.eq(cfg.get("entity_category"), "diagnostic" if diag else None, f"{what} entity_category")
        c.eq(cfg.get("unique_id"), f"kamstrup_{serial}_{slug(name)}", f"{what} unique_id")
        c.eq(cfg.get("state_topic"), state_topic, f"{what} state_topic")
        c.eq(cfg.get("value_template"), "{{ value_json.%s }}" % slug(name), f"{what} value_template")
        c.ok(bool(cfg.get("name")), f"{what} has a name")
        c.eq(
            [x.get("topic") for x in cfg.get("availability", [])],
            [f"{a.base}/status", meter_avail],
            f"{what} availability topics",
        )
        c.eq(cfg.get("availability_mode"), "all", f"{what} availability_mode")
        c.eq(str(cfg.get("suggested_display_precision")), str(decimals(ha_value)),
             f"{what} suggested_display_precision")
        c.ok("expire_after" in cfg, f"{what} expire_after set")
        c.eq(cfg.get("object_id") is not None, version(a.compat) < (2025, 10),
             f"{what} object_id only for compat < 2025.10")
        dev = cfg.get("device", {})
        c.eq(dev.get("identifiers"), [f"kamstrup_{serial}"], f"{what} device identifiers")
        c.eq(dev.get("manufacturer"), "Kamstrup", f"{what} device manufacturer")
        c.eq(dev.get("serial_number"), str(serial) if version(a.compat) >= (2024, 2) else None,
             f"{what} device serial_number")
        if version(a.compat) < (2024, 4):
            c.eq(sorted(set(dev) - ALLOWED_DEVICE_KEYS_2024_3), [],
                 f"{what} device keys all known to HA {a.compat}")
        c.eq(cfg.get("origin", {}).get("name"), "kamstrup-bridge", f"{what} origin name")

    # The state: retained, exact text, equal to the stored reading it was made from.
    if c.ok(state_topic in dump, f"state {state_topic} exists"):
        retained, payload = dump[state_topic]
        c.ok(retained, f"state {state_topic} is retained")
        state = exact(payload)
        stored = find_reading(readings, serial, state.get("taken_at", ""))
        if c.ok(stored is not None, f"state taken_at {state.get('taken_at')} is a stored reading"):
            regs = {r["name"]: r for r in stored["reading"]["registers"]}
            c.eq(sorted(k for k in state if k not in ("taken_at", "info_flags")),
                 sorted(slug(n) for n in regs), "state has exactly the stored registers")
            if "info" in regs:
                # The info code's problem flags for HA's binary sensors: "problem" plus the
                # named bits of a MULTICAL 403, all OFF for info 0.
                flags = state.get("info_flags", {})
                code = int(regs["info"]["value"])
                c.eq(flags.get("problem"), "ON" if code else "OFF", "info_flags.problem")
                c.eq(len(flags), 16, "info_flags: problem + 15 named bits (MULTICAL 403)")
            for n, reg in sorted(regs.items()):
                want = expected(n, reg["unit"], reg["value"], a.compat)[4]
                c.eq(state.get(slug(n)), want, f"state {n} = stored {reg['value']} {reg['unit']}")
            # Exact text, not just the same value: the payload carries the literal digits.
            for n in ("t1", "heat_energy", "volume"):
                if n in regs:
                    lit = '"%s":%s' % (n, expected(n, regs[n]["unit"], regs[n]["value"], a.compat)[4])
                    c.ok(lit in payload, f"state payload contains {lit} literally")

    # Availability.
    want_bridge = a.bridge_status
    for topic, want in ((f"{a.base}/status", want_bridge), (meter_avail, "online")):
        if c.ok(topic in dump, f"{topic} exists"):
            retained, payload = dump[topic]
            c.ok(retained, f"{topic} is retained")
            c.eq(payload, want, f"{topic} payload")

    # The seed preset's payload (the original 66C script's four keys).
    if a.seed_topic:
        if c.ok(a.seed_topic in dump, f"seed payload on {a.seed_topic} exists"):
            retained, payload = dump[a.seed_topic]
            c.ok(retained, f"seed payload on {a.seed_topic} is retained")
            seed = exact(payload)
            c.eq(sorted(seed), sorted(["Energy", "Volume", "Temperature_in", "Temperature_out"]),
                 "seed payload keys")
            last = latest(readings, serial)
            regs = {r["name"]: r["value"] for r in last["reading"]["registers"]}
            for key, name in (("Energy", "heat_energy"), ("Volume", "volume"),
                              ("Temperature_in", "t1"), ("Temperature_out", "t2")):
                c.eq(seed.get(key), regs.get(name), f"seed {key} = stored {name} (exact text)")


def check_republished(a, c):
    before = read_dump(a.before)
    live = read_dump(a.live)
    prefix = f"{a.prefix}/sensor/kamstrup_{a.serial}_"
    topics = sorted(t for t in before if t.startswith(prefix) and t.endswith("/config"))
    c.ok(bool(topics), "configs were retained before the birth message")
    for t in topics:
        if c.ok(t in live, f"re-published {t} after {a.prefix}/status online"):
            c.ok(not live[t][0], f"{t} arrived live (not a stale retained copy)")
            c.eq(live[t][1], before[t][1], f"{t} re-published unchanged")


def check_topics(a, c):
    dump = read_dump(a.dump)
    for item in a.expect:
        topic, want = item.split("=", 1)
        if c.ok(topic in dump, f"{topic} exists"):
            c.ok(dump[topic][0], f"{topic} is retained")
            c.eq(dump[topic][1], want, f"{topic} payload")


def check_removed(a, c):
    dump = read_dump(a.dump)
    for n in a.gone:
        t = f"{a.prefix}/sensor/kamstrup_{a.serial}_{n}/config"
        c.ok(t not in dump, f"{t} no longer retained", f"still {dump.get(t, (0, ''))[1][:80]}")
    for n in a.kept:
        t = f"{a.prefix}/sensor/kamstrup_{a.serial}_{n}/config"
        c.ok(t in dump and dump[t][0] and dump[t][1], f"{t} still retained")


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("retained")
    r.add_argument("--dump", required=True)
    r.add_argument("--export", required=True)
    r.add_argument("--serial", required=True)
    r.add_argument("--compat", required=True)
    r.add_argument("--prefix", default="homeassistant")
    r.add_argument("--base", default="kamstrup")
    r.add_argument("--seed-topic")
    r.add_argument("--bridge-status", default="online")
    r.add_argument("--require", nargs="*", default=[
        "heat_energy", "volume", "t1", "t2", "t1_t2", "power", "flow", "hours", "info"])
    rp = sub.add_parser("republished")
    rp.add_argument("--before", required=True)
    rp.add_argument("--live", required=True)
    rp.add_argument("--serial", required=True)
    rp.add_argument("--prefix", default="homeassistant")
    t = sub.add_parser("topics")
    t.add_argument("--dump", required=True)
    t.add_argument("--expect", nargs="+", required=True)
    rm = sub.add_parser("removed")
    rm.add_argument("--dump", required=True)
    rm.add_argument("--serial", required=True)
    rm.add_argument("--prefix", default="homeassistant")
    rm.add_argument("--gone", nargs="+", required=True)
    rm.add_argument("--kept", nargs="+", required=True)
    a = p.parse_args()
    c = Checks()
    {"retained": check_retained, "republished": check_republished, "topics": check_topics,
     "removed": check_removed}[a.cmd](a, c)
    sys.exit(1 if c.failed else 0)


if __name__ == "__main__":
    main()
