"""StatsPlot: live CPU % and memory of one container or of a runtime's running containers.

A sampler thread reads the engine's stats (cgroup counters, engine/stats.py) every `interval`
seconds and keeps a sliding `window` of samples per container in one synced trait; the view (a
small anywidget ESM drawing SVG polylines, no plotting library, nothing from a CDN) moves the
points of its lines, it never rebuilds the chart. Where there is nothing to measure (a stopped
container, no running one, a removed one, no cgroup) the widget says so in words.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import anywidget
import traitlets as t

from ..engine.errors import ContainerRemoved, NoSuchContainer
from ..engine.state import ContainerState
from ._live import Refresher, error_text, hidden_again

_ESM = r"""
const NS = "http://www.w3.org/2000/svg";
const COLORS = ["#0969da", "#cf222e", "#1a7f37", "#8250df", "#bc4c00", "#1b7c83", "#9a6700", "#6e7781"];
const W = 640, H = 120, L = 56, R = 8, T = 8, B = 18;
function svg(tag, attrs, parent) {
  const n = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, v);
  if (parent) parent.appendChild(n);
  return n;
}
function bytes(n) {
  const u = ["B", "kB", "MB", "GB", "TB"]; let i = 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return (n >= 100 || i === 0 ? n.toFixed(0) : n.toFixed(1)) + " " + u[i];
}
function nice(max) {
  if (max <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(max))), f = max / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}
