"""Drives and checks a real Home Assistant for scripts/e2e-homeassistant.sh.

Runs with the HA venv's python (it uses aiohttp, which HA ships). Subcommands:

  wait       --url U --log F --timeout S     until GET /auth/providers answers (abort on recovery mode)
  onboard    --url U --token-out F           first user via onboarding, then a long-lived token
  mqtt-entry --url U --token-file F --port P --username N --password-file F
  check      --url U --token-file F --export E --kamstrup K --config T --db D --compat C
             --meters N --rest ENTITY=REG@METER:NAME:ICON … [--show]
             devices (registry), MQTT entities (registry + /api/states) and the REST sink's states
  entities   --url U --token-file F --serial S… [--rest E…]   exit 0 once all entities have values
  listeners  --pid P                      sockets P listens on; exit 1 unless all are loopback
  unavailable --url U --token-file F --serial S…   exit 0 once every MQTT entity is unavailable
  energy-source --url U --token-file F --entity E   add E as a gas source (energy/save_prefs)
  energy-verdict --url U --token-file F --entity E --timeout S
             wait for E's first statistics compile, then energy/validate must report no issue
  registry-save --url U --token-file F --out J      unique_id -> entity_id of every MQTT entity
  registry-same --url U --token-file F --before J --since ISO
             the same entity ids as before, and each meter entity's history reaches back before ISO
  statistics --url U --token-file F --log L --entity REGISTER=ENTITY… --unit REGISTER=UNIT…
             after the bridge imported the hour-log records of L (`kamstrup log --format json`):
             recorder/statistics_during_period (change, sum, state) equals the logger exactly
"""

import argparse
import asyncio
import decimal
import json
import os
import sqlite3
import sys
import time

import aiohttp

from expect import Checks, expected, load_export, second, version

CLIENT_ID = "http://127.0.0.1/kamstrup-e2e"


