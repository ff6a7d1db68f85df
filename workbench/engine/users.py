"""Resolve a container user from the container's own /etc/passwd and /etc/group (never host NSS)."""

from __future__ import annotations

import os
import stat

from .errors import CannotRun, InvalidArgument
from .records import NamedTuple

#: Files larger than this are refused (a hostile image could point /etc/passwd at /dev/zero).
MAX_ACCOUNT_FILE = 4 << 20


class ExecUser(NamedTuple):
    """A resolved user: numeric ids, supplementary groups and home directory."""

    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()
    home: str = "/"


def read_account_file(rootfs: str, path: str) -> list[list[str]]:
    """Lines of a colon-separated account file inside `rootfs`, opened no-follow; [] when absent."""
    from .storage.rootpath import open_in_root

    root_fd = os.open(rootfs, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            fd = open_in_root(root_fd, path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            raise InvalidArgument(f"cannot open {path} in the container: {exc.strerror or exc}") from exc
    finally:
        os.close(root_fd)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise InvalidArgument(f"{path} in the container is not a regular file")
        data = f.read(MAX_ACCOUNT_FILE + 1)
    if len(data) > MAX_ACCOUNT_FILE:
        raise InvalidArgument(f"{path} in the container is larger than {MAX_ACCOUNT_FILE} bytes")
    return [line.split(":") for line in data.decode(errors="replace").splitlines()
            if line and not line.startswith("#")]


def resolve_user(rootfs: str, spec: str) -> ExecUser:
    """`user`, `uid`, `user:group`, `uid:gid` as Podman resolves them, inside the container."""
    spec = spec.strip()
    if not spec:
        spec = "0"
    user_part, _, group_part = spec.partition(":")
    passwd = read_account_file(rootfs, "/etc/passwd")
    entry = None
    if user_part.isdigit():
        uid = int(user_part)
        entry = next((e for e in passwd if len(e) >= 4 and e[2] == user_part), None)
    else:
        entry = next((e for e in passwd if len(e) >= 4 and e[0] == user_part), None)
        if entry is None:
            raise CannotRun(f"unable to find user {user_part}: no matching entries in passwd file")
        uid = _int(entry[2], "uid", user_part)
    gid = _int(entry[3], "gid", user_part) if entry else 0
    home = entry[5] if entry and len(entry) > 5 and entry[5] else "/"
    groups = read_account_file(rootfs, "/etc/group")
    if group_part:
        if group_part.isdigit():
            gid = int(group_part)
        else:
            match = next((g for g in groups if len(g) >= 3 and g[0] == group_part), None)
            if match is None:
                raise CannotRun(f"unable to find group {group_part}: no matching entries in group file")
            gid = _int(match[2], "gid", group_part)
    extra: list[int] = []
    if entry and not group_part:
        name = entry[0]
        for g in groups:
            if len(g) >= 4 and name in g[3].split(",") and g[2].isdigit() and int(g[2]) != gid:
                extra.append(int(g[2]))
    return ExecUser(uid, gid, tuple(extra), home)


def _int(value: str, what: str, who: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise InvalidArgument(f"invalid {what} {value!r} for {who} in the container's account files") from None
