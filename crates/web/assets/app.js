// kamstrup-bridge dashboard: reads the JSON API of this server and draws value tiles, energy
// bars and line charts as inline SVG. No library and nothing from the network but this server.
//
// Values arrive as exact decimal strings; tiles and tooltips show them as they are, and they are
// turned into numbers only to place them on a chart.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const HOUR = 3600e3;
const DAY = 24 * HOUR;

// Range of the line charts → how far back and which bucket the API should use.
const RANGES = {
  "24h": { back: DAY, bucket: "raw" },
  "7d": { back: 7 * DAY, bucket: "hour" },
  "30d": { back: 30 * DAY, bucket: "hour" },
  "1y": { back: 365 * DAY, bucket: "day" },
};

// Energy bars: how many buckets to show.
const PERIODS = { hour: 48, day: 30, week: 26, month: 12 };

// The order of the tiles; what each register is called comes with the values (`label`, the
// server's one label table).
const TILE_ORDER = [
  "heat_energy",
  "volume",
  "t1",
  "t2",
  "t1_t2",
  "power",
  "flow",
  "hours",
  "cooling_energy",
  "t3",
  "peak_power",
];

const LATEST_EVERY_MS = 10e3;
const CHARTS_EVERY_MS = 60e3;

const state = {
  range: "24h",
  per: "day",
  meters: new Map(), // serial → { serial, section, data, charts }
  ready: false,
};

// ---------------------------------------------------------------- small helpers

function $(selector, root = document) {
  return root.querySelector(selector);
}

function svg(name, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (parent) parent.appendChild(node);
  return node;
}

function text(node, value) {
  node.textContent = value;
  return node;
}

async function getJSON(url) {
  const response = await fetch(url, { cache: "no-store" });
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = null;
  }
  if (!response.ok) {
    const why = body && body.message ? body.message : `${response.status} ${response.statusText}`;
    throw new Error(why);
  }
  return body;
}

function showBanner(message) {
  const banner = $("#banner");
  banner.hidden = !message;
  banner.textContent = message || "";
}

const weekdayFmt = new Intl.DateTimeFormat(undefined, { weekday: "short" });
const monthFmt = new Intl.DateTimeFormat(undefined, { month: "short" });
const monthUtcFmt = new Intl.DateTimeFormat(undefined, { month: "short", timeZone: "UTC" });
const weekdayUtcFmt = new Intl.DateTimeFormat(undefined, { weekday: "short", timeZone: "UTC" });
const stampFmt = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
});

function two(n) {
  return String(n).padStart(2, "0");
}

function clock(d) {
  return `${two(d.getHours())}:${two(d.getMinutes())}`;
}

