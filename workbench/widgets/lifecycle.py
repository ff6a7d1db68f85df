"""LifecycleDiagram: a container's state machine drawn in SVG, the current state lit, for teaching.

The states and the operations between them are the engine's (engine/state.py); the buttons
offered are exactly the operations TRANSITIONS allows in the current state. A refresher thread
re-reads the state when the events log changes (a stat every 0.2 s) and every few seconds
otherwise; the view animates the edge the container took. Removal shows "container removed".
"""

from __future__ import annotations

import threading
import time
from typing import Any

import anywidget
import traitlets as t

from ..engine.errors import ContainerRemoved
from ..engine.state import ContainerState, is_legal
from ._live import EventsWatch, Refresher, error_text, hidden_again, in_background

S = ContainerState
#: The operations offered as buttons, in order (all checked against engine/state.py's TRANSITIONS).
OPERATIONS = ("init", "start", "stop", "pause", "unpause", "restart", "kill", "remove")
#: The states drawn (Podman's names) and where: (x, y) of each node's centre.
NODES = {"created": (80, 75), "initialized": (250, 75), "running": (430, 75), "paused": (610, 75),
         "stopping": (610, 215), "stopped": (430, 215), "exited": (250, 215), "removing": (80, 215)}
#: (from, to, operation, bend, label at): the edges drawn; bend curves an edge (pixels, sideways),
#: the label sits that far along the drawn curve (the two crossing edges keep theirs apart).
EDGES = [
    ("created", "initialized", "init", 0, .5), ("created", "running", "start", -55, .5),
    ("initialized", "running", "start", 0, .5), ("running", "paused", "pause", -16, .5),
    ("paused", "running", "unpause", -16, .5), ("running", "stopping", "stop", 0, .3),
    ("stopping", "stopped", "", 0, .5), ("running", "stopped", "kill", -24, .5), ("paused", "stopped", "kill", 0, .3),
    ("stopped", "exited", "cleanup", 0, .5), ("exited", "running", "start", 0, .5),
    ("stopped", "running", "start", -24, .5), ("exited", "initialized", "init", 0, .5),
    ("running", "running", "restart", 0, .5), ("exited", "removing", "remove", 0, .5),
    ("created", "removing", "remove", 0, .5),
]

