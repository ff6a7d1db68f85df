"""Waiting for a container's exit file without busy polling (inotify on the exits directory)."""

from __future__ import annotations

import ctypes
import os
import select
import threading
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

_IN_CREATE, _IN_MOVED_TO = 0x100, 0x80
_IN_NONBLOCK, _IN_CLOEXEC = 0o4000, 0o2000000
_libc = ctypes.CDLL(None, use_errno=True)  # the already-loaded libc; find_library would spawn ldconfig


class DirWatcher:
    """One long-lived inotify watch on a directory, shared by every thread that waits on it.

    Closing an inotify fd costs the kernel an RCU grace period (~15 ms here), so the fd lives as
    long as the Runtime. One thread at a time sleeps in select(); the others wait on a condition
    it signals after each wake-up.
    """

    def __init__(self, directory: str):
        self.directory = directory
        self._fd = _libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if self._fd >= 0 and _libc.inotify_add_watch(self._fd, directory.encode(), _IN_CREATE | _IN_MOVED_TO) < 0:
            os.close(self._fd)
            self._fd = -1
        self._cond = threading.Condition()
        self._polling = False

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def wait_for(self, name: str, timeout: float | None, done: Callable[[], bool] | None = None,
                  recheck: float = 0.25) -> bool:
        """Block until `name` exists in the directory or `done()` is true; False on timeout.

        conmon writes exit files by rename, so IN_MOVED_TO wakes us; `done` is re-checked every
        `recheck` seconds for conditions no file signals (another process cleaned up, conmon died).
        """
        path = os.path.join(self.directory, name)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if os.path.exists(path) or (done is not None and done()):
                return True
            remaining = recheck if deadline is None else min(recheck, deadline - time.monotonic())
            if remaining <= 0:
                return False
            if self._fd < 0:
                time.sleep(min(remaining, 0.01))
                continue
            with self._cond:
                if self._polling:
                    self._cond.wait(min(remaining, 0.05))
                    continue
                self._polling = True
            try:
                if select.select([self._fd], [], [], remaining)[0]:
                    try:
                        os.read(self._fd, 65536)
                    except BlockingIOError:
                        pass
            finally:
                with self._cond:
                    self._polling = False
                    self._cond.notify_all()
