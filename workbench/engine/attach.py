"""Sessions: a live stream to a process in a container through conmon's attach socket.

conmon frames output as one SEQPACKET message per read: a pipe byte (2 stdout, 3 stderr) and up
to 8192 bytes. It writes to attach clients with a blocking write, so a client that stops reading
stalls the container's output and its log. A Session therefore drains the socket on its own
thread into a queue, whatever its consumer does (libpod-notes 4).
"""

from __future__ import annotations

import collections
import errno
import os
import socket
import threading
import time

from . import logger
from .errors import InvalidArgument, WorkbenchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import asyncio
    from typing import Callable, Iterator, Protocol

log = logger.get(__name__)

#: conmon reads stdin messages with read(fd, buf, 32768): larger messages would be truncated.
STDIN_CHUNK = 32768
_RECV_SIZE = 8193  # one pipe byte + conmon's STDIO_BUF_SIZE
_STREAMS = {2: "stdout", 3: "stderr"}
#: How long a resize may wait for conmon's ctl fifo to take it.
RESIZE_TIMEOUT = 5.0
#: Time between two resizes through one ctl fifo: conmon handles one message per read of it, and
#: drops a second one that arrived before that read.
RESIZE_SPACING = 0.02

_last_resize: dict[str, float] = {}  # ctl fifo -> when this process last wrote a message to it
_resize_lock = threading.Lock()

Chunk = tuple[str, bytes]


def connect(path: str) -> socket.socket:
    """Connect to an attach socket; its path may be longer than sun_path, so go through an O_PATH fd."""
    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        try:
            sock.connect(f"/proc/self/fd/{fd}")
        except BaseException:
            sock.close()
            raise
    finally:
        os.close(fd)
    return sock


def write_resize(ctl_path: str, rows: int, cols: int) -> None:
    """Ask conmon to resize the terminal: one message per write (conmon 2.1.6 drops the rest of a
    write), RESIZE_SPACING after this process's previous one to the same fifo."""
    if not (isinstance(rows, int) and isinstance(cols, int) and 0 < rows <= 65535 and 0 < cols <= 65535):
        raise InvalidArgument(f"invalid terminal size {rows}x{cols}: rows and columns must be 1..65535")
    message = f"1 {rows} {cols}\n".encode()
    with _resize_lock:  # spaced from the previous message (a session's first size, a view's next)
        now = time.monotonic()
        for path, when in list(_last_resize.items()):
            if now - when >= RESIZE_SPACING:
                del _last_resize[path]
        if ctl_path in _last_resize:
            time.sleep(_last_resize[ctl_path] + RESIZE_SPACING - now)
        deadline = time.monotonic() + RESIZE_TIMEOUT
        while True:
            try:
                fd = os.open(ctl_path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
                try:
                    os.write(fd, message)
                    break
                finally:
                    os.close(fd)
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EINTR, errno.ENXIO) or time.monotonic() > deadline:
                    raise WorkbenchError(f"cannot resize the terminal through {ctl_path}: {exc.strerror}") from exc
                time.sleep(0.005)
        _last_resize[ctl_path] = time.monotonic()


if TYPE_CHECKING:  # an interface for type checkers

    class SessionProcess(Protocol):
        """What a Session needs from the process behind it (an exec session or a container)."""

        def poll(self) -> int | None:
            """The exit code once known, without blocking."""

        def wait(self, timeout: float | None) -> int:
            """Block until the exit code is known."""

        def signal(self, sig: int) -> None:
            """Send a signal to the process."""

        def release(self) -> None:
            """Forget what the session held once it is over (exec bundles, records)."""