function ago(seconds) {
  if (!Number.isFinite(seconds)) return "";
  const s = Math.max(0, Math.round(seconds));
  if (s < 90) return `${s} s ago`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min ago`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

function stamp(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : stampFmt.format(d);
}

// ---------------------------------------------------------------- scales and ticks

// Round tick values for [lo, hi]: steps of 1, 2, 2.5 or 5 times a power of ten.
function niceTicks(lo, hi, count) {
  if (!(hi > lo)) {
    const pad = Math.abs(lo) * 0.05 || 1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const norm = raw / mag;
  const step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10) * mag;
  const min = Math.floor(lo / step) * step;
  const max = Math.ceil(hi / step) * step;
  const ticks = [];
  for (let v = min; v <= max + step / 2; v += step) ticks.push(Number(v.toPrecision(12)));
  return { min, max: Math.max(max, min + step), ticks, decimals: decimalsOf(step) };
}

// The decimals a tick step needs: 25 → 0, 2.5 → 1, 0.25 → 2.
function decimalsOf(step) {
  for (let d = 0; d < 10; d++) {
    const scaled = step * Math.pow(10, d);
    if (Math.abs(scaled - Math.round(scaled)) < 1e-6 * scaled) return d;
  }
  return 10;
}

function numberLabel(v, decimals) {
  return v.toLocaleString(undefined, { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

// Time ticks in local time, at least `minGap` pixels apart.
function timeTicks(from, to, width, minGap = 60) {
  const span = to - from;
  const steps = [
    { unit: "hour", n: 1 }, { unit: "hour", n: 2 }, { unit: "hour", n: 3 }, { unit: "hour", n: 6 },
    { unit: "hour", n: 12 }, { unit: "day", n: 1 }, { unit: "day", n: 2 }, { unit: "week", n: 1 },
    { unit: "week", n: 2 }, { unit: "month", n: 1 }, { unit: "month", n: 2 }, { unit: "month", n: 3 },
  ];
  const approx = { hour: HOUR, day: DAY, week: 7 * DAY, month: 30.5 * DAY };
  const maxTicks = Math.max(2, Math.floor(width / minGap));
  const step = steps.find((s) => span / (approx[s.unit] * s.n) <= maxTicks) || steps[steps.length - 1];
  const d = new Date(from);
  d.setMinutes(0, 0, 0);
  if (step.unit !== "hour") d.setHours(0);
  if (step.unit === "week") d.setDate(d.getDate() - ((d.getDay() + 6) % 7)); // back to Monday
  if (step.unit === "month") d.setDate(1);
  const ticks = [];
  for (let guard = 0; guard < 500 && d.getTime() <= to; guard++) {
    const t = d.getTime();
    const fits =
      step.unit !== "hour" || d.getHours() % step.n === 0;
    const fitsDay = step.unit !== "day" || (d.getDate() - 1) % step.n === 0;
    const fitsMonth = step.unit !== "month" || d.getMonth() % step.n === 0;
    if (t >= from && fits && fitsDay && fitsMonth) ticks.push({ t, label: timeLabel(d, step.unit) });
    if (step.unit === "hour") d.setHours(d.getHours() + 1);
    else if (step.unit === "day") d.setDate(d.getDate() + 1);
    else if (step.unit === "week") d.setDate(d.getDate() + 7 * step.n);
    else d.setMonth(d.getMonth() + 1);
  }
  return ticks;
}

function timeLabel(d, unit) {
  if (unit === "hour") {
    return d.getHours() === 0 ? `${weekdayFmt.format(d)} ${d.getDate()}` : clock(d);
  }
  if (unit === "day") return `${weekdayFmt.format(d)} ${d.getDate()}`;
  if (unit === "week") return `${d.getDate()} ${monthFmt.format(d)}`;
  return d.getMonth() === 0 ? String(d.getFullYear()) : monthFmt.format(d);
}

// ---------------------------------------------------------------- tooltip

const tooltip = {
  show(x, y, lines) {
    const node = $("#tooltip");
    node.replaceChildren();
    lines.forEach((line, i) => {
      const div = document.createElement("div");
      if (i === 0) div.style.fontWeight = "600";
      div.textContent = line;
      node.appendChild(div);
    });
    node.hidden = false;
    const w = node.offsetWidth;
    const h = node.offsetHeight;
    const left = Math.min(window.innerWidth - w - 8, Math.max(8, x + 14));
    const top = y - h - 12 < 8 ? y + 16 : y - h - 12;
    node.style.left = `${left}px`;
    node.style.top = `${top}px`;
  },
  hide() {
    $("#tooltip").hidden = true;
  },
};

// ---------------------------------------------------------------- charts

function frame(container) {
  const width = Math.max(240, Math.floor(container.clientWidth || 600));
  const height = width < 520 ? 190 : 230;
  const m = { l: 50, r: 12, t: 10, b: 26 };
  return { width, height, m, pw: width - m.l - m.r, ph: height - m.t - m.b };
}

function noData(container, message) {
  container.replaceChildren();
  const p = document.createElement("p");
  p.className = "nodata";
  p.textContent = message;
  container.appendChild(p);
}

// A typical spacing of the points; larger holes are drawn as gaps, not as straight lines.
function gapLimit(points) {
  const diffs = [];
  for (let i = 1; i < points.length; i++) diffs.push(points[i].t - points[i - 1].t);
  if (!diffs.length) return Infinity;
  diffs.sort((a, b) => a - b);
  return Math.max(diffs[Math.floor(diffs.length / 2)] * 3.5, 60e3);
}

// series: [{ name, cls, points: [{ t, v, lo, hi, text }] }]; draws lines over [from, to).
function drawLines(container, { series, from, to, unit, backfilled = [] }) {
  const all = series.flatMap((s) => s.points);
  if (!all.length) {
    noData(container, "No values in this range yet");
    return false;
  }
  const f = frame(container);
  let lo = Infinity;
  let hi = -Infinity;
  for (const p of all) {
    lo = Math.min(lo, p.lo ?? p.v);
    hi = Math.max(hi, p.hi ?? p.v);
  }
  const y = niceTicks(lo, hi, f.ph < 170 ? 4 : 5);
  const sx = (t) => f.m.l + ((t - from) / (to - from)) * f.pw;
  const sy = (v) => f.m.t + f.ph - ((v - y.min) / (y.max - y.min)) * f.ph;
  const root = svg("svg", {
    width: f.width, height: f.height, viewBox: `0 0 ${f.width} ${f.height}`,
    role: "img", "aria-label": `${series.map((s) => s.name).join(", ")} (${unit})`,
  });
  for (const v of y.ticks) {
    svg("line", { class: "grid", x1: f.m.l, x2: f.width - f.m.r, y1: sy(v), y2: sy(v) }, root);
    text(svg("text", { x: f.m.l - 6, y: sy(v) + 4, "text-anchor": "end" }, root), numberLabel(v, y.decimals));
  }
  for (const tick of timeTicks(from, to, f.pw)) {
    const x = sx(tick.t);
    svg("line", { class: "grid", x1: x, x2: x, y1: f.m.t, y2: f.m.t + f.ph }, root);
    text(svg("text", { x, y: f.height - 8, "text-anchor": "middle" }, root), tick.label);
  }
  svg("line", { class: "axis", x1: f.m.l, x2: f.width - f.m.r, y1: f.m.t + f.ph, y2: f.m.t + f.ph }, root);
  // Periods filled from the meter's own logger (the bridge was off): shaded, with a tooltip.
  for (const span of backfilled) {
    const a = Math.max(sx(span.from), f.m.l);
    const b = Math.min(sx(span.to), f.width - f.m.r);
    if (b <= a) continue;
    const rect = svg("rect", { class: "backfill-band", x: a, y: f.m.t, width: b - a, height: f.ph }, root);
    text(svg("title", {}, rect), `back-filled from the meter's logger: ${stamp(new Date(span.from).toISOString())} – ${stamp(new Date(span.to).toISOString())}`);
  }
  for (const s of series) {
    const limit = gapLimit(s.points);
    const segments = [];
    let current = [];
    s.points.forEach((p, i) => {
      if (i > 0 && p.t - s.points[i - 1].t > limit) {
        segments.push(current);
        current = [];
      }
      current.push(p);
    });
    segments.push(current);
    for (const seg of segments) {
      if (seg.length && seg[0].lo !== undefined) {
        const upper = seg.map((p) => `${sx(p.t).toFixed(1)},${sy(p.hi).toFixed(1)}`);
        const lower = seg.slice().reverse().map((p) => `${sx(p.t).toFixed(1)},${sy(p.lo).toFixed(1)}`);
        svg("path", { class: `band ${s.cls}`, d: `M${upper.join("L")}L${lower.join("L")}Z` }, root);
      }
      const d = seg.map((p, i) => `${i ? "L" : "M"}${sx(p.t).toFixed(1)},${sy(p.v).toFixed(1)}`).join("");
      if (seg.length === 1) {
        svg("circle", { class: s.cls, cx: sx(seg[0].t), cy: sy(seg[0].v), r: 2 }, root);
      } else {
        svg("path", { class: `line ${s.cls}`, d }, root);
      }
    }
  }
  // Hover: a cursor at the nearest point in time, with every series' exact value there.
  const cursor = svg("line", { class: "cursor", y1: f.m.t, y2: f.m.t + f.ph, visibility: "hidden" }, root);
  const dots = series.map((s) => svg("circle", { class: `dot ${s.cls}`, r: 4, visibility: "hidden" }, root));
  const overlay = svg("rect", { x: f.m.l, y: f.m.t, width: f.pw, height: f.ph, fill: "transparent" }, root);
  overlay.addEventListener("pointermove", (event) => {
    const box = root.getBoundingClientRect();
    const t = from + ((event.clientX - box.left - f.m.l) / f.pw) * (to - from);
    const lines = [];
    let shownAt = null;
    series.forEach((s, i) => {
      const p = nearest(s.points, t);
      if (!p) {
        dots[i].setAttribute("visibility", "hidden");
        return;
      }
      if (shownAt === null) {
        shownAt = p.t;
        lines.push(stamp(new Date(p.t).toISOString()));
      }
      dots[i].setAttribute("cx", sx(p.t));
      dots[i].setAttribute("cy", sy(p.v));
      dots[i].setAttribute("visibility", "visible");
      const range = p.lo !== undefined ? ` (${p.loText} … ${p.hiText})` : "";
      lines.push(`${s.name}: ${p.text} ${unit}${range}`);
    });
    if (shownAt === null) return;
    cursor.setAttribute("x1", sx(shownAt));
    cursor.setAttribute("x2", sx(shownAt));
    cursor.setAttribute("visibility", "visible");
    tooltip.show(event.clientX, event.clientY, lines);
  });
  overlay.addEventListener("pointerleave", () => {
    cursor.setAttribute("visibility", "hidden");
    dots.forEach((d) => d.setAttribute("visibility", "hidden"));
    tooltip.hide();
  });
  container.replaceChildren(root);
  return true;
}

