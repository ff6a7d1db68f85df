"""Waiting for a container's exit file without busy polling (inotify on the exits directory)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select
import time
from typing import Callable

_IN_CREATE, _IN_MOVED_TO = 0x100, 0x80
_IN_NONBLOCK, _IN_CLOEXEC = 0o4000, 0o2000000
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def wait_for_file(directory: str, name: str, timeout: float | None,
                  done: Callable[[], bool] | None = None, recheck: float = 0.25) -> bool:
    """Block until `directory/name` exists or `done()` is true; False on timeout.

    conmon writes exit files by rename, so IN_MOVED_TO wakes us; `done` is re-checked every
    `recheck` seconds for conditions no file signals (another process cleaned up, conmon died).
    """
    path = os.path.join(directory, name)
    deadline = None if timeout is None else time.monotonic() + timeout
    fd = _libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
    try:
        if fd >= 0:
            _libc.inotify_add_watch(fd, directory.encode(), _IN_CREATE | _IN_MOVED_TO)
        while True:
            if os.path.exists(path) or (done is not None and done()):
                return True
            remaining = recheck if deadline is None else min(recheck, deadline - time.monotonic())
            if remaining <= 0:
                return False
            if fd >= 0:
                ready, _, _ = select.select([fd], [], [], remaining)
                if ready:
                    try:
                        os.read(fd, 65536)
                    except BlockingIOError:
                        pass
            else:
                time.sleep(min(remaining, 0.01))
    finally:
        if fd >= 0:
            os.close(fd)


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
