"""Rootless mode: an ordinary user's store, and the user namespace every engine process joins.

As rootless Podman: one long-lived pause process (`catatonit -P`) holds a user namespace, with the
user as root and the user's subordinate ids (/etc/subuid, /etc/subgid, mapped by newuidmap and
newgidmap) as the other ids, and a mount namespace in which the overlay mounts live. Every
engine process joins both (setns) before it touches the store, so the rest of the engine runs as
"root" unchanged. Joining needs a single-threaded process: the CLI joins when it opens the store;
a Jupyter kernel (threads) runs its commands in forked children that join (commands/relay.py,
widgets/rootless.py). `system migrate` stops the pause process.
"""

from __future__ import annotations

import functools
import os

from . import logger
from .errors import WorkbenchError
from .records import NamedTuple

log = logger.get(__name__)

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
PAUSE_FILE = "pause.pid"


class RootlessError(WorkbenchError):
    """Rootless mode cannot start: says what is missing and how to fix it."""


class IdRange(NamedTuple):
    """A user's subordinate ids: `count` ids from `start` on the host."""

    start: int
    count: int


IdMap = list[tuple[int, int, int]]  # (id inside, id outside, count), as OCI's uidMappings


def parse_id_map(text: str) -> IdMap:
    """A /proc/<pid>/uid_map or gid_map: (inside, outside, count) ranges."""
    return [(int(a), int(b), int(n)) for a, b, n in (line.split() for line in text.splitlines() if line.strip())]


def read_id_map(path: str) -> IdMap | None:
    """parse_id_map of the file `path`; None when it cannot be read."""
    try:
        with open(path) as f:
            return parse_id_map(f.read())
    except OSError:
        return None


def host_uid() -> int:
    """The user's uid on the host, also once joined (where the kernel says 0)."""
    outer = _outer_id("/proc/self/uid_map")
    return os.geteuid() if outer is None else outer


def host_gid() -> int:
    """The user's gid on the host, also once joined."""
    outer = _outer_id("/proc/self/gid_map")
    return os.getegid() if outer is None else outer


def keep_id_maps() -> tuple[IdMap, IdMap]:
    """The uid and gid maps of a `--userns=keep-id` container, relative to the joined namespace:
    the user's own id is itself inside (it is 0 in the namespace), ids below it shift up by one
    (root inside is the namespace's 1), the rest map to themselves."""
    maps = []
    for own, map_file in ((host_uid(), "/proc/self/uid_map"), (host_gid(), "/proc/self/gid_map")):
        total = _ids_in(map_file)
        if own >= total:
            raise RootlessError(f"--userns=keep-id: id {own} is not below the {total} ids of the user namespace: "
                                f"it needs more than {own} subordinate ids in /etc/subuid and /etc/subgid")
        ranges = [(0, 1, own), (own, 0, 1), (own + 1, own + 1, total - own - 1)]
        maps.append([r for r in ranges if r[2] > 0])
    return maps[0], maps[1]


def _ids_in(map_file: str) -> int:
    """How many ids the joined user namespace has."""
    if not in_namespace():
        raise RootlessError("--userns=keep-id is made in the rootless user namespace, which this process has not "
                            "joined")
    return sum(count for _inside, _outside, count in read_id_map(map_file) or [])


@functools.cache
def is_rootless() -> bool:
    """True when an ordinary user runs the engine (joined to its namespace or not yet)."""
    return host_uid() != 0


def in_namespace() -> bool:
    """True once this process runs in a user namespace (the pause process's)."""
    return _outer_id("/proc/self/uid_map") is not None


def gid_mapped(gid: int) -> bool:
    """Whether group `gid` exists in this process's user namespace (always as root)."""
    if not is_rootless():
        return True
    ranges = read_id_map("/proc/self/gid_map")
    return ranges is None or any(inner <= gid < inner + count for inner, _outer, count in ranges)


def _outer_id(map_file: str) -> int | None:
    """The host id that id 0 maps to, or None in the initial namespace (identity map)."""
    ranges = read_id_map(map_file)
    if not ranges or ranges == [(0, 0, 4294967295)]:
        return None
    return next((outer for inner, outer, _count in ranges if inner == 0), None)


# -- where the store lives ------------------------------------------------------------------
def default_root() -> str:
    """`$XDG_DATA_HOME/workbench`, else `~/.local/share/workbench` (as Podman's storage)."""
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.join(_home(), ".local", "share")
    return os.path.join(data_home, "workbench")


