"""ContainerTable: the containers as a live table with row actions (`%ctr ps --widget`).

The rows are one synced trait; the view (a small anywidget ESM) keeps one <tr> per container
and rewrites only the cells whose text changed, so a refresh never flickers. A refresher thread
re-reads the store when the events log changes (one stat per quarter second) and every
`interval` seconds for uptime and CPU/memory; it ends when the widget is closed. Actions run on
their own thread (a stop may wait the container's stop timeout) and report errors in the widget.
"""

from __future__ import annotations

import importlib.util
import threading
import time
from collections.abc import Callable
from typing import Any

import anywidget
import ipywidgets as w
import traitlets as t

from ..engine.errors import NoSuchContainer, WorkbenchError
from ..engine.state import ContainerState, is_legal
from ._live import EventsWatch, Refresher, error_text, hidden_again, in_background

S = ContainerState
#: Every row action, in the order the buttons appear.
ACTIONS = ("start", "stop", "pause", "unpause", "restart", "console", "inspect", "remove")
_DONE = {"start": "started", "stop": "stopped", "pause": "paused", "unpause": "unpaused", "restart": "restarted",
         "remove": "removed"}

_ESM = r"""
const BUTTONS = {start: ["start", "Start the container"], stop: ["stop", "Stop the container"],
  pause: ["pause", "Pause the container"], unpause: ["unpause", "Unpause the container"],
  restart: ["restart", "Restart the container"], console: ["console", "Open a console in the container"],
  inspect: ["inspect", "Show its inspect data below"], remove: ["remove", "Remove the container (asks first)"]};
const ORDER = ["start", "stop", "pause", "unpause", "restart", "console", "inspect", "remove"];
const COLUMNS = [["name", "Name"], ["image", "Image"], ["state", "State"], ["status", "Uptime"],
  ["ports", "Ports"], ["cpu", "CPU %"], ["mem", "Memory"]];

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}
function setText(node, text) { if (node.textContent !== text) node.textContent = text; }
function setAttr(node, name, value) { if (node.getAttribute(name) !== value) node.setAttribute(name, value); }

function render({ model, el: root }) {
  root.classList.add("wb-table");
  const bar = el("div", "wb-table-msg");
  const table = el("table");
  const head = el("tr");
  for (const [, title] of COLUMNS) head.appendChild(el("th", "", title));
  head.appendChild(el("th", "", ""));
  table.appendChild(el("thead")).appendChild(head);
  const body = table.appendChild(el("tbody"));
  const empty = el("div", "wb-table-empty", "no containers");
  root.append(bar, table, empty);
  const rows = new Map();
  const send = (action, id, extra) => model.send({ type: "action", action, id, ...(extra || {}) });

  function makeRow(id) {
    const tr = el("tr");
    tr.dataset.id = id;
    const cells = {};
    for (const [key] of COLUMNS) cells[key] = tr.appendChild(el("td", "wb-col-" + key));
    const badge = cells.state.appendChild(el("span", "wb-state"));
    const actions = tr.appendChild(el("td", "wb-actions"));
    const buttons = {};
    for (const name of ORDER) {
      const [icon, title] = BUTTONS[name];
      const b = actions.appendChild(el("button", "wb-btn wb-btn-" + name, icon));
      b.dataset.action = name; b.title = title; b.hidden = true;
      b.addEventListener("click", () => send(name, id));
      buttons[name] = b;
    }
    const ask = actions.appendChild(el("span", "wb-confirm"));
    const question = ask.appendChild(el("span", "", ""));
    const yes = ask.appendChild(el("button", "wb-btn wb-yes", "Remove"));
    const no = ask.appendChild(el("button", "wb-btn wb-no", "Cancel"));
    yes.dataset.action = "confirm"; no.dataset.action = "cancel";
    yes.addEventListener("click", () => send("remove", id, { confirmed: true }));
    no.addEventListener("click", () => send("cancel", id));
    const row = { tr, cells, badge, buttons, ask, question };
    rows.set(id, row);
    return row;
  }

  function update() {
    const data = model.get("rows") || [];
    const confirm = model.get("confirm");
    const seen = new Set();
    let previous = null;
    for (const r of data) {
      const row = rows.get(r.id) || makeRow(r.id);
      seen.add(r.id);
      const wanted = previous ? previous.tr.nextSibling : body.firstChild;
      if (row.tr !== wanted) body.insertBefore(row.tr, wanted);
      previous = row;
      setAttr(row.tr, "data-name", r.name);
      setAttr(row.tr, "data-state", r.state);
      setText(row.cells.name, r.name); setAttr(row.cells.name, "title", r.id);
      setText(row.cells.image, r.image); setAttr(row.cells.image, "title", r.image);
      setText(row.badge, r.busy ? r.busy + "\u2026" : r.state);
      setAttr(row.badge, "class", "wb-state " + r.state + (r.busy ? " busy" : ""));
      setText(row.cells.status, r.status);
      setText(row.cells.ports, r.ports);
      setText(row.cells.cpu, r.cpu); setText(row.cells.mem, r.mem);
      const asking = confirm === r.id;
      for (const name of ORDER) {
        const b = row.buttons[name];
        const hide = asking || !r.actions.includes(name);
        if (b.hidden !== hide) b.hidden = hide;
        const off = !!r.busy;
        if (b.disabled !== off) b.disabled = off;
      }
      row.ask.hidden = !asking;
      if (asking) setText(row.question, (r.state === "running" || r.state === "paused")
        ? "Stop and remove " + r.name + "? " : "Remove " + r.name + "? ");
    }
    for (const [id, row] of rows) if (!seen.has(id)) { row.tr.remove(); rows.delete(id); }
    empty.hidden = data.length > 0;
    const message = model.get("message");
    setText(bar, message);
    setAttr(bar, "class", "wb-table-msg " + model.get("level") + (message ? "" : " none"));
  }
  const events = ["change:rows", "change:confirm", "change:message", "change:level"];
  for (const e of events) model.on(e, update);
  update();
  return () => { for (const e of events) model.off(e, update); };
}
export default { render };
"""