function nearest(points, t) {
  if (!points.length) return null;
  let lo = 0;
  let hi = points.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (points[mid].t < t) lo = mid;
    else hi = mid;
  }
  return Math.abs(points[lo].t - t) <= Math.abs(points[hi].t - t) ? points[lo] : points[hi];
}

// UTC bucket arithmetic, as the server's buckets are UTC calendar days, ISO weeks and months.
function bucketStart(t, bucket) {
  const d = new Date(t);
  if (bucket === "hour") {
    d.setUTCMinutes(0, 0, 0);
    return d.getTime();
  }
  d.setUTCHours(0, 0, 0, 0);
  if (bucket === "week") d.setUTCDate(d.getUTCDate() - ((d.getUTCDay() + 6) % 7));
  if (bucket === "month") d.setUTCDate(1);
  return d.getTime();
}

function nextBucket(t, bucket) {
  const d = new Date(t);
  if (bucket === "hour") d.setUTCHours(d.getUTCHours() + 1);
  else if (bucket === "day") d.setUTCDate(d.getUTCDate() + 1);
  else if (bucket === "week") d.setUTCDate(d.getUTCDate() + 7);
  else d.setUTCMonth(d.getUTCMonth() + 1);
  return d.getTime();
}

function bucketLabel(t, bucket) {
  const d = new Date(t);
  if (bucket === "hour") return hhmm(t);
  if (bucket === "month") {
    return d.getUTCMonth() === 0 ? String(d.getUTCFullYear()) : monthUtcFmt.format(d);
  }
  return `${d.getUTCDate()} ${monthUtcFmt.format(d)}`;
}

