"""Print the pip requirements of the Home Assistant integrations our e2e run loads.

HA runs with --skip-pip (it must not install anything at run time), so every integration it
sets up needs its requirements installed beforehand: the default and core integrations, the
ones in our configuration.yaml, MQTT and the platforms MQTT loads (camera needs stream's
numpy/PyTurboJPEG/ha-av), each with the closure of its manifest `dependencies`.
Run with the venv's python; prints one requirement per line.
"""

import json
import pathlib
import sys

import homeassistant
import homeassistant.bootstrap as bootstrap

COMPONENTS = pathlib.Path(homeassistant.__file__).parent / "components"

# configuration.yaml of the e2e run, plus MQTT (config entry) and what it pulls in at run time.
OURS = {
    "api", "config", "websocket_api", "onboarding", "history", "sensor", "recorder", "http",
    "mqtt", "camera", "stream", "image", "file_upload", "device_automation", "energy",
}


def manifest(domain):
    path = COMPONENTS / domain / "manifest.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())


def main():
    seeds = set(OURS)
    for name in ("DEFAULT_INTEGRATIONS", "CORE_INTEGRATIONS", "LOGGING_INTEGRATIONS"):
        seeds |= set(getattr(bootstrap, name, set()))
    seeds.discard("sentry")  # only set up when configured
    todo, seen, reqs = sorted(seeds), set(), set()
    while todo:
        domain = todo.pop()
        if domain in seen:
            continue
        seen.add(domain)
        m = manifest(domain)
        if m is None:
            continue
        reqs.update(m.get("requirements", []))
        todo.extend(d for d in m.get("dependencies", []) if d not in seen)
    for r in sorted(reqs):
        print(r)
    print(f"{len(seen)} integrations, {len(reqs)} requirements", file=sys.stderr)


if __name__ == "__main__":
    main()
