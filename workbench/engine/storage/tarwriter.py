"""Writing tar streams from directories whose content is hostile (a container's upper dir or root).

Nothing is resolved by path: the walk holds directory fds and opens every entry relative to its
parent with O_NOFOLLOW, so a symlink swapped in by a running container is archived as a symlink,
never followed. Output is deterministic: entries sorted, owners numeric, no user or group names,
and mtimes clamped to `clamp_mtime` when given (SOURCE_DATE_EPOCH-style reproducibility).
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
from typing import BinaryIO, Iterator

from .archive import OPAQUE_MARKER, WHITEOUT_PREFIX, overlay_opaque_xattr

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 20


def write_tar(root: str | int, out: BinaryIO, *, overlay_whiteouts: bool = False, clamp_mtime: int | None = None,
              prefix: str = "", skip: frozenset[str] = frozenset()) -> None:
    """Write the tree under `root` (a path, or a directory fd, which stays open) to `out` as a tar stream.

    `overlay_whiteouts`: `root` is an overlay upper dir; char 0:0 devices become `.wh.` entries and
    opaque dirs get `.wh..wh..opq`. `prefix` is prepended to every name (the root itself becomes
    `prefix` when set). `skip` holds relative paths left out (mount points of runtime files).
    """
    top = os.dup(root) if isinstance(root, int) else os.open(root, _DIR)
    with TarStream(out) as tar:
        try:
            if prefix:
                tar.addfile(_info(os.fstat(top), prefix.rstrip("/") + "/", clamp_mtime))
            for name, parent_fd, st in walk(top, skip):
                if overlay_whiteouts and is_mount_program_marker(name):
                    continue
                arcname = prefix.rstrip("/") + "/" + name if prefix else name
                add_entry(tar, arcname, name.rsplit("/", 1)[-1], parent_fd, st, overlay_whiteouts, clamp_mtime)
        finally:
            os.close(top)


def write_entry(parent_fd: int, leaf: str, out: BinaryIO, *, arcname: str) -> None:
    """Write one entry of the directory `parent_fd` (and, for a directory, all below it) as a tar
    stream whose top entry is named `arcname`; a symlink is archived as a symlink."""
    st = os.lstat(leaf, dir_fd=parent_fd)
    with TarStream(out) as tar:
        add_entry(tar, arcname, leaf, parent_fd, st, False, None)
        if stat.S_ISDIR(st.st_mode):
            top = os.open(leaf, _DIR, dir_fd=parent_fd)
            try:
                for rel, child_parent, child_st in walk(top):
                    add_entry(tar, f"{arcname}/{rel}", rel.rsplit("/", 1)[-1], child_parent, child_st, False, None)
            finally:
                os.close(top)


class TarStream:
    """A pax tar written straight to `out`, byte for byte what tarfile's stream mode writes, without
    its buffer handling (it copies the whole pending buffer on every write: a third of `export`)."""

    def __init__(self, out: BinaryIO):
        self._out = out
        self._buf = bytearray()
        self._offset = 0
        self.links: dict[tuple[int, int], str] = {}  # (st_dev, st_ino) of a multiply-linked file -> its first name

    def addfile(self, info: tarfile.TarInfo, fileobj: BinaryIO | None = None) -> None:
        """One member: its header, then `info.size` bytes of `fileobj` (which must have them)."""
        self._put(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
        if fileobj is None or not info.size:
            return
        left = info.size
        while left:
            chunk = fileobj.read(min(left, _CHUNK))
            if not chunk:
                raise OSError(f"{info.name}: unexpected end of data (the file is {info.size - left} bytes, "
                              f"not {info.size})")
            self._put(chunk)
            left -= len(chunk)
        self._put(bytes(-info.size % tarfile.BLOCKSIZE))

    def close(self) -> None:
        """The end-of-archive blocks, padded to a whole record as tarfile does."""
        self._put(bytes(2 * tarfile.BLOCKSIZE))
        self._put(bytes(-self._offset % tarfile.RECORDSIZE))
        self._flush()

    def _put(self, data: bytes) -> None:
        self._offset += len(data)
        if len(data) >= _CHUNK:
            self._flush()
            self._out.write(data)
            return
        self._buf += data
        if len(self._buf) >= _CHUNK:
            self._flush()

    def _flush(self) -> None:
        if self._buf:
            self._out.write(self._buf)
            self._buf = bytearray()

    def __enter__(self) -> TarStream:
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        if kind is None:
            self.close()


def walk(top: int, skip: frozenset[str] = frozenset()) -> Iterator[tuple[str, int, os.stat_result]]:
    """(relative name, parent dir fd, lstat) under the directory fd `top`, sorted depth-first,
    without recursion and without following any symlink."""
    stack: list[tuple[int, str, list[str]]] = [(top, "", sorted(os.listdir(top)))]
    try:
        while stack:
            fd, base, names = stack[-1]
            if not names:
                stack.pop()
                if fd != top:
                    os.close(fd)
                continue
            entry = names.pop(0)
            rel = f"{base}{entry}"
            if rel in skip:
                continue
            try:
                st = os.lstat(entry, dir_fd=fd)
            except FileNotFoundError:
                continue  # removed while we walked (a running container)
            yield rel, fd, st
            if stat.S_ISDIR(st.st_mode):
                try:
                    child = os.open(entry, _DIR, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                        continue
                    raise
                stack.append((child, rel + "/", sorted(os.listdir(child))))
    finally:
        for fd, _, _ in stack:
            if fd != top:
                os.close(fd)


def _info(st: os.stat_result, name: str, clamp_mtime: int | None) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname = info.gname = ""
    mtime = int(st.st_mtime)
    info.mtime = min(mtime, clamp_mtime) if clamp_mtime is not None else mtime
    if stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
    return info


def add_whiteout(tar: TarStream, arcname: str, st: os.stat_result, clamp_mtime: int | None) -> None:
    """The layer entry saying `arcname` is deleted (`.wh.NAME`), with the owner and time of `st`."""
    head, _, base = arcname.rpartition("/")
    whiteout = _info(st, f"{head}/{WHITEOUT_PREFIX}{base}" if head else WHITEOUT_PREFIX + base, clamp_mtime)
    whiteout.mode, whiteout.type, whiteout.size = 0o600, tarfile.REGTYPE, 0
    tar.addfile(whiteout)


def add_entry(tar: TarStream, arcname: str, leaf: str, parent_fd: int, st: os.stat_result,
              overlay_whiteouts: bool, clamp_mtime: int | None) -> None:
    mode = st.st_mode
    if overlay_whiteouts and stat.S_ISCHR(mode) and st.st_rdev == 0:
        add_whiteout(tar, arcname, st, clamp_mtime)
        return
    info = _info(st, arcname, clamp_mtime)
    if stat.S_ISREG(mode) and st.st_nlink > 1:  # a hard link: its content once, then links to it
        first = tar.links.setdefault((st.st_dev, st.st_ino), arcname)
        if first != arcname:
            info.type, info.linkname = tarfile.LNKTYPE, first
            tar.addfile(info)
            return
    if stat.S_ISREG(mode):
        fd = os.open(leaf, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
        with os.fdopen(fd, "rb") as f:
            info.size = os.fstat(f.fileno()).st_size  # the size now, not at lstat time
            tar.addfile(info, _Exactly(f, info.size))
        return
    if stat.S_ISDIR(mode):
        info.name = arcname + "/"
        tar.addfile(info)
        if overlay_whiteouts and is_opaque_dir(leaf, parent_fd):
            marker = _info(st, f"{arcname}/{OPAQUE_MARKER}", clamp_mtime)
            marker.mode, marker.type, marker.size = 0o600, tarfile.REGTYPE, 0
            tar.addfile(marker)
        return
    if stat.S_ISLNK(mode):
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(leaf, dir_fd=parent_fd)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    elif stat.S_ISFIFO(mode):
        info.type = tarfile.FIFOTYPE
    else:
        return  # sockets and the like are not archived (as Podman)
    tar.addfile(info)


# fuse-overlayfs (keep-id containers, rootless fallback) marks an opaque directory of its upper
# dir with these two entries and the xattr below, besides the kernel's own marking.
_FUSE_MARKERS = frozenset({".wh..wh..opq", ".wh..opq"})
_FUSE_OPAQUE_XATTR = "user.fuseoverlayfs.opaque"


def is_mount_program_marker(rel: str) -> bool:
    """Whether `rel` in an upper dir is fuse-overlayfs's bookkeeping, not a file of the container."""
    return rel.rsplit("/", 1)[-1] in _FUSE_MARKERS


def is_opaque_dir(leaf: str, parent_fd: int) -> bool:
    fd = os.open(leaf, _DIR, dir_fd=parent_fd)
    try:
        for name in (overlay_opaque_xattr(), _FUSE_OPAQUE_XATTR):
            try:
                if os.getxattr(fd, name) == b"y":
                    return True
            except OSError:
                continue
        return False
    finally:
        os.close(fd)


class _Exactly:
    """A file read as exactly `size` bytes: padded with zeros if it shrank, cut if it grew."""

    def __init__(self, f: BinaryIO, size: int):
        self._f, self._left = f, size

    def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        n = self._left if n < 0 else min(n, self._left)
        data = self._f.read(n) or b"\0" * n
        self._left -= len(data)
        return data
