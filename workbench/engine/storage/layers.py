"""Overlay layer store: read-only image layers and per-container upper/work dirs, mounted with overlayfs."""

from __future__ import annotations

import ctypes
import errno
import os
import time

from .. import logger
from ..errors import WorkbenchError
from ..files import remove_tree
from ..locks import FileLock

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

log = logger.get(__name__)

VFS_MARKER = "vfs"  # a file in a container's layer directory: its root is a copy (the vfs driver)

_MNT_DETACH = 2
_FS_IOC_GETFLAGS, _FS_IOC_SETFLAGS, _FS_TOPDIR_FL = 0x80086601, 0x40086602, 0x00020000  # linux/fs.h
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 2, 4, 8
#: ext4's unit of placement with its defaults (flex_bg: 16 groups of 8192 inodes): the files of a
#: new layer fill the flex group its directory lands in.
_FLEX_INODES = 16 * 8192
#: How long ext4 without a journal keeps a freed inode from reuse (RECENTCY_MIN + RECENTCY_DIRTY).
_RECENT = 360.0
#: Directories made at most for a layer, until one lands away from recently removed layers. ext4
#: picks the group; after a few removals, 4 tries still landed in a freed group ~15% of the time
#: here, 16 ~3%. Each try is a mkdir and an rmdir.
_PLACEMENT_TRIES = 16
libc = ctypes.CDLL(None, use_errno=True)  # the already-loaded libc; find_library would spawn ldconfig
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def mount(source: str, target: str, fstype: str, flags: int = 0, data: str = "") -> None:
    """mount(2); raises OSError with the errno."""
    if libc.mount(source.encode(), target.encode(), fstype.encode(), flags, data.encode()) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {fstype} on {target}: {os.strerror(err)}")


def unmount(target: str) -> None:
    """Lazy-detach unmount; not mounted is fine."""
    if libc.umount2(target.encode(), _MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):
            raise OSError(err, f"unmount {target}: {os.strerror(err)}")


def is_mountpoint(path: str) -> bool:
    try:
        return os.stat(path).st_dev != os.stat(os.path.dirname(path)).st_dev
    except FileNotFoundError:
        return False


