"""The charts, drawn in the browser as SVG: axes, lines, boxes with outliers, swimlanes.

Plain JavaScript (an ES module's first half; :mod:`.views` is the second), kept in a Python
string so that the kit installs as pure Python with no build step and no data files. Every
chart is sized in CSS pixels from its panel's width and never scaled, so a 14 px label is
14 px on the screen; the numbers come from Python (:mod:`chimera_nb.plots` computes the
rules, such as a box plot's whiskers, once for both the browser and matplotlib).
"""

__all__ = ["CHARTS_JS"]

CHARTS_JS = r"""
const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs, parent, text) {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs || {}))
    if (value !== null && value !== undefined) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  if (parent) parent.appendChild(node);
  return node;
}

function div(className, parent, text) {
  const node = document.createElement("div");
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  if (parent) parent.appendChild(node);
  return node;
}

function number(value) {
  const size = Math.abs(value);
  if (size === 0) return "0";
  if (size >= 1000) return Math.round(value).toLocaleString("en-US");
  return String(+value.toPrecision(size >= 10 ? 3 : 2));
}

// Ticks: 1-2-5 steps on a linear axis; on a log axis 1-2-5 per decade, or more within one
// decade (the rule of chimera_nb.plots.chart.log_ms_axis), so an axis never has one label.
function linearTicks(low, high, most) {
  const raw = (high - low) / most;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const r = raw / magnitude;
  const step = magnitude * (r > 5 ? 10 : r > 2 ? 5 : r > 1 ? 2 : 1);
  const ticks = [];
  for (let v = Math.ceil(low / step - 1e-9) * step; v <= high + step * 1e-9; v += step)
    ticks.push(+v.toPrecision(12));
  return ticks;
}

function logTicks(low, high, most) {
  const decades = Math.log10(high / low);
  const choices = decades < 1.2 ? [[1, 1.5, 2, 3, 5, 7], [1, 2, 5]] : [[1, 2, 5], [1, 3], [1]];
  let ticks = [];
  for (const subs of choices) {  // the finest that fits the axis' height
    ticks = [];
    for (let e = Math.floor(Math.log10(low)); e <= Math.ceil(Math.log10(high)); e++)
      for (const s of subs) {
        const v = +(s * 10 ** e).toPrecision(6);
        if (v >= low && v <= high) ticks.push(v);
      }
    if (ticks.length <= most) break;
  }
  return ticks;
}

function range(values, log) {
  let low = Infinity, high = -Infinity;
  for (const v of values)
    if (Number.isFinite(v) && (!log || v > 0)) { low = Math.min(low, v); high = Math.max(high, v); }
  if (low === Infinity) return log ? [1, 10] : [0, 1];
  if (log) return [low / 1.25, high * 1.25];
  const pad = (high - low) * 0.08 || Math.abs(high) * 0.1 || 1;
  return [low - pad, high + pad];
}

function scale(low, high, from, to, log) {
  const f = log ? Math.log10 : (v) => v;
  const a = f(low), b = f(high);
  return (v) => from + ((f(log ? Math.max(v, low) : v) - a) / (b - a || 1)) * (to - from);
}

// The axes of one chart in `host` (an <svg>): title, grid, ticks and labels, 14 px or more.
function axes(host, spec) {
  const m = { left: 66, right: 16, top: 30, bottom: 48 };
  const { width, height } = spec;
  host.setAttribute("width", width);
  host.setAttribute("height", height);
  const sx = scale(spec.x[0], spec.x[1], m.left, width - m.right, false);
  const sy = scale(spec.y[0], spec.y[1], height - m.bottom, m.top, spec.log);
  svg("text", { x: m.left, y: 20, class: "cl-title" }, host, spec.title);
  svg("rect", { x: m.left, y: m.top, width: width - m.left - m.right,
    height: height - m.top - m.bottom, class: "cl-plot" }, host);
  const most = Math.max(3, Math.floor((height - m.top - m.bottom) / 24));
  const yTicks = spec.log ? logTicks(spec.y[0], spec.y[1], most) : linearTicks(spec.y[0], spec.y[1], 4);
  for (const v of yTicks) {
    const y = sy(v);
    svg("line", { x1: m.left, x2: width - m.right, y1: y, y2: y, class: "cl-grid" }, host);
    svg("text", { x: m.left - 6, y: y + 5, class: "cl-tick", "text-anchor": "end" }, host, number(v));
  }
  const xTicks = spec.xTicks || linearTicks(spec.x[0], spec.x[1], Math.max(2, Math.floor((width - 90) / 90)));
  for (const v of xTicks)
    svg("text", { x: sx(v), y: height - m.bottom + 19, class: "cl-tick", "text-anchor": "middle" },
      host, typeof v === "number" ? number(v) : v);
  svg("text", { x: (m.left + width - m.right) / 2, y: height - 6, class: "cl-label",
    "text-anchor": "middle" }, host, spec.xLabel);
  const middle = (m.top + height - m.bottom) / 2;
  svg("text", { x: 15, y: middle, class: "cl-label", "text-anchor": "middle",
    transform: `rotate(-90 15 ${middle})` }, host, spec.yLabel);
  return { sx, sy, m };
}

function empty(host, width, height, title, text) {
  host.replaceChildren();
  host.setAttribute("width", width);
  host.setAttribute("height", height);
  svg("text", { x: 66, y: 20, class: "cl-title" }, host, title);
  svg("text", { x: width / 2, y: height / 2, class: "cl-empty", "text-anchor": "middle" }, host, text);
}

// A line per series over rounds, with vertical marks (a kill, a slowdown) and a dashed
// reference line. `spec`: title, xLabel, yLabel, series [{xs, ys, cls}], xMax, log, marks
// [[round, text, colour]], reference.
function lineChart(host, width, spec) {
  const height = spec.height || 240;
  const points = spec.series.reduce((n, s) => n + s.xs.length, 0);
  if (!points) return empty(host, width, height, spec.title, spec.emptyText || "no rounds yet");
  host.replaceChildren();
  const ys = spec.series.flatMap((s) => s.ys);
  if (spec.reference != null && !spec.log) ys.push(spec.reference);
  const last = Math.max(...spec.series.map((s) => s.xs[s.xs.length - 1] || 0));
  const x = [spec.xMin || 0, Math.max(spec.xMax || 0, last, 1)];
  const { sx, sy, m } = axes(host, { ...spec, width, height, x, y: range(ys, spec.log) });
  if (spec.reference != null && !spec.log) {
    const y = sy(spec.reference);
    svg("line", { x1: m.left, x2: width - m.right, y1: y, y2: y, class: "cl-reference" }, host);
  }
  for (const [i, [round, text, colour]] of (spec.marks || []).entries()) {
    const at = sx(round);
    svg("line", { x1: at, x2: at, y1: m.top, y2: height - m.bottom, class: "cl-mark", stroke: colour }, host);
    const right = at > width * 0.65;
    svg("text", { x: right ? at - 4 : at + 4, y: m.top + 17 + 17 * (i % 3), fill: colour,
      class: "cl-mark-text", "text-anchor": right ? "end" : "start" }, host, text);
  }
  for (const s of spec.series) {
    const line = s.xs.map((xv, i) => `${sx(xv).toFixed(1)},${sy(s.ys[i]).toFixed(1)}`).join(" ");
    svg("polyline", { points: line, class: s.cls }, host);
    const end = s.xs.length - 1;
    svg("circle", { cx: sx(s.xs[end]), cy: sy(s.ys[end]), r: 4, class: s.cls + "-end" }, host);
  }
}

// Boxes per worker (quartiles, whiskers, median) with every outlier as a dot, log scale:
// the numbers are matplotlib's (chimera_nb.plots.latency_boxes).
function boxChart(host, width, boxes, notes) {
  const height = 240, title = "Latency per worker (recent calls)";
  if (!boxes.length) return empty(host, width, height, title, "no calls yet");
  host.replaceChildren();
  const values = boxes.flatMap((b) => [b.low, b.high, ...b.outliers]);
  const names = boxes.map((b) => b.worker);
  const common = names.length > 1 ? commonPrefix(names) : "";
  const labels = names.map((n) => (common && n.length > common.length ? n.slice(common.length) : n));
  const band = (width - 82) / boxes.length;
  const { sx, sy } = axes(host, {
    width, height, title, log: true, x: [-0.5, boxes.length - 0.5], y: range(values, true),
    xTicks: [], xLabel: common ? `${common.replace(/[-_ ]$/, "")} (ms: log scale)` : "worker",
    yLabel: "latency, ms",
  });
  boxes.forEach((b, i) => {
    const x = sx(i), half = Math.min(22, band * 0.3);
    const g = svg("g", { class: "cl-box", "data-worker": b.worker, "data-median": b.median,
      "data-outliers": b.outliers.length }, host);
    svg("line", { x1: x, x2: x, y1: sy(b.low), y2: sy(b.high), class: "cl-whisker" }, g);
    svg("rect", { x: x - half, width: 2 * half, y: sy(b.q3), height: Math.max(1, sy(b.q1) - sy(b.q3)),
      class: "cl-box-body" }, g);
    svg("line", { x1: x - half, x2: x + half, y1: sy(b.median), y2: sy(b.median), class: "cl-median" }, g);
    for (const v of b.outliers) svg("circle", { cx: x, cy: sy(v), r: 3, class: "cl-outlier" }, g);
    const label = labels[i] + (notes[b.worker] ? ` ${notes[b.worker]}` : "");
    svg("text", { x, y: height - 29, class: "cl-tick", "text-anchor": "middle" }, host, label);
  });
}

function commonPrefix(names) {
  let prefix = names[0];
  for (const n of names) while (!n.startsWith(prefix)) prefix = prefix.slice(0, -1);
  return prefix.replace(/\d+$/, "");
}

// Swimlanes of the last rounds' calls (chimera_nb.plots.timeline_rounds): the last 8 rounds
// fill the width, older ones are a scroll to the left. It follows the newest rounds unless
// the reader scrolled back.
function timelineChart(host, width, data) {
  const lanes = data.lanes || [], rounds = data.rounds || [];
  host.replaceChildren();
  div("cl-title-html", host, "Timeline: each worker's calls in the last rounds (scroll back for earlier ones)");
  if (!rounds.length) return div("cl-empty-html", host, "no calls yet");
  const row = div("cl-timeline-row", host);
  const names = div("cl-lane-names", row);
  const scroller = div("cl-timeline-scroll", row);
  const laneHeight = 30, top = 44, labelWidth = 112;
  const shown = rounds.slice(-8);
  const visible = data.total - shown[0].offset || 1;
  const perMs = (width - labelWidth - 24) / visible;
  const drawing = svg("svg", { width: Math.ceil(data.total * perMs) + 12, height: top + lanes.length * laneHeight + 4 }, scroller);
  const busy = lanes.map(() => 0), calls = lanes.map(() => 0);
  lanes.forEach((name, i) => {
    svg("rect", { x: 0, y: top + i * laneHeight, width: "100%", height: laneHeight,
      class: i % 2 ? "cl-lane-odd" : "cl-lane-even" }, drawing);
  });
  let lastLabel = -Infinity;
  rounds.forEach((r, k) => {
    const x0 = 6 + r.offset * perMs, recent = k >= rounds.length - 8;
    if (x0 - lastLabel > 74) {
      svg("text", { x: x0, y: 17, class: "cl-tick" }, drawing, r.round === null ? "calls" : `round ${r.round}`);
      svg("text", { x: x0, y: 35, class: "cl-tick cl-dim" }, drawing, `${number(r.barrier)} ms`);
      lastLabel = x0;
    }
    const barrier = x0 + r.barrier * perMs;
    svg("line", { x1: barrier, x2: barrier, y1: top - 4, y2: top + lanes.length * laneHeight, class: "cl-barrier" }, drawing);
    for (const [lane, start, end, ok, stale] of r.calls) {
      const y = top + lane * laneHeight + 5;
      svg("rect", { x: x0 + end * perMs, y: y + 6, width: Math.max(0, (r.barrier - end) * perMs),
        height: laneHeight - 22, class: "cl-wait" }, drawing);
      const bar = svg("rect", { x: x0 + start * perMs, y, width: Math.max(1.5, (end - start) * perMs),
        height: laneHeight - 10, class: ok ? "cl-call" : "cl-call cl-call-failed",
        "data-worker": lanes[lane], "data-round": r.round, "data-ms": (end - start).toFixed(2) }, drawing);
      const clock = r.round === null ? "" : ` round ${r.round}`;
      const ahead = stale == null ? "" : ` · ahead by ${stale} clock${stale === 1 ? "" : "s"} (staleness ${stale})`;
      svg("title", {}, bar, `${lanes[lane]}${clock}: ${(end - start).toFixed(1)} ms${ok ? "" : " (failed)"}${ahead}`);
      if (stale != null) bar.dataset.staleness = String(stale);
      if (recent) { busy[lane] += end - start; calls[lane] += 1; }
    }
  });
  div("cl-lane-head", names, "worker");
  lanes.forEach((name, i) => {
    const label = div("cl-lane", names, name);
    label.style.height = laneHeight + "px";
    label.dataset.worker = name;
    label.dataset.busyMs = busy[i].toFixed(2);
    label.dataset.meanMs = calls[i] ? (busy[i] / calls[i]).toFixed(2) : "0";
    label.title = `${name}: ${calls[i] ? (busy[i] / calls[i]).toFixed(1) : "-"} ms per call in the last 8 rounds`;
  });
  names.style.paddingTop = top - 22 + "px";
  return scroller;
}
"""
