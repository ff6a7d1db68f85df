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
from collections.abc import Iterator
from typing import BinaryIO

from ..records import NamedTuple
from .tarwriter import (
    TarStream,
    add_entry,
    add_whiteout,
    is_mount_program_marker,
    is_opaque_dir,
    walk,
)


def populate(merged: str, lower_diffs: list[str]) -> None:
    """Copy the image into the empty `merged`, its layers given top first (as to overlay)."""
    from ..copy import piped
    from .archive import WhiteoutMode, apply_tar
    from .tarwriter import write_tar

    for diff in reversed(lower_diffs):
        piped(lambda out, diff=diff: write_tar(diff, out, overlay_whiteouts=True),
              lambda stream: apply_tar(stream, merged, whiteouts=WhiteoutMode.APPLY))


class _Image(NamedTuple):
    """The image's paths with their top-most lstat, and the targets of its symlinks."""

    stats: dict[str, os.stat_result]
    links: dict[str, str]


def image_index(lower_fds: list[int]) -> _Image:
    """Every path of the image (its layers' directory fds, top first)."""
    image = _Image({}, {})
    deleted: set[str] = set()  # whited out by a layer above: gone with everything below it
    opaque: set[str] = set()   # opaque in a layer above: what lower layers hold below it is hidden
    for fd in lower_fds:
        new_deleted, new_opaque = set(), set()
        for rel, parent_fd, st in walk(fd):
            if is_mount_program_marker(rel) or _hidden(rel, deleted, opaque) or rel in image.stats:
                continue
            leaf = rel.rsplit("/", 1)[-1]
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                new_deleted.add(rel)
                continue
            image.stats[rel] = st
            if stat.S_ISLNK(st.st_mode):
                image.links[rel] = os.readlink(leaf, dir_fd=parent_fd)
            elif stat.S_ISDIR(st.st_mode) and is_opaque_dir(leaf, parent_fd):
                new_opaque.add(rel)
        deleted |= new_deleted
        opaque |= new_opaque
    return image


def _hidden(rel: str, deleted: set[str], opaque: set[str]) -> bool:
    if rel in deleted:
        return True
    parent = rel
    while "/" in parent:
        parent = parent.rsplit("/", 1)[0]
        if parent in deleted or parent in opaque:
            return True
    return False


def _changes(root_fd: int, lower_fds: list[int], skip: frozenset[str]
             ) -> Iterator[tuple[str, str, int, os.stat_result]]:
    """(kind, relative path, parent dir fd, lstat) of the copy under `root_fd` against the image,
    in one walk: A and C as met (the parent fd valid until the next item), then D with the image's
    lstat and -1; a deleted directory is one D, not one per file in it."""
    image = image_index(lower_fds)
    seen: set[str] = set()
    for rel, parent_fd, st in walk(root_fd, skip):
        seen.add(rel)
        before = image.stats.get(rel)
        if before is None:
            yield "A", rel, parent_fd, st
        elif _differs(before, st, image.links.get(rel), rel, parent_fd):
            yield "C", rel, parent_fd, st
    for rel in sorted(image.stats.keys() - seen - skip):
        parent = rel.rsplit("/", 1)[0] if "/" in rel else ""
        if not parent or parent in seen:  # the top-most deletion only
            yield "D", rel, -1, image.stats[rel]


def changes(root_fd: int, lower_fds: list[int], skip: frozenset[str] = frozenset()) -> list[tuple[str, str]]:
    """(kind, relative path) of the copy against the image, A/C/D, in path order."""
    return sorted(((kind, rel) for kind, rel, _, _ in _changes(root_fd, lower_fds, skip)),
                  key=lambda change: change[1])


def _differs(before: os.stat_result, now: os.stat_result, link: str | None, rel: str, parent_fd: int) -> bool:
    if stat.S_IFMT(before.st_mode) != stat.S_IFMT(now.st_mode):
        return True
    if (before.st_mode, before.st_uid, before.st_gid) != (now.st_mode, now.st_uid, now.st_gid):
        return True
    if stat.S_ISDIR(now.st_mode):  # entries added or removed (tar keeps whole seconds: so do we)
        return int(before.st_mtime) != int(now.st_mtime)
    if stat.S_ISLNK(now.st_mode):
        return link != os.readlink(rel.rsplit("/", 1)[-1], dir_fd=parent_fd)
    if stat.S_ISCHR(now.st_mode) or stat.S_ISBLK(now.st_mode):
        return before.st_rdev != now.st_rdev
    return (before.st_size, int(before.st_mtime)) != (now.st_size, int(now.st_mtime))


def write_changes(root_fd: int, lower_fds: list[int], out: BinaryIO, *, clamp_mtime: int | None = None,
                  skip: frozenset[str] = frozenset()) -> None:
    """The changes as a layer tar: added and changed entries as they are now, deletions as whiteouts."""
    with TarStream(out) as tar:
        for kind, rel, parent_fd, st in _changes(root_fd, lower_fds, skip):
            if kind == "D":
                add_whiteout(tar, rel, st, clamp_mtime)
            else:
                add_entry(tar, rel, rel.rsplit("/", 1)[-1], parent_fd, st, False, clamp_mtime)