def recovery(log_path):
    try:
        with open(log_path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except FileNotFoundError:
        return False
    return "recovery mode" in text.lower() or "safe mode" in text.lower()


async def cmd_wait(a):
    deadline = time.monotonic() + a.timeout
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            if recovery(a.log):
                print("Home Assistant entered recovery mode", file=sys.stderr)
                return 3
            try:
                async with s.get(f"{a.url}/auth/providers", timeout=aiohttp.ClientTimeout(total=2)) as r:
                    # Before onboarding HA answers 400 "onboarding_required": up all the same.
                    if r.status == 200 or "onboarding_required" in await r.text():
                        return 0
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass
            await asyncio.sleep(0.25)
    print(f"no answer from {a.url}/auth/providers within {a.timeout} s", file=sys.stderr)
    return 1


async def ws_call(url, token, *messages):
    """Authenticates on the websocket and returns the result of each message, in order."""
    ws_url = url.replace("http://", "ws://") + "/api/websocket"
    results = []
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(ws_url) as ws:
            msg = await ws.receive_json()
            assert msg["type"] == "auth_required", msg
            await ws.send_json({"type": "auth", "access_token": token})
            msg = await ws.receive_json()
            if msg["type"] != "auth_ok":
                raise RuntimeError(f"websocket auth failed: {msg.get('type')}")
            for i, m in enumerate(messages, start=1):
                await ws.send_json({"id": i, **m})
                while True:
                    msg = await ws.receive_json()
                    if msg.get("id") == i and msg.get("type") == "result":
                        break
                if not msg.get("success"):
                    raise RuntimeError(f"{m['type']}: {msg.get('error')}")
                results.append(msg["result"])
    return results


async def cmd_onboard(a):
    async with aiohttp.ClientSession() as s:
        body = {
            "name": "Kamstrup E2E",
            "username": "kamstrup",
            "password": os.urandom(12).hex(),
            "client_id": CLIENT_ID,
            "language": "en",
        }
        async with s.post(f"{a.url}/api/onboarding/users", json=body) as r:
            if r.status != 200:
                print(f"onboarding/users: HTTP {r.status} {await r.text()}", file=sys.stderr)
                return 1
            code = (await r.json())["auth_code"]
        form = {"grant_type": "authorization_code", "code": code, "client_id": CLIENT_ID}
        async with s.post(f"{a.url}/auth/token", data=form) as r:
            if r.status != 200:
                print(f"auth/token: HTTP {r.status} {await r.text()}", file=sys.stderr)
                return 1
            access = (await r.json())["access_token"]
    (token,) = await ws_call(
        a.url, access,
        {"type": "auth/long_lived_access_token", "client_name": "kamstrup-e2e", "lifespan": 30},
    )
    fd = os.open(a.token_out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token)
    return 0


def read_token(path):
    with open(path, encoding="utf-8") as f:
        return f.read().strip()


async def cmd_mqtt_entry(a):
    token = read_token(a.token_file)
    with open(a.password_file, encoding="utf-8") as f:
        password = f.read()
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as s:
        async with s.post(f"{a.url}/api/config/config_entries/flow", json={"handler": "mqtt"}) as r:
            flow = await r.json()
            if r.status != 200 or flow.get("type") != "form":
                print(f"mqtt flow start: HTTP {r.status} {flow}", file=sys.stderr)
                return 1
        data = {"broker": "127.0.0.1", "port": a.port, "username": a.username, "password": password}
        async with s.post(f"{a.url}/api/config/config_entries/flow/{flow['flow_id']}", json=data) as r:
            res = await r.json()
            if r.status != 200 or res.get("type") != "create_entry":
                print(f"mqtt flow: HTTP {r.status} {res}", file=sys.stderr)
                return 1
    return 0


async def get_states(url, token):
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as s:
        async with s.get(f"{url}/api/states") as r:
            r.raise_for_status()
            return {st["entity_id"]: st for st in await r.json()}


async def cmd_entities(a):
    """Exit 0 once each serial's entities exist and none is unknown/unavailable."""
    token = read_token(a.token_file)
    (ents,) = await ws_call(a.url, token, {"type": "config/entity_registry/list"})
    states = await get_states(a.url, token)
    for serial in a.serial:
        mine = [e for e in ents if (e.get("unique_id") or "").startswith(f"kamstrup_{serial}_")]
        if len(mine) < a.min:
            return 1
        for e in mine:
            st = states.get(e["entity_id"])
            if st is None or st["state"] in ("unknown", "unavailable"):
                return 1
    for eid in a.rest:
        if eid not in states:
            return 1
    return 0


async def cmd_unavailable(a):
    """Exit 0 once every MQTT entity of the given serials is unavailable."""
    token = read_token(a.token_file)
    (ents,) = await ws_call(a.url, token, {"type": "config/entity_registry/list"})
    states = await get_states(a.url, token)
    prefixes = tuple(f"kamstrup_{s}_" for s in a.serial)
    mine = [e for e in ents if (e.get("unique_id") or "").startswith(prefixes)]
    if not mine:
        return 1
    return 0 if all(states.get(e["entity_id"], {}).get("state") == "unavailable" for e in mine) else 1


def _proc_addr(hexaddr):
    """Decodes a /proc/net/{tcp,udp}[6] local address (host byte order, little-endian here)."""
    import ipaddress
    host, port = hexaddr.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        ip = ipaddress.IPv4Address(raw[::-1])
    else:
        ip = ipaddress.IPv6Address(b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
        if ip.ipv4_mapped:
            ip = ip.ipv4_mapped
    return ip, int(port, 16)


def cmd_listeners(a):
    """Lists the sockets process PID listens on (TCP LISTEN, bound UDP); exit 1 if any is not
    on loopback. Reads /proc directly, so it needs no ss/netstat."""
    inodes = set()
    for fd in os.listdir(f"/proc/{a.pid}/fd"):
        try:
            target = os.readlink(f"/proc/{a.pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    bad = []
    for table in ("tcp", "tcp6", "udp", "udp6"):
        try:
            with open(f"/proc/net/{table}", encoding="ascii") as f:
                rows = f.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            cols = row.split()
            local, state, inode = cols[1], cols[3], cols[9]
            if inode not in inodes or (table.startswith("tcp") and state != "0A"):
                continue
            ip, port = _proc_addr(local)
            print(f"{table} {ip}:{port}")
            if a.allow_mdns and table.startswith("udp") and port == 5353:
                # HA >= 2025 always starts its shared mDNS (zeroconf) instance for its HTTP
                # client; a multicast socket cannot be bound to loopback. The e2e limits HA's
                # adapters to `lo`, so nothing is announced on the machine's network.
                continue
            if not ip.is_loopback:
                bad.append(f"{table} {ip}:{port}")
    if bad:
        print("not loopback: " + ", ".join(bad), file=sys.stderr)
        return 1
    return 0


def ha_float_text(text):
    """How HA prints a JSON number it got through value_json: parsed as a float (or int), then
    rendered by Jinja, i.e. Python's shortest repr (`66.00` → `66.0`)."""
    if any(ch in text for ch in ".eE"):
        return repr(float(text))
    return str(int(text))


def store_models(db):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {int(s): m for s, m in con.execute("select serial, model from meters")}
    finally:
        con.close()


def slug(text):
    out = ""
    for ch in text:
        if ch.isascii() and ch.isalnum():
            out += ch.lower()
        elif not out.endswith("_"):
            out += "_"
    return out.strip("_") or "x"


def model_text(stored):
    """(model, hw_version) from the stored model text, as the bridge splits it: the human name
    only when known, the raw KMP type as hw_version ('MULTICAL 403 (KMP type 0x0004 rev F1)')."""
    if not stored:
        return None, None
    if stored.startswith("KMP type "):
        return None, stored
    if " (" in stored and stored.endswith(")"):
        model, hw = stored.split(" (", 1)
        if hw.startswith("KMP type "):
            return model, hw[:-1]
    return stored, None


# Named info bits per family (kamstrup_reading::info), by how many the bridge publishes.
INFO_BITS = {"MULTICAL 403": 15, "MULTICAL 66C": 7}


def parse_rest(spec):
    # ENTITY=REGISTER@METER:FRIENDLY NAME:ICON   (icon may contain ':', e.g. mdi:radiator)
    entity, rest = spec.split("=", 1)
    reg_meter, name_icon = rest.split(":", 1)
    register, meter = reg_meter.split("@", 1)
    friendly, icon = name_icon.split(":", 1)
    return entity, register, meter, friendly, icon


async def cmd_check(a):
    c = Checks()
    token = read_token(a.token_file)
    devices, ents = await ws_call(
        a.url, token,
        {"type": "config/device_registry/list"},
        {"type": "config/entity_registry/list"},
    )
    states = await get_states(a.url, token)
    # Export only now: every state HA holds comes from a reading stored before this moment.
    import subprocess
    with open(a.export, "wb") as f:
        subprocess.run([a.kamstrup, "history", "export", "--config", a.config, "--format", "json"],
                       stdout=f, check=True)
    readings = load_export(a.export)
    models = store_models(a.db)
    meters = {}
    for r in readings:
        meters[int(r["serial"])] = r["meter_name"]
    c.ok(len(meters) == a.meters, f"store holds {a.meters} meters", f"got {sorted(meters)}")

    for serial, meter_name in sorted(meters.items()):
        tag = f"[{meter_name} {serial}]"
        dev = [d for d in devices if ["mqtt", f"kamstrup_{serial}"] in d.get("identifiers", [])]
        if not c.ok(len(dev) == 1, f"{tag} one HA device with identifier kamstrup_{serial}", f"found {len(dev)}"):
            continue
        dev = dev[0]
        if a.show:
            print(f"{tag} HA device: name={dev.get('name')!r} manufacturer={dev.get('manufacturer')!r} "
                  f"model={dev.get('model')!r} serial_number={dev.get('serial_number')!r} "
                  f"sw_version={dev.get('sw_version')!r}")
        c.eq(dev.get("manufacturer"), "Kamstrup", f"{tag} device manufacturer")
        model, hw = model_text(models.get(serial))
        c.eq(dev.get("model"), model, f"{tag} device model (known for sure)")
        c.eq(dev.get("hw_version"), hw, f"{tag} device hw_version (raw type)")
        c.eq(dev.get("serial_number"), str(serial), f"{tag} device serial_number")
        c.eq(dev.get("name"), f"Kamstrup {meter_name}", f"{tag} device name")

        # Every register delivered since start is an entity of this device.
        mine = [r for r in readings if int(r["serial"]) == serial and not r.get("implausible")]
        registers = {}
        for r in mine:
            for reg in r["reading"]["registers"]:
                registers[reg["name"]] = reg
        by_uid = {e.get("unique_id"): e for e in ents if e.get("platform") == "mqtt"}
        entity_ids = {}
        for name in sorted(registers):
            uid = f"kamstrup_{serial}_{slug(name)}"
            e = by_uid.get(uid)
            if not c.ok(e is not None, f"{tag} entity {uid} registered"):
                continue
            entity_ids[name] = e["entity_id"]
            c.eq(e.get("device_id"), dev["id"], f"{tag} {name} belongs to the device")
            diag = expected(name, registers[name]["unit"], registers[name]["value"], a.compat)[3]
            c.eq(e.get("entity_category"), "diagnostic" if diag else None, f"{tag} {name} entity_category")
            if version(a.compat) < (2025, 10):
                c.eq(e["entity_id"], f"sensor.kamstrup_{slug(meter_name)}_{slug(name)}",
                     f"{tag} {name} entity_id from object_id")

        # Info code as problems, and the bridge's health, all diagnostic entities of the device.
        own = {e.get("unique_id"): e for e in ents
               if e.get("platform") == "mqtt" and e.get("device_id") == dev["id"]}
        info_reg = registers.get("info")
        if info_reg is not None:
            code = int(decimal.Decimal(info_reg["value"]))
            problems = sorted(u for u in own if u.startswith(f"kamstrup_{serial}_info_"))
            c.eq(len(problems), 1 + INFO_BITS.get(model, 0),
                 f"{tag} problem binary sensors (any + the named bits of {model})")
            for uid in problems:
                e = own[uid]
                st = states.get(e["entity_id"], {})
                c.ok(e["entity_id"].startswith("binary_sensor."), f"{tag} {uid} is a binary_sensor")
                c.eq(e.get("entity_category"), "diagnostic", f"{tag} {uid} entity_category")
                c.eq(st.get("attributes", {}).get("device_class"), "problem", f"{tag} {uid} device_class")
                if uid.endswith("_info_problem"):
                    c.eq(st.get("state"), "on" if code else "off", f"{tag} {uid} state for info {code}")
                elif code == 0:
                    c.eq(st.get("state"), "off", f"{tag} {uid} off for info 0")
        last = own.get(f"kamstrup_{serial}_last_read")
        if c.ok(last is not None, f"{tag} 'last successful read' entity registered"):
            st = states.get(last["entity_id"], {})
            c.eq(last.get("entity_category"), "diagnostic", f"{tag} last_read entity_category")
            c.eq(st.get("attributes", {}).get("device_class"), "timestamp", f"{tag} last_read device_class")
            stamps = {second(r["reading"]["taken_at"]) for r in mine}
            c.ok(second(st.get("state", "")) in stamps,
                 f"{tag} last_read {st.get('state')} is a stored reading's time")
        errs = own.get(f"kamstrup_{serial}_read_errors_24h")
        if c.ok(errs is not None, f"{tag} 'read errors (24 h)' entity registered"):
            st = states.get(errs["entity_id"], {})
            c.eq(errs.get("entity_category"), "diagnostic", f"{tag} read_errors_24h entity_category")
            c.eq(st.get("state"), "0", f"{tag} read_errors_24h (no failed read in this run)")

        # Attributes and values: all states of one meter must be those of one stored reading.
        for name, eid in sorted(entity_ids.items()):
            st = states.get(eid)
            if not c.ok(st is not None, f"{tag} {eid} has a state"):
                continue
            reg = registers[name]
            dc, unit, sc, _, _ = expected(name, reg["unit"], reg["value"], a.compat)
            attrs = st["attributes"]
            c.eq(attrs.get("unit_of_measurement"), unit, f"{tag} {eid} unit_of_measurement")
            c.eq(attrs.get("device_class"), dc, f"{tag} {eid} device_class")
            c.eq(attrs.get("state_class"), sc, f"{tag} {eid} state_class")
        matched = None
        for r in reversed(mine):
            regs = {x["name"]: x for x in r["reading"]["registers"]}
            good = True
            for name, eid in entity_ids.items():
                st = states.get(eid)
                if name not in regs or st is None:
                    good = False
                    break
                want = expected(name, regs[name]["unit"], regs[name]["value"], a.compat)[4]
                if st["state"] != ha_float_text(want):
                    good = False
                    break
            if good:
                matched = r
                break
        if c.ok(matched is not None, f"{tag} every entity state equals one stored reading",
                "; ".join(f"{eid}={states.get(eid, {}).get('state')}" for eid in entity_ids.values())):
            regs = {x["name"]: x for x in matched["reading"]["registers"]}
            for name, eid in sorted(entity_ids.items()):
                want = expected(name, regs[name]["unit"], regs[name]["value"], a.compat)[4]
                got = states[eid]["state"]
                c.ok(decimal.Decimal(got) == decimal.Decimal(want),
                     f"{tag} {eid} = {got} (stored {regs[name]['value']} {regs[name]['unit']}"
                     f" at {second(matched['reading']['taken_at'])}, sent {want})")

    # The REST sink's states: exact text, friendly name, icon.
    for spec in a.rest:
        entity, register, meter, friendly, icon = parse_rest(spec)
        st = states.get(entity)
        if not c.ok(st is not None, f"REST {entity} exists"):
            continue
        attrs = st["attributes"]
        c.eq(attrs.get("friendly_name"), friendly, f"REST {entity} friendly_name")
        c.eq(attrs.get("icon"), icon, f"REST {entity} icon")
        mine = [r for r in readings if r["meter_name"] == meter and not r.get("implausible")]
        vals = []
        for r in reversed(mine):
            for reg in r["reading"]["registers"]:
                if reg["name"] == register:
                    vals.append((reg, expected(register, reg["unit"], reg["value"], a.compat)))
        if not c.ok(bool(vals), f"REST {entity}: store has {meter}/{register}"):
            continue
        reg, (dc, unit, sc, _, _) = vals[0]
        c.eq(attrs.get("unit_of_measurement"), unit, f"REST {entity} unit_of_measurement")
        c.eq(attrs.get("device_class"), dc, f"REST {entity} device_class")
        c.eq(attrs.get("state_class"), sc, f"REST {entity} state_class")
        texts = [e[4] for _, e in vals]
        c.ok(st["state"] in texts, f"REST {entity} = {st['state']!r}, exactly a stored {register} text",
             f"stored (newest first): {texts[:5]}")
    # REST beside discovery: the same register under two entity ids, each with one writer.
    mqtt_ids = {e["entity_id"] for e in ents if e.get("platform") == "mqtt"}
    for spec in a.beside:
        register, meter = spec.split("@", 1)
        serial = next((s for s, m in meters.items() if m == meter), None)
        uid = f"kamstrup_{serial}_{slug(register)}"
        disc = next((e for e in ents if e.get("platform") == "mqtt" and e.get("unique_id") == uid), None)
        want_disc = f"sensor.kamstrup_{slug(meter)}_{slug(register)}"
        want_rest = f"{want_disc}_rest"
        if not c.ok(disc is not None, f"beside: discovered {uid} registered"):
            continue
        c.eq(disc["entity_id"], want_disc, f"beside: discovered {register}@{meter} keeps its id (no _2)")
        c.ok(want_rest not in mqtt_ids and not any(e["entity_id"] == want_rest for e in ents),
             f"beside: {want_rest} is not a registry entity (REST state only)")
        rest = states.get(want_rest)
        if c.ok(rest is not None, f"beside: REST default entity {want_rest} exists"):
            c.eq(rest["attributes"].get("friendly_name"),
                 f"Kamstrup {meter} {rest_name(register)}", f"beside: {want_rest} friendly_name (REST's)")
        d = states.get(want_disc, {})
        # One writer each: the REST sink's attributes never land on the discovered entity.
        c.ok(d.get("attributes", {}).get("friendly_name") != f"Kamstrup {meter} {rest_name(register)}",
             f"beside: {want_disc} carries discovery's name, not REST's",
             f"attributes {d.get('attributes')}")
        # HA's answer to a taken entity id is a numeric suffix (`_2`).
        dup = sorted(eid for eid in states
                     if eid.startswith(want_disc + "_") and eid[len(want_disc) + 1:].isdigit())
        c.ok(not dup, f"beside: no duplicate of {want_disc}", f"found {dup}")
    return 1 if c.failed else 0


async def cmd_energy_source(a):
    token = read_token(a.token_file)
    source = {"type": "gas", "stat_energy_from": a.entity, "stat_cost": None,
              "entity_energy_price": None, "number_energy_price": None}
    (prefs,) = await ws_call(a.url, token, {"type": "energy/save_prefs", "energy_sources": [source],
                                            "device_consumption": []})
    ok = any(s.get("stat_energy_from") == a.entity for s in prefs.get("energy_sources", []))
    print(f"{'PASS' if ok else 'FAIL'} energy/save_prefs: {a.entity} is a gas source")
    return 0 if ok else 1


async def cmd_energy_verdict(a):
    """HA's own verdict: once the recorder compiled statistics for the entity (the first
    5-minute compile), energy/validate must list no issue for it."""
    token = read_token(a.token_file)
    deadline = time.monotonic() + a.timeout
    t0 = time.monotonic()
    while True:
        # list_statistic_ids also names entities that merely could have statistics: ask for
        # compiled 5-minute rows instead.
        (rows,) = await ws_call(a.url, token, {
            "type": "recorder/statistics_during_period",
            "start_time": "2000-01-01T00:00:00+00:00", "statistic_ids": [a.entity],
            "period": "5minute", "types": ["sum", "state"]})
        if rows.get(a.entity):
            break
        if time.monotonic() > deadline:
            print(f"FAIL no statistics compiled for {a.entity} within {a.timeout} s")
            return 1
        await asyncio.sleep(5)
    print(f"PASS statistics compiled for {a.entity} after {time.monotonic() - t0:.0f} s")
    (verdict,) = await ws_call(a.url, token, {"type": "energy/validate"})
    issues = [i for group in verdict.get("energy_sources", []) for i in group]
    issues += [i for group in verdict.get("device_consumption", []) for i in group]
    if issues:
        print(f"FAIL energy/validate reports issues: {json.dumps(issues)}")
        return 1
    print(f"PASS energy/validate: no issue with {a.entity} as a gas source")
    return 0


async def cmd_registry_save(a):
    token = read_token(a.token_file)
    (ents,) = await ws_call(a.url, token, {"type": "config/entity_registry/list"})
    ids = {e["unique_id"]: e["entity_id"] for e in ents
           if e.get("platform") == "mqtt" and str(e.get("unique_id", "")).startswith("kamstrup_")}
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump(ids, f, indent=1, sort_keys=True)
    return 0 if ids else 1


async def cmd_registry_same(a):
    c = Checks()
    token = read_token(a.token_file)
    with open(a.before, encoding="utf-8") as f:
        before = json.load(f)
    (ents,) = await ws_call(a.url, token, {"type": "config/entity_registry/list"})
    now = {e["unique_id"]: e["entity_id"] for e in ents
           if e.get("platform") == "mqtt" and str(e.get("unique_id", "")).startswith("kamstrup_")}
    c.ok(len(before) > 0, f"{len(before)} MQTT entities before the switch")
    for uid, eid in sorted(before.items()):
        c.eq(now.get(uid), eid, f"{uid} keeps its entity id")
    extra = sorted(set(now.values()) - set(before.values()))
    c.ok(not any(x.endswith("_2") for x in extra), "no entity was duplicated", f"new: {extra}")
    # History: each register sensor has states from before the switch.
    sensors = [eid for eid in before.values() if eid.startswith("sensor.")]
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as s:
        import datetime
        since = datetime.datetime.fromisoformat(a.since)
        start = (since - datetime.timedelta(minutes=30)).isoformat()
        end = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=5)).isoformat()
        params = {"filter_entity_id": ",".join(sensors), "end_time": end, "minimal_response": ""}
        async with s.get(f"{a.url}/api/history/period/{start}", params=params) as r:
            r.raise_for_status()
            hist = await r.json()
    first = {}
    for series in hist:
        if series:
            eid = series[0]["entity_id"]
            first[eid] = min(x.get("last_changed", "9") for x in series)
    heat = [e for e in sensors if e.endswith("_heat_energy")]
    for eid in heat:
        c.ok(eid in first and first[eid] < a.since,
             f"{eid} history reaches back before the switch", f"first {first.get(eid)}")
    return 1 if c.failed else 0


def hour_start_of(utc_text, clock_offset_s=0):
    """The hour a logger record closes: its time on this host's clock (`kamstrup log` prints
    the meter's own; the daemon corrects it by the clock offset) rounded to the nearest hour,
    minus one hour."""
    import datetime
    t = datetime.datetime.fromisoformat(utc_text.replace("Z", "+00:00"))
    t -= datetime.timedelta(seconds=clock_offset_s)
    end = (t + datetime.timedelta(minutes=30)).replace(minute=0, second=0, microsecond=0)
    return end - datetime.timedelta(hours=1)


async def cmd_statistics(a):
    """Each imported hour's change equals the logger's counter difference exactly, states are
    the logged counters, sums are continuous, and the metadata is the entity's own."""
    import datetime
    c = Checks()
    token = read_token(a.token_file)
    with open(a.log, encoding="utf-8") as f:
        log = json.load(f)
    entities = dict(x.split("=", 1) for x in a.entity)
    units = dict(x.split("=", 1) for x in a.unit)
    records = sorted(log["records"], key=lambda r: r["utc"])
    offset = log.get("meter_clock_offset_s") or 0
    # An hour still running on the host when it was imported is HA's own to compile: the bridge
    # leaves it out (a meter ahead of the host logs its end early).
    if a.imported_at is not None:
        cut = datetime.datetime.fromtimestamp(a.imported_at, datetime.timezone.utc)
        running = [r for r in records
                   if hour_start_of(r["utc"], offset) + datetime.timedelta(hours=1) > cut]
        records = [r for r in records if r not in running]
        if running:
            print(f"  ({len(running)} record(s) of the hour running at the import left to HA's compile)")
    c.ok(len(records) >= 2, f"{len(records)} hour-log records to compare")
    first = hour_start_of(records[0]["utc"], offset)
    for register, entity in sorted(entities.items()):
        logged = {}
        for r in records:
            reg = next((x for x in r["registers"] if x["name"] == register), None)
            if reg is not None:
                logged[hour_start_of(r["utc"], offset)] = decimal.Decimal(reg["value"])
        # The import goes through the recorder's queue: wait until every hour is there.
        deadline = time.monotonic() + a.timeout
        while True:
            (res,) = await ws_call(a.url, token, {
                "type": "recorder/statistics_during_period",
                "start_time": first.isoformat(), "statistic_ids": [entity], "period": "hour",
                "types": ["change", "sum", "state"]})
            rows = {datetime.datetime.fromtimestamp(r["start"] / 1000, datetime.timezone.utc): r
                    for r in res.get(entity, [])}
            if all(h in rows for h in logged) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        c.ok(all(h in rows for h in logged), f"{entity}: HA has a row for each of the {len(logged)} logged hours",
             f"missing {sorted(str(h) for h in logged if h not in rows)[:5]}")
        hours = sorted(h for h in logged if h in rows)
        bad_state, bad_change, bad_sum, checked = [], [], [], 0
        for prev, h in zip(hours, hours[1:]):
            if h - prev != datetime.timedelta(hours=1):
                continue
            want = logged[h] - logged[prev]
            got = decimal.Decimal(repr(rows[h]["change"]))
            # HA keeps floats: the change must be the exact difference to float precision, and
            # rounded to the counter's decimals it must BE the difference.
            exp = logged[h].as_tuple().exponent
            if got.quantize(decimal.Decimal(1).scaleb(exp)) != want or abs(got - want) > decimal.Decimal("1e-9"):
                bad_change.append(f"{h:%H:%M} {got} != {want}")
            sum_step = decimal.Decimal(repr(rows[h]["sum"])) - decimal.Decimal(repr(rows[prev]["sum"]))
            if abs(sum_step - got) > decimal.Decimal("1e-9"):
                bad_sum.append(f"{h:%H:%M} sum step {sum_step} != change {got}")
            checked += 1
        for h in hours:
            if decimal.Decimal(repr(rows[h]["state"])) != logged[h]:
                bad_state.append(f"{h:%H:%M} {rows[h]['state']} != {logged[h]}")
        c.ok(checked >= len(logged) - 1 and checked > 0,
             f"{entity}: {checked} consecutive hours compared")
        c.ok(not bad_change, f"{entity}: each hour's change = the logger's counter difference, exactly",
             "; ".join(bad_change[:5]))
        c.ok(not bad_sum, f"{entity}: sums continuous (each step = the hour's change)", "; ".join(bad_sum[:5]))
        c.ok(not bad_state, f"{entity}: each hour's state = the logged counter", "; ".join(bad_state[:5]))
        # HA's own next compile continues from its newest 5-minute row: the imported hours must
        # be on that row's basis (sum - state), or the hour after them would jump.
        since = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)).isoformat()
        deadline = time.monotonic() + a.compile_timeout
        while True:
            (short,) = await ws_call(a.url, token, {
                "type": "recorder/statistics_during_period", "start_time": since,
                "statistic_ids": [entity], "period": "5minute", "types": ["sum", "state"]})
            short_rows = short.get(entity, [])
            if short_rows or time.monotonic() > deadline:
                break
            await asyncio.sleep(5)
        if c.ok(short_rows and hours, f"{entity}: HA compiled 5-minute rows of its own"):
            newest = max(short_rows, key=lambda r: r["start"])
            basis_ha = decimal.Decimal(repr(newest["sum"])) - decimal.Decimal(repr(newest["state"]))
            last = rows[hours[-1]]
            basis_ours = decimal.Decimal(repr(last["sum"])) - decimal.Decimal(repr(last["state"]))
            c.ok(abs(basis_ha - basis_ours) < decimal.Decimal("1e-9"),
                 f"{entity}: imported sums continue HA's own series (sum - state = {basis_ha})",
                 f"imported {basis_ours}")
        (meta,) = await ws_call(a.url, token, {"type": "recorder/get_statistics_metadata",
                                               "statistic_ids": [entity]})
        m = next((x for x in meta if x.get("statistic_id") == entity), {})
        c.eq(m.get("statistics_unit_of_measurement"), units.get(register), f"{entity}: statistics unit")
        c.eq((m.get("source"), m.get("has_sum")), ("recorder", True), f"{entity}: source and has_sum")
    return 1 if c.failed else 0


