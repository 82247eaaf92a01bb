"""What Home Assistant must get for each register, written independently of the Rust mapping.

Shared by check_mqtt.py (discovery payloads on the broker) and check_ha.py (what HA made of
them). Values come from `kamstrup history export --format json` (the daemon's store), read as
exact decimal text; the expected HA value is derived from that text with decimal arithmetic.
"""

import decimal
import json


def version(text):
    """'2024.3' / '2024.3.3' -> (2024, 3)."""
    parts = text.split(".")
    return int(parts[0]), int(parts[1])


ENERGY_UNITS = {"J", "kJ", "MJ", "GJ", "Wh", "kWh", "MWh", "GWh", "cal", "kcal", "Mcal", "Gcal"}


def expected(register, unit, value, compat):
    """(device_class, unit, state_class, diagnostic, ha_value_text) for one stored register.

    `value` is the stored exact decimal text; `ha_value_text` is the exact text the bridge must
    send (converted exactly where HA needs another unit).
    """
    c = version(compat)
    if unit in ENERGY_UNITS:
        return "energy", unit, "total_increasing", False, value
    if unit == "m³":
        return "volume", "m³", "total_increasing", False, value
    if unit == "°C":
        return "temperature", "°C", "measurement", False, value
    if unit == "K":
        # Never `temperature` (HA would convert it as an absolute temperature).
        dc = "temperature_delta" if c >= (2025, 11) else None
        return dc, "K", "measurement", False, value
    if unit in ("W", "kW", "MW"):
        return "power", unit, "measurement", False, value
    if unit == "l/h":
        dc = "volume_flow_rate" if c >= (2024, 2) else None
        if c >= (2025, 5):
            return dc, "L/h", "measurement", False, value
        m3h = format(decimal.Decimal(value).scaleb(-3), "f")
        return dc, "m³/h", "measurement", False, m3h
    if unit == "h":
        return "duration", "h", "total_increasing", True, value
    if unit == "":
        return None, None, None, True, value
    raise ValueError(f"no expectation for {register} in {unit!r}")


def exact(text):
    """Parses JSON keeping every number as its literal text."""
    return json.loads(text, parse_float=str, parse_int=str)


def load_export(path):
    """The stored readings (history export --format json), oldest first."""
    with open(path, encoding="utf-8") as f:
        readings = exact(f.read())
    readings.sort(key=lambda r: r["reading"]["taken_at"])
    return readings


def second(ts):
    """'2026-11-21T14:20:23.210Z' / '…+00:00' -> '2026-11-21T14:20:23' (the state's resolution)."""
    return ts.replace("Z", "").split("+")[0].split(".")[0]


def find_reading(readings, serial, taken_at):
    """The stored reading of `serial` taken in the same second as `taken_at`."""
    hits = [
        r for r in readings
        if int(r["serial"]) == int(serial) and second(r["reading"]["taken_at"]) == second(taken_at)
    ]
    return hits[-1] if hits else None


def latest(readings, serial):
    hits = [r for r in readings if int(r["serial"]) == int(serial) and not r.get("implausible")]
    return hits[-1] if hits else None


class Checks:
    """Prints PASS/FAIL lines (read by lib.sh's run_checks) and remembers failures."""

    def __init__(self):
        self.failed = 0

    def ok(self, cond, what, detail=""):
        if cond:
            print(f"PASS {what}")
        else:
            self.failed += 1
            print(f"FAIL {what}{': ' + detail if detail else ''}")
        return cond

    def eq(self, got, want, what):
        return self.ok(got == want, f"{what} = {want!r}", f"got {got!r}")