def default_runroot() -> str:
    """`$XDG_RUNTIME_DIR/workbench`, else a private `/tmp/workbench-run-UID` (mode 0700, ours)."""
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    if runtime_dir and _owned_private_dir(runtime_dir):
        return os.path.join(runtime_dir, "workbench")
    fallback = f"/tmp/workbench-run-{host_uid()}"
    try:
        os.mkdir(fallback, 0o700)
    except FileExistsError:
        pass
    if not _owned_private_dir(fallback):
        raise RootlessError(f"{fallback}: the run root fallback is not a private directory owned by uid "
                            f"{host_uid()} (mode 0700): remove it, or set XDG_RUNTIME_DIR to such a directory")
    return os.path.join(fallback, "workbench")


def check_own_store(*paths: str) -> None:
    """Refuse a graph or run root that exists but is not the user's (root's store, say)."""
    for path in paths:
        try:
            owner = os.stat(path).st_uid
        except FileNotFoundError:
            continue
        except PermissionError:
            owner = -1
        if owner != os.geteuid():  # the user is 0 once joined, root's files then show as nobody
            raise RootlessError(f"{path}: this store belongs to {'another user' if owner < 0 else f'uid {owner}'}, "
                                f"not to uid {host_uid()}: rootless mode keeps its own store (the default "
                                f"{default_root()}, or --root/--runroot directories of yours)")


def _owned_private_dir(path: str) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    import stat

    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and st.st_mode & 0o077 == 0


def _home() -> str:
    import pwd

    home = os.environ.get("HOME")
    if home and home != "/":
        return home
    return pwd.getpwuid(host_uid()).pw_dir


# -- subordinate ids ------------------------------------------------------------------------
def subordinate_ids(path: str, uid: int) -> IdRange | None:
    """The first range `path` (/etc/subuid or /etc/subgid) gives this user (by name or id)."""
    import pwd

    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = None
    try:
        with open(path) as f:
            for line in f:
                fields = line.strip().split(":")
                if (len(fields) == 3 and fields[0] in (name, str(uid)) and fields[1].isdigit()
                        and fields[2].isdigit() and int(fields[2]) > 0):
                    return IdRange(int(fields[1]), int(fields[2]))
    except OSError:
        return None
    return None


# -- the pause process ----------------------------------------------------------------------
def pause_pid(runroot: str) -> int | None:
    """The live pause process recorded in the run root, or None."""
    try:
        with open(os.path.join(runroot, PAUSE_FILE)) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return None
    from .exits import process_status

    status = process_status(pid)
    try:
        st = os.stat(f"/proc/{pid}")
        ns_user = os.readlink(f"/proc/{pid}/ns/user")
        os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None
    joined = in_namespace()  # then the pause process is in our own user namespace, else in another
    if (status is None or status[1] in ("Z", "X") or st.st_uid != os.geteuid()
            or (ns_user == os.readlink("/proc/self/ns/user")) != joined):
        return None  # dead (a zombie holds no namespaces), or a recycled pid: another process of ours
    return pid


def ensure_pause(runroot: str) -> int:
    """The pause process for this run root, started (under a lock) when there is none."""
    from .locks import FileLock

    pid = pause_pid(runroot)
    if pid is not None:
        return pid
    os.makedirs(runroot, mode=0o700, exist_ok=True)
    with FileLock(os.path.join(runroot, "pause.lck")):
        pid = pause_pid(runroot)
        if pid is None:
            pid = _start_pause()
            tmp = os.path.join(runroot, f"{PAUSE_FILE}.{os.getpid()}")
            with open(tmp, "w") as f:
                f.write(str(pid))
            os.replace(tmp, os.path.join(runroot, PAUSE_FILE))
        return pid


def stop_pause(runroot: str) -> None:
    """Kill the pause process: its namespaces go once no process is left in them (`system migrate`)."""
    import signal

    pid = pause_pid(runroot)
    if pid is not None:
        os.kill(pid, signal.SIGKILL)
    try:
        os.unlink(os.path.join(runroot, PAUSE_FILE))
    except FileNotFoundError:
        pass


