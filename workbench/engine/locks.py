"""Locks that work across processes (fcntl on files in the run root) and are re-entrant in-process."""

from __future__ import annotations

import fcntl
import os
import threading


class FileLock:
    """An exclusive lock on one file: fcntl across processes, an RLock within this one.

    fcntl locks belong to the process and drop on any close() of the file, so each lock keeps
    one fd for its whole life and the in-process guard counts re-entries.
    """

    def __init__(self, path: str):
        self.path = path
        self._guard = threading.RLock()
        self._depth = 0
        self._fd = -1

    def acquire(self) -> None:
        self._guard.acquire()
        try:
            if self._depth == 0:
                if self._fd < 0:
                    self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                fcntl.lockf(self._fd, fcntl.LOCK_EX)
            self._depth += 1
        except BaseException:
            self._guard.release()
            raise

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0:
            fcntl.lockf(self._fd, fcntl.LOCK_UN)
        self._guard.release()

    @property
    def held(self) -> bool:
        """Whether this thread holds the lock (re-entrant depth > 0)."""
        return self._depth > 0 and self._guard._is_owned()  # type: ignore[attr-defined]

    def close(self) -> None:
        """Forget the fd (only when nobody holds the lock)."""
        with self._guard:
            if self._depth == 0 and self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> "FileLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class LockManager:
    """Hands out one FileLock per name under `<run root>/locks/`, shared by all handles in a process."""

    def __init__(self, directory: str):
        self.directory = directory
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self._locks: dict[str, FileLock] = {}
        self._mutex = threading.Lock()

    def get(self, name: str) -> FileLock:
        with self._mutex:
            lock = self._locks.get(name)
            if lock is None:
                lock = self._locks[name] = FileLock(os.path.join(self.directory, name + ".lock"))
            return lock

    def free(self, name: str) -> None:
        """Drop the lock of a removed object and its file."""
        with self._mutex:
            lock = self._locks.pop(name, None)
        if lock is not None:
            lock.close()
        try:
            os.unlink(os.path.join(self.directory, name + ".lock"))
        except FileNotFoundError:
            pass
