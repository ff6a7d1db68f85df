"""A command run in a forked child, its Output calls relayed back: how a rootless kernel runs commands.

A rootless engine process must join the user namespace, which only a single-threaded process
can do, and a Jupyter kernel has threads. A forked child has one: it joins, runs the command
against an Output that pickles every call into a pipe, and exits; the kernel replays the calls
on the cell's Output as they come (output streams live). Interrupting the cell interrupts the
child.
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
        self._write(_HEADER.pack(len(data)) + data)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
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


def run_forked(work: Callable[[RelayOutput], int], out: Any) -> int:
    """Run `work` in a forked child, replaying its output on `out`; its exit code."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 125
        try:
            os.close(read_fd)
            relay = RelayOutput(write_fd)
            sys.stdout, sys.stderr = _StreamWriter(relay, "stdout"), _StreamWriter(relay, "stderr")
            try:
                code = work(relay)
            except KeyboardInterrupt:
                code = 130
            except BaseException:  # noqa: BLE001 - the child must always exit, and say why
                relay.stream("stderr", traceback.format_exc().encode())
        finally:
            os._exit(code)
    os.close(write_fd)
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
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            try:
                reply = ("ok", work())
            except BaseException as exc:  # noqa: BLE001 - sent to the parent, raised there
                reply = ("error", (type(exc), str(exc), dict(getattr(exc, "__dict__", {}))))
            try:
                data = pickle.dumps(reply)
            except Exception as exc:  # noqa: BLE001 - an unpicklable result is an error too
                data = pickle.dumps(("error", (TypeError, f"cannot return {type(reply[1]).__name__}: {exc}", {})))
            RelayOutput(write_fd)._write(data)
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    if not data:
        raise RuntimeError("the forked engine call died without an answer")
    kind, value = pickle.loads(data)  # our own child's answer
    if kind == "ok":
        return value
    cls, message, state = value
    exc = cls.__new__(cls)  # not __init__: its arguments are not the message
    exc.args = (message,)
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