def _start_pause() -> int:
    """Fork a child that unshares a user and mount namespace, map its ids, then let it pause."""
    import ctypes
    import shutil
    import signal

    pause = shutil.which("catatonit") or "/usr/libexec/podman/catatonit"
    if not os.access(pause, os.X_OK):
        raise RootlessError("catatonit not found: rootless mode keeps its user namespace in a `catatonit -P` "
                            "pause process; install package catatonit")
    uid, gid = os.geteuid(), os.getegid()
    sub_uids = subordinate_ids("/etc/subuid", uid)
    sub_gids = subordinate_ids("/etc/subgid", uid)
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the future pause process
        try:
            os.close(ready_r)
            os.close(go_w)
            os.setsid()
            error = b""
            if _libc().unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0:
                error = os.strerror(ctypes.get_errno()).encode()
            os.write(ready_w, error or b"ok")
            if error or os.read(go_r, 2) != b"go":
                os._exit(1)
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.closerange(3, 65536)
            os.chdir("/")  # it lives long: it must not hold the caller's directory busy
            os.execv(pause, [pause, "-P"])
        finally:
            os._exit(127)
    os.close(ready_w)
    os.close(go_r)
    try:
        answer = os.read(ready_r, 256)
        if answer != b"ok":
            raise RootlessError(f"cannot create a user namespace ({answer.decode() or 'the child died'}): "
                                "user namespaces may be disabled (sysctl user.max_user_namespaces, "
                                "kernel.unprivileged_userns_clone) or refused by a seccomp profile")
        _write_maps(pid, uid, gid, sub_uids, sub_gids)
        os.write(go_w, b"go")
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    finally:
        os.close(ready_r)
        os.close(go_w)
    return pid


def _write_maps(pid: int, uid: int, gid: int, sub_uids: IdRange | None, sub_gids: IdRange | None) -> None:
    """Map the user to 0 and its subordinate ids to 1..N; only the user itself without them."""
    import shutil
    import subprocess

    if sub_uids is None or sub_gids is None:
        log.warning("uid %d has no subordinate ids in /etc/subuid and /etc/subgid: only one uid and gid are "
                    "mapped, so images with files of other owners cannot be used (add a range with "
                    "`usermod --add-subuids 100000-165535 --add-subgids 100000-165535 USER`)", uid)
        with open(f"/proc/{pid}/setgroups", "w") as f:
            f.write("deny")
        with open(f"/proc/{pid}/uid_map", "w") as f:
            f.write(f"0 {uid} 1")
        with open(f"/proc/{pid}/gid_map", "w") as f:
            f.write(f"0 {gid} 1")
        return
    for tool, own, ids in (("newuidmap", uid, sub_uids), ("newgidmap", gid, sub_gids)):
        path = shutil.which(tool)
        if path is None:
            raise RootlessError(f"{tool} not found: mapping the subordinate ids needs it; install package uidmap")
        proc = subprocess.run([path, str(pid), "0", str(own), "1", "1", str(ids.start), str(ids.count)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise RootlessError(f"{tool} failed: {proc.stderr.strip() or f'exit {proc.returncode}'}: check "
                                f"its set-uid bit or file capabilities and the ranges in /etc/sub{tool[3:6]}")


def _libc():
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.unshare.argtypes = [ctypes.c_int]
    return libc


# -- joining ----------------------------------------------------------------------------------
def thread_count() -> int:
    """This process's threads (setns into a user namespace wants exactly one)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 1


def join(runroot: str) -> None:
    """Enter the pause process's user and mount namespaces (started when needed).

    A no-op once joined. Needs a single-threaded process (the kernel refuses setns into a user
    namespace otherwise)."""
    if in_namespace():
        return
    pid = ensure_pause(runroot)
    if thread_count() > 1:
        raise RootlessError("rootless mode: this process has threads, and only a single-threaded process can "
                            "join the user namespace: use the `workbench` command, or `%ctr` in a notebook "
                            "(it runs each command in a process that joins)")
    import ctypes

    cwd = os.getcwd()
    libc = _libc()
    for kind, flag in (("user", CLONE_NEWUSER), ("mnt", CLONE_NEWNS)):
        fd = os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            if libc.setns(fd, flag) != 0:
                err = ctypes.get_errno()
                raise RootlessError(f"cannot join the rootless {kind} namespace of pause process {pid}: "
                                    f"{os.strerror(err)}")
        finally:
            os.close(fd)
    try:
        os.chdir(cwd)
    except OSError:
        os.chdir("/")