_CSS = """
.wb-table { font-size: 12px; overflow-x: auto; }
.wb-table td.wb-col-image { max-width: 200px; overflow: hidden; text-overflow: ellipsis; }
.wb-table td.wb-col-status, .wb-table td.wb-col-ports { white-space: normal; min-width: 40px; }
.wb-table table { border-collapse: collapse; width: 100%; }
.wb-table th, .wb-table td { text-align: left; padding: 3px 6px; white-space: nowrap;
  border-bottom: 1px solid var(--jp-border-color2, #e0e0e0); }
.wb-table th { font-weight: 600; }
.wb-table td.wb-col-cpu, .wb-table td.wb-col-mem { font-variant-numeric: tabular-nums; text-align: right; }
.wb-table .wb-state { display: inline-block; min-width: 56px; text-align: center; padding: 0 6px;
  border-radius: 8px; color: #fff; background: #6e7781; transition: background-color .3s; }
.wb-table .wb-state.running { background: #1a7f37; } .wb-table .wb-state.paused { background: #9a6700; }
.wb-table .wb-state.created, .wb-table .wb-state.initialized { background: #0969da; }
.wb-table .wb-state.stopping, .wb-table .wb-state.removing { background: #bc4c00; }
.wb-table .wb-state.busy { opacity: .7; }
.wb-table .wb-btn { margin: 0 1px; padding: 0 4px; font-size: 11px; cursor: pointer; border-radius: 3px;
  border: 1px solid var(--jp-border-color1, #bbb); background: var(--jp-layout-color1, #fff);
  color: var(--jp-ui-font-color1, #222); }
.wb-table .wb-btn:disabled { opacity: .4; cursor: default; }
.wb-table .wb-yes { color: #fff; background: #cf222e; border-color: #cf222e; }
.wb-table .wb-table-msg { padding: 2px 4px; min-height: 1.2em; }
.wb-table .wb-table-msg.error { color: #cf222e; } .wb-table .wb-table-msg.info { color: #57606a; }
.wb-table .wb-table-msg.none { visibility: hidden; }
.wb-table .wb-table-empty { color: #888; padding: 4px; }
"""


class _TableModel(anywidget.AnyWidget):
    """The synced part of a ContainerTable: rows, the row asking for removal, one message line."""

    _esm = _ESM
    _css = _CSS
    rows = t.List(t.Dict()).tag(sync=True)
    confirm = t.Unicode("").tag(sync=True)
    message = t.Unicode("").tag(sync=True)
    level = t.Unicode("info").tag(sync=True)


def console_class() -> Callable[[Any], Any] | None:
    """`workbench.widgets.console.Console` when that module is there, else None (no console button)."""
    if importlib.util.find_spec("workbench.widgets.console") is None:
        return None
    try:
        from .console import Console
    except Exception:  # noqa: BLE001 - a broken optional module hides the button, no more
        return None
    return Console