function bucketTitle(t, bucket) {
  const d = new Date(t);
  if (bucket === "hour") return `${stamp(d.toISOString())} – ${hhmm(nextBucket(t, bucket))}`;
  if (bucket === "day") return `${weekdayUtcFmt.format(d)} ${d.getUTCDate()} ${monthUtcFmt.format(d)} ${d.getUTCFullYear()}`;
  if (bucket === "week") return `week of ${d.getUTCDate()} ${monthUtcFmt.format(d)} ${d.getUTCFullYear()}`;
  return `${monthUtcFmt.format(d)} ${d.getUTCFullYear()}`;
}

// points: [{ t, v, text }] per bucket start, over the buckets from `from` to `now` (the newest
// is still filling); buckets without data stay empty.
// An hour's start as local HH:MM.
function hhmm(t) {
  const d = new Date(t);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

function drawBars(container, { points, bucket, unit, from, now, backfilled = [] }) {
  if (!points.length) {
    noData(container, "No energy use recorded in this range yet");
    return false;
  }
  const f = frame(container);
  const start = Math.min(bucketStart(from, bucket), points[0].t);
  const end = Math.max(nextBucket(bucketStart(now, bucket), bucket), nextBucket(points[points.length - 1].t, bucket));
  let slots = 0;
  for (let t = start; t < end && slots < 1000; t = nextBucket(t, bucket)) slots++;
  const hi = Math.max(...points.map((p) => p.v), 0);
  const y = niceTicks(0, hi > 0 ? hi : 1, f.ph < 170 ? 4 : 5);
  const sx = (t) => f.m.l + ((t - start) / (end - start)) * f.pw;
  const sy = (v) => f.m.t + f.ph - ((v - y.min) / (y.max - y.min)) * f.ph;
  const root = svg("svg", {
    width: f.width, height: f.height, viewBox: `0 0 ${f.width} ${f.height}`,
    role: "img", "aria-label": `heat energy per ${bucket} (${unit})`,
  });
  for (const v of y.ticks) {
    svg("line", { class: "grid", x1: f.m.l, x2: f.width - f.m.r, y1: sy(v), y2: sy(v) }, root);
    text(svg("text", { x: f.m.l - 6, y: sy(v) + 4, "text-anchor": "end" }, root), numberLabel(v, y.decimals));
  }
  const slot = f.pw / Math.max(slots, 1);
  const every = Math.max(1, Math.ceil(58 / slot));
  points.forEach((p, i) => {
    const x0 = sx(p.t);
    const x1 = sx(nextBucket(p.t, bucket));
    const gap = Math.min(6, (x1 - x0) * 0.22);
    const top = sy(Math.max(p.v, 0));
    const current = nextBucket(p.t, bucket) > now;
    // A bar whose bucket lies in a period filled from the meter's logger is marked.
    const logged = backfilled.some((span) => span.from < nextBucket(p.t, bucket) && span.to > p.t);
    const bar = svg("rect", {
      class: `bar${current ? " current" : ""}${logged ? " backfilled" : ""}`,
      x: (x0 + gap / 2).toFixed(1), y: top.toFixed(1),
      width: Math.max(1, x1 - x0 - gap).toFixed(1), height: Math.max(0, f.m.t + f.ph - top).toFixed(1),
      rx: Math.min(3, (x1 - x0 - gap) / 3).toFixed(1),
    }, root);
    const lines = [bucketTitle(p.t, bucket), `${p.text} ${unit}${current ? " (so far)" : ""}`];
    if (logged) lines.push("back-filled from the meter's logger");
    bar.addEventListener("pointermove", (event) => tooltip.show(event.clientX, event.clientY, lines));
    bar.addEventListener("pointerleave", () => tooltip.hide());
    if ((points.length - 1 - i) % every === 0) {
      text(svg("text", { x: ((x0 + x1) / 2).toFixed(1), y: f.height - 8, "text-anchor": "middle" }, root), bucketLabel(p.t, bucket));
    }
  });
  svg("line", { class: "axis", x1: f.m.l, x2: f.width - f.m.r, y1: f.m.t + f.ph, y2: f.m.t + f.ph }, root);
  container.replaceChildren(root);
  return true;
}

// ---------------------------------------------------------------- meters

function valueOf(data, register) {
  const latest = data.latest;
  return latest ? latest.values.find((v) => v.register === register) : undefined;
}

function labelOf(data, register) {
  const v = valueOf(data, register);
  return (v && v.label) || register;
}

function tileOrder(values) {
  const known = TILE_ORDER;
  const shown = values.filter((v) => !v.derived && v.register !== "info" && !v.text);
  return shown.sort((a, b) => {
    const ia = known.indexOf(a.register);
    const ib = known.indexOf(b.register);
    return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib);
  });
}