_ESM = r"""
const NS = "http://www.w3.org/2000/svg";
const RX = 58, RY = 20;
function svg(tag, attrs, parent) {
  const n = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, v);
  if (parent) parent.appendChild(n);
  return n;
}
function boundary(dx, dy) {
  const len = Math.sqrt((dx / RX) ** 2 + (dy / RY) ** 2) || 1;
  return [dx / len, dy / len];
}
function render({ model, el }) {
  el.classList.add("wb-lifecycle");
  const nodes = model.get("nodes"), edges = model.get("edges");
  const title = el.appendChild(document.createElement("div"));
  title.className = "wb-lc-title";
  const root = svg("svg", { viewBox: "0 0 700 245", width: "100%", role: "img" }, el);
  root.style.maxWidth = "760px";
  const defs = svg("defs", {}, root);
  const marker = svg("marker", { id: "wb-arrow-" + model.cid, viewBox: "0 0 10 10", refX: "9", refY: "5",
    markerWidth: "8", markerHeight: "8", markerUnits: "userSpaceOnUse", orient: "auto" }, defs);
  svg("path", { d: "M0,0 L10,5 L0,10 z", class: "wb-lc-head" }, marker);
  const edgeEls = [];
  for (const [from, to, op, bend, at] of edges) {
    const [x1, y1] = nodes[from], [x2, y2] = nodes[to];
    let d, lx, ly;
    if (from === to) {
      d = `M${x1 - 18},${y1 - RY + 2} C${x1 - 45},${y1 - 75} ${x1 + 45},${y1 - 75} ${x1 + 18},${y1 - RY + 2}`;
      lx = x1; ly = y1 - 60;
    } else {
      const mx = (x1 + x2) / 2, my = (y1 + y2) / 2, len = Math.hypot(x2 - x1, y2 - y1) || 1;
      const cx = mx + bend * (y2 - y1) / len * -1, cy = my + bend * (x2 - x1) / len;
      const [sx, sy] = boundary(cx - x1, cy - y1), [ex, ey] = boundary(cx - x2, cy - y2);
      const [ax, ay, bx, by] = [x1 + sx, y1 + sy, x2 + ex, y2 + ey];
      d = `M${ax},${ay} Q${cx},${cy} ${bx},${by}`;
      lx = (1 - at) ** 2 * ax + 2 * at * (1 - at) * cx + at * at * bx;
      ly = (1 - at) ** 2 * ay + 2 * at * (1 - at) * cy + at * at * by - 3;
    }
    const g = svg("g", { class: "wb-lc-edge", "data-from": from, "data-to": to, "data-op": op }, root);
    svg("path", { d, "marker-end": `url(#wb-arrow-${model.cid})` }, g);
    if (op) svg("text", { x: lx, y: ly, "text-anchor": "middle" }, g).textContent = op;
    edgeEls.push(g);
  }
  const nodeEls = {};
  for (const [name, [x, y]] of Object.entries(nodes)) {
    const g = svg("g", { class: "wb-lc-node", "data-state": name }, root);
    svg("ellipse", { cx: x, cy: y, rx: RX, ry: RY }, g);
    svg("text", { x, y: y + 4, "text-anchor": "middle" }, g).textContent = name;
    nodeEls[name] = g;
  }
  const bar = el.appendChild(document.createElement("div"));
  bar.className = "wb-lc-buttons";
  const buttons = {};
  for (const op of model.get("operations")) {
    const b = bar.appendChild(document.createElement("button"));
    b.className = "wb-btn"; b.textContent = op; b.dataset.action = op;
    b.addEventListener("click", () => model.send({ type: "action", action: op }));
    buttons[op] = b;
  }
  const msg = el.appendChild(document.createElement("div"));
  msg.className = "wb-lc-msg";
  let shown = null;
  function update() {
    const state = model.get("state"), removed = model.get("removed"), busy = model.get("busy");
    const name = model.get("name");
    const text = `${name}: ${removed ? "removed" : state}` + (busy ? ` (${busy}\u2026)` : "");
    if (title.textContent !== text) title.textContent = text;
    el.dataset.state = removed ? "removed" : state;
    for (const [n, g] of Object.entries(nodeEls)) g.classList.toggle("current", !removed && n === state);
    el.classList.toggle("removed", removed);
    const legal = model.get("actions");
    for (const [op, b] of Object.entries(buttons)) {
      const hide = removed || !legal.includes(op);
      if (b.hidden !== hide) b.hidden = hide;
      b.disabled = !!busy;
    }
    const m = model.get("message");
    if (msg.textContent !== m) msg.textContent = m;
    msg.className = "wb-lc-msg " + model.get("level");
    if (shown !== null && shown !== state && !removed) {
      const op = model.get("operation");
      let taken = edgeEls.filter(g => g.dataset.from === shown && g.dataset.to === state);
      if (taken.length > 1 && op) taken = taken.filter(g => g.dataset.op === op).concat([]).slice(0, 1);
      for (const g of taken.slice(0, 1)) {
        g.classList.remove("taken"); void g.getBoundingClientRect(); g.classList.add("taken");
        setTimeout(() => g.classList.remove("taken"), 1800);
      }
    }
    shown = state;
  }
  const events = ["change:state", "change:actions", "change:removed", "change:busy", "change:message"];
  for (const e of events) model.on(e, update);
  update();
  return () => { for (const e of events) model.off(e, update); };
}
export default { render };
"""

_CSS = """
.wb-lifecycle { font-size: 12px; font-family: var(--jp-ui-font-family, sans-serif); }
.wb-lifecycle .wb-lc-title { font-weight: 600; margin-bottom: 2px; }
.wb-lifecycle .wb-lc-node ellipse { fill: var(--jp-layout-color2, #f3f4f6); stroke: #8c959f; stroke-width: 1.5;
  transition: fill .5s, stroke .5s; }
.wb-lifecycle .wb-lc-node text { fill: var(--jp-ui-font-color1, #222); font-size: 13px; }
.wb-lifecycle .wb-lc-node.current ellipse { fill: #1a7f37; stroke: #116329; stroke-width: 3;
  animation: wb-lc-pop .5s ease-out; }
.wb-lifecycle[data-state="paused"] .wb-lc-node.current ellipse { fill: #9a6700; stroke: #7d4e00; }
.wb-lifecycle[data-state="exited"] .wb-lc-node.current ellipse,
.wb-lifecycle[data-state="stopped"] .wb-lc-node.current ellipse { fill: #6e7781; stroke: #424a53; }
.wb-lifecycle[data-state="created"] .wb-lc-node.current ellipse,
.wb-lifecycle[data-state="initialized"] .wb-lc-node.current ellipse { fill: #0969da; stroke: #0550ae; }
.wb-lifecycle .wb-lc-node.current text { fill: #fff; font-weight: 600; }
.wb-lifecycle .wb-lc-edge path { fill: none; stroke: #8c959f; stroke-width: 1.3; }
.wb-lifecycle .wb-lc-edge text { fill: #57606a; font-size: 10px; paint-order: stroke;
  stroke: var(--jp-layout-color0, #fff); stroke-width: 3px; }
.wb-lifecycle .wb-lc-head { fill: #8c959f; }
.wb-lifecycle .wb-lc-edge.taken path { stroke: #e36209; stroke-width: 3; stroke-dasharray: 8 5;
  animation: wb-lc-flow .6s linear 3; }
.wb-lifecycle .wb-lc-edge.taken text { fill: #e36209; font-weight: 600; }
.wb-lifecycle.removed svg { opacity: .35; }
.wb-lifecycle .wb-lc-buttons .wb-btn { margin: 2px; padding: 1px 10px; cursor: pointer; border-radius: 3px;
  border: 1px solid var(--jp-border-color1, #bbb); background: var(--jp-layout-color1, #fff);
  color: var(--jp-ui-font-color1, #222); }
.wb-lifecycle .wb-lc-msg { min-height: 1.2em; color: #57606a; }
.wb-lifecycle .wb-lc-msg.error { color: #cf222e; font-weight: 600; }
@keyframes wb-lc-flow { from { stroke-dashoffset: 26; } to { stroke-dashoffset: 0; } }
@keyframes wb-lc-pop { from { stroke-width: 8; } to { stroke-width: 3; } }
"""


