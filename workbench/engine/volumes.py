"""Named volumes (Podman's "local" driver): directories under `<graph root>/volumes/NAME/_data`
that outlive containers, recorded in the state DB.

`-v NAME:/path` makes the volume on first use; `-v /path` makes an anonymous one (a random name,
removed with its container by `rm -v` or `--rm`). A new volume is filled from the image at its
mount point the first time a container mounts it ("copy-up", as Podman), so a database image's
initial files are there. What the image holds is hostile: it is read with no-follow,
directory-fd-relative calls and written by the safe tar applier.
"""

from __future__ import annotations

import json
import os
import re
import time

from .errors import InvalidArgument, WorkbenchError
from .files import remove_tree
from .records import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, BinaryIO

    from .db import Database

_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")  # Podman's volume names


def check_name(name: str) -> None:
    if not _NAME.match(name):
        raise InvalidArgument(f'invalid volume name "{name}": names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*')


class NoSuchVolume(WorkbenchError):
    """A volume name that is not in the store."""

    def __init__(self, name: str):
        super().__init__(f'no volume with name "{name}" found: no such volume')


class VolumeInUse(WorkbenchError):
    """A volume that containers still use."""

    def __init__(self, name: str, users: list[str]):
        super().__init__(f"volume {name} is being used by the following container(s): {', '.join(users)}: "
                         "volume is being used")


class Volume(NamedTuple):
    name: str
    mountpoint: str
    created: float
    labels: dict[str, str]
    anonymous: bool
    needs_copy_up: bool

    def inspect(self, mount_count: int = 0) -> dict[str, Any]:
        """Podman's `volume inspect` document."""
        created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.created))
        return {"Name": self.name, "Driver": "local", "Mountpoint": self.mountpoint,
                "CreatedAt": f"{created}.{int(self.created % 1 * 1e9):09d}Z", "Labels": dict(self.labels),
                "Scope": "local", "Options": {}, "MountCount": mount_count, "NeedsCopyUp": self.needs_copy_up,
                **({"Anonymous": True} if self.anonymous else {})}


class VolumeStore:
    """The volumes of one graph root."""

    def __init__(self, db: Database, root: str):
        self.db, self.root = db, os.path.join(root, "volumes")

    def create(self, name: str | None = None, labels: dict[str, str] | None = None, *,
               anonymous: bool = False, exist_ok: bool = False) -> Volume:
        if name is None:
            name = os.urandom(32).hex()
        check_name(name)
        path = os.path.join(self.root, name)
        volume = Volume(name, os.path.join(path, "_data"), time.time(), dict(labels or {}), anonymous, True)
        with self.db.transaction() as cur:
            if cur.execute("SELECT 1 FROM volumes WHERE name = ?", (name,)).fetchone():
                if exist_ok:
                    return self.get(name)
                raise WorkbenchError(f"volume with name {name} already exists: volume already exists")
            os.makedirs(self.root, mode=0o700, exist_ok=True)
            os.makedirs(path, mode=0o700, exist_ok=True)
            os.makedirs(volume.mountpoint, mode=0o755, exist_ok=True)
            cur.execute("INSERT INTO volumes (name, data, created) VALUES (?, ?, ?)",
                        (name, json.dumps(_to_json(volume)), volume.created))
        return volume

    def get(self, name: str) -> Volume:
        rows = self.db.query("SELECT data FROM volumes WHERE name = ?", (name,))
        if not rows:
            raise NoSuchVolume(name)
        return _from_json(json.loads(rows[0][0]))

    def exists(self, name: str) -> bool:
        return bool(self.db.query("SELECT 1 FROM volumes WHERE name = ?", (name,)))

    def list(self) -> list[Volume]:
        return [_from_json(json.loads(data)) for (data,) in self.db.query("SELECT data FROM volumes ORDER BY name")]

    def users(self, name: str) -> list[str]:
        """IDs of the containers that mount the volume."""
        rows = self.db.query("SELECT id, config FROM containers ORDER BY created")
        return [ctr_id for ctr_id, config in rows
                if any(m.get("volume") == name for m in json.loads(config).get("mounts") or [])]

    def remove(self, name: str) -> None:
        """Remove an unused volume and its data; VolumeInUse names the containers using it."""
        volume = self.get(name)
        users = self.users(name)
        if users:
            raise VolumeInUse(name, users)
        self.db.execute("DELETE FROM volumes WHERE name = ?", (name,))
        remove_tree(os.path.dirname(volume.mountpoint))

    def export(self, name: str, out: BinaryIO) -> None:
        """The volume's contents as a tar stream (`volume export`), owners and modes kept."""
        from .storage.tarwriter import write_tar

        fd = os.open(self.get(name).mountpoint, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            write_tar(fd, out)
        finally:
            os.close(fd)

    def import_tar(self, name: str, stream: BinaryIO) -> None:
        """Unpack a tar stream (plain or compressed) into the volume (`volume import`), safely: no
        entry lands outside it. The image's content is then not copied in at first use."""
        from .storage.archive import WhiteoutMode, apply_tar

        volume = self.get(name)
        apply_tar(stream, volume.mountpoint, whiteouts=WhiteoutMode.APPLY, same_owner=True)
        if volume.needs_copy_up:
            self.copied_up(name)

    def copied_up(self, name: str) -> None:
        volume = self.get(name)._replace(needs_copy_up=False)
        self.db.execute("UPDATE volumes SET data = ? WHERE name = ?", (json.dumps(_to_json(volume)), name))


def copy_up(rootfs: str, destination: str, volume: Volume, skip: frozenset[str] = frozenset()) -> None:
    """Fill an empty new volume from what the image has at `destination` (a directory), keeping
    owners and modes, leaving out `skip` (paths relative to it); the volume's top directory takes
    the image directory's owner and mode."""
    from .copy import piped
    from .storage.archive import WhiteoutMode, apply_tar
    from .storage.rootpath import UnsafePath, open_in_root
    from .storage.tarwriter import write_tar

    if os.listdir(volume.mountpoint):
        return
    root_fd = os.open(rootfs, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            source_fd = open_in_root(root_fd, destination, os.O_RDONLY | os.O_DIRECTORY)
        except (FileNotFoundError, NotADirectoryError, UnsafePath, OSError):
            return  # nothing there (or not a directory): an empty volume
    finally:
        os.close(root_fd)
    try:
        st = os.fstat(source_fd)
        os.chown(volume.mountpoint, st.st_uid, st.st_gid)
        os.chmod(volume.mountpoint, st.st_mode & 0o7777)
        if os.listdir(source_fd):
            piped(lambda out: write_tar(source_fd, out, skip=skip),
                  lambda stream: apply_tar(stream, volume.mountpoint, whiteouts=WhiteoutMode.APPLY, same_owner=True))
    finally:
        os.close(source_fd)


def _to_json(volume: Volume) -> dict[str, Any]:
    return volume._asdict()


def _from_json(data: dict[str, Any]) -> Volume:
    return Volume(**{field: data[field] for field in Volume._fields})
