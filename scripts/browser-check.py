#!/usr/bin/env python3
"""Headless-browser check of the dashboard: starts `kamstrup demo`, opens it in Chromium,
waits until every chart has drawn real data, fails on any console error, saves screenshots.
Then opens it again through two path-prefix reverse proxies (one like Home Assistant ingress,
sending X-Ingress-Path, one plain): every page load and API call must go through the prefix.

Python standard library only: Chromium is driven through the DevTools protocol over a pipe
(--remote-debugging-pipe: commands on fd 3, answers on fd 4, each JSON message ended by NUL),
so no WebDriver, websocket library or network port is needed for the browser.

Usage: browser-check.py KAMSTRUP_BINARY OUTPUT_DIR
"""

import base64
import fcntl
import http.client
import http.server
import threading
import urllib.parse
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

READY_TIMEOUT = 90  # s: the demo seeds its history, the page loads every chart
DEMO_START_TIMEOUT = 60
DEMO_STOP_TIMEOUT = 15
EXPECTED_CHARTS = 8  # two meters × (energy bars, temperatures, power, flow)

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-features=Translate,MediaRouter,OptimizationHints,AutofillServerCommunication",
    "--metrics-recording-only",
    "--mute-audio",
    "--hide-scrollbars",
    "--force-color-profile=srgb",
    "--lang=en-US",
    "--remote-debugging-pipe",
]


