"""`cp` between the host and a container, with `docker cp`'s naming rules.

Container paths are resolved inside the container's root (symlinks rebased there, never followed
out), or inside the host directory of a bind mount (`-v`) they fall under, as Podman does; the data moves as a tar stream written by the no-follow tar writer and applied by the safe
tar applier, so hostile content can neither escape the destination nor be followed on the host.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, BinaryIO, Callable

from .errors import InvalidArgument

if TYPE_CHECKING:
    from .container import Container

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


def _not_found(path: str, where: str) -> InvalidArgument:
    return InvalidArgument(f'"{path}" could not be found {where}: no such file or directory')


class _Endpoint:
    """One side of a copy: a directory fd and a leaf name in it (both may be missing); `where` it
    is, for messages ("on the host"); `name` is what the copy calls it (the leaf, unless a bind
    mount's source has another name)."""

    def __init__(self, parent_fd: int, leaf: str, path: str, where: str, name: str | None = None):
        self.parent_fd, self.leaf, self.path, self.where = parent_fd, leaf, path, where
        self.name = leaf if name is None else name

    def not_found(self) -> InvalidArgument:
        return _not_found(self.path, self.where)

    def lstat(self) -> os.stat_result | None:
        try:
            return os.lstat(self.leaf, dir_fd=self.parent_fd) if self.leaf else os.fstat(self.parent_fd)
        except FileNotFoundError:
            return None

    def close(self) -> None:
        os.close(self.parent_fd)


def _split(path: str) -> tuple[str, str]:
    trimmed = path.rstrip("/")
    head, _, leaf = trimmed.rpartition("/")
    if leaf in (".", ".."):
        return trimmed, ""
    return (head or ("/" if path.startswith("/") else ".")), leaf


def _host_endpoint(path: str) -> _Endpoint:
    head, leaf = _split(path)
    try:
        return _Endpoint(os.open(head, _DIR), leaf, path, "on the host")
    except (FileNotFoundError, NotADirectoryError):
        raise _not_found(path, "on the host") from None


def _container_endpoint(c: "Container", root_fd: int, path: str) -> _Endpoint:
    if not path.startswith("/"):
        path = "/" + path  # relative to the container's root (Podman uses the workdir; "/" here)
    bind = _bind_mount_under(c, path)
    if bind is not None:
        return _bind_endpoint(bind, path, f"on container {c.name} (in the bind mount of {bind['source']})")
    return _rooted_endpoint(root_fd, path, f"on container {c.name}")


def _rooted_endpoint(root_fd: int, path: str, where: str) -> _Endpoint:
    """`path` below the directory `root_fd`, resolved as if chrooted there."""
    from .storage.rootpath import UnsafePath, open_in_root

    head, leaf = _split(path)
    try:
        return _Endpoint(open_in_root(root_fd, head, _DIR, follow=True), leaf, path, where)
    except (FileNotFoundError, NotADirectoryError, UnsafePath):
        raise _not_found(path, where) from None


def _bind_mount_under(c: "Container", path: str) -> dict | None:
    """The innermost bind mount whose destination holds `path`, if any."""
    import posixpath

    cleaned = posixpath.normpath(path)
    found = None
    for m in c.config.mounts:
        dest = m["destination"]
        if m["type"] == "bind" and (cleaned == dest or cleaned.startswith(dest + "/")):
            if found is None or len(dest) > len(found["destination"]):
                found = m
    return found


def _bind_endpoint(bind: dict, path: str, where: str) -> _Endpoint:
    """`path` in a bind mount: resolved inside the mount's host source as if it were the root."""
    import posixpath

    from .storage.rootpath import UnsafePath, open_in_root

    rest = posixpath.normpath(path)[len(bind["destination"]):]
    source = bind["source"]
    try:
        if not rest:  # the mount point itself: the source, under the container's name for it
            head, leaf = os.path.split(source)
            return _Endpoint(os.open(head or "/", _DIR), leaf, path, where, name=_split(path)[1])
        head, leaf = _split(rest)
        source_fd = os.open(source, _DIR)
        try:
            return _Endpoint(open_in_root(source_fd, head, _DIR, follow=True), leaf, path, where)
        finally:
            os.close(source_fd)
    except (FileNotFoundError, NotADirectoryError, UnsafePath):
        raise _not_found(path, where) from None


@contextmanager
def _container_root(c: "Container", pause: bool) -> Iterator[int]:
    """The container's root dir fd, mounted (and the container paused, if asked and running)."""
    from .filesystem import mounted, paused

    with mounted(c) as rootfs:
        root_fd = os.open(rootfs, _DIR)
        try:
            with paused(c, pause):
                yield root_fd
        finally:
            os.close(root_fd)


def copy(c: "Container", source: str, destination: str, *, to_container: bool, pause: bool) -> None:
    """Copy `source` to `destination`; the container side is `destination` when `to_container`."""
    with _container_root(c, pause) as root_fd:
        src = _host_endpoint(source) if to_container else _container_endpoint(c, root_fd, source)
        _copy_then_close(src, lambda: _container_endpoint(c, root_fd, destination) if to_container
                         else _host_endpoint(destination), same_owner=to_container)


def _copy_then_close(src: _Endpoint, open_destination: Callable[[], _Endpoint], *, same_owner: bool) -> None:
    try:
        dst = open_destination()
        try:
            _copy(src, dst, same_owner=same_owner)
        finally:
            dst.close()
    finally:
        src.close()


def make_dirs(c: "Container", path: str) -> None:
    """`mkdir -p` of a container path, resolved inside its root."""
    with _container_root(c, pause=False) as root_fd:
        _mkdirs(root_fd, path)


def _mkdirs(root_fd: int, path: str) -> None:
    from .storage.rootpath import mkdirs_in_root

    if path.strip("/"):
        os.close(mkdirs_in_root(root_fd, path.strip("/")))


def copy_from_tree(c: "Container", tree_fd: int, source: str, destination: str, *, parents: str = "") -> None:
    """Copy `source` of another directory tree (a build context), resolved inside that tree, to
    `destination` in the stopped or running container, creating the directory `parents` there
    first; files become the copier's (no owners from the tree), with `cp`'s naming rules."""
    with _container_root(c, pause=False) as root_fd:
        _mkdirs(root_fd, parents)
        src = _rooted_endpoint(tree_fd, "/" + source.lstrip("/"), "in the build context")
        if src.lstat() is None and not src.path.endswith("/."):
            src.close()
            raise _not_found(source, "in the build context")
        _copy_then_close(src, lambda: _container_endpoint(c, root_fd, destination), same_owner=False)


def copy_out_tar(c: "Container", source: str, out: BinaryIO, *, pause: bool) -> None:
    """`cp CONTAINER:PATH -`: the path (a directory with all below it) as a tar stream on `out`."""
    from .storage.tarwriter import write_entry

    with _container_root(c, pause) as root_fd:
        src = _container_endpoint(c, root_fd, source)
        try:
            st = src.lstat()
            if st is None:
                raise src.not_found()
            write_entry(src.parent_fd, src.leaf or ".", out, arcname=src.name or ".")
        finally:
            src.close()


def copy_in_tar(c: "Container", stream: BinaryIO, destination: str, *, pause: bool) -> None:
    """`cp - CONTAINER:DIR`: unpack a tar stream into a directory of the container (safely: no
    entry lands outside it)."""
    from .storage.archive import WhiteoutMode, apply_tar

    with _container_root(c, pause) as root_fd:
        dst = _container_endpoint(c, root_fd, destination)
        try:
            st = dst.lstat()
            if st is None or not stat.S_ISDIR(st.st_mode):
                raise InvalidArgument(f'"{dst.path}" must be an existing directory to unpack a tar stream into')
            into_fd = os.open(dst.leaf, _DIR | os.O_NOFOLLOW, dir_fd=dst.parent_fd) if dst.leaf else os.dup(dst.parent_fd)
            try:
                apply_tar(stream, f"/proc/self/fd/{into_fd}", whiteouts=WhiteoutMode.APPLY)
            finally:
                os.close(into_fd)
        finally:
            dst.close()


def _copy(src: _Endpoint, dst: _Endpoint, *, same_owner: bool) -> None:
    from .storage.archive import WhiteoutMode, apply_tar
    from .storage.tarwriter import write_entry

    src_st = src.lstat()
    if src_st is None or not src.leaf and not stat.S_ISDIR(src_st.st_mode):
        raise src.not_found()
    contents_only = src.path.endswith("/.")
    dst_st = dst.lstat()
    if dst_st is not None and stat.S_ISDIR(dst_st.st_mode):
        into_fd = os.open(dst.leaf, _DIR | os.O_NOFOLLOW, dir_fd=dst.parent_fd) if dst.leaf else os.dup(dst.parent_fd)
        name = "." if contents_only else (src.name or ".")
    elif dst_st is not None and stat.S_ISDIR(src_st.st_mode):
        raise InvalidArgument(f'cannot copy directory "{src.path}" onto the file "{dst.path}"')
    elif dst.path.endswith("/") and dst_st is None:
        raise InvalidArgument(f'"{dst.path}" does not exist and is meant to be a directory')
    else:
        into_fd = os.dup(dst.parent_fd)
        name = dst.leaf  # the file itself (a file bind mount's source keeps its host name)
    try:
        piped(lambda out: write_entry(src.parent_fd, src.leaf or ".", out, arcname=name),
                lambda stream: apply_tar(stream, f"/proc/self/fd/{into_fd}", whiteouts=WhiteoutMode.APPLY,
                                         same_owner=same_owner))
    finally:
        os.close(into_fd)


def piped(write: Callable, read: Callable) -> None:
    """Run a tar writer and a tar reader connected by a pipe (no temporary copy on disk)."""
    r, w = os.pipe()
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            with os.fdopen(w, "wb") as out:
                write(out)
        except BaseException as exc:  # reported by the consumer's thread below
            errors.append(exc)

    writer = threading.Thread(target=produce, name="workbench-cp")
    writer.start()
    try:
        with os.fdopen(r, "rb") as stream:
            read(stream)
    finally:
        writer.join()
    if errors and not isinstance(errors[0], BrokenPipeError):
        raise errors[0]
