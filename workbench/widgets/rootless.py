"""What the widgets of a rootless kernel use instead of a Runtime.

A rootless kernel cannot join the user namespace (it has threads), so it holds no Runtime.
`ForkedRuntime` and `ForkedContainer` stand in for them: listings come back as snapshots
(config and state records) and every other call runs in a forked child that joins
(commands/relay.py). A console's session is the `workbench` command (`exec -it`, `start -ai`,
`attach`) on a pseudo-terminal whose bytes the Console moves: window sizes go to the terminal
(the command resizes the container's on SIGWINCH), and hanging it up hangs up the exec'd process.
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import struct
import sys
import termios
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any


class ForkedRuntime:
    """The engine for a rootless kernel's widgets: each call in a forked child that joins."""

    def __init__(self, root: str | None = None, runroot: str | None = None, oci: str | None = None):
        from ..engine.runtime import store_paths

        self.root, self.runroot = store_paths(root, runroot)
        self.oci = oci
        self.argv_prefix = cli_prefix(self.root, self.runroot, oci)

    def close(self) -> None:
        """Nothing held open: each call's Runtime lives in its child."""

    def call(self, work: Callable[[Any], Any]) -> Any:
        """`work(runtime)` in a forked child holding a real Runtime; its result (or its error)."""
        from ..commands.relay import call_forked

        def in_child() -> Any:
            from ..engine.runtime import Runtime

            return work(Runtime(self.root, self.runroot, oci_runtime=self.oci))
        return call_forked(in_child)

    def containers(self, all: bool = True) -> list[ForkedContainer]:
        records = self.call(lambda rt: [(c.id, c.config, c.st) for c in rt.containers(all=all)])
        return [ForkedContainer(self, *record) for record in records]

    def container(self, name_or_id: str) -> ForkedContainer:
        return ForkedContainer(self, *self.call(lambda rt: _record(rt.container(name_or_id))))

    def image(self, name_or_id: str) -> _ForkedImage:
        image_id = self.call(lambda rt: rt.image(name_or_id).id)
        return _ForkedImage(self, image_id)


def _record(c: Any) -> tuple[str, Any, Any]:
    return c.id, c.config, c.st


class _Forwarding:
    """Calls of other methods run on the real object (`_real(runtime)`) in a forked child."""

    rt: ForkedRuntime

    def _real(self, rt: Any) -> Any:
        raise NotImplementedError

    def __getattr__(self, method: str) -> Callable[..., Any]:
        if method.startswith("_"):
            raise AttributeError(method)

        def forward(*args: Any, **kwargs: Any) -> Any:
            return self.rt.call(lambda rt: getattr(self._real(rt), method)(*args, **kwargs))
        return forward


class ForkedContainer(_Forwarding):
    """A container as of its last snapshot (`config`, `st`); methods run on the real one, forked."""

    def __init__(self, rt: ForkedRuntime, ctr_id: str, config: Any, st: Any):
        self.rt, self.id, self.config, self.st = rt, ctr_id, config, st

    def _real(self, rt: Any) -> Any:
        return rt.container(self.id)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def argv_prefix(self) -> list[str]:
        return self.rt.argv_prefix

    @property
    def state(self) -> Any:
        self.id, self.config, self.st = self.rt.call(lambda rt: _record(self._real(rt)))
        return self.st.state

    def exec_session(self, command: Sequence[str], *, size: tuple[int, int], on_output: Callable[[str, bytes], None],
                     env: dict[str, str] | None = None, user: str | None = None, workdir: str | None = None,
                     privileged: bool = False, **_: Any) -> PtySession:
        flags = [f"--env={key}={value}" for key, value in (env or {}).items()]
        flags += [f"--user={user}"] if user else []
        flags += [f"--workdir={workdir}"] if workdir else []
        flags += ["--privileged"] if privileged else []
        return PtySession([*self.argv_prefix, "exec", "-it", "--detach-keys=", *flags, self.id, *command],
                          size, on_output)

    def attach_session(self, *, start: bool, size: tuple[int, int], on_output: Callable[[str, bytes], None],
                       **_: Any) -> PtySession:
        verb = ["start", "--attach", "--interactive"] if start else ["attach"]
        return PtySession([*self.argv_prefix, *verb, "--detach-keys=", self.id], size, on_output)


