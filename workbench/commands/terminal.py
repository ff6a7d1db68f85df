"""The local end of an interactive session: raw terminal, stdin forwarding, detach keys, SIGWINCH."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

from ..engine.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Iterator

    from ..engine.attach import Session
    from .output import Output

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"
#: Signals a non-terminal session forwards to the container (Podman's --sig-proxy).
PROXIED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
#: Signals that end the CLI while the local terminal is raw: turned into an exception so that
#: the terminal is restored on the way out.
ENDING_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


class Terminated(Exception):
    """The CLI received an ending signal while a session ran; `exit_code` is 128 + the signal."""

    def __init__(self, number: int):
        super().__init__(f"terminated by signal {number}")
        self.number = number
        self.exit_code = 128 + number
_CTRL_KEYS = {**{chr(c): c - ord("a") + 1 for c in range(ord("a"), ord("z") + 1)},
              "@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}


def parse_detach_keys(spec: str) -> bytes:
    """`ctrl-p,ctrl-q` style keys as bytes (moby's term.ToBytes); "" disables detaching."""
    out = bytearray()
    for key in spec.split(",") if spec else []:
        if len(key) == 1:
            out.append(ord(key))
        elif key.startswith("ctrl-") and len(key) == 6 and key[5].lower() in _CTRL_KEYS:
            out.append(_CTRL_KEYS[key[5].lower()])
        else:
            raise InvalidArgument(f"invalid detach keys: unknown character: '{key}'")
    return bytes(out)


class DetachMatcher:
    """Spots the detach sequence typed key by key; anything else is passed on unchanged."""

    def __init__(self, keys: bytes):
        self.keys = keys
        self._held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """(bytes to forward, detach now?)."""
        if not self.keys:
            return data, False
        if len(data) == 1 and data == self.keys[len(self._held):len(self._held) + 1]:
            self._held += data
            if self._held == self.keys:
                self._held = b""
                return b"", True
            return b"", False
        held, self._held = self._held, b""
        if len(data) == 1 and data == self.keys[:1]:
            self._held = data
            return held, False
        return held + data, False


@contextlib.contextmanager
def raw_terminal(fd: int) -> Iterator[None]:
    """Put a terminal in raw mode and restore it on every way out (exceptions, signals)."""
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    tty.setraw(fd, termios.TCSANOW)  # keep what was typed ahead (TCSAFLUSH would drop it)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def terminal_size() -> tuple[int, int] | None:
    """(rows, cols) of our terminal, or None when stdout is not one."""
    for stream in (sys.stdout, sys.stdin):
        try:
            size = os.get_terminal_size(stream.fileno())
            return size.lines, size.columns
        except (OSError, ValueError, AttributeError):
            continue
    return None


def interact(session: "Session", out: "Output", *, stdin: bool, detach_keys: bytes,
             proxy_signal=None, feed: bytes | None = None) -> bool:
    """Copy output to `out` and our stdin to the session until it ends; True when the user detached.

    In terminal mode the local terminal is raw and window changes resize the session; otherwise
    signals we receive are forwarded by `proxy_signal` (Podman's --sig-proxy). `feed`, when
    given, is the whole input instead of our stdin (then closed).
    """
    detached = threading.Event()
    local_tty = stdin and feed is None and session.tty and os.isatty(0)
    previous: dict[int, object] = {}
    relay = _SignalRelay(session, proxy_signal)
    if session.tty and terminal_size() is not None:
        previous[signal.SIGWINCH] = signal.signal(signal.SIGWINCH, relay.signalled)
    if proxy_signal is not None and not local_tty:
        for sig in PROXIED_SIGNALS:
            previous[sig] = signal.signal(sig, relay.signalled)
    elif local_tty:
        for sig in ENDING_SIGNALS:
            previous[sig] = signal.signal(sig, _raise_terminated)
    try:
        with raw_terminal(0) if local_tty else contextlib.nullcontext():
            if stdin and feed is not None:
                threading.Thread(target=_feed_stdin, args=(session, feed), daemon=True,
                                 name="workbench-stdin").start()
            elif stdin:
                threading.Thread(target=_pump_stdin, args=(session, detach_keys, detached), daemon=True,
                                 name="workbench-stdin").start()
            for stream, data in session:
                out.stream(stream, data)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        relay.close()
    return detached.is_set()


def _raise_terminated(number: int, _frame: object) -> None:
    raise Terminated(number)


class _SignalRelay:
    """Signals acted on by a thread of their own: window changes resize the session, the others
    go to `proxy` (--sig-proxy). The handler only writes the signal's number to a pipe: one that
    did the work itself could interrupt that work in progress (the kernel and a program both
    signal one window change) and wait forever on the lock it holds."""

    def __init__(self, session: "Session", proxy: "Callable[[int], None] | None"):
        self.session, self.proxy = session, proxy
        self._read, self._write = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(self._write, False)
        threading.Thread(target=self._run, daemon=True, name="workbench-signals").start()

    def signalled(self, number: int, _frame: object) -> None:
        try:
            os.write(self._write, bytes([number]))
        except OSError:  # the pipe is full (a burst of signals) or closed (the session is over)
            pass

    def _run(self) -> None:
        try:
            while numbers := os.read(self._read, 4096):
                if signal.SIGWINCH in numbers:  # all the window changes signalled meanwhile: one resize
                    self._resize()
                for number in numbers:
                    if number != signal.SIGWINCH and self.proxy is not None:
                        try:
                            self.proxy(number)
                        except Exception:  # the container is gone: nothing to forward to
                            pass
        finally:
            os.close(self._read)

    def _resize(self) -> None:
        size = terminal_size()
        if size is not None:
            try:
                self.session.resize(*size)
            except Exception:  # a resize racing the end of the session is harmless
                pass

    def close(self) -> None:
        os.close(self._write)  # the thread reads the end of the pipe and stops


def _feed_stdin(session: "Session", data: bytes) -> None:
    try:
        if data:
            session.write(data)
        session.close_stdin()
    except Exception:  # the process ended before reading all of it
        return


def _pump_stdin(session: "Session", detach_keys: bytes, detached: threading.Event) -> None:
    matcher = DetachMatcher(detach_keys)
    try:
        while True:
            data = os.read(0, 32768)
            if not data:
                session.close_stdin()
                return
            forward, detach = matcher.feed(data)
            if forward:
                session.write(forward)
            if detach:
                detached.set()
                session.close()
                return
    except Exception:  # the session ended under us: nothing more to forward
        return
