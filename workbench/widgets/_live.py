"""What the live widgets share: a background refresher that ends with its widget, actions run off
the kernel's main thread, and a few HTML helpers."""

from __future__ import annotations

import html
import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

#: Name prefix of every thread the widgets start (tests count them to find leaks).
THREAD_PREFIX = "workbench-widget"


class Refresher:
    """Calls `tick()` every `interval` seconds on a daemon thread until `stop()`.

    `idle()` true skips a tick (a widget whose views were all closed); `poke()` ticks at once.
    Errors in `tick` are logged, never raised: a view must not die of one bad sample.
    """

    def __init__(self, tick: Callable[[], Any], interval: float, name: str,
                 idle: Callable[[], bool] = lambda: False):
        self._tick, self.interval, self._idle = tick, interval, idle
        self._stopped = threading.Event()
        self._woken = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{THREAD_PREFIX}-{name}", daemon=True)

    def start(self) -> Refresher:
        self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def poke(self) -> None:
        self._woken.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopped.set()
        self._woken.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._woken.wait(self.interval)
            self._woken.clear()
            if self._stopped.is_set():
                return
            if self._idle():
                continue
            try:
                self._tick()
            except Exception:  # noqa: BLE001 - logged; the next tick tries again
                log.exception("refreshing a widget")


def in_background(fn: Callable[[], Any], name: str, done: Callable[[BaseException | None], None]) -> threading.Thread:
    """Run `fn` on a daemon thread (a stop may take the container's stop timeout), then `done(error)`."""
    def run() -> None:
        error: BaseException | None = None
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - reported to the widget, not raised in a thread
            error = exc
        try:
            done(error)
        except Exception:  # noqa: BLE001
            log.exception("reporting the end of a widget action")
    thread = threading.Thread(target=run, name=f"{THREAD_PREFIX}-{name}", daemon=True)
    thread.start()
    return thread


def hidden_again(widget: Any) -> bool:
    """Whether a widget that was displayed has no view left (its cell was cleared or re-run).

    Needs `_view_count` tracking (set to 0 at construction); a widget never shown (a script,
    a test) counts as visible, so it keeps refreshing.
    """
    count = getattr(widget, "_view_count", None)
    if count is None:
        return False
    if count > 0:
        widget._wb_was_shown = True
    return count == 0 and getattr(widget, "_wb_was_shown", False)


def error_text(exc: BaseException) -> str:
    """One line for a user: the engine's message, else the exception's type and message."""
    from ..engine.errors import ContainerRemoved, WorkbenchError

    if isinstance(exc, ContainerRemoved):
        return "container removed"
    if isinstance(exc, WorkbenchError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


class EventsWatch:
    """Tells cheaply (one stat) whether the runtime's events log changed since the last call:
    a live widget re-reads state at once after a lifecycle event, without polling the store hard."""

    def __init__(self, runroot: str):
        from ..engine.events import log_path

        self.path = log_path(runroot)
        self._seen = self._signature()

    def _signature(self) -> tuple[int, int, int] | None:
        import os

        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def changed(self) -> bool:
        now = self._signature()
        if now != self._seen:
            self._seen = now
            return True
        return False
