"""The live view in the browser: the flowchart, the cluster, the status line, slow motion's
replay, and ``render``, which anywidget calls once per displayed view.

Each synced trait of :class:`~chimera_nb.notebook.dashboard.live.LiveView` has a drawing
function of the same name, called when the trait changes; the kernel sends whole values, so
any one message is enough to draw from. Slow motion's frames are played here with timers:
the kernel sends one message per round, the browser does the animation.
"""

__all__ = ["VIEWS_JS"]

VIEWS_JS = r"""
// The flowchart (its layout comes from Python: chimera_nb.masters.flowchart.layout), with the
// active step highlighted and the steps passed since the last picture tinted.
function flowchart(host, chart) {
  host.replaceChildren();
  const body = div("chimera-flowchart-body", host);
  body.dataset.machine = chart.machine;
  body.style.width = chart.width + "px";
  body.style.height = chart.height + "px";
  const arrows = svg("svg", { width: chart.width, height: chart.height, class: "cl-arrows" }, body);
  for (const route of chart.routes) {
    const p = route.points;
    svg("polyline", { points: p.map((q) => q.join(",")).join(" "), class: route.dashed ? "cl-route cl-dashed" : "cl-route" }, arrows);
    const [[x0], [x1, y1]] = p.slice(-2);
    const head = x0 === x1 ? `${x1 - 4},${y1 - 6} ${x1 + 4},${y1 - 6} ${x1},${y1}`
      : x1 > x0 ? `${x1 - 6},${y1 - 4} ${x1 - 6},${y1 + 4} ${x1},${y1}`
      : `${x1 + 6},${y1 - 4} ${x1 + 6},${y1 + 4} ${x1},${y1}`;
    svg("polygon", { points: head, class: "cl-head" }, arrows);
    if (route.label)
      svg("text", { x: route.at[0], y: route.at[1] + 2, class: "cl-route-label",
        "text-anchor": x1 < x0 ? "end" : "start" }, arrows, route.label);
  }
  const boxes = {};
  for (const b of chart.boxes) {
    const box = div("chimera-step" + (b.side ? " cl-side" : ""), body);
    box.dataset.step = b.letter;
    box.title = `${b.letter}: ${b.label}`;
    Object.assign(box.style, { left: b.x + "px", top: b.y + "px", width: b.w + "px", height: b.h + "px", lineHeight: b.h - 2 + "px" });
    const letter = document.createElement("b");
    letter.textContent = b.letter;
    box.append(letter, " " + b.label);
    boxes[b.letter] = box;
  }
  return { body, boxes };
}

function highlight(chart, active, visited) {
  chart.body.dataset.activeStep = active || "";
  for (const [letter, box] of Object.entries(chart.boxes)) {
    box.classList.toggle("chimera-step-active", letter === active);
    box.classList.toggle("chimera-step-visited", letter !== active && visited.includes(letter));
  }
}

// The cluster: the master on the left, a box per worker on the right, a link between them
// that lights up when a call goes out and when its answer (or failure) comes back.
function cluster(host, names) {
  host.replaceChildren();
  const width = Math.max(host.clientWidth, 260), row = 62, height = Math.max(names.length * row, 140);
  const view = div("cl-cluster-body", host);
  view.style.height = height + "px";
  const links = svg("svg", { width, height, class: "cl-links" }, view);
  const master = div("cl-master", view);
  master.style.top = height / 2 - 34 + "px";
  master.innerHTML = "<b>master</b><br><span class='cl-dim'>parameters</span>";
  const workerX = 190, result = { view, master, links: {}, boxes: {} };
  names.forEach((name, i) => {
    const y = i * row + (height - names.length * row) / 2 + 4;
    result.links[name] = svg("line", { x1: 116, y1: height / 2, x2: workerX, y2: y + 27, class: "cl-link" }, links);
    const box = div("cl-worker", view);
    Object.assign(box.style, { top: y + "px", left: workerX + "px", width: width - workerX - 4 + "px" });
    box.dataset.worker = name;
    box.innerHTML = "<div class='cl-line1'></div><div class='cl-line2'></div>";
    svg("line", { x1: "0", y1: "0", x2: "100%", y2: "100%", class: "cl-cross" },
      svg("svg", { class: "cl-crossed", width: "100%", height: "100%" }, box));
    result.boxes[name] = box;
  });
  return result;
}

function showWorkers(view, workers) {
  unlight(view);
  for (const w of workers) {
    const box = view.boxes[w.name], link = view.links[w.name];
    if (!box) continue;
    box.dataset.state = w.state;
    box.dataset.crossed = String(w.state === "failed");
    box.dataset.last = String(w.last);
    box.title = w.why ? `${w.name}: ${w.why}` : `${w.name}: ${w.state}`;
    const delay = w.delay_ms ? ` <span class="cl-delay">+${w.delay_ms} ms</span>` : "";
    const network = w.network ? ` <span class="cl-network" title="emulated network">${w.network}</span>` : "";
    box.querySelector(".cl-line1").innerHTML =
      `<b>${w.name}</b> <span class="cl-chip" data-state="${w.state}">${w.state}</span>${delay}${network}`;
    box.dataset.network = w.network || "";
    const latency = w.round_ms ?? w.latency_ms;
    const ahead = w.ahead == null ? "" : `clock ${w.clock}, ahead by ${w.ahead}`;  // SSP, ASP
    box.querySelector(".cl-line2").textContent = w.short ||
      [latency == null ? "" : `${number(latency)} ms`, `${w.answered} rounds`, ahead, w.last ? "answered last" : ""]
        .filter(Boolean).join(" · ");
    box.dataset.ahead = w.ahead == null ? "" : String(w.ahead);
    link.dataset.state = w.state === "failed" ? "failed" : w.last ? "last" : "idle";
  }
}

function light(view, worker, kind) {
  const link = view.links[worker];
  if (link) link.dataset.state = kind;
  const box = view.boxes[worker];
  if (box) box.dataset.flash = kind;
}

function unlight(view) {
  for (const box of Object.values(view.boxes)) delete box.dataset.flash;
}

function statusLine(host, s) {
  const digits = String(s.max_rounds).length;  // fixed widths: the line never jumps
  const round = s.max_rounds == null ? ""
    : ` · round <span class="cl-num" style="min-width:${digits}ch">${s.round}</span> / ${s.max_rounds}`;
  const speed = s.rounds_per_s == null ? ""
    : ` · <span class="cl-num" style="min-width:3ch">${number(s.rounds_per_s)}</span> rounds/s`;
  const state = s.closed ? " · <span class='cl-closed'>lab closed: controls off</span>" : s.fitting ? " · fitting" : "";
  const beats = s.heartbeats ? ` · heartbeats every ${number(s.heartbeats)} s` : "";
  host.innerHTML = `<b>${s.role}</b> · ${s.action}${round}${speed} · ${s.n_workers} workers (${s.workers})${beats} · ${s.mode}${state}`;
  Object.assign(host.dataset, { round: s.round, fitting: s.fitting, closed: s.closed, mode: s.mode });
}

const MODES = {
  "full speed": "Full speed: the steps pass too fast to see; Slow motion replays each round step by step.",
  "slow motion": "Slow motion: each round is replayed step by step while the fit waits.",
  paused: "Paused: Step one round runs the next round and replays it.",
};

function render({ model, el }) {
  el.classList.add("chimera-live");
  const root = div("cl-root", el);
  const status = div("cl-status chimera-status", root);
  const top = div("cl-top", root);
  const left = div("cl-flow", top);
  const banner = div("cl-banner", left);
  const flowHost = div("chimera-flowchart", left);
  const clusterHost = div("cl-cluster chimera-cluster", top);
  const charts = div("cl-charts", root);
  const panel = (name) => svg("svg", { class: name }, div("cl-panel", charts));
  const lossHost = panel("chimera-loss"), excessHost = panel("chimera-excess");
  const roundHost = panel("chimera-round-time"), latencyHost = panel("chimera-latency");
  const timelineHost = div("cl-timeline chimera-timeline", root);
  let chart = null, view = null, names = [], timers = [], replaying = false, syncs = 0, following = true;

  const width = (node) => Math.max(280, Math.floor(node.parentNode.clientWidth || 340));
  const draw = {
    status() {
      const s = model.get("status");
      statusLine(status, s);
      if (!replaying || s.mode === "full speed") banner.textContent = MODES[s.mode] || "";
      if (s.mode === "full speed" && replaying) { timers.forEach(clearTimeout); endReplay(); }
    },
    chart() { chart = flowchart(flowHost, model.get("chart")); draw.step(); },
    step() {
      const s = model.get("step");
      if (chart && !replaying) highlight(chart, s.active, s.visited);
    },
    workers() {
      const workers = model.get("workers");
      const now = workers.map((w) => w.name).join(",");
      if (!view || now !== names.join(",")) { names = workers.map((w) => w.name); view = cluster(clusterHost, names); }
      if (!replaying) showWorkers(view, workers);
      else for (const w of workers) {  // a replay shows a past round, but a crash shows at once
        const box = view.boxes[w.name];
        if (box) { box.dataset.state = w.state; box.dataset.crossed = String(w.state === "failed"); }
      }
    },
    loss() {
      const d = model.get("loss");
      lossHost.parentNode.dataset.lastRound = d.last_round;
      lossHost.dataset.lastRound = d.last_round;
      const max = d.max_rounds && d.max_rounds <= 5000 ? d.max_rounds : 0;
      lineChart(lossHost, width(lossHost), { title: "Loss per round", xLabel: "round", yLabel: "loss",
        series: [{ xs: d.rounds, ys: d.values, cls: "cl-loss-line" }], xMax: max, marks: d.marks,
        reference: d.reference, emptyText: d.no_rounds ? "this master has no rounds" : "no rounds yet" });
      excessHost.parentNode.style.display = d.reference == null ? "none" : "";
      if (d.reference != null) {
        const ys = d.values.map((v) => v - d.reference);
        lineChart(excessHost, width(excessHost), { title: "Excess over the optimum", log: true,
          xLabel: "round", yLabel: "loss − optimum", series: [{ xs: d.rounds, ys, cls: "cl-excess-line" }], xMax: max });
      }
    },
    round_time() {
      const d = model.get("round_time"), s = model.get("status");
      const speed = s.rounds_per_s == null ? "" : ` · ${number(s.rounds_per_s)} rounds/s`;
      lineChart(roundHost, width(roundHost), { title: `Time per round${speed}`, xLabel: "round",
        yLabel: "ms (log scale)", log: true, series: [{ xs: d.rounds, ys: d.ms, cls: "cl-round-line" }] });
    },
    latency() {
      const notes = {};
      for (const w of model.get("workers")) if (w.delay_ms) notes[w.name] = `+${w.delay_ms}`;
      boxChart(latencyHost, width(latencyHost), model.get("latency"), notes);
    },
    timeline() {
      const old = timelineHost.querySelector(".cl-timeline-scroll");
      if (old) following = old.scrollLeft + old.clientWidth >= old.scrollWidth - 8;
      const scroller = timelineChart(timelineHost, Math.max(300, timelineHost.clientWidth), model.get("timeline"));
      if (scroller && scroller.scrollWidth) {
        scroller.scrollLeft = following ? scroller.scrollWidth : old ? old.scrollLeft : 0;
      }
    },
    replay() {
      const r = model.get("replay");
      timers.forEach(clearTimeout);
      timers = [];
      if (!r || !r.frames || !r.frames.length || !chart) return;
      replaying = true;
      el.dataset.replayRound = r.round;
      banner.textContent = `Replaying round ${r.round} step by step (the fit waits meanwhile).`;
      const visited = [];
      for (const name of names) light(view, name, "idle");
      for (const [at, kind, what] of r.frames)
        timers.push(setTimeout(() => {
          if (kind === "step") { highlight(chart, what, visited); visited.push(what); }
          else light(view, what, kind);
        }, at));
      const end = r.frames[r.frames.length - 1][0] + 300;  // then the cluster as it is now
      timers.push(setTimeout(endReplay, end));
    },
  };
  function endReplay() {  // back to the cluster and the step as they are now
    replaying = false;
    draw.step();
    if (view) showWorkers(view, model.get("workers"));
  }
  const safely = (part) => { try { draw[part](); } catch (error) { console.error("chimera dashboard", part, error); } };
  for (const part of Object.keys(draw)) model.on(`change:${part}`, () => safely(part));
  model.on("change", () => { el.dataset.syncs = String(++syncs); });
  for (const part of Object.keys(draw)) safely(part);
  let pending = 0;
  let widths = "";
  const resized = new ResizeObserver(() => {
    const now = [root, clusterHost, lossHost.parentNode].map((n) => n.clientWidth).join();
    if (now === widths) return;
    widths = now;
    cancelAnimationFrame(pending);
    pending = requestAnimationFrame(() => ["workers", "loss", "round_time", "latency", "timeline"].forEach((p) => {
      if (p === "workers") view = null;
      safely(p);
    }));
  });
  for (const node of [root, clusterHost, lossHost.parentNode]) resized.observe(node);
  return () => { resized.disconnect(); timers.forEach(clearTimeout); };
}

export default { render };
"""