function panel(root, title, fmt) {
  const box = root.appendChild(document.createElement("div"));
  box.className = "wb-stats-panel";
  const head = box.appendChild(document.createElement("div"));
  head.className = "wb-stats-head"; head.textContent = title;
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: "100%", preserveAspectRatio: "none" }, box);
  s.style.maxWidth = W + "px";
  for (const f of [0, 0.5, 1]) svg("line", { x1: L, x2: W - R, y1: T + (H - T - B) * f, y2: T + (H - T - B) * f,
    class: "wb-grid" }, s);
  const top = svg("text", { x: L - 4, y: T + 4, "text-anchor": "end", class: "wb-axis" }, s);
  const mid = svg("text", { x: L - 4, y: T + (H - T - B) / 2 + 4, "text-anchor": "end", class: "wb-axis" }, s);
  svg("text", { x: L - 4, y: H - B + 4, "text-anchor": "end", class: "wb-axis" }, s).textContent = "0";
  const left = svg("text", { x: L, y: H - 4, class: "wb-axis" }, s);
  svg("text", { x: W - R, y: H - 4, "text-anchor": "end", class: "wb-axis" }, s).textContent = "now";
  const lines = svg("g", {}, s);
  return { s, top, mid, left, lines, fmt, polys: new Map(), head, title };
}
function render({ model, el }) {
  el.classList.add("wb-stats");
  const title = el.appendChild(document.createElement("div"));
  title.className = "wb-stats-title";
  const msg = el.appendChild(document.createElement("div"));
  msg.className = "wb-stats-msg";
  const cpu = panel(el, "CPU %", v => v.toFixed(v >= 10 ? 0 : 1) + "%");
  const mem = panel(el, "Memory", bytes);
  const legend = el.appendChild(document.createElement("div"));
  legend.className = "wb-stats-legend";
  const colorOf = new Map();
  function draw(p, series, index, now, window) {
    let max = 0;
    for (const pts of Object.values(series)) for (const q of pts) max = Math.max(max, q[index]);
    const top = nice(max * 1.1);
    p.top.textContent = p.fmt(top); p.mid.textContent = p.fmt(top / 2);
    p.left.textContent = "-" + Math.round(window) + " s";
    const seen = new Set();
    for (const [name, pts] of Object.entries(series)) {
      seen.add(name);
      let poly = p.polys.get(name);
      if (!poly) {
        poly = svg("polyline", { class: "wb-line", stroke: colorOf.get(name) }, p.lines);
        p.polys.set(name, poly);
      }
      const xy = pts.filter(q => now - q[0] <= window).map(q => {
        const x = L + (W - L - R) * (1 - (now - q[0]) / window);
        const y = T + (H - T - B) * (1 - q[index] / top);
        return x.toFixed(1) + "," + y.toFixed(1);
      }).join(" ");
      if (poly.getAttribute("points") !== xy) poly.setAttribute("points", xy);
      poly.dataset.name = name;
    }
    for (const [name, poly] of p.polys) if (!seen.has(name)) { poly.remove(); p.polys.delete(name); }
  }
  function update() {
    const series = model.get("samples") || {};
    let now = 0, oldest = Infinity;
    for (const pts of Object.values(series)) if (pts.length) {
      now = Math.max(now, pts[pts.length - 1][0]); oldest = Math.min(oldest, pts[0][0]);
    }
    // the time axis grows with the data (at least 30 s) until it spans the whole window
    const span = Math.min(model.get("window"), Math.max(30, now - oldest));
    for (const name of Object.keys(series)) {
      if (!colorOf.has(name)) colorOf.set(name, COLORS[colorOf.size % COLORS.length]);
    }
    draw(cpu, series, 1, now, span); draw(mem, series, 2, now, span);
    const latest = Object.entries(series).filter(([, p]) => p.length).map(([n, p]) => [n, p[p.length - 1]]);
    cpu.head.textContent = "CPU % " + latest.map(([n, q]) => `${n} ${q[1].toFixed(1)}%`).join("  ");
    mem.head.textContent = "Memory " + latest.map(([n, q]) => `${n} ${bytes(q[2])}`).join("  ");
    legend.replaceChildren(...Object.keys(series).map(n => {
      const s = document.createElement("span"); s.className = "wb-key";
      s.style.setProperty("--c", colorOf.get(n)); s.textContent = n; return s;
    }));
    const m = model.get("message");
    if (msg.textContent !== m) msg.textContent = m;
    msg.hidden = !m;
    title.textContent = model.get("title");
  }
  const events = ["change:samples", "change:message", "change:title"];
  for (const e of events) model.on(e, update);
  update();
  return () => { for (const e of events) model.off(e, update); };
}
export default { render };
"""

_CSS = """
.wb-stats { font-size: 12px; font-family: var(--jp-ui-font-family, sans-serif); }
.wb-stats .wb-stats-title { font-weight: 600; }
.wb-stats .wb-stats-msg { color: #9a6700; padding: 4px 0; font-weight: 600; }
.wb-stats .wb-stats-head { color: var(--jp-ui-font-color1, #333); margin-top: 4px; font-variant-numeric: tabular-nums; }
.wb-stats .wb-grid { stroke: var(--jp-border-color2, #e0e0e0); stroke-width: 1; }
.wb-stats .wb-axis { fill: #6e7781; font-size: 10px; }
.wb-stats .wb-line { fill: none; stroke-width: 1.6; vector-effect: non-scaling-stroke; }
.wb-stats .wb-key { margin-right: 12px; }
.wb-stats .wb-key::before { content: ""; display: inline-block; width: 10px; height: 10px; margin-right: 4px;
  background: var(--c); border-radius: 2px; }
"""


class StatsPlot(anywidget.AnyWidget):
    """Live CPU % and memory of a Container, or of every running container of a Runtime, over the
    last `window` seconds, sampled every `interval` seconds. `samples` maps a container's name to
    [time, cpu %, memory bytes] points; `message` says why there is nothing to plot."""

    _esm = _ESM
    _css = _CSS
    samples = t.Dict().tag(sync=True)
    window = t.Float(180.0).tag(sync=True)
    message = t.Unicode("").tag(sync=True)
    title = t.Unicode("").tag(sync=True)

    def __init__(self, target: Any = None, *, window: float = 180.0, interval: float = 1.0, **kwargs: Any):
        if target is None:
            from ..notebook import KERNEL

            target = KERNEL.runtime()
        self.target, self.interval = target, interval
        self._single = hasattr(target, "config")  # a Container, not a Runtime
        title = f"stats of {target.name}" if self._single else "stats of the running containers"
        super().__init__(window=float(window), title=title, **kwargs)
        self._view_count = 0
        self._previous: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._removed = False
        self.sample()
        self._refresher = Refresher(self.sample, interval, "stats", idle=lambda: hidden_again(self)).start()

    def _containers(self) -> list[Any]:
        if self._single:
            return [self.target]
        return [c for c in self.target.containers(all=True) if c.st.state == ContainerState.RUNNING]

    def sample(self) -> None:
        """Take one sample of each container now (the sampler thread calls this every interval)."""
        with self._lock:
            if self._removed:
                return
            now = time.time()
            series = {name: [p for p in points if now - p[0] <= self.window]
                      for name, points in self.samples.items()}
            try:
                targets = self._containers()
            except Exception as exc:  # noqa: BLE001 - shown in the widget
                self.message = f"stats unavailable: {error_text(exc)}"
                return
            notes = []
            for c in targets:
                try:
                    state = c.state
                    if state not in (ContainerState.RUNNING, ContainerState.PAUSED):
                        notes.append(f"{c.name} is {state.value}: no processes, no stats")
                        self._previous.pop(c.id, None)
                        continue
                    record = c.stats(self._previous.get(c.id))
                except (ContainerRemoved, NoSuchContainer):
                    if self._single:
                        self._removed = True
                        notes.append("container removed")
                    continue
                except Exception as exc:  # noqa: BLE001 - e.g. no cgroup controller here
                    notes.append(f"{c.name}: stats unavailable: {error_text(exc)}")
                    continue
                self._previous[c.id] = record
                series.setdefault(c.name, []).append([round(record["SystemNano"] / 1e9, 3),
                                                      round(record["CPU"], 2), record["MemUsage"]])
            if not self._single:
                running = {c.name for c in targets}
                series = {name: points for name, points in series.items() if name in running}
                if not targets:
                    notes.append("no running containers: nothing to measure")
            self.samples = series
            self.message = "; ".join(notes)

    def close(self) -> None:
        self._refresher.stop()
        super().close()