// "today +0.20 · month +7.46 · year +10.15" from the daemon's derived usages, each part kept
// on one line.
function usageLine(data, register) {
  const line = document.createElement("div");
  line.className = "extra";
  for (const period of ["today", "month", "year"]) {
    const v = valueOf(data, `${register}_${period}`);
    if (!v) continue;
    if (line.childElementCount) line.append(" · ");
    const part = document.createElement("span");
    part.textContent = `${period} +${v.value}`;
    line.appendChild(part);
  }
  return line.childElementCount ? line : null;
}

function renderTiles(meter) {
  const data = meter.data;
  const box = $(".m-tiles", meter.section);
  box.replaceChildren();
  if (!data.latest) {
    const p = document.createElement("p");
    p.className = "empty";
    p.textContent = "No reading stored yet.";
    box.appendChild(p);
    return;
  }
  for (const v of tileOrder(data.latest.values)) {
    const tile = document.createElement("div");
    tile.className = "tile";
    tile.dataset.register = v.register;
    const label = document.createElement("div");
    label.className = "label";
    label.textContent = v.label || v.short || v.register;
    label.title = `${v.short} (register ${v.id})`;
    const value = document.createElement("div");
    value.className = "value";
    value.textContent = v.value;
    if (v.unit) {
      const unit = document.createElement("span");
      unit.className = "unit";
      unit.textContent = v.unit;
      value.appendChild(unit);
    }
    tile.append(label, value);
    const extra = v.counter ? usageLine(data, v.register) : null;
    if (extra) tile.appendChild(extra);
    box.appendChild(tile);
  }
}

function renderHead(meter) {
  const data = meter.data;
  const s = meter.section;
  text($(".m-name", s), data.name);
  const ident = [data.model, `serial ${data.serial}`, data.protocol.toUpperCase(), data.port, loggerText(data.status)].filter(Boolean);
  text($(".m-ident", s), ident.join(" · "));
  const badge = $(".m-info", s);
  if (!data.info) {
    badge.className = "badge m-info unknown";
    badge.textContent = "info code not read";
  } else if (data.info.ok) {
    badge.className = "badge m-info ok";
    badge.textContent = "No alarms (info 0)";
  } else {
    badge.className = "badge m-info bad";
    badge.textContent = `Info code ${data.info.value}${data.info.text ? `: ${data.info.text}` : ""}`;
  }
  updateAge(meter);
  renderVerdict($(".m-verdict", s), data.status, data.latest ? data.latest.taken_at : null);
}