def short_duration(seconds: float) -> str:
    """'12 s', '5 min', '3 h', '2 d': a compact uptime for a table cell."""
    s = max(int(seconds), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= size:
            return f"{s // size} {unit}"
    return f"{s} s"


def status_text(c: Any, now: float) -> str:
    """Uptime of a running (or paused) container; since when it exited or was created otherwise."""
    st = c.st
    if st.state in (S.RUNNING, S.PAUSED, S.STOPPING):
        return f"up {short_duration(now - st.started_at)}"
    if st.state in (S.STOPPED, S.EXITED):
        return f"exited ({st.exit_code}) {short_duration(now - (st.finished_at or c.config.created))} ago"
    return f"created {short_duration(now - c.config.created)} ago"


def ports_text(ports: list[dict[str, Any]]) -> str:
    """Published ports as Podman's ps shows them: `0.0.0.0:8080->80/tcp, ...`."""
    return ", ".join(f"{p.get('host_ip') or '0.0.0.0'}:{p['host_port']}->{p['container_port']}/{p['protocol']}"
                     for p in ports)


class ContainerTable(w.VBox):
    """The runtime's containers (every one, or running ones with `all=False`), live, with row
    actions. `act(action, name_or_id)` is what a button does; the detail area below the table
    holds an InspectView or a Console (running `console_command`) opened from a row."""

    def __init__(self, runtime: Any = None, *, all: bool = True, interval: float = 2.0, stats: bool = True,
                 console_command: str | None = "sh"):
        if runtime is None:
            from ..notebook import KERNEL

            runtime = KERNEL.runtime()
        self.rt, self.all, self.interval, self.stats = runtime, all, interval, stats
        self.console_command = console_command  # what "open console" runs; None attaches to the main process
        self._model = _TableModel()
        self._model._view_count = 0  # tracked, so a table whose cell was cleared stops refreshing
        self._detail = w.VBox()
        self._busy: dict[str, str] = {}
        self._previous: dict[str, dict[str, Any]] = {}  # stats records, for CPU % between ticks
        self._lock = threading.RLock()
        self._console = console_class()
        self._workers: list[threading.Thread] = []
        self._watch = EventsWatch(runtime.runroot)
        self._last, self._dirty, self._closed = 0.0, False, False
        super().__init__([self._model, self._detail])
        self.add_class("wb-container-table")
        self._model.on_msg(self._on_msg)
        self.refresh()
        self._refresher = Refresher(self._tick, 0.25, "table", idle=lambda: hidden_again(self._model)).start()

    # -- reading -----------------------------------------------------------------------------
    @property
    def rows(self) -> list[dict[str, Any]]:
        return self._model.rows

    @property
    def message(self) -> str:
        return self._model.message

    @property
    def confirm(self) -> str:
        """The ID of the container whose removal waits for a confirmation ("" when none)."""
        return self._model.confirm

    def row(self, name_or_id: str) -> dict[str, Any] | None:
        return next((r for r in self.rows if name_or_id in (r["name"], r["id"]) or r["id"].startswith(name_or_id)),
                    None)

    def _tick(self) -> None:
        if self._dirty or self._watch.changed() or time.monotonic() - self._last >= self.interval:
            try:
                self.refresh()
            except Exception as exc:  # noqa: BLE001 - e.g. the store closed: said once per interval
                self._last, self._dirty = time.monotonic(), False
                self._say(f"cannot read the containers: {error_text(exc)}", "error")
                return
            self._follow_detail()

    def _follow_detail(self) -> None:
        """An InspectView opened from a row re-reads its data when its container changes state or goes."""
        from .inspect import InspectView

        view = self.detail
        if not isinstance(view, InspectView) or view.kind != "container" or view.status:
            return
        ident = view.data.get("Id", "")
        row = next((r for r in self.rows if r["id"] == ident), None)
        if row is None or row["state"] != view.data.get("State", {}).get("Status"):
            view.refresh()

    def _request(self) -> None:
        """Refresh soon, on the refresher's thread (the kernel's main thread never waits on a lock)."""
        self._dirty = True
        self._refresher.poke()

    def refresh(self) -> None:
        """Read every container again and update the rows (unchanged rows send nothing)."""
        with self._lock:
            self._last, self._dirty = time.monotonic(), False
            now = time.time()
            rows = []
            containers = sorted(self.rt.containers(all=True), key=lambda c: c.config.created, reverse=True)
            for c in containers:
                if not self.all and c.st.state != S.RUNNING and c.id not in self._busy:
                    continue
                cpu, mem = self._usage(c)
                rows.append({"id": c.id, "name": c.name, "image": c.config.image_name, "state": c.st.state.value,
                             "status": status_text(c, now), "ports": ports_text(c.config.ports), "cpu": cpu, "mem": mem,
                             "actions": self._actions(c.st.state), "busy": self._busy.get(c.id, "")})
            ids = {r["id"] for r in rows}
            self._previous = {k: v for k, v in self._previous.items() if k in ids}
            self._model.rows = rows
            if self._model.confirm and self._model.confirm not in ids:
                self._model.confirm = ""

    def _usage(self, c: Any) -> tuple[str, str]:
        if not self.stats or c.st.state != S.RUNNING:
            return "", ""
        from ..commands.humanize import size

        try:
            record = c.stats(self._previous.get(c.id))
        except Exception:  # noqa: BLE001 - no stats here (removed meanwhile, no cgroup): blank cells
            return "", ""
        self._previous[c.id] = record
        return f"{record['CPU']:.1f}", size(record["MemUsage"])

    def _actions(self, state: ContainerState) -> list[str]:
        legal = {"start": is_legal("start", state) and state != S.RUNNING, "stop": is_legal("stop", state),
                 "pause": is_legal("pause", state), "unpause": is_legal("unpause", state),
                 "restart": is_legal("restart", state), "console": self._console is not None and state == S.RUNNING,
                 "inspect": True, "remove": state != S.REMOVING}
        return [a for a in ACTIONS if legal[a]]

    # -- acting ------------------------------------------------------------------------------
    def _on_msg(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "action":
            self.act(str(content.get("action", "")), str(content.get("id", "")), bool(content.get("confirmed")))

    def act(self, action: str, name_or_id: str, confirmed: bool = False) -> threading.Thread | None:
        """Do what a row button does. Lifecycle actions run on a thread, returned (join it to wait);
        `remove` first only asks (the row shows a confirmation) unless `confirmed`."""
        if action == "cancel":
            self._model.confirm = ""
            self._say("")
            return None
        if action not in ACTIONS:
            self._say(f"unknown action {action!r}", "error")
            return None
        try:
            c = self.rt.container(name_or_id)
        except NoSuchContainer:
            label = name_or_id[:12] if len(name_or_id) == 64 else name_or_id
            self._say(f"{label}: container removed", "error")
            self._request()
            return None
        except WorkbenchError as exc:
            self._say(error_text(exc), "error")
            return None
        if action == "remove" and not confirmed:
            self._model.confirm = c.id
            self._say(f"remove {c.name}? confirm in its row")
            return None
        if action in ("inspect", "console"):
            self._open(action, c)
            return None
        if c.id in self._busy:
            self._say(f"{c.name}: still busy with {self._busy[c.id]}", "error")
            return None
        self._busy[c.id] = action
        if action == "remove":
            self._model.confirm = ""
        self._say("")
        self._request()

        def run() -> None:
            if action == "remove":
                c.remove(force=not is_legal("remove", c.state))
            else:
                getattr(c, action)()

        def done(error: BaseException | None) -> None:
            self._busy.pop(c.id, None)
            if error is None:
                self._say(f"{c.name}: {_DONE[action]}")
            else:
                self._say(f"{c.name}: {error_text(error)}", "error")
            if not self._closed:
                self.refresh()  # on this worker thread: rows are current once the thread is joined
        thread = in_background(run, f"{action}-{c.id[:12]}", done)
        self._workers = [t for t in self._workers if t.is_alive()] + [thread]
        return thread

    def _open(self, action: str, c: Any) -> None:
        try:
            if action == "inspect":
                from .inspect import InspectView

                view = InspectView(c)
            else:
                assert self._console is not None
                view = self._console(c, self.console_command)
        except Exception as exc:  # noqa: BLE001 - shown in the widget
            self._say(f"{c.name}: {error_text(exc)}", "error")
            return
        self.show(view, f"{action} {c.name}")

    def show(self, view: Any, title: str) -> None:
        """Put a widget in the detail area (closing what was there), with a close button."""
        close = w.Button(description="Close", icon="times", layout=w.Layout(width="auto"))
        close.on_click(lambda _: self.show_nothing())
        header = w.HBox([w.HTML(f"<b>{_esc(title)}</b>"), close],
                        layout=w.Layout(justify_content="space-between", align_items="center"))
        self.show_nothing()
        self._detail.children = [header, view]

    @property
    def detail(self) -> Any:
        """The widget open below the table (an InspectView, a Console), or None."""
        return self._detail.children[1] if len(self._detail.children) > 1 else None

    def show_nothing(self) -> None:
        old = list(self._detail.children)
        self._detail.children = []
        for widget in old:
            _close_tree(widget)

    def _say(self, text: str, level: str = "info") -> None:
        self._model.level = level
        self._model.message = text

    def close(self) -> None:
        """Stop refreshing, close the detail widgets and the table."""
        self._closed = True
        self._refresher.stop()
        self.show_nothing()
        self._model.close()
        self._detail.close()
        super().close()


def _close_tree(widget: Any) -> None:
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    widget.close()


def _esc(text: str) -> str:
    import html

    return html.escape(text)
