"""Console: an interactive terminal (xterm.js) on a container, in a notebook cell.

The widget runs an exec session (`Console(c, "sh")`) or attaches to the main process
(`Console(c)`) and moves bytes over the widget's comm as custom messages with binary buffers:

- output: a pump thread coalesces the session's output (at most one message per 8 ms, 64 KiB
  each) and sends it to every view; a bounded replay ring serves views that render later;
- input: keystrokes and pastes arrive as bytes and go to the session's stdin at once when it
  takes them without waiting, else on a writer thread, so a comm handler never blocks on a
  process that does not read;
- flow control: the first view acknowledges the bytes xterm has parsed; above 1 MiB
  unacknowledged the session's reader waits, so conmon and the producer block (real
  back-pressure). With no view (headless runs, a hidden tab) nothing waits: output only feeds the
  replay ring, so the session never stalls and memory stays bounded.

The cell that makes a Console returns at once. Closing the widget (or the kernel exiting) ends
an exec session (SIGHUP, then SIGKILL) and detaches from a main process, which keeps running.
The front-end half is js/console.js, bundled with xterm.js into static/ by `make bundle`.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import logging
import pathlib
import shlex
import signal
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Sequence

import anywidget
import traitlets

if TYPE_CHECKING:
    from ..engine.attach import Session
    from ..engine.container import Container

log = logging.getLogger(__name__)

STATIC = pathlib.Path(__file__).parent / "static"

#: Largest output message to the browser.
OUT_CHUNK = 64 * 1024
#: Shortest interval between two output messages: output that arrives meanwhile is coalesced.
COALESCE = 0.008
#: Unacknowledged output above which the session's reader waits for the view to catch up.
HIGH_WATER = 1 << 20
#: A view that acknowledges nothing for this long while output waits is considered gone.
ACK_TIMEOUT = 5.0
#: Recent output kept for views that render (or re-render) later.
REPLAY = 256 * 1024
#: Input waiting for a process that does not read it; beyond this, input is dropped.
INPUT_LIMIT = 1 << 20
#: How long an exec session may take to end after SIGHUP before it gets SIGKILL.
HANGUP_GRACE = 2.0

_RUNNING = "running"


def _bundle(name: str) -> str:
    path = STATIC / name
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RuntimeError(f"the console's front-end bundle {path} is missing: run `make bundle` "
                           "(or scripts/setup.sh) in a source checkout") from None


class Console(anywidget.AnyWidget):
    """An interactive terminal on `container`: an exec session running `command` (`Console(c, "sh")`),
    or, with no command, attached to the container's main process (`Console(c)`)."""

    _esm = traitlets.Unicode().tag(sync=True)
    _css = traitlets.Unicode().tag(sync=True)
    #: Shown in the widget's title bar.
    title = traitlets.Unicode("").tag(sync=True)
    #: "starting", "running", "session ended (exit code N)", "container removed", "closed", ...
    status = traitlets.Unicode("starting").tag(sync=True)
    #: Terminal height in rows; the width follows the cell.
    rows = traitlets.Int(24).tag(sync=True)
    #: Lines of scrollback in the browser.
    scrollback = traitlets.Int(5000).tag(sync=True)
    #: False for a container without a terminal: the view then turns "\n" into "\r\n".
    tty = traitlets.Bool(True).tag(sync=True)

    def __init__(self, container: "Container", command: str | Sequence[str] | None = None, *,
                 rows: int = 24, cols: int = 80, env: dict[str, str] | None = None, user: str | None = None,
                 workdir: str | None = None, privileged: bool = False, start: bool = False, **kwargs: Any):
        """`env`, `user`, `workdir`, `privileged`: the exec session's (as `exec -e/-u/-w/--privileged`);
        `start`: attach to a created container, then start it, so no output is lost (`run -it`)."""
        self.container = container
        self._exec_options = dict(env={"TERM": "xterm-256color", **(env or {})}, user=user, workdir=workdir,
                                   privileged=privileged)
        self._start_container = start
        self.command: list[str] | None = None if command is None else (
            shlex.split(command) if isinstance(command, str) else list(command))
        if self.command == []:
            raise ValueError("Console: the command is empty (give None to attach to the main process)")
        what = "attach" if self.command is None else shlex.join(self.command)
        super().__init__(_esm=_bundle("console.js"), _css=_bundle("console.css"), rows=rows,
                         title=f"{container.name} \u2014 {what}", **kwargs)
        self._cond = threading.Condition()
        self._pending = bytearray()          # output the pump has not sent yet
        self._ring = bytearray()             # the last REPLAY bytes sent, for late views
        self._views: dict[str, tuple[int, int]] = {}  # view id -> (rows, cols)
        self._primary: str | None = None     # the view whose acks count
        self._unacked = 0
        self._last_ack = time.monotonic()
        self._replays: list[tuple[str, bool]] = []   # (view, reset) waiting for the pump
        self._last_send = 0.0
        self._inbox: collections.deque[tuple[str, Any]] = collections.deque()
        self._inbox_size = 0
        self._writing = False                # the writer thread is handing the session input
        self._size = (rows, cols)
        self._session: "Session | None" = None
        self._generation = 0
        self._ended = False                  # the current session's output is over
        self._want_reconnect = False
        self._closed = False
        self._start_session()
        self.on_msg(_on_msg)
        self._pump = threading.Thread(target=self._pump_loop, name=f"workbench-console-{container.id[:12]}",
                                      daemon=True)
        self._writer = threading.Thread(target=self._write_loop, name=f"workbench-console-in-{container.id[:12]}",
                                        daemon=True)
        self._pump.start()
        self._writer.start()
        _LIVE.add(self)

    def __repr__(self) -> str:
        return f"<Console {self.title!r} {self.status}>"

    # -- public ----------------------------------------------------------------------------
    @property
    def session(self) -> "Session | None":
        """The current engine session (None once closed)."""
        return self._session

    def write(self, data: bytes | str) -> None:
        """Type into the console from Python (as if the user had)."""
        self._queue_input(data.encode() if isinstance(data, str) else bytes(data))

    def reconnect(self) -> None:
        """Start a new session after the last one ended (a new exec, or a new attach)."""
        with self._cond:
            if self._closed:
                raise RuntimeError("the console is closed")
            self._want_reconnect = True
            self._cond.notify_all()

    def close(self) -> None:
        """End the session (an exec session is hung up; an attached main process keeps running)
        and close the widget."""
        self._shutdown()
        super().close()

    # -- session -----------------------------------------------------------------------------
    def _start_session(self) -> None:
        with self._cond:  # output of the new session may arrive before exec_session() returns
            self._generation += 1
            generation = self._generation
            self._ended = False

        def on_output(stream: str, data: bytes) -> None:
            self._on_output(generation, data)

        rows, cols = self._size
        if self.command is None:
            start, self._start_container = self._start_container, False
            session = self.container.attach_session(stdin=True, start=start, size=(rows, cols), on_output=on_output)
        else:
            session = self.container.exec_session(self.command, tty=True, stdin=True, size=(rows, cols),
                                                  on_output=on_output, **self._exec_options)
        with self._cond:
            self._session = session
        self.tty = session.tty
        self.status = _RUNNING

    def _on_output(self, generation: int, data: bytes) -> None:
        """The session's reader thread: queue output, waiting while the primary view lags."""
        with self._cond:
            while (not self._closed and generation == self._generation and self._primary is not None
                   and self._unacked + len(self._pending) >= HIGH_WATER):
                if time.monotonic() - self._last_ack > ACK_TIMEOUT:
                    log.info("console %s: no acknowledgement for %.0f s; dropping its views",
                             self.container.name, ACK_TIMEOUT)
                    self._views.clear()
                    self._primary = None
                    self._unacked = 0
                    break
                self._cond.wait(0.25)
            if self._closed or generation != self._generation:
                return
            self._pending += data
            if self._primary is None and len(self._pending) > 4 * REPLAY:  # nobody is watching
                del self._pending[:-REPLAY]
            self._cond.notify_all()

    def _end_message(self, code: int | None) -> str:
        from ..engine.errors import ContainerRemoved, NoSuchContainer

        try:
            state = self.container.state
        except (ContainerRemoved, NoSuchContainer):
            return "container removed"
        if self.command is None:
            detail = f" (exit code {code})" if code is not None and code >= 0 else ""
            return f"container {state.value}{detail}"
        if state.value != "running":
            return f"session ended: container {state.value}"
        return f"session ended (exit code {code})" if code is not None and code >= 0 else "session ended"

    def _finish_session(self, session: "Session") -> None:
        """The pump thread, once the session's output is over: exit code, status, a line in the view."""
        code: int | None
        try:
            code = session.wait(timeout=5)
        except Exception as exc:  # the container went away under it, or conmon died
            log.debug("console %s: wait: %s", self.container.name, exc)
            code = None
        message = self._end_message(code)
        self._append(f"\r\n\x1b[2m[{message}]\x1b[0m\r\n".encode())
        self.status = message

    # -- output pump -----------------------------------------------------------------------------
    def _append(self, data: bytes) -> None:
        with self._cond:
            self._pending += data
            self._cond.notify_all()

    def _pump_loop(self) -> None:
        try:
            self._pump_run()
        except Exception:
            log.exception("console %s: output pump failed", self.container.name)

    def _pump_run(self) -> None:
        while True:
            sends: list[tuple[dict, bytes]] = []
            finished: "Session | None" = None
            reconnect = False
            with self._cond:
                while not (self._closed or self._pending or self._replays or self._want_reconnect
                           or (not self._ended and self._session is not None and self._session.ended)):
                    self._cond.wait(None if self._ended else 0.25)
                if self._closed:
                    return
                for view, reset in self._replays:
                    if view in self._views:
                        sends.append(({"type": "out", "view": view, "reset": reset}, bytes(self._ring)))
                        if view == self._primary:
                            self._unacked += len(self._ring)
                self._replays.clear()
                if self._pending:
                    # coalesce: one message per COALESCE interval unless a full chunk is waiting
                    deadline = self._last_send + COALESCE
                    while len(self._pending) < OUT_CHUNK and not self._closed:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            break
                        self._cond.wait(remaining)
                    chunk = bytes(self._pending[:OUT_CHUNK])
                    del self._pending[:OUT_CHUNK]
                    self._ring += chunk
                    if len(self._ring) > REPLAY:
                        del self._ring[:-REPLAY]
                    if self._views:
                        sends.append(({"type": "out"}, chunk))
                        if self._primary is not None:
                            self._unacked += len(chunk)
                    self._cond.notify_all()
                elif not self._ended and self._session is not None and self._session.ended:
                    self._ended = True
                    finished = self._session
                elif self._want_reconnect:
                    self._want_reconnect = False
                    reconnect = self._ended
            for content, data in sends:  # a replay is sent even when empty: it syncs its view
                self.send(content, buffers=[data])
            if sends:
                self._last_send = time.monotonic()
            if finished is not None:
                self._finish_session(finished)
            if reconnect:
                self._reconnect_now()

    def _reconnect_now(self) -> None:
        self.status = "starting"
        try:
            self._start_session()
        except Exception as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self._append(f"\r\n\x1b[31m[cannot reconnect: {message}]\x1b[0m\r\n".encode())
            self.status = self._end_message(None)
            with self._cond:
                self._ended = True

    # -- input ------------------------------------------------------------------------------------
    def _queue_input(self, data: bytes) -> None:
        with self._cond:
            if self._closed or self._ended:
                return
            if self._inbox_size + len(data) > INPUT_LIMIT:
                log.warning("console %s: the process reads no input; dropped %d bytes", self.container.name,
                            len(data))
                return
            session = self._session
            if not self._inbox and not self._writing and session is not None:
                # the usual keystroke: straight to the session when it takes it without waiting,
                # which spares a thread switch (~1 ms of the echo); input waiting goes first
                from ..engine.errors import WorkbenchError

                try:
                    if session.try_write(data):
                        return
                except WorkbenchError as exc:  # the session ended meanwhile: the pump reports it
                    log.debug("console %s: in: %s", self.container.name, exc)
                    return
            self._inbox.append(("in", data))
            self._inbox_size += len(data)
            self._cond.notify_all()

    def _queue_resize(self, rows: int, cols: int) -> None:
        with self._cond:
            if self._size == (rows, cols):
                return
            self._size = (rows, cols)
            self._inbox.append(("resize", None))  # a marker: the writer applies the latest size there
            self._cond.notify_all()

    def _write_loop(self) -> None:
        applied: tuple[object, tuple[int, int]] | None = None  # (session, size) last handed to conmon
        while True:
            with self._cond:
                while not self._inbox and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                kind, value = self._inbox.popleft()
                if kind == "in":
                    self._inbox_size -= len(value)
                session, size = self._session, self._size
                self._writing = True  # input arriving meanwhile queues behind this
            try:
                if session is None:
                    continue
                if kind == "in":
                    session.write(value)
                elif session.tty and applied != (session, size):
                    session.resize(*size)
                    applied = (session, size)  # spaced from the session's previous size by write_resize
            except Exception as exc:  # the session ended meanwhile: the pump reports it
                log.debug("console %s: %s: %s", self.container.name, kind, exc)
            finally:
                with self._cond:
                    self._writing = False

    # -- messages from the views ---------------------------------------------------------------
    def _on_view_msg(self, content: dict, buffers: list) -> None:
        kind = content.get("type")
        view = str(content.get("view") or "")
        if kind == "in":
            for buffer in buffers or ():
                self._queue_input(bytes(buffer))
            self._touch(view)
        elif kind == "ack":
            with self._cond:
                if view == self._primary:
                    self._unacked = max(0, self._unacked - int(content.get("n") or 0))
                    self._last_ack = time.monotonic()
                    self._cond.notify_all()
                elif view not in self._views:
                    self._touch_locked(view)
        elif kind == "ready":
            with self._cond:
                self._add_view(view, content, reset=False)
            self._resize_to_views()
        elif kind == "resize":
            with self._cond:
                if view in self._views:
                    self._views[view] = _size_of(content, self._views[view])
                else:
                    self._add_view(view, content, reset=True)
            self._resize_to_views()
        elif kind == "gone":
            with self._cond:
                self._views.pop(view, None)
                if view == self._primary:
                    self._primary = next(iter(self._views), None)
                    self._unacked = 0
                    self._last_ack = time.monotonic()
                self._cond.notify_all()
            self._resize_to_views()
        elif kind == "reconnect":
            with contextlib.suppress(RuntimeError):
                self.reconnect()

    def _touch(self, view: str) -> None:
        with self._cond:
            self._touch_locked(view)

    def _touch_locked(self, view: str) -> None:
        """A view we had given up on (no acks) speaks again: give it the recent output afresh."""
        if view and view not in self._views:
            self._add_view(view, {}, reset=True)

    def _add_view(self, view: str, content: dict, *, reset: bool) -> None:
        self._views[view] = _size_of(content, self._size)
        if self._primary is None:
            self._primary = view
            self._unacked = 0
            self._last_ack = time.monotonic()
        self._replays.append((view, reset))
        self._cond.notify_all()

    def _resize_to_views(self) -> None:
        """The smallest size among the views wins (as terminado does)."""
        with self._cond:
            if not self._views:
                return
            rows = min(r for r, _ in self._views.values())
            cols = min(c for _, c in self._views.values())
        self._queue_resize(rows, cols)

    # -- end --------------------------------------------------------------------------------------
    def _shutdown(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            session = self._session
            self._cond.notify_all()
        _LIVE.discard(self)
        if session is not None:
            _end(session, hang_up=self.command is not None)
        with contextlib.suppress(Exception):
            self.status = "closed"
        for thread in (self._pump, self._writer):
            if thread is not threading.current_thread():
                thread.join(timeout=5)


def _size_of(content: dict, default: tuple[int, int]) -> tuple[int, int]:
    try:
        rows, cols = int(content["rows"]), int(content["cols"])
    except (KeyError, TypeError, ValueError):
        return default
    return (rows, cols) if 0 < rows <= 1000 and 0 < cols <= 2000 else default


def _end(session: "Session", *, hang_up: bool) -> None:
    """End an exec session (SIGHUP, then SIGKILL) or detach from a main process."""
    if hang_up:
        for sig, grace in ((signal.SIGHUP, HANGUP_GRACE), (signal.SIGKILL, 5.0)):
            try:
                if session.exit_code is not None:
                    break
                session.signal(sig)
                session.wait(timeout=grace)
                break
            except TimeoutError:
                continue
            except Exception as exc:  # the container is gone: nothing left to end
                log.debug("console session %s: %s", session.id[:12], exc)
                break
    with contextlib.suppress(Exception):
        session.close()


def _on_msg(widget: Console, content: Any, buffers: list) -> None:
    if isinstance(content, dict):
        try:
            widget._on_view_msg(content, buffers)
        except Exception:
            log.exception("console %s: message %r failed", widget.container.name, content.get("type"))


_LIVE: "weakref.WeakSet[Console]" = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    """The kernel is exiting: end every console's session so no exec process outlives it."""
    for console in list(_LIVE):
        with contextlib.suppress(Exception):
            console._shutdown()
