"""Network namespaces kept alive as bind-mounted files (what `ip netns add` does, under our run root).

A forked child unshares its network namespace and bind-mounts it on the file, so no thread of
the caller ever changes namespace. The namespace starts with only `lo`, down: `bridge.attach`
brings it up with the first interface.

Unlike iproute2 the directory is not bind-mounted onto itself and made shared: the file mount
works on any mount, and a directory mount would outlive every namespace in it (a run root could
not be deleted). Copies of the mount that other mount namespaces took meanwhile (runc's, before
its pivot_root) do not keep a namespace alive: unlinking the file detaches them (Linux >= 3.18).
"""

from __future__ import annotations

import os

from ..errors import WorkbenchError

_CLONE_NEWNET = 0x40000000
_MS_BIND = 4096


def create(path: str) -> None:
    """A new network namespace, bind-mounted at `path` (which must not exist); on failure
    nothing is left behind."""
    import ctypes

    from ..storage.layers import libc

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
    target = path.encode()
    pid = os.fork()
    if pid == 0:  # the child only calls libc: unshare its netns, bind it to the file, exit
        code = 0
        if libc.unshare(_CLONE_NEWNET) != 0 or libc.mount(b"/proc/self/ns/net", target, b"none", _MS_BIND,
                                                            None) != 0:
            code = ctypes.get_errno() or 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0 or not exists(path):
        remove(path)
        reason = os.strerror(code) if code > 0 else f"exit status {code}"
        raise WorkbenchError(f"creating network namespace {path}: {reason}")


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
