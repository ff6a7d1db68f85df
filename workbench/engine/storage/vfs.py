"""The copying `vfs` driver: a container's root file system is a full copy of its image.

The last resort where neither the kernel's overlay nor fuse-overlayfs can mount (as Podman's
vfs driver): slow to start and heavy on disk, but it needs nothing from the kernel. The copy is
made at the first mount by applying the image's layers bottom up (their whiteouts delete, their
opaque directories empty). With no upper directory to read, `diff` and `commit` compare the
copy with the image: a path is added when the image has none, changed when its type, mode,
owner, size, mtime, link target or device differ, deleted when the image has it and the copy not.
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Iterator
from typing import BinaryIO

from .tarwriter import TarStream, _add, _is_opaque, is_mount_program_marker, walk

MARKER = "vfs"  # a file in the layer directory: this container's root is a vfs copy


def populate(merged: str, lower_diffs: list[str]) -> None:
    """Copy the image into the empty `merged`, its layers given top first (as to overlay)."""
    from ..copy import piped
    from .archive import WhiteoutMode, apply_tar
    from .tarwriter import write_tar

    for diff in reversed(lower_diffs):
        piped(lambda out, diff=diff: write_tar(diff, out, overlay_whiteouts=True),
              lambda stream: apply_tar(stream, merged, whiteouts=WhiteoutMode.APPLY))


def image_index(lower_fds: list[int]) -> dict[str, os.stat_result]:
    """Every path of the image (its layers' directory fds, top first) with its top-most lstat."""
    index: dict[str, os.stat_result] = {}
    deleted: set[str] = set()  # whited out by a layer above: gone with everything below it
    opaque: set[str] = set()   # opaque in a layer above: what lower layers hold below it is hidden
    for fd in lower_fds:
        new_deleted, new_opaque = set(), set()
        for rel, parent_fd, st in walk(fd):
            if is_mount_program_marker(rel) or _hidden(rel, deleted, opaque):
                continue
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                new_deleted.add(rel)
                continue
            index.setdefault(rel, st)
            if stat.S_ISDIR(st.st_mode) and _is_opaque(rel.rsplit("/", 1)[-1], parent_fd):
                new_opaque.add(rel)
        deleted |= new_deleted
        opaque |= new_opaque
    return index


def _hidden(rel: str, deleted: set[str], opaque: set[str]) -> bool:
    if rel in deleted:
        return True
    parent = rel
    while "/" in parent:
        parent = parent.rsplit("/", 1)[0]
        if parent in deleted or parent in opaque:
            return True
    return False


def changes(root_fd: int, lower_fds: list[int], skip: frozenset[str] = frozenset()) -> list[tuple[str, str]]:
    """(kind, relative path) of the copy under `root_fd` against the image, A/C/D, in path order;
    a deleted directory is one D (not one per file in it)."""
    index = image_index(lower_fds)
    seen: set[str] = set()
    out = []
    for rel, parent_fd, st in walk(root_fd, skip):
        seen.add(rel)
        before = index.get(rel)
        if before is None:
            out.append(("A", rel))
        elif _differs(before, st, rel, parent_fd, lower_fds):
            out.append(("C", rel))
    for rel in sorted(index.keys() - seen - skip):
        parent = rel.rsplit("/", 1)[0] if "/" in rel else ""
        if not parent or parent in seen:  # the top-most deletion only
            out.append(("D", rel))
    return sorted(out, key=lambda change: change[1])


def _differs(before: os.stat_result, now: os.stat_result, rel: str, parent_fd: int, lower_fds: list[int]) -> bool:
    if stat.S_IFMT(before.st_mode) != stat.S_IFMT(now.st_mode):
        return True
    if (before.st_mode, before.st_uid, before.st_gid) != (now.st_mode, now.st_uid, now.st_gid):
        return True
    if stat.S_ISDIR(now.st_mode):  # entries added or removed (tar keeps whole seconds: so do we)
        return int(before.st_mtime) != int(now.st_mtime)
    if stat.S_ISLNK(now.st_mode):
        return _link_in_image(rel, lower_fds) != os.readlink(rel.rsplit("/", 1)[-1], dir_fd=parent_fd)
    if stat.S_ISCHR(now.st_mode) or stat.S_ISBLK(now.st_mode):
        return before.st_rdev != now.st_rdev
    return (before.st_size, int(before.st_mtime)) != (now.st_size, int(now.st_mtime))


def _link_in_image(rel: str, lower_fds: list[int]) -> str | None:
    from .rootpath import UnsafePath, open_in_root

    parent, _, leaf = rel.rpartition("/")
    for fd in lower_fds:
        try:
            parent_fd = open_in_root(fd, parent, os.O_RDONLY | os.O_DIRECTORY) if parent else os.dup(fd)
        except (OSError, UnsafePath):
            continue
        try:
            return os.readlink(leaf, dir_fd=parent_fd)
        except OSError:
            continue
        finally:
            os.close(parent_fd)
    return None


def write_changes(root_fd: int, lower_fds: list[int], out: BinaryIO, *, clamp_mtime: int | None = None,
                  skip: frozenset[str] = frozenset()) -> None:
    """The changes as a layer tar: added and changed entries as they are now, deletions as whiteouts."""
    wanted = {rel: kind for kind, rel in changes(root_fd, lower_fds, skip)}
    with TarStream(out) as tar:
        for rel, parent_fd, st in _entries(root_fd, wanted, skip):
            _add(tar, rel, rel.rsplit("/", 1)[-1], parent_fd, st, False, clamp_mtime)
        for rel, kind in wanted.items():
            if kind == "D":
                head, _, base = rel.rpartition("/")
                whiteout = tarfile.TarInfo(f"{head}/.wh.{base}" if head else f".wh.{base}")
                whiteout.mode, whiteout.size = 0o600, 0
                tar.addfile(whiteout)


def _entries(root_fd: int, wanted: dict[str, str], skip: frozenset[str]) -> Iterator[tuple[str, int, os.stat_result]]:
    for rel, parent_fd, st in walk(root_fd, skip):
        if wanted.get(rel) in ("A", "C"):
            yield rel, parent_fd, st

