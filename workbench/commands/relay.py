"""A command run in a forked child, its Output calls relayed back: how a rootless kernel runs commands.

A rootless engine process must join the user namespace, which only a single-threaded process
can do, and a Jupyter kernel has threads. A forked child has one: it joins, runs the command
against an Output that pickles every call into a pipe, and exits; the kernel replays the calls
on the cell's Output as they come (output streams live). Interrupting the cell interrupts the
child. `call_forked` does the same for one engine call whose result (or error) comes back.
"""

from __future__ import annotations

import io
import os
import pickle
import signal
import struct
import sys
import traceback
from collections.abc import Callable
from typing import Any

_HEADER = struct.Struct("!I")


class RelayOutput:
    """An Output whose calls go down a pipe (the child's side)."""

    terminal = False

    def __init__(self, fd: int):
        self._fd = fd

    def _send(self, method: str, *args: Any, **kwargs: Any) -> None:
        data = pickle.dumps((method, args, kwargs))
        view = memoryview(_HEADER.pack(len(data)) + data)
        while view:
            view = view[os.write(self._fd, view):]

    def line(self, text: str) -> None:
        self._send("line", text)

    def stream(self, stream: str, data: bytes) -> None:
        self._send("stream", stream, data)

    def document(self, data: Any) -> None:
        self._send("document", data)

    def table(self, rows: list[dict[str, Any]], fmt: str, headers: dict[str, str] | None = None, *,
              noheading: bool = False) -> None:
        self._send("table", rows, fmt, headers, noheading=noheading)

    def error(self, message: str) -> None:
        self._send("error", message)

    def progress(self, done: int, total: int, label: str) -> None:
        self._send("progress", done, total, label)


class _StreamWriter(io.TextIOBase):
    """sys.stdout/sys.stderr of the child: what is printed (warnings, say) goes to the cell."""

    def __init__(self, out: RelayOutput, name: str):
        self._out, self._name = out, name

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if text:
            self._out.stream(self._name, text.encode())
        return len(text)


def _fork(child: Callable[[RelayOutput], int]) -> tuple[int, int]:
    """Fork; the child runs `child` on a RelayOutput down a pipe (what it prints goes there too,
    never to the kernel's own streams) and exits with its code (125 if it raises past it).
    Returns the child's pid and the pipe's read end."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 125
        try:
            os.close(read_fd)
            relay = RelayOutput(write_fd)
            sys.stdout, sys.stderr = _StreamWriter(relay, "stdout"), _StreamWriter(relay, "stderr")
            code = child(relay)
        finally:
            os._exit(code)
    os.close(write_fd)
    return pid, read_fd


def run_forked(work: Callable[[RelayOutput], int], out: Any) -> int:
    """Run `work` in a forked child, replaying its output on `out`; its exit code."""
    def child(relay: RelayOutput) -> int:
        try:
            return work(relay)
        except KeyboardInterrupt:
            return 130
        except BaseException:  # noqa: BLE001 - the child must always exit, and say why
            relay.stream("stderr", traceback.format_exc().encode())
            return 125
    pid, read_fd = _fork(child)
    interrupted = False
    with os.fdopen(read_fd, "rb") as pipe:
        while True:
            try:
                message = _receive(pipe)
            except KeyboardInterrupt:
                interrupted = True
                os.kill(pid, signal.SIGINT)  # the child stops its command and reports it
                continue
            if message is None:
                break
            method, args, kwargs = message
            getattr(out, method)(*args, **kwargs)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if interrupted:
        raise KeyboardInterrupt
    return code if code >= 0 else 128 - code


def call_forked(work: Callable[[], Any]) -> Any:
    """`work()` in a forked child; its result, or its exception raised here (same type and message)."""
    def child(relay: RelayOutput) -> int:
        try:
            reply: tuple[str, Any] = ("ok", work())
        except BaseException as exc:  # noqa: BLE001 - sent to the parent, raised there
            reply = ("error", (type(exc), str(exc), dict(getattr(exc, "__dict__", {}))))
        try:
            relay._send("reply", *reply)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:  # an unpicklable result
            relay._send("reply", "error", (TypeError, f"cannot return {type(reply[1]).__name__}: {exc}", {}))
        return 0
    pid, read_fd = _fork(child)
    reply = None
    with os.fdopen(read_fd, "rb") as pipe:
        while (message := _receive(pipe)) is not None:
            method, args, _ = message
            if method == "reply":
                reply = args
            elif method == "stream":  # a warning the call printed
                (sys.stderr if args[0] == "stderr" else sys.stdout).write(args[1].decode(errors="replace"))
    os.waitpid(pid, 0)
    if reply is None:
        raise RuntimeError("the forked engine call died without an answer")
    kind, value = reply
    if kind == "ok":
        return value
    cls, text, state = value
    exc = cls.__new__(cls)  # not __init__: its arguments are not the message
    exc.args = (text,)
    exc.__dict__.update(state)
    raise exc


def _receive(pipe: Any) -> tuple[str, tuple, dict] | None:
    header = pipe.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    data = pipe.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)  # our own child's messages
