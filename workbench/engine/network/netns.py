"""Network namespaces kept alive as bind-mounted files (what `ip netns add` does, under our run root).

A helper thread of its own unshares its network namespace (network namespaces are per thread),
bind-mounts it on the file and ends, so no thread of the caller ever changes namespace; a fork
would cost several ms more. The helper also opens a netlink (rtnetlink) socket there: a netlink
socket works in the namespace it was opened in, so the caller configures the inside through it
without entering (pyroute2's own way forks a child that runs ldconfig, ~20 ms). The namespace
starts with only `lo`, down: `bridge.attach` brings it up with the first interface.

Unlike iproute2 the directory is not bind-mounted onto itself and made shared: the file mount
works on any mount, and a directory mount would outlive every namespace in it (a run root could
not be deleted). Copies of the mount that other mount namespaces took meanwhile (runc's, before
its pivot_root) do not keep a namespace alive: unlinking the file detaches them (Linux >= 3.18).
"""

from __future__ import annotations

import os
import socket

from ..errors import WorkbenchError

_CLONE_NEWNET = 0x40000000
_MS_BIND = 4096
_NETLINK_ROUTE = 0


def create(path: str) -> socket.socket:
    """A new network namespace, bind-mounted at `path` (which must not exist), and a netlink
    socket inside it that the caller closes; on failure nothing is left behind."""
    parent = os.path.dirname(path)
    try:
        os.makedirs(parent, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise WorkbenchError(f"creating network namespace {path}: {parent} is not a usable directory "
                             f"({exc.strerror})") from None
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    except FileExistsError:
        raise WorkbenchError(f"network namespace {path} already exists") from None
    except OSError as exc:
        raise WorkbenchError(f"creating network namespace {path}: {exc.strerror}") from None
    try:
        return _netlink_inside(path, new=True)
    except WorkbenchError:
        remove(path)
        raise


def route_socket(path: str) -> socket.socket:
    """A netlink socket inside the existing namespace at `path`; the caller closes it."""
    return _netlink_inside(path, new=False)


def _netlink_inside(path: str, new: bool) -> socket.socket:
    """On a helper thread: enter the namespace at `path` (`new`: unshare one and bind-mount it
    there) and open a netlink socket in it."""
    import ctypes

    from ..signals import start_deaf_thread
    from ..storage.layers import libc

    outcome: list[socket.socket | OSError] = []

    def enter_and_open() -> None:
        try:
            if new:
                if libc.unshare(_CLONE_NEWNET) != 0 or libc.mount(b"/proc/thread-self/ns/net", path.encode(),
                                                                    b"none", _MS_BIND, None) != 0:
                    raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
            else:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    if libc.setns(fd, _CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
                finally:
                    os.close(fd)
            outcome.append(socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_ROUTE))
        except OSError as exc:
            outcome.append(exc)

    start_deaf_thread(enter_and_open, "workbench-netns").join()
    if not outcome or isinstance(outcome[0], OSError):
        reason = outcome[0].strerror if outcome else "the helper thread failed"
        raise WorkbenchError(f"{'creating' if new else 'entering'} network namespace {path}: {reason}")
    return outcome[0]


def exists(path: str) -> bool:
    """Whether a namespace is mounted at `path` (an empty file left by a crash is not one)."""
    return os.path.ismount(path)


def remove(path: str) -> None:
    """Unmount and delete a namespace file; a missing one is fine."""
    from ..storage.layers import unmount

    try:
        if exists(path):
            unmount(path)
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise WorkbenchError(f"removing network namespace {path}: {exc.strerror}") from None
