"""Signal names and numbers as Podman accepts them (`TERM`, `SIGTERM`, `sigterm`, `15`), and
helper threads that never take a signal."""

from __future__ import annotations

import signal as _signal

TYPE_CHECKING = False
if TYPE_CHECKING:
    import threading
    from collections.abc import Callable

from .errors import InvalidArgument


def parse_signal(value: str | int) -> int:
    """The signal number for a name or number; InvalidArgument for anything else."""
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip()
        if text.isdigit():
            number = int(text)
        else:
            name = text.upper()
            name = name if name.startswith("SIG") else "SIG" + name
            if name.startswith("SIGRTMIN+") or name.startswith("SIGRTMAX-"):
                base, _, off = name.partition("+") if "+" in name else name.partition("-")
                if not off.isdigit():
                    raise InvalidArgument(f"invalid signal: {value}")
                number = int(_signal.SIGRTMIN) + int(off) if "+" in name else int(_signal.SIGRTMAX) - int(off)
            else:
                try:
                    number = int(getattr(_signal.Signals, name))
                except AttributeError:
                    raise InvalidArgument(f"invalid signal: {value}") from None
    if not 1 <= number <= int(_signal.SIGRTMAX):
        raise InvalidArgument(f"invalid signal: {value}")
    return number


def signal_name(number: int) -> str:
    try:
        return _signal.Signals(number).name
    except ValueError:
        return str(number)


def start_deaf_thread(target: Callable[[], object], name: str) -> threading.Thread:
    """Start a daemon thread with every signal blocked (it inherits this thread's mask, restored
    at once): a Ctrl-C or a notebook's interrupt must reach the main thread, not a helper whose
    system call may sleep uninterruptibly and whose handling would not wake the main thread."""
    import threading

    previous = _signal.pthread_sigmask(_signal.SIG_BLOCK, _signal.valid_signals())
    try:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
    finally:
        _signal.pthread_sigmask(_signal.SIG_SETMASK, previous)
    return thread
