"""A container's file system seen from the host: mount counting, diff, export and commit.

Every function expects the container lock held and the state synced (Container's methods do it).
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, BinaryIO, Sequence

from . import events
from .progress import ByteProgress, Meter
from .state import ACTIVE_STATES
from .state import ContainerState as S

if TYPE_CHECKING:
    from .container import Container
    from .images.store import Image

#: Files the runtime bind-mounts over; runc creates them empty in the upper dir when the image
#: lacks them. They are the engine's, not the user's: diff and commit leave them out.
RUNTIME_FILES = ("etc/hostname", "etc/hosts", "etc/resolv.conf", "run/.containerenv")
#: Paths `podman diff` never reports (libpod's initInodes): mount points the runtime owns.
DIFF_IGNORED = frozenset({"dev", "etc/hostname", "etc/hosts", "etc/resolv.conf", "proc", "run", "run/notify",
                          "run/.containerenv", "run/secrets", "sys", "etc/mtab"})


# -- mount -----------------------------------------------------------------------------------
def mount(c: "Container") -> str:
    from .lifecycle import mount_storage

    path = mount_storage(c)
    c.st.mount_count += 1
    c.save()
    events.container(c, "mount")
    return path


def unmount(c: "Container", force: bool) -> None:
    from .lifecycle import cleanup_storage

    c.st.mount_count = 0 if force else max(0, c.st.mount_count - 1)
    if c.st.mount_count == 0 and c.st.state not in ACTIVE_STATES and c.st.mounted:
        cleanup_storage(c)
    c.save()
    events.container(c, "unmount")


@contextmanager
def paused(c: "Container", pause: bool) -> Iterator[None]:
    """The container paused for the block when `pause` is asked and it runs. Where containers have
    no cgroup (rootless on cgroup v1) none can be paused, and it is not (as Podman's cp and commit)."""
    from . import cgroups

    if not (pause and c.st.state == S.RUNNING and cgroups.containers_have_cgroups()):
        yield
        return
    c.rt.oci.pause(c.id)
    try:
        yield
    finally:
        c.rt.oci.resume(c.id)


class mounted:
    """The container's root file system, mounted for the duration (and unmounted if we mounted it)."""

    def __init__(self, c: "Container"):
        self.c = c

    def __enter__(self) -> str:
        from .lifecycle import mount_storage

        self.was_mounted = self.c.st.mounted
        path = mount_storage(self.c)
        if not self.was_mounted:
            self.c.save()
        return path

    def __exit__(self, *exc: object) -> None:
        if not self.was_mounted and self.c.st.mount_count == 0 and self.c.st.state not in ACTIVE_STATES:
            from .lifecycle import cleanup_storage

            cleanup_storage(self.c)
            self.c.save()


# -- diff ------------------------------------------------------------------------------------
def diff(c: "Container") -> list[tuple[str, str]]:
    """(kind, path) for what changed against the image: A added, C changed, D deleted (Podman's order)."""
    from .storage.tarwriter import is_mount_program_marker, walk

    image = c.rt.image_store.get(c.config.image_id)
    lowers = [_open_dir(c.rt.layers.diff(layer)) for layer in reversed(image.layers)]
    upper = _open_dir(c.rt.layers.changes_dir(c.config.layer_id))
    out = []
    try:
        if c.rt.layers.is_vfs(c.config.layer_id):
            from .storage import vfs

            return [(kind, "/" + rel) for kind, rel in vfs.changes(upper, lowers, empty_runtime_files(c))
                    if rel not in DIFF_IGNORED]
        for rel, _parent, st in walk(upper):
            if rel in DIFF_IGNORED or is_mount_program_marker(rel):
                continue
            in_image = _in_lowers(lowers, rel)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                out.append(("D", "/" + rel))
            else:
                out.append(("C" if in_image else "A", "/" + rel))
    finally:
        for fd in (upper, *lowers):
            os.close(fd)
    return out


def _open_dir(path: str) -> int:
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def _in_lowers(lowers: list[int], rel: str) -> bool:
    """Whether `rel` exists in the image: the first lower layer (top down) that has it decides.
    Looked up inside each layer (no symlink of the image leads out of it)."""
    from .storage.rootpath import UnsafePath, open_in_root

    for lower in lowers:
        try:
            fd = open_in_root(lower, rel, os.O_PATH)
        except (OSError, UnsafePath):
            continue
        try:
            st = os.fstat(fd)
        finally:
            os.close(fd)
        return not (stat.S_ISCHR(st.st_mode) and st.st_rdev == 0)
    return False


# -- export ------------------------------------------------------------------------------------
def export(c: "Container", out: BinaryIO, progress: ByteProgress | None = None) -> None:
    """The container's whole file system as a tar stream (`podman export`)."""
    from .storage.tarwriter import write_tar

    meter = Meter(progress)
    with mounted(c) as rootfs:
        write_tar(rootfs, meter.writer(out), skip=empty_runtime_files(c))
    meter.finish()
    events.container(c, "export")


def empty_runtime_files(c: "Container") -> frozenset[str]:
    """The mount points made for the runtime's files (hosts, resolv.conf, ...) that hold nothing of
    the container's own: relative paths, left out of what leaves the container."""
    from .storage.rootpath import UnsafePath, open_in_root

    skip = set()
    upper_fd = os.open(c.rt.layers.changes_dir(c.config.layer_id), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for rel in RUNTIME_FILES:  # the container owns the upper dir: resolved inside it, never on the host
            parent, _, leaf = rel.rpartition("/")
            try:
                parent_fd = open_in_root(upper_fd, parent, os.O_RDONLY | os.O_DIRECTORY)
            except (OSError, UnsafePath):
                continue
            try:
                st = os.stat(leaf, dir_fd=parent_fd, follow_symlinks=False)
            except (FileNotFoundError, NotADirectoryError):
                continue
            finally:
                os.close(parent_fd)
            if stat.S_ISREG(st.st_mode) and st.st_size == 0:
                skip.add(rel)
    finally:
        os.close(upper_fd)
    return frozenset(skip)


def _write_vfs_changes(c: "Container", base: "Image", out: BinaryIO, timestamp: int | None) -> None:
    """A vfs container's changes against its image, as a layer tar (storage/vfs.py)."""
    from .storage import vfs

    lowers = [_open_dir(c.rt.layers.diff(layer)) for layer in reversed(base.layers)]
    root = _open_dir(c.rt.layers.merged(c.config.layer_id))
    try:
        vfs.write_changes(root, lowers, out, clamp_mtime=timestamp, skip=empty_runtime_files(c))
    finally:
        for fd in (root, *lowers):
            os.close(fd)


# -- commit ------------------------------------------------------------------------------------
def commit(c: "Container", reference: str | None, *, changes: Sequence[str], message: str, author: str,
           pause: bool, timestamp: int | None, progress: ByteProgress | None = None,
           image_config: dict | None = None, steps: Sequence[str] = ()) -> "Image":
    """The container's changes as a new top layer over its image (`podman commit`). A build
    gives the new image's `config` part itself (`image_config`) and the history lines of its
    steps; a commit takes them from the container."""
    from .images.reference import normalize_local
    from .images.store import apply_changes, rfc3339
    from .storage.tarwriter import write_tar

    store = c.rt.image_store
    base = store.get(c.config.image_id)
    name = normalize_local(reference) if reference else None
    meter = Meter(progress)
    with paused(c, pause), tempfile.TemporaryFile(dir=c.rt.content.root) as layer:
        if c.rt.layers.is_vfs(c.config.layer_id):
            _write_vfs_changes(c, base, meter.writer(layer), timestamp)
        else:
            write_tar(c.rt.layers.diff(c.config.layer_id), meter.writer(layer), overlay_whiteouts=True,
                      clamp_mtime=timestamp, skip=empty_runtime_files(c))
        layer.seek(0)
        diff_id, _ = store.put_layer(layer)
    meter.finish()
    created = rfc3339(time.time() if timestamp is None else timestamp)
    config = json.loads(c.rt.content.read("sha256:" + base.id))
    runtime_config = dict(config.get("config") or {})
    cfg = c.config
    if image_config is not None:
        runtime_config = dict(image_config)
    else:
        env = [e for e in cfg.env if not e.startswith("HOSTNAME=")]  # the container's ID, not the image's
        runtime_config.update(Env=env, Cmd=list(cfg.command) or None, WorkingDir=cfg.workdir,
                              Entrypoint=list(cfg.entrypoint) or None, User=cfg.user,
                              Labels=dict(cfg.labels) or None, StopSignal=str(cfg.stop_signal))
    apply_changes(runtime_config, list(changes))
    config["config"] = {k: v for k, v in runtime_config.items() if v is not None}
    config["created"] = created
    config["rootfs"] = {"type": "layers", "diff_ids": [*config["rootfs"]["diff_ids"], diff_id]}
    entry = {"created": created, "created_by": " ".join(cfg.entrypoint + cfg.command)}
    if author:
        config["author"] = entry["author"] = author
    if message:
        config["comment"] = entry["comment"] = message
    if steps:  # one entry per build step; the last one made the layer
        entries = [{"created": created, "created_by": step, "empty_layer": True} for step in steps]
        entries[-1] = {**entry, "created_by": steps[-1]}
    else:
        entries = [entry]
    config["history"] = [*config.get("history", []), *entries]
    image = store.register(json.dumps(config, separators=(",", ":")).encode(), [name] if name else [])
    events.container(c, "commit")
    return image