def rest_name(register):
    """The REST sink's default friendly-name tail (ha_map::friendly_name, lower-cased)."""
    known = {"heat_energy": "Heat energy", "volume": "Volume", "t1": "Inlet temperature",
             "t2": "Outlet temperature", "flow": "Flow", "power": "Power"}
    return known.get(register, register.replace("_", " ").capitalize()).lower()


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("wait")
    w.add_argument("--url", required=True)
    w.add_argument("--log", required=True)
    w.add_argument("--timeout", type=float, default=120)
    o = sub.add_parser("onboard")
    o.add_argument("--url", required=True)
    o.add_argument("--token-out", required=True)
    m = sub.add_parser("mqtt-entry")
    m.add_argument("--url", required=True)
    m.add_argument("--token-file", required=True)
    m.add_argument("--port", type=int, required=True)
    m.add_argument("--username", required=True)
    m.add_argument("--password-file", required=True)
    e = sub.add_parser("entities")
    e.add_argument("--url", required=True)
    e.add_argument("--token-file", required=True)
    e.add_argument("--serial", nargs="+", required=True)
    e.add_argument("--rest", nargs="*", default=[])
    e.add_argument("--min", type=int, default=9)
    u = sub.add_parser("unavailable")
    u.add_argument("--url", required=True)
    u.add_argument("--token-file", required=True)
    u.add_argument("--serial", nargs="+", required=True)
    es = sub.add_parser("energy-source")
    ev = sub.add_parser("energy-verdict")
    for x in (es, ev):
        x.add_argument("--url", required=True)
        x.add_argument("--token-file", required=True)
        x.add_argument("--entity", required=True)
    ev.add_argument("--timeout", type=float, default=420)
    rs = sub.add_parser("registry-save")
    rs.add_argument("--out", required=True)
    rq = sub.add_parser("registry-same")
    rq.add_argument("--before", required=True)
    rq.add_argument("--since", required=True)
    for x in (rs, rq):
        x.add_argument("--url", required=True)
        x.add_argument("--token-file", required=True)
    st = sub.add_parser("statistics")
    st.add_argument("--url", required=True)
    st.add_argument("--token-file", required=True)
    st.add_argument("--log", required=True, help="`kamstrup log --format json` output")
    st.add_argument("--entity", nargs="+", required=True, help="REGISTER=ENTITY_ID")
    st.add_argument("--unit", nargs="+", required=True, help="REGISTER=HA unit")
    st.add_argument("--timeout", type=float, default=30)
    st.add_argument("--compile-timeout", type=float, default=0,
                    help="wait this long for HA's own first 5-minute compile of a new entity")
    st.add_argument("--imported-at", type=float,
                    help="epoch seconds just before the import: hours not ended then are not expected")
    li = sub.add_parser("listeners")
    li.add_argument("--pid", type=int, required=True)
    li.add_argument("--allow-mdns", action="store_true",
                    help="tolerate HA's mDNS socket (UDP 5353); its adapters are limited to lo")
    k = sub.add_parser("check")
    k.add_argument("--url", required=True)
    k.add_argument("--token-file", required=True)
    k.add_argument("--export", required=True, help="where to write the store's export")
    k.add_argument("--kamstrup", required=True, help="the kamstrup binary")
    k.add_argument("--config", required=True, help="the daemon's config")
    k.add_argument("--db", required=True)
    k.add_argument("--compat", required=True)
    k.add_argument("--meters", type=int, required=True)
    k.add_argument("--rest", nargs="*", default=[])
    k.add_argument("--beside", nargs="*", default=[],
                   help="REGISTER@METER posted by the REST sink under its default id, beside discovery")
    k.add_argument("--show", action="store_true", help="print what HA made of each device")
    a = p.parse_args()
    if a.cmd == "listeners":
        sys.exit(cmd_listeners(a))
    fn = {"wait": cmd_wait, "onboard": cmd_onboard, "mqtt-entry": cmd_mqtt_entry,
          "entities": cmd_entities, "unavailable": cmd_unavailable, "check": cmd_check,
          "energy-source": cmd_energy_source, "energy-verdict": cmd_energy_verdict,
          "registry-save": cmd_registry_save, "registry-same": cmd_registry_same,
          "statistics": cmd_statistics}[a.cmd]
    sys.exit(asyncio.run(fn(a)))


if __name__ == "__main__":
    main()