class LayerStore:
    """`<graph root>/layers/<id>/{diff,work,merged}`; directories are 0700."""

    def __init__(self, root: str):
        self.root = os.path.join(root, "layers")
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        self._lock: FileLock | None = None
        self._spread = False  # the layers directory is marked a top of unrelated trees (ext2/3/4)

    @property
    def lock(self) -> FileLock:
        """Held while a layer is moved in or deleted (processes share the store)."""
        if self._lock is None:
            self._lock = FileLock(self.root + ".lock")
        return self._lock

    def spread(self) -> None:
        """Mark the layers directory as a top of unrelated trees (`chattr +T`), so that ext2/3/4
        place each new layer in a block group of its own rather than next to the last one.

        It matters where a layer was just removed (pull or load after rmi): on ext4 without a
        journal (this machine's), a freed inode is not reused for 60 to 360 s and every new file
        first checks each such inode of its group in turn (recently_deleted() in
        fs/ext4/ialloc.c), which took a 10,000-file load from 4 s to 9. Other file systems
        ignore the flag or refuse it; either is fine. See also `create_apart`.
        """
        import fcntl
        import struct

        try:
            fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return
        try:
            flags = struct.unpack("i", fcntl.ioctl(fd, _FS_IOC_GETFLAGS, bytes(4)))[0]
            if not flags & _FS_TOPDIR_FL:
                fcntl.ioctl(fd, _FS_IOC_SETFLAGS, struct.pack("i", flags | _FS_TOPDIR_FL))
            self._spread = True
        except OSError as exc:
            log.debug("layers directory keeps its inode flags: %s", exc)
        finally:
            os.close(fd)

    def dir(self, layer_id: str) -> str:
        if not layer_id or "/" in layer_id or layer_id.startswith("."):
            raise WorkbenchError(f"invalid layer id {layer_id!r}")
        return os.path.join(self.root, layer_id)

    def diff(self, layer_id: str) -> str:
        return os.path.join(self.dir(layer_id), "diff")

    def merged(self, layer_id: str) -> str:
        return os.path.join(self.dir(layer_id), "merged")

    def create(self, layer_id: str, *, writable: bool) -> str:
        """Make the directories of a new layer; returns its diff dir."""
        base = self.dir(layer_id)
        os.mkdir(base, 0o700)
        os.mkdir(os.path.join(base, "diff"), 0o755)
        if writable:
            os.mkdir(os.path.join(base, "work"), 0o700)
            os.mkdir(os.path.join(base, "merged"), 0o700)
        return os.path.join(base, "diff")

    def create_apart(self, make_id: Callable[[], str]) -> str:
        """Make a read-only layer under a fresh `make_id()`, away from the layers removed in the
        last minutes; returns its id.

        ext4 puts a top-level directory (see `spread`) in a group with the fewest directories,
        often the one a removal just emptied, whose freed inodes then slow every new file down.
        A layer directory that lands in the flex group of a recently removed layer stays, empty,
        while the next is made: the group is no longer the emptiest, so the next lands
        elsewhere. The empty ones go at the end. Without `spread` (not ext2/3/4) the first is
        taken.
        """
        freed = self._recently_freed() if self._spread else []
        placeholders: list[str] = []
        try:
            while True:
                layer_id = make_id()
                self.create(layer_id, writable=False)
                if len(placeholders) + 1 >= _PLACEMENT_TRIES or not lands_where_freed(
                        os.lstat(self.dir(layer_id)).st_ino, freed):
                    return layer_id
                placeholders.append(layer_id)
        finally:
            for placeholder in placeholders:
                remove_tree(self.dir(placeholder))

    def _recently_freed(self) -> list[int]:
        """Inode numbers of the layers removed in the last _RECENT seconds (`remove` notes them);
        the note is rewritten without the old ones when they outnumber the rest."""
        try:
            with open(self.root + ".freed") as f:
                lines = f.read().split("\n")
        except OSError:
            return []
        now, recent, kept = time.time(), [], []
        for line in lines:
            ino, _, when = line.partition(" ")
            if ino.isdigit() and when.isdigit() and now - int(when) < _RECENT:
                recent.append(int(ino))
                kept.append(line)
        if len(lines) > 2 * len(kept) + 64:  # an append racing with this rewrite may be lost: harmless
            from ..files import write_output

            text = "".join(line + "\n" for line in kept).encode()
            try:
                write_output(self.root + ".freed", lambda out: out.write(text), mode=0o600)
            except WorkbenchError as exc:
                log.debug("the note of removed layers keeps its old lines: %s", exc)
        return recent

    def _note_freed(self, ino: int) -> None:
        """Remember a removed layer's inode for `create_apart` (one O_APPEND write)."""
        try:
            fd = os.open(self.root + ".freed", os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            return
        try:
            os.write(fd, f"{ino} {time.time():.0f}\n".encode())
        finally:
            os.close(fd)

    def mount(self, layer_id: str, lowers: list[str], *, volatile: bool = False,
              id_maps: tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]] | None = None) -> str:
        """Mount a container layer over its image layers (top first); returns the mount point.

        `id_maps` (uid and gid maps, as OCI's uidMappings): the files show their ids mapped, the
        way a container in a user namespace of its own must see them (`--userns=keep-id`): a
        fuse-overlayfs mount, since the kernel's overlay cannot shift ids here."""
        target = self.merged(layer_id)
        if is_mountpoint(target) or self.is_vfs(layer_id):
            return target
        lowerdir = ":".join(self.diff(lower) for lower in lowers)
        options = f"lowerdir={lowerdir},upperdir={self.diff(layer_id)},workdir={os.path.join(self.dir(layer_id), 'work')}"
        if id_maps is not None or os.environ.get("WORKBENCH_MOUNT_PROGRAM"):  # ids shifted: not on a copy
            _fuse_overlay(target, options, id_maps)
            return target
        if _driver() == "vfs":
            return self._populate_vfs(layer_id, lowers)
        if _in_user_namespace():
            options += ",userxattr"  # trusted.* xattrs are refused here: opaque dirs are user.overlay.*
        if volatile:
            options += ",volatile"
        try:
            mount("overlay", target, "overlay", 0, options)
        except OSError as exc:
            if volatile and exc.errno == errno.EINVAL:
                return self.mount(layer_id, lowers)
            if exc.errno in (errno.EPERM, errno.EINVAL, errno.ENODEV) and _in_user_namespace():
                log.info("the kernel refuses overlay in this user namespace (%s): fuse-overlayfs instead",
                         exc.strerror)  # kernels before 5.11
                try:
                    _fuse_overlay(target, options, None)
                except WorkbenchError as fuse_error:
                    log.warning("%s: copying the image instead (the vfs driver: slow, and heavy on disk)",
                                fuse_error)
                    return self._populate_vfs(layer_id, lowers)
                return target
            raise WorkbenchError(f"mounting storage for layer {layer_id}: {exc.strerror}") from exc
        return target

    def is_vfs(self, layer_id: str) -> bool:
        """Whether the container's root is a full copy (the vfs driver, see vfs.py)."""
        return os.path.exists(os.path.join(self.dir(layer_id), VFS_MARKER))

    def changes_dir(self, layer_id: str) -> str:
        """Where a container's changes are read: the upper dir, or the whole copy (vfs)."""
        return self.merged(layer_id) if self.is_vfs(layer_id) else self.diff(layer_id)

    def _populate_vfs(self, layer_id: str, lowers: list[str]) -> str:
        from . import vfs

        target = self.merged(layer_id)
        with self.lock:
            if not self.is_vfs(layer_id):
                for name in os.listdir(target):  # a copy cut short: start again
                    remove_tree(os.path.join(target, name))
                vfs.populate(target, [self.diff(lower) for lower in lowers])
                with open(os.path.join(self.dir(layer_id), VFS_MARKER), "w"):
                    pass
        return target

    def unmount(self, layer_id: str) -> None:  # a fuse-overlayfs daemon exits when its mount goes
        target = self.merged(layer_id)
        while is_mountpoint(target):
            unmount(target)

    def remove(self, layer_id: str) -> None:
        """Unmount (if needed) and delete a layer's directories."""
        base = self.dir(layer_id)
        writable = os.path.isdir(os.path.join(base, "merged"))
        if writable:
            self.unmount(layer_id)
        try:
            ino = os.lstat(base).st_ino
        except FileNotFoundError:
            return
        try:
            remove_tree(base)
        except OSError as exc:
            raise WorkbenchError(f"could not remove layer directory {base}: {exc.strerror or exc}") from exc
        if not writable:  # an image layer: many inodes freed at once (a container's are few)
            self._note_freed(ino)