class Session:
    """A running process's stdin, output, terminal and exit code.

    Output chunks are `(stream, bytes)` with stream "stdout" or "stderr" (a terminal only has
    "stdout"). Read them with `read()`, by iterating, with `await aread()` / `async for` in an
    event loop, or pass `on_output`, which is then called on the session's reader thread.
    """

    def __init__(self, sock: socket.socket, process: SessionProcess, *, session_id: str, pid: int, tty: bool,
                 stdin: bool, ctl_path: str, on_output: Callable[[str, bytes], None] | None = None):
        self.id = session_id
        self.pid = pid
        self.tty = tty
        self.stdin = stdin
        self._sock = sock
        self._process = process
        self._ctl_path = ctl_path
        self._on_output = on_output
        self._queue: collections.deque[Chunk] = collections.deque()
        self._cond = threading.Condition()
        self._waiters: list[tuple["asyncio.AbstractEventLoop", "asyncio.Future"]] = []
        self._eof = False
        self._closed = False
        self._stdin_open = stdin
        self._exit_code: int | None = None
        self._released = False
        self._reader = threading.Thread(target=self._drain, name=f"workbench-session-{session_id[:12]}",
                                        daemon=True)
        self._reader.start()

    def __repr__(self) -> str:
        status = "closed" if self._closed else ("ended" if self._eof else "running")
        return f"<Session {self.id[:12]} pid={self.pid} {status}>"

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- output ------------------------------------------------------------------------------
    def _drain(self) -> None:
        sock = self._sock
        while True:
            try:
                message = sock.recv(_RECV_SIZE)
            except OSError:
                break
            if not message:
                break
            stream = _STREAMS.get(message[0])
            if stream is None or len(message) == 1:
                continue
            chunk = (stream, message[1:])
            if self._on_output is not None:
                try:
                    self._on_output(*chunk)
                except Exception:  # a consumer's bug must not stop the draining
                    log.exception("session %s: on_output callback failed", self.id[:12])
                continue
            with self._cond:
                self._queue.append(chunk)
                self._wake()
        with self._cond:
            self._eof = True
            self._wake()

    def _wake(self) -> None:
        """Wake threads blocked in read() and coroutines awaiting aread() (called holding _cond)."""
        self._cond.notify_all()
        for loop, future in self._waiters:
            loop.call_soon_threadsafe(_resolve, future)
        self._waiters.clear()

    @property
    def ended(self) -> bool:
        """True once all output has been delivered (the process exited, or the session was closed)."""
        with self._cond:
            return self._eof and not self._queue

    def read(self, timeout: float | None = None) -> Chunk | None:
        """The next output chunk; None at the end of output or when `timeout` seconds pass first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._queue:
                if self._eof:
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            return self._queue.popleft()

    def __iter__(self) -> Iterator[Chunk]:
        while (chunk := self.read()) is not None:
            yield chunk

    async def aread(self, timeout: float | None = None) -> Chunk | None:
        """read() for an event loop: waits without blocking the loop (a Jupyter kernel's, say)."""
        import asyncio

        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            with self._cond:
                if self._queue:
                    return self._queue.popleft()
                if self._eof:
                    return None
                future = loop.create_future()
                self._waiters.append((loop, future))
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return None
            try:
                await asyncio.wait_for(future, remaining)
            except asyncio.TimeoutError:
                return None

    def __aiter__(self) -> "Session":
        return self

    async def __anext__(self) -> Chunk:
        chunk = await self.aread()
        if chunk is None:
            raise StopAsyncIteration
        return chunk

    def output(self) -> tuple[bytes, bytes]:
        """Everything until the end of output, as (stdout, stderr)."""
        parts: dict[str, list[bytes]] = {"stdout": [], "stderr": []}
        for stream, data in self:
            parts[stream].append(data)
        return b"".join(parts["stdout"]), b"".join(parts["stderr"])

    # -- input and control ---------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        """Send bytes to the process's stdin (in chunks conmon reads whole)."""
        self._check_stdin()
        view = memoryview(bytes(data))
        try:
            for start in range(0, len(view), STDIN_CHUNK):
                self._sock.sendall(view[start:start + STDIN_CHUNK])
        except OSError as exc:
            raise WorkbenchError(f"session {self.id[:12]}: cannot write to stdin: {exc.strerror or exc}") from exc

    def try_write(self, data: bytes) -> bool:
        """Send `data` to stdin only if that needs no wait (a message conmon has room for); False,
        with nothing sent, when it would wait or is larger than one message."""
        if len(data) > STDIN_CHUNK:
            return False
        self._check_stdin()
        try:
            self._sock.send(data, socket.MSG_DONTWAIT)  # a SEQPACKET message: all of it or none
        except BlockingIOError:
            return False
        except OSError as exc:
            raise WorkbenchError(f"session {self.id[:12]}: cannot write to stdin: {exc.strerror or exc}") from exc
        return True

    def _check_stdin(self) -> None:
        if not self.stdin:
            raise InvalidArgument(f"session {self.id[:12]} has no stdin: open it with stdin=True")
        if not self._stdin_open or self._closed:
            raise InvalidArgument(f"session {self.id[:12]}: stdin is closed")

    def close_stdin(self) -> None:
        """End of input: the process reads EOF (the session keeps receiving output)."""
        if self._stdin_open and not self._closed:
            self._stdin_open = False
            try:
                self._sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def resize(self, rows: int, cols: int) -> None:
        """Resize the session's terminal."""
        if not self.tty:
            raise InvalidArgument(f"session {self.id[:12]} has no terminal to resize: start it with tty=True")
        write_resize(self._ctl_path, rows, cols)

    def signal(self, sig: int | str) -> None:
        """Send a signal (number or name) to the session's process."""
        from .signals import parse_signal

        self._process.signal(parse_signal(sig))

    # -- end -----------------------------------------------------------------------------------
    @property
    def exit_code(self) -> int | None:
        """The process's exit code; None while it runs."""
        if self._exit_code is None:
            self._exit_code = self._process.poll()
        return self._exit_code

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the process to exit (output keeps being drained) and return its exit code."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._exit_code is None:
            self._reader.join(timeout)
            if self._reader.is_alive():
                raise TimeoutError(f"session {self.id[:12]} did not end within {timeout} seconds")
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            self._exit_code = self._process.wait(remaining)
        self._finish()
        return self._exit_code

    def close(self) -> None:
        """Detach: stop reading and writing. A process that still runs keeps running."""
        if self._closed:
            return
        self._closed = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._reader.join()
        self._sock.close()
        if self.exit_code is not None:
            self._finish()

    def _finish(self) -> None:
        if not self._released:
            self._released = True
            self._process.release()
        if not self._closed:
            self._closed = True
            self._sock.close()


def _resolve(future: "asyncio.Future") -> None:
    if not future.done():
        future.set_result(None)