// The meter's loggers as the daemon knows them: last back-fill and the meter clock's offset.
function loggerText(status) {
  const l = status && status.logger;
  if (!l) return null;
  if (l.state === "none") return "no logger readable";
  if (l.state === "off") return "back-fill off";
  if (l.state === "reading") return "reading the meter's loggers (66C: minutes of IR)";
  if (l.state === "failed") return "logger read failed; tried again after the next good poll";
  if (l.state === "waiting") return "waiting for the meter's clock to pass the hour before reading its loggers";
  // hour-logger, day-logger, month-logger: the finest logger the last back-fill read.
  const name = /^(hour|day|month|year)-logger$/.test(l.state) ? l.state.replace("-", " ") : "hour logger";
  if (!l.last_backfill) return name;
  const clock = l.clock_offset_s === null || l.clock_offset_s === undefined
    ? ""
    : `, meter clock ${l.clock_offset_s >= 0 ? "+" : ""}${l.clock_offset_s} s`;
  return `${name}: ${l.last_records} records back-filled ${ago((Date.now() - Date.parse(l.last_backfill)) / 1000)}${clock}`;
}

// A failing meter: streak, last good read and the daemon's verdict with cause and fix.
function renderVerdict(box, status, lastGood) {
  const v = status && status.verdict;
  box.hidden = !v;
  if (!v) return;
  const streak = status.failure_streak || 0;
  const good = status.last_ok || lastGood;
  const since = good ? `last good read ${ago((Date.now() - Date.parse(good)) / 1000)} (${stamp(good)})` : "never read";
  text($(".v-head", box), `${streak} failed read${streak === 1 ? "" : "s"} in a row · ${since} — ${v.headline}`);
  text($(".v-cause", box), `Likely cause: ${v.cause}`);
  const list = $(".v-fix", box);
  list.replaceChildren();
  for (const step of v.fix) {
    const li = document.createElement("li");
    li.textContent = step;
    list.appendChild(li);
  }
}

// Meters the daemon polls that have never answered (so they have no serial and no section).
function renderUnread(status) {
  const panel = $("#unread");
  const meters = (status.daemon && status.daemon.meters) || {};
  const list = $(".unread-list", panel);
  list.replaceChildren();
  let any = false;
  for (const [name, live] of Object.entries(meters)) {
    if (live.serial !== null && live.serial !== undefined) continue;
    any = true;
    const block = document.createElement("div");
    const title = document.createElement("h3");
    title.textContent = `${name}${live.schedule ? ` · ${live.schedule}` : ""}`;
    block.appendChild(title);
    const box = $("#meter-template").content.querySelector(".m-verdict").cloneNode(true);
    block.appendChild(box);
    renderVerdict(box, live, null);
    if (!live.verdict) {
      const p = document.createElement("p");
      p.textContent = "waiting for the first poll";
      block.appendChild(p);
    }
    list.appendChild(block);
  }
  panel.hidden = !any;
}

function updateAge(meter) {
  const data = meter.data;
  const node = $(".m-age", meter.section);
  if (!data.latest) {
    node.textContent = "never read";
    return;
  }
  const age = (Date.now() - Date.parse(data.latest.taken_at)) / 1000;
  const status = data.status || {};
  const failing = status.last_error && (!status.last_ok || status.last_error.at > status.last_ok);
  node.classList.toggle("stale", Boolean(failing));
  node.textContent = failing
    ? `read ${ago(age)} · last read failed: ${status.last_error.kind}`
    : `read ${ago(age)}${data.latest.source && data.latest.source !== "poll" ? " (back-filled from the meter's logger)" : ""}${status.schedule ? ` · ${status.schedule}` : ""}`;
  node.title = stamp(data.latest.taken_at);
}

function meterSection(data) {
  const template = $("#meter-template");
  const section = template.content.firstElementChild.cloneNode(true);
  section.dataset.serial = data.serial;
  $("#meters").appendChild(section);
  return section;
}

// ---------------------------------------------------------------- chart data