def lands_where_freed(ino: int, freed: list[int]) -> bool:
    """Whether inode `ino` is in the ext4 flex group of any of the `freed` inodes."""
    return any((ino - 1) // _FLEX_INODES == (other - 1) // _FLEX_INODES for other in freed)


def _driver() -> str:
    """$WORKBENCH_STORAGE_DRIVER: overlay (the default) or vfs (full copies; as Podman's --storage-driver)."""
    driver = os.environ.get("WORKBENCH_STORAGE_DRIVER") or "overlay"
    if driver not in ("overlay", "vfs"):
        raise WorkbenchError(f"storage driver {driver!r} is not known: overlay or vfs")
    return driver


def _in_user_namespace() -> bool:
    """Rootless: layers are only ever mounted once the user namespace is joined."""
    from ..rootless import is_rootless

    return is_rootless()


def _fuse_overlay(target: str, options: str, id_maps: tuple[list[tuple[int, int, int]], ...] | None) -> None:
    """Mount with fuse-overlayfs (or $WORKBENCH_MOUNT_PROGRAM, as storage.conf's mount_program):
    the fallback where the kernel refuses overlay in a user namespace, and the way to show ids
    shifted (`id_maps`: a file's id C shows as H for each (C, H, count))."""
    import shutil
    import subprocess

    program = os.environ.get("WORKBENCH_MOUNT_PROGRAM") or "fuse-overlayfs"
    binary = shutil.which(program)
    if binary is None:
        raise WorkbenchError(f"{program} not found: mounting this container's storage needs it (package "
                             "fuse-overlayfs)")
    for kind, ranges in zip(("uidmapping", "gidmapping"), id_maps or ()):
        options += f",{kind}=" + ":".join(f"{inside}:{outside}:{count}" for inside, outside, count in ranges)
    proc = subprocess.run([binary, "-o", options, target], capture_output=True, text=True)
    if proc.returncode != 0 or not is_mountpoint(target):
        detail = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
        hint = " (/dev/fuse must be usable by you: mode 0666)" if "/dev/fuse" in proc.stderr else ""
        raise WorkbenchError(f"mounting storage with {program}: {detail}{hint}")