class LifecycleDiagram(anywidget.AnyWidget):
    """The state machine of `container` with its current state lit and buttons for the legal
    operations only; follows the container as it changes (also when another process changes it)."""

    _esm = _ESM
    _css = _CSS
    name = t.Unicode("").tag(sync=True)
    state = t.Unicode("").tag(sync=True)
    operation = t.Unicode("").tag(sync=True)  # the operation behind the last change, when known
    actions = t.List(t.Unicode()).tag(sync=True)
    busy = t.Unicode("").tag(sync=True)
    removed = t.Bool(False).tag(sync=True)
    message = t.Unicode("").tag(sync=True)
    level = t.Unicode("info").tag(sync=True)
    nodes = t.Dict().tag(sync=True)
    edges = t.List().tag(sync=True)
    operations = t.List(t.Unicode()).tag(sync=True)

    def __init__(self, container: Any, *, interval: float = 2.0, **kwargs: Any):
        super().__init__(name=container.name, nodes={k: list(v) for k, v in NODES.items()},
                         edges=[list(e) for e in EDGES], operations=list(OPERATIONS), **kwargs)
        self.container, self.interval = container, interval
        self._view_count = 0  # tracked: a diagram whose cell was cleared stops following
        self._lock = threading.Lock()
        self._watch = EventsWatch(container.rt.runroot)
        self._last = 0.0
        self._closed = False
        self.on_msg(self._on_msg)
        self.refresh()
        self._refresher = Refresher(self._tick, 0.2, "lifecycle", idle=lambda: hidden_again(self)).start()

    @staticmethod
    def legal(state: ContainerState) -> list[str]:
        """The operations engine/state.py allows in `state` (start not while already running)."""
        return [op for op in OPERATIONS if is_legal(op, state) and not (op == "start" and state == S.RUNNING)]

    def _tick(self) -> None:
        if self.removed:
            return
        if self._watch.changed() or time.monotonic() - self._last >= self.interval:
            self.refresh()

    def refresh(self) -> None:
        """Read the container's state (synced with its exit file) and redraw."""
        with self._lock:
            self._last = time.monotonic()
            if self.removed:
                return
            try:
                state = self.container.state
            except ContainerRemoved:
                self._gone()
                return
            except Exception as exc:  # noqa: BLE001 - shown in the widget
                self._say(error_text(exc), "error")
                return
            if self.busy == "":
                self.actions = self.legal(state)
            self.state = state.value

    def _gone(self) -> None:
        self.actions, self.removed = [], True
        self._say("container removed", "error")

    def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "action":
            self.act(str(content.get("action", "")))

    def act(self, operation: str) -> threading.Thread | None:
        """Do what a button does, on a thread (returned: join it to wait); refused unless legal now."""
        if operation not in OPERATIONS:
            self._say(f"unknown operation {operation!r}", "error")
            return None
        if self.removed or self.busy:
            self._say("container removed" if self.removed else f"busy with {self.busy}", "error")
            return None
        if operation not in self.actions:
            self._say(f"{operation} is not possible while the container is {self.state}", "error")
            return None
        self.busy, self.operation = operation, operation
        self._say("")

        def run() -> None:
            c = self.container
            if operation == "remove":
                c.remove()
            elif operation == "kill":
                c.kill("SIGKILL")
            else:
                getattr(c, operation)()

        def done(error: BaseException | None) -> None:
            self.busy = ""
            if error is not None:
                self._say(error_text(error), "error")
            if not self._closed:
                self.refresh()
        return in_background(run, f"lifecycle-{operation}", done)

    def _say(self, text: str, level: str = "info") -> None:
        self.level, self.message = level, text

    def close(self) -> None:
        self._closed = True
        self._refresher.stop()
        super().close()