function seriesUrl(serial, register, from, to, bucket) {
  const q = new URLSearchParams({ register, from: new Date(from).toISOString(), to: new Date(to).toISOString() });
  if (bucket && bucket !== "raw") q.set("bucket", bucket);
  return `api/meters/${encodeURIComponent(serial)}/readings?${q}`;
}

function toPoints(body) {
  return body.points.map((p) => {
    const point = { t: Date.parse(p.t), v: Number(p.value), text: p.value };
    if (p.min !== undefined && p.max !== undefined) {
      point.lo = Number(p.min);
      point.hi = Number(p.max);
      point.loText = p.min;
      point.hiText = p.max;
    }
    return point;
  });
}

// The back-filled periods of a readings body, as times.
function spans(body) {
  return ((body && body.backfilled) || []).map((s) => ({ from: Date.parse(s.from), to: Date.parse(s.to) }));
}

function energyFrom(now, per) {
  const d = new Date(now);
  const n = PERIODS[per] - 1;
  if (per === "hour") d.setUTCHours(d.getUTCHours() - n, 0, 0, 0);
  else if (per === "day") d.setUTCDate(d.getUTCDate() - n);
  else if (per === "week") d.setUTCDate(d.getUTCDate() - 7 * n);
  else d.setUTCMonth(d.getUTCMonth() - n, 1);
  return d.getTime();
}

async function loadCharts(meter) {
  const serial = meter.serial;
  const has = (r) => Boolean(valueOf(meter.data, r));
  const now = Date.now();
  const range = RANGES[state.range];
  const from = now - range.back;
  const energyStart = energyFrom(now, state.per);
  const wanted = {
    energy: has("heat_energy") ? seriesUrl(serial, "heat_energy", energyStart, now, state.per) : null,
    t1: has("t1") ? seriesUrl(serial, "t1", from, now, range.bucket) : null,
    t2: has("t2") ? seriesUrl(serial, "t2", from, now, range.bucket) : null,
    power: has("power") ? seriesUrl(serial, "power", from, now, range.bucket) : null,
    flow: has("flow") ? seriesUrl(serial, "flow", from, now, range.bucket) : null,
  };
  const entries = await Promise.all(
    Object.entries(wanted).map(async ([key, url]) => [key, url ? await getJSON(url) : null]),
  );
  meter.charts = { now, from, to: now, per: state.per, energyFrom: energyStart, bodies: Object.fromEntries(entries) };
  drawCharts(meter);
}

function drawCharts(meter) {
  const c = meter.charts;
  if (!c) return;
  const s = meter.section;
  const b = c.bodies;
  let drawn = 0;
  let expected = 0;
  const unitOf = (body) => (body && body.unit) || "";
  if (b.energy) {
    expected++;
    text($(".m-energy-unit", s), unitOf(b.energy));
    const bars = {
      points: toPoints(b.energy), bucket: c.per, unit: unitOf(b.energy), from: c.energyFrom, now: c.now,
      backfilled: spans(b.energy),
    };
    if (drawBars($(".m-energy", s), bars)) drawn++;
  } else {
    noData($(".m-energy", s), "This meter reports no heat energy");
  }
  const temps = [];
  if (b.t1) temps.push({ name: "T1", cls: "s-t1", points: toPoints(b.t1) });
  if (b.t2) temps.push({ name: "T2", cls: "s-t2", points: toPoints(b.t2) });
  if (temps.length) {
    expected++;
    const backfilled = spans(b.t1 || b.t2);
    if (drawLines($(".m-temps", s), { series: temps, from: c.from, to: c.to, unit: "°C", backfilled })) drawn++;
  } else {
    noData($(".m-temps", s), "This meter reports no temperatures");
  }
  for (const key of ["power", "flow"]) {
    const box = $(`.m-${key}`, s);
    const body = b[key];
    if (!body) {
      noData(box, `This meter reports no ${key}`);
      continue;
    }
    expected++;
    text($(`.m-${key}-unit`, s), unitOf(body));
    const series = [{ name: labelOf(meter.data, key), cls: `s-${key}`, points: toPoints(body) }];
    if (drawLines(box, { series, from: c.from, to: c.to, unit: unitOf(body), backfilled: spans(body) })) drawn++;
  }
  meter.drawn = drawn;
  meter.expected = expected;
  checkReady();
}

// The page is "ready" (for people and for the headless browser test) once every meter's every
// chart has drawn real points.
function checkReady() {
  const meters = [...state.meters.values()];
  const done = meters.length > 0 && meters.every((m) => m.expected > 0 && m.drawn === m.expected);
  const root = document.documentElement;
  root.dataset.charts = String(meters.reduce((n, m) => n + (m.drawn || 0), 0));
  if (done && !state.ready) {
    state.ready = true;
    root.dataset.ready = "true";
  }
}