class _ForkedImage(_Forwarding):
    """An image (what an InspectView's refresh asks of it: `inspect()`)."""

    def __init__(self, rt: ForkedRuntime, image_id: str):
        self.rt, self.id = rt, image_id

    def _real(self, rt: Any) -> Any:
        return rt.image(self.id)


class PtySession:
    """The `workbench` command on a pseudo-terminal: its output read by a thread, our writes its input."""

    tty = True
    stdin = True

    def __init__(self, argv: list[str], size: tuple[int, int], on_output: Callable[[str, bytes], None]):
        self._master, slave = os.openpty()  # both non-inheritable: the command gets the slave as 0, 1, 2
        _set_size(slave, size)
        self.pid = os.fork()
        if self.pid == 0:  # only async-signal-safe work until exec (the kernel has threads)
            try:
                os.login_tty(slave)  # a new session, the terminal its controlling one, stdio on it
                os.execv(argv[0], argv)
            finally:
                os._exit(127)
        os.close(slave)
        self.id = f"cli-{self.pid}"
        self._status: int | None = None
        self._reap_lock = threading.Lock()
        self._on_output = on_output
        self._done = threading.Event()
        threading.Thread(target=self._read, name=f"workbench-pty-{self.pid}", daemon=True).start()

    @property
    def ended(self) -> bool:
        return self._done.is_set()

    @property
    def exit_code(self) -> int | None:
        """The command's exit code once it has ended."""
        return self._status if self.ended else None

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self._master, 65536)
            except OSError as exc:  # EIO: the command and everything on the terminal are gone
                if exc.errno not in (errno.EIO, errno.EBADF):
                    raise
                break
            if not data:
                break
            self._on_output("stdout", data)
        self._wait_exit()
        self._done.set()

    def _wait_exit(self, block: bool = True) -> int | None:
        """The command's exit code (reaped once, under a lock), None while it runs (`block` False).
        Blocking polls: the terminal's end comes with (or just before) the command's."""
        while True:
            with self._reap_lock:
                if self._status is None:
                    pid, status = os.waitpid(self.pid, os.WNOHANG)
                    if pid != 0:
                        self._status = os.waitstatus_to_exitcode(status)
                if self._status is not None or not block:
                    return self._status
            time.sleep(0.01)

    def _running(self) -> bool:
        return self._wait_exit(block=False) is None

    def try_write(self, data: bytes) -> bool:
        """Always False: a terminal promises no all-or-nothing write that cannot wait (the reader
        shares the blocking master), so the console's writer thread delivers all input."""
        return False

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._master, view):]

    def resize(self, rows: int, cols: int) -> None:
        _set_size(self._master, (rows, cols))  # the command gets SIGWINCH and resizes the container's

    def signal(self, number: int) -> None:
        """SIGHUP hangs up the terminal (the command passes it on to an exec'd process); others go
        to the command."""
        if self._running():
            os.kill(self.pid, number)

    def wait(self, timeout: float | None = None) -> int:
        if not self._done.wait(timeout):
            raise TimeoutError(f"{self.id} still runs after {timeout} s")
        return self._status if self._status is not None else -1

    def close(self) -> None:
        """Hang up and let go: the command ends, an attached main process runs on."""
        if self._running():
            os.kill(self.pid, signal.SIGHUP)
            deadline = time.monotonic() + 5
            while self._running() and time.monotonic() < deadline:
                time.sleep(0.02)
            if self._running():
                os.kill(self.pid, signal.SIGKILL)
        self._done.wait(5)
        try:
            os.close(self._master)
        except OSError:
            pass


def _set_size(fd: int, size: tuple[int, int]) -> None:
    rows, cols = size
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def cli_prefix(root: str | None, runroot: str | None, runtime: str | None) -> list[str]:
    """The `workbench` command line with the kernel's global flags."""
    argv = [sys.executable, "-m", "workbench"]
    for flag, value in (("--root", root), ("--runroot", runroot), ("--runtime", runtime)):
        if value:
            argv += [flag, value]
    return argv
