"""Resolving a path inside a container's root without ever leaving it (openat2 RESOLVE_IN_ROOT,
or a component-by-component no-follow walk that treats the root as `/`)."""

from __future__ import annotations

import ctypes
import errno
import os
import stat

from .. import logger
from ..errors import WorkbenchError

log = logger.get(__name__)

_MAXSYMLINKS = 40  # Linux's limit on symlinks followed in one resolution
_MAX_WALK_DEPTH = 2048  # directories deep a single resolution may go
O_PATH = getattr(os, "O_PATH", 0o10000000)
O_TMPFILE = getattr(os, "O_TMPFILE", 0o20200000)
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
DIR_NOFOLLOW = DIR_FLAGS | os.O_NOFOLLOW


class UnsafePath(WorkbenchError):
    """A path that cannot be resolved safely (a NUL byte, ...)."""


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_SYS_OPENAT2 = 437  # the same number on every Linux architecture
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_IN_ROOT = 0x10
_openat2_state: bool | None = None  # None: not probed yet; False forces the pure-Python walk
_libc: ctypes.CDLL | None = None


def _openat2(dir_fd: int, path: str, flags: int, mode: int = 0) -> int:
    """openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS); raises OSError like os.open."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    creating = flags & os.O_CREAT or flags & O_TMPFILE == O_TMPFILE
    how = _OpenHow(flags, mode if creating else 0, _RESOLVE_IN_ROOT | _RESOLVE_NO_MAGICLINKS)
    raw = os.fsencode(path)
    err = errno.EAGAIN
    for _ in range(16):  # EAGAIN: a concurrent rename raced the resolution
        fd = _libc.syscall(
            ctypes.c_long(_SYS_OPENAT2), ctypes.c_int(dir_fd), ctypes.c_char_p(raw),
            ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)),
        )
        if fd >= 0:
            return fd
        err = ctypes.get_errno()
        if err not in (errno.EAGAIN, errno.EINTR):
            break
    raise OSError(err, os.strerror(err), path)


def _openat2_available() -> bool:
    """Whether openat2 works here (kernel >= 5.6 and not filtered by seccomp); probed once."""
    global _openat2_state
    if _openat2_state is None:
        try:
            fd = _openat2(-100, "/", O_PATH | os.O_CLOEXEC)  # AT_FDCWD
        except (OSError, AttributeError) as exc:
            log.debug("openat2 unavailable, using the component walk: %s", exc)
            _openat2_state = False
        else:
            os.close(fd)
            _openat2_state = True
    return _openat2_state


def _check_path(path: str) -> None:
    if "\0" in path:
        raise UnsafePath(f"path {path!r} contains a NUL byte")


def _reopen(root_fd: int, names: list[str]) -> int:
    """Open the already-resolved directory chain `names` below root, following nothing."""
    fd = os.dup(root_fd)
    try:
        for name in names:
            child = os.open(name, DIR_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _mkdir_open(dir_fd: int, name: str, mode: int) -> int:
    """Create directory `name` (exact `mode`) unless it appeared meanwhile, and open it no-follow."""
    try:
        os.mkdir(name, 0o700, dir_fd=dir_fd)
        created = True
    except FileExistsError:
        created = False
    fd = os.open(name, DIR_NOFOLLOW, dir_fd=dir_fd)
    if created:
        os.fchmod(fd, mode)
    return fd


def _walk(root_fd: int, parts: list[str], *, create: bool = False, mode: int = 0o755,
          budget: list[int] | None = None) -> tuple[int, list[str]]:
    """Open the directory `parts` names below root as a chroot would; returns (fd, real names)."""
    budget = budget if budget is not None else [_MAXSYMLINKS]
    pending = list(reversed(parts))  # a stack: pop() yields the next component
    names: list[str] = []
    fd = os.dup(root_fd)
    try:
        while pending:
            name = pending.pop()
            if name in ("", "."):
                continue
            if name == "..":  # clamped at the root, like chroot
                if names:
                    names.pop()
                    parent = _reopen(root_fd, names)
                    os.close(fd)
                    fd = parent
                continue
            try:
                child = os.open(name, DIR_NOFOLLOW, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                child = _mkdir_open(fd, name, mode)
            except OSError as exc:
                if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
                    raise
                if not stat.S_ISLNK(os.lstat(name, dir_fd=fd).st_mode):
                    raise
                budget[0] -= 1
                if budget[0] < 0:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), name) from None
                target = os.readlink(name, dir_fd=fd)
                if not target:
                    raise FileNotFoundError(errno.ENOENT, "empty symlink target", name) from None
                if target.startswith("/"):  # absolute targets are rebased onto the root
                    top = os.dup(root_fd)
                    os.close(fd)
                    fd = top
                    names.clear()
                pending.extend(reversed(target.split("/")))
                continue
            os.close(fd)
            fd = child
            names.append(name)
            if len(names) > _MAX_WALK_DEPTH:
                raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG), name)
    except BaseException:
        os.close(fd)
        raise
    return fd, names


def _open_walk(root_fd: int, path: str, flags: int, mode: int, follow: bool) -> int:
    """Pure-Python open_in_root: walk parents in root, open the leaf no-follow, chase it if asked."""
    budget = [_MAXSYMLINKS]
    parts = path.split("/")
    while True:
        comps = [c for c in parts if c not in ("", ".")]
        if not comps or comps[-1] == "..":
            dfd, _ = _walk(root_fd, comps, budget=budget)
            try:
                return os.open(".", flags, mode, dir_fd=dfd)
            finally:
                os.close(dfd)
        dfd, names = _walk(root_fd, comps[:-1], budget=budget)
        try:
            leaf = comps[-1]
            try:
                fd = os.open(leaf, flags | os.O_NOFOLLOW, mode, dir_fd=dfd)
            except OSError as exc:
                if not follow or exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                if not stat.S_ISLNK(os.lstat(leaf, dir_fd=dfd).st_mode):
                    raise
            else:
                if not (follow and flags & O_PATH and stat.S_ISLNK(os.fstat(fd).st_mode)):
                    return fd
                os.close(fd)
            budget[0] -= 1
            if budget[0] < 0:
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
            target = os.readlink(leaf, dir_fd=dfd)
            if not target:
                raise FileNotFoundError(errno.ENOENT, "empty symlink target", path)
            parts = target.split("/") if target.startswith("/") else names + target.split("/")
        finally:
            os.close(dfd)


def open_in_root(root_fd: int, path: str, flags: int, mode: int = 0o644, *, follow: bool = False) -> int:
    """Open `path` below the directory `root_fd` as if chrooted there; nothing resolves outside.

    Parent symlinks are followed inside the root (absolute targets rebased, `..` clamped); the leaf
    is opened O_NOFOLLOW unless `follow`. Errors are the kernel's (FileNotFoundError, ELOOP, ...).
    """
    _check_path(path)
    flags |= os.O_CLOEXEC
    follow = follow and not flags & os.O_NOFOLLOW
    if not follow:
        flags |= os.O_NOFOLLOW
    if _openat2_available():
        return _openat2(root_fd, path or ".", flags, mode)
    return _open_walk(root_fd, path, flags, mode, follow)


def mkdirs_in_root(root_fd: int, path: str, mode: int = 0o755) -> int:
    """Like `mkdir -p` below `root_fd` as if chrooted there; new dirs get exactly `mode`; returns an fd."""
    _check_path(path)
    if _openat2_available():
        try:
            return _openat2(root_fd, path or ".", DIR_FLAGS)
        except FileNotFoundError:
            pass
    fd, _ = _walk(root_fd, path.split("/"), create=True, mode=mode)
    return fd


# --------------------------------------------------------------------------- the input stream