async function refreshCharts() {
  const jobs = [...state.meters.values()].map((m) =>
    loadCharts(m).catch((e) => showBanner(`Could not load the graphs of ${m.data.name}: ${e.message}`)),
  );
  await Promise.all(jobs);
}

// ---------------------------------------------------------------- status tables

function cell(row, value, cls) {
  const td = document.createElement("td");
  if (cls) td.className = cls;
  td.textContent = value;
  row.appendChild(td);
  return td;
}

function renderStatus(status) {
  text($("#version"), `kamstrup-bridge ${status.version}`);
  const sinkBody = $("#sinks tbody");
  sinkBody.replaceChildren();
  for (const sink of status.sinks) {
    const live = sink.status || null;
    const row = document.createElement("tr");
    cell(row, sink.name);
    let state = "not running";
    let cls = "unknown";
    if (live) {
      const failing = live.consecutive_failures > 0;
      state = failing
        ? `failing since ${ago((Date.now() - Date.parse(live.failing_since)) / 1000)} (${live.consecutive_failures} attempts), retrying`
        : "delivering";
      cls = failing ? "bad" : "ok";
    }
    const badge = document.createElement("span");
    badge.className = `badge ${cls}`;
    badge.textContent = state;
    cell(row, "").appendChild(badge);
    const upTo = sink.cursor === null || sink.cursor === undefined ? "nothing yet" : `#${sink.cursor} of #${status.latest_reading_id}`;
    cell(row, upTo, "num");
    const lastOk = live && live.last_ok ? live.last_ok : sink.cursor_moved_at;
    cell(row, lastOk ? ago((Date.now() - Date.parse(lastOk)) / 1000) : "never", "num");
    cell(row, live ? String(live.failures) : "–", "num");
    cell(row, live && live.last_error ? `${live.last_error.kind}: ${live.last_error.message}` : "", "msg");
    sinkBody.appendChild(row);
  }
  $("#no-sinks").hidden = status.sinks.length > 0;

  const errBody = $("#errors tbody");
  errBody.replaceChildren();
  for (const e of status.errors.slice(0, 20)) {
    const row = document.createElement("tr");
    cell(row, stamp(e.at), "num");
    cell(row, e.meter);
    cell(row, e.kind);
    cell(row, e.message, "msg");
    errBody.appendChild(row);
  }
  $("#no-errors").hidden = status.errors.length > 0;
  $("#errors").hidden = status.errors.length === 0;
  const totals = status.error_counts.map((c) => `${c.meter}: ${c.count} × ${c.kind}`);
  text($("#error-counts"), totals.length ? `Recorded (within retention): ${totals.join(", ")}` : "");
}

// ---------------------------------------------------------------- refresh loop

async function refreshLatest() {
  try {
    const [list, status] = await Promise.all([getJSON("api/meters"), getJSON("api/status")]);
    showBanner("");
    const fresh = [];
    for (const data of list.meters) {
      let meter = state.meters.get(data.serial);
      if (!meter) {
        meter = { serial: data.serial, section: meterSection(data), data, charts: null, drawn: 0, expected: 0 };
        state.meters.set(data.serial, meter);
        fresh.push(meter);
      }
      meter.data = data;
      renderHead(meter);
      renderTiles(meter);
    }
    $("#no-meters").hidden = list.meters.length > 0;
    renderStatus(status);
    renderUnread(status);
    text($("#updated"), `updated ${clock(new Date())}`);
    await Promise.all(fresh.map((m) => loadCharts(m)));
  } catch (e) {
    showBanner(`Cannot load data from the server: ${e.message}. Retrying…`);
  }
}

function bindSegment(id, key) {
  const group = $(`#${id}`);
  group.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button || state[key] === button.dataset.value) return;
    state[key] = button.dataset.value;
    for (const b of group.querySelectorAll("button")) b.setAttribute("aria-pressed", String(b === button));
    refreshCharts();
  });
}

function start() {
  bindSegment("range", "range");
  bindSegment("per", "per");
  refreshLatest();
  setInterval(refreshLatest, LATEST_EVERY_MS);
  setInterval(refreshCharts, CHARTS_EVERY_MS);
  setInterval(() => state.meters.forEach(updateAge), 1000);
  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => state.meters.forEach(drawCharts), 150);
  });
}

start();
