"""Network namespaces kept alive as bind-mounted files (what `ip netns add` does, under our run root).

A forked child unshares its network namespace and bind-mounts it on the file, so no thread of
the caller ever changes namespace. Unlike iproute2 the directory is not made a shared mount
point: runc joins the namespace by path before it makes the container's mount namespace, and
a directory mount would outlive every namespace in it.
"""

from __future__ import annotations

import os

from ..errors import WorkbenchError

_CLONE_NEWNET = 0x40000000
_MS_BIND = 4096


def create(path: str) -> None:
    """A new network namespace, bind-mounted at `path` (which must not exist)."""
    import ctypes

    from ..storage.layers import libc

    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    except FileExistsError:
        raise WorkbenchError(f"network namespace {path} already exists") from None
    pid = os.fork()
    if pid == 0:  # the child only calls libc: unshare its netns, bind it to the file, exit
        code = 0
        if libc.unshare(_CLONE_NEWNET) != 0 or libc.mount(b"/proc/self/ns/net", path.encode(), b"none",
                                                            _MS_BIND, None) != 0:
            code = ctypes.get_errno() or 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0 or not os.path.ismount(path):
        remove(path)
        reason = os.strerror(code) if code > 0 else f"exit status {code}"
        raise WorkbenchError(f"creating network namespace {path}: {reason}")


def remove(path: str) -> None:
    """Unmount and delete a namespace file; a missing one is fine."""
    from ..storage.layers import unmount

    if os.path.ismount(path):
        unmount(path)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