def fail(message):
    print(f"browser-check: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    fail("no chromium on PATH (Debian: apt-get install -y chromium)")


class DevTools:
    """The DevTools protocol over Chromium's debugging pipe."""

    def __init__(self, chromium, profile_dir):
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()
        # Move the child's ends above fd 10 so that placing them on 3 and 4 cannot clobber them.
        child_in = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD_CLOEXEC, 10)
        child_out = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_chrome_r)
        os.close(from_chrome_w)

        def place_pipes():
            os.dup2(child_in, 3)  # dup2 makes the copies inheritable
            os.dup2(child_out, 4)

        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
            preexec_fn=place_pipes,
            close_fds=False,
        )
        os.close(child_in)
        os.close(child_out)
        self.write_fd = to_chrome_w
        self.read_fd = from_chrome_r
        self.buffer = b""
        self.next_id = 0
        self.events = []

    def _read_message(self, deadline):
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.read_fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(self.read_fd, 1 << 20)
            if not chunk:
                self.log.seek(0)
                tail = self.log.read()[-3000:].decode(errors="replace")
                fail(f"chromium closed the DevTools pipe; its output:\n{tail}")
            self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method, params=None, session=None, timeout=30):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.write_fd, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply is None:
                fail(f"no answer to {method} within {timeout} s")
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    fail(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def pump(self, seconds):
        """Collects events for a while."""
        deadline = time.monotonic() + seconds
        while True:
            event = self._read_message(deadline)
            if event is None:
                return
            self.events.append(event)

    def close(self):
        try:
            os.write(self.write_fd, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


def console_problems(events):
    """Every console error, uncaught exception and browser-logged error (failed loads, CSP)."""
    problems = []
    for event in events:
        method = event.get("method")
        params = event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = [a.get("value", a.get("description", "")) for a in params.get("args", [])]
            problems.append(f"console.{params['type']}: {' '.join(map(str, args))}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            exc = details.get("exception", {}).get("description") or details.get("text")
            problems.append(f"uncaught exception: {exc}")
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            if entry.get("level") == "error":
                problems.append(f"browser log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}")
    return problems


def start_demo(binary, workdir):
    demo = subprocess.Popen(
        [binary, "demo", "--dir", workdir, "--port", "0", "--interval", "5s"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    # Raw reads (not readline) so that select() and the data we hold never disagree.
    out = demo.stdout.fileno()
    deadline = time.monotonic() + DEMO_START_TIMEOUT
    text = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([out], [], [], 1.0)
        if not ready:
            continue
        chunk = os.read(out, 65536)
        if not chunk:
            break
        text += chunk
        match = re.search(rb"^dashboard: (http://127\.0\.0\.1:\d+/)$", text, re.MULTILINE)
        if match:
            return demo, match.group(1).decode()
    demo.kill()
    fail(f"`kamstrup demo` printed no dashboard URL; stdout: {text!r}; stderr: {demo.stderr.read()!r}")


def stop_demo(demo):
    demo.send_signal(signal.SIGTERM)
    try:
        code = demo.wait(timeout=DEMO_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        demo.kill()
        fail(f"`kamstrup demo` did not stop within {DEMO_STOP_TIMEOUT} s of SIGTERM")
    if code != 0:
        fail(f"`kamstrup demo` exited with {code} after SIGTERM; stderr:\n{demo.stderr.read().decode(errors='replace')}")


class PrefixProxy:
    """A reverse proxy that serves the demo only below path prefixes and strips them, like Home
    Assistant ingress (`ingress_prefix`, with `X-Ingress-Path`) or an nginx `location` with
    `proxy_pass http://demo/` (`plain_prefix`, no header). Anything outside a prefix is a 404,
    so a URL in the page that ignores the prefix shows up as a failed load; every request is
    recorded as (path, status)."""

    def __init__(self, upstream, ingress_prefix, plain_prefix):
        self.upstream = urllib.parse.urlsplit(upstream)
        self.prefixes = {ingress_prefix: True, plain_prefix: False}
        self.requests = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                status, headers, body = proxy.forward(self.path)
                proxy.requests.append((self.path, status))
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in ("connection", "transfer-encoding", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def forward(self, path):
        for prefix, ingress in self.prefixes.items():
            if path == prefix or path.startswith(prefix + "/"):
                rest = path[len(prefix):] or "/"
                headers = {"X-Ingress-Path": prefix} if ingress else {}
                conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=30)
                try:
                    conn.request("GET", rest, headers=headers)
                    reply = conn.getresponse()
                    return reply.status, reply.getheaders(), reply.read()
                finally:
                    conn.close()
        return 404, [("Content-Type", "text/plain")], b"outside the proxied prefixes"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def check_under_prefix(tools, session, proxy, page_url, prefix):
    """Loads the dashboard at page_url (below prefix) and proves that it works there."""
    first = len(proxy.requests)
    tools.events.clear()
    tools.send("Page.navigate", {"url": page_url}, session)
    deadline = time.monotonic() + READY_TIMEOUT
    tools.pump(0.5)
    # While the old page unloads there may be no document element yet.
    ready = "!!document.documentElement && document.documentElement.dataset.ready === 'true' && location.pathname.startsWith(" + json.dumps(prefix) + ")"
    while not evaluate(tools, session, ready):
        tools.pump(0.5)
        problems = console_problems(tools.events)
        if problems:
            fail(f"under {prefix}: console errors:\n  " + "\n  ".join(problems))
        if time.monotonic() > deadline:
            fail(f"under {prefix}: the charts did not all draw data within {READY_TIMEOUT} s; requests {proxy.requests[first:]}")
    facts = evaluate(
        tools,
        session,
        """(() => ({ meters: document.querySelectorAll('section.meter').length,
                     charts: Number(document.documentElement.dataset.charts),
                     links: [...document.querySelectorAll('a[href], link[href], script[src], img[src]')]
                              .map(e => e.href || e.src) }))()""",
    )
    seen = proxy.requests[first:]
    outside = [(p, s) for p, s in seen if not (p == prefix or p.startswith(prefix + "/")) or s != 200]
    api_calls = [p for p, _ in seen if p.startswith(prefix + "/api/")]
    if facts["meters"] != 2 or facts["charts"] < EXPECTED_CHARTS:
        fail(f"under {prefix}: {facts['meters']} meters and {facts['charts']} charts drawn")
    if outside:
        fail(f"under {prefix}: requests outside the prefix or failed: {outside}")
    if len(api_calls) < 3:
        fail(f"under {prefix}: the page made too few API calls through the proxy: {seen}")
    for link in facts["links"]:
        path = urllib.parse.urlsplit(link).path
        if not path.startswith(prefix + "/"):
            fail(f"under {prefix}: the page links to {link}, outside the prefix")
        status, _, _ = proxy.forward(path)
        if status != 200:
            fail(f"under {prefix}: {link} answers {status}")
    print(f"browser-check: under {prefix}: {len(seen)} requests all through the prefix, "
          f"{len(api_calls)} API calls, {len(facts['links'])} links checked")


def evaluate(tools, session, expression):
    result = tools.send(
        "Runtime.evaluate", {"expression": expression, "returnByValue": True}, session
    )
    if "exceptionDetails" in result:
        fail(f"evaluating {expression!r}: {result['exceptionDetails']}")
    return result.get("result", {}).get("value")


def screenshot(tools, session, path, width, mobile):
    tools.send(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": mobile},
        session,
    )
    tools.pump(1.5)  # the page redraws its charts for the new width
    height = evaluate(tools, session, "Math.ceil(document.documentElement.scrollHeight)")
    tools.send(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": int(height), "deviceScaleFactor": 1, "mobile": mobile},
        session,
    )
    tools.pump(1.0)
    shot = tools.send("Page.captureScreenshot", {"format": "png"}, session)
    with open(path, "wb") as out:
        out.write(base64.b64decode(shot["data"]))
    print(f"browser-check: screenshot {path} ({width}×{height})")


def main():
    if len(sys.argv) != 3:
        fail("usage: browser-check.py KAMSTRUP_BINARY OUTPUT_DIR")
    binary, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    chromium = find_chromium()
    with tempfile.TemporaryDirectory(prefix="kamstrup-browser-") as work:
        demo, url = start_demo(binary, os.path.join(work, "demo"))
        print(f"browser-check: demo at {url}")
        tools = DevTools(chromium, os.path.join(work, "profile"))
        try:
            target = tools.send("Target.createTarget", {"url": "about:blank"})
            session = tools.send(
                "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
            )["sessionId"]
            for domain in ("Runtime", "Log", "Page"):
                tools.send(f"{domain}.enable", {}, session)
            tools.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False},
                session,
            )
            tools.send("Page.navigate", {"url": url}, session)
            deadline = time.monotonic() + READY_TIMEOUT
            while True:
                tools.pump(0.5)
                problems = console_problems(tools.events)
                if problems:
                    fail("console errors:\n  " + "\n  ".join(problems))
                ready = evaluate(tools, session, "document.documentElement.dataset.ready === 'true'")
                if ready:
                    break
                if time.monotonic() > deadline:
                    drawn = evaluate(tools, session, "document.documentElement.dataset.charts || '0'")
                    fail(f"the charts did not all draw data within {READY_TIMEOUT} s ({drawn} drawn)")
            # The page must show what the API holds: both meters, every chart, exact values.
            facts = evaluate(
                tools,
                session,
                """(() => ({
                    meters: document.querySelectorAll('section.meter').length,
                    charts: Number(document.documentElement.dataset.charts),
                    paths: document.querySelectorAll('.plot svg path.line').length,
                    bars: document.querySelectorAll('.plot svg rect.bar').length,
                    empty: document.querySelectorAll('.plot .nodata').length,
                    tiles: [...document.querySelectorAll('.tile')].map(t => t.innerText.replace(/\\s+/g, ' ')),
                    sinks: document.querySelectorAll('#sinks tbody tr').length,
                    banner: document.getElementById('banner').hidden,
                }))()""",
            )
            print(f"browser-check: page facts {json.dumps(facts, ensure_ascii=False)}")
            if facts["meters"] != 2:
                fail(f"expected 2 meters on the page, saw {facts['meters']}")
            if facts["charts"] < EXPECTED_CHARTS or facts["empty"]:
                fail(f"expected {EXPECTED_CHARTS} charts with data, saw {facts['charts']} ({facts['empty']} empty)")
            if facts["bars"] < 20 or facts["paths"] < 6:
                fail(f"too little drawn: {facts['bars']} bars, {facts['paths']} lines")
            if not any(re.search(r"\d+\.\d+ ?GJ", t) for t in facts["tiles"]):
                fail(f"no heat energy tile with an exact GJ value: {facts['tiles']}")
            if facts["sinks"] < 1 or not facts["banner"]:
                fail("the sink table is empty or an error banner is shown")

            # The error and sink tables (the demo has no failures: feed the renderer some).
            shown = evaluate(
                tools,
                session,
                """(() => {
                    renderStatus({ version: 'x', latest_reading_id: 9, sinks: [
                        { name: 'mqtt', cursor: 3, cursor_moved_at: new Date().toISOString(),
                          status: { failures: 2, consecutive_failures: 2, last_ok: null, delivered: 0,
                                    failing_since: new Date(Date.now() - 300000).toISOString(),
                                    last_error: { at: new Date().toISOString(), kind: 'connect', message: 'refused' } } }],
                      errors: [{ meter: 'heat', at: new Date().toISOString(), kind: 'timeout', message: 'no reply within 2 s' }],
                      error_counts: [{ meter: 'heat', kind: 'timeout', count: 1 }] });
                    const out = { errors: document.querySelector('#errors tbody').innerText,
                                  sinks: document.querySelector('#sinks tbody').innerText,
                                  counts: document.getElementById('error-counts').innerText };
                    refreshLatest();
                    return out;
                })()""",
            )
            if "no reply within 2 s" not in shown["errors"] or "failing since 5 min ago (2 attempts)" not in shown["sinks"] or "1 × timeout" not in shown["counts"]:
                fail(f"the error and sink tables do not render: {shown}")
            tools.pump(1.0)

            # A failing meter (the demo's meters all answer: feed the renderer the daemon's state
            # as /api/meters and /api/status carry it): streak, last good read and the verdict
            # with cause and fix, on a listed meter and under "Meters not read yet".
            verdict = """{ kind: 'no-reply', ok: false,
                headline: "no reply: the IR port may be asleep — press the meter's button",
                cause: 'the meter never saw our request', fix: ['press a button on the meter', 'seat the head'] }"""
            failing = evaluate(
                tools,
                session,
                f"""(() => {{
                    const section = document.querySelector('section.meter');
                    const box = section.querySelector('.m-verdict');
                    const goodAt = new Date(Date.now() - 2 * 3600 * 1000).toISOString();
                    renderVerdict(box, {{ failure_streak: 3, last_ok: goodAt, verdict: {verdict} }}, null);
                    renderUnread({{ daemon: {{ meters: {{ cold: {{ serial: null, schedule: 'every 15m',
                        failure_streak: 1, last_ok: null, verdict: {verdict} }} }} }} }});
                    const out = {{ listed: box.hidden ? '' : box.innerText,
                                   unread: document.getElementById('unread').hidden ? '' : document.getElementById('unread').innerText }};
                    refreshLatest();
                    return out;
                }})()""",
            )
            print(f"browser-check: a failing meter shows {json.dumps(failing, ensure_ascii=False)}")
            if not re.search(r"3 failed reads in a row · last good read 2 h(ours)? ago", failing["listed"]) \
                    or "no reply: the IR port may be asleep" not in failing["listed"] \
                    or "Likely cause: the meter never saw our request" not in failing["listed"] \
                    or "press a button on the meter" not in failing["listed"]:
                fail(f"a failing meter's streak, last good read and verdict do not render: {failing}")
            if "1 failed read in a row · never read" not in failing["unread"] or "cold" not in failing["unread"]:
                fail(f"a meter never read does not show its verdict: {failing}")
            tools.pump(1.0)
            if not evaluate(tools, session, "document.querySelector('section.meter .m-verdict').hidden"):
                fail("the verdict stays after the meter's next good state")

            # Hovering a line chart shows the exact values at that time.
            box = evaluate(
                tools,
                session,
                """(() => { const r = document.querySelector('.m-temps svg').getBoundingClientRect();
                           return { x: r.left + r.width * 0.6, y: r.top + r.height / 2 }; })()""",
            )
            tools.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": box["x"], "y": box["y"]}, session)
            tools.pump(0.5)
            tip = evaluate(
                tools, session, "(() => { const t = document.getElementById('tooltip'); return t.hidden ? '' : t.innerText; })()"
            )
            if not re.search(r"T1: \d+\.\d+ °C", tip or "") or "T2:" not in tip:
                fail(f"hovering the temperature chart shows no exact values: {tip!r}")
            tools.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": 2, "y": 2}, session)

            screenshot(tools, session, os.path.join(out_dir, "dashboard.png"), 1280, False)
            screenshot(tools, session, os.path.join(out_dir, "dashboard-mobile.png"), 390, True)
            # Another range redraws from the API without errors.
            evaluate(tools, session, "document.querySelector('#range button[data-value=\"1y\"]').click()")
            evaluate(tools, session, "document.querySelector('#per button[data-value=\"week\"]').click()")
            tools.pump(3.0)
            problems = console_problems(tools.events)
            if problems:
                fail("console errors:\n  " + "\n  ".join(problems))
            screenshot(tools, session, os.path.join(out_dir, "dashboard-1y.png"), 1280, False)
            tools.send(
                "Emulation.setEmulatedMedia",
                {"features": [{"name": "prefers-color-scheme", "value": "dark"}]},
                session,
            )
            screenshot(tools, session, os.path.join(out_dir, "dashboard-dark.png"), 1280, False)
            problems = console_problems(tools.events)
            if problems:
                fail("console errors:\n  " + "\n  ".join(problems))
            # Energy per hour: 48 hourly bars per meter with a heat energy counter.
            evaluate(tools, session, "document.querySelector('#per button[data-value=\"hour\"]').click()")
            tools.pump(3.0)
            problems = console_problems(tools.events)
            if problems:
                fail("console errors:\n  " + "\n  ".join(problems))
            hourly = evaluate(tools, session, "document.querySelectorAll('.m-energy svg rect.bar').length")
            if hourly < 2 * 40:
                fail(f"energy per hour drew {hourly} bars for two meters, expected about 2 × 48")
            print(f"browser-check: energy per hour: {hourly} bars")

            # Behind path prefixes: ingress (header; the URL without its trailing slash works
            # too, through <base href>) and a plain prefix-stripping proxy (relative URLs).
            tools.send(
                "Emulation.setEmulatedMedia",
                {"features": [{"name": "prefers-color-scheme", "value": "light"}]},
                session,
            )
            ingress, plain = "/api/hassio_ingress/k4m5tRuP_t0ken", "/some/prefix"
            proxy = PrefixProxy(url, ingress, plain)
            try:
                check_under_prefix(tools, session, proxy, proxy.base + ingress, ingress)
                check_under_prefix(tools, session, proxy, proxy.base + plain + "/", plain)
            finally:
                proxy.close()
        finally:
            tools.close()
            if demo.poll() is None:
                stop_demo(demo)
    print("browser-check: ok — every chart drew real data, no console errors, also behind path prefixes")


if __name__ == "__main__":
    main()
